"""The target distributions conveyor knows, with what a `.repo` file's `$releasever` and the
distribution's Python are there (report-uc.py's list, plus EL10)."""

from __future__ import annotations

# name -> (release version, Python version)
DISTROS: dict[str, tuple[str, str]] = {
    "centos8": ("8", "3.6"),
    "centos9": ("9", "3.9"),
    "centos10": ("10", "3.12"),
}
