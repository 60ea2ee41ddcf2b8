"""upper-constraints.txt: ``name===version[;marker]`` lines, markers evaluated with packaging."""

from __future__ import annotations

import platform
import re
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import InvalidMarker, Marker
from packaging.utils import canonicalize_name

from conveyor.uc.errors import UCError


@dataclass(frozen=True)
class Pin:
    name: str  # as written in the file (PyPI spelling, e.g. ``oslo.config``)
    version: str
    line: int
    marker: str | None = None

    @property
    def key(self) -> str:
        """PEP 503 normalised name: what ``python3dist()`` provides are compared on."""
        return str(canonicalize_name(self.name))


def marker_environment(python_version: str) -> dict[str, str]:
    """The marker environment of the target distribution (e.g. CentOS Stream 9: 3.9)."""
    # rdopkg refuses a malformed -p too: markers would silently compare against garbage.
    if not re.fullmatch(r"\d+\.\d+(\.\d+)?", python_version):
        raise UCError(f"python version {python_version!r} is not X.Y (e.g. 3.9)")
    parts = python_version.split(".")
    full = python_version if len(parts) >= 3 else f"{python_version}.0"
    return {
        "python_version": ".".join(parts[:2]),
        "python_full_version": full,
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "sys_platform": "linux",
        "os_name": "posix",
        "platform_system": "Linux",
        "platform_machine": platform.machine() or "x86_64",
    }


def parse_constraints(
    text: str, source: str = "upper-constraints.txt", python_version: str = "3.9"
) -> list[Pin]:
    """Pins whose marker holds for ``python_version``, in file order.

    A name pinned twice under markers that both hold keeps the later pin (as report-uc.py).
    A line that is not ``name===version[;marker]`` is an error naming ``source:line``.
    """
    env = marker_environment(python_version)
    pins: dict[str, Pin] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        spec, sep, marker_text = line.partition(";")
        name, eq, version = spec.partition("===")
        name, version = name.strip(), version.strip()
        if not eq or not name or not version or any(c in version for c in " =<>!~,"):
            raise UCError(f"{source}:{number}: expected 'name===version[;marker]', got {raw!r}")
        if not all(c.isalnum() or c in "._-" for c in name):
            raise UCError(f"{source}:{number}: invalid distribution name {name!r}")
        marker: str | None = None
        if sep:
            marker = marker_text.strip()
            try:
                if not Marker(marker).evaluate(env):
                    continue
            except InvalidMarker as exc:
                raise UCError(f"{source}:{number}: invalid marker {marker!r}: {exc}") from None
        pin = Pin(name, version, number, marker)
        pins.pop(pin.key, None)
        pins[pin.key] = pin
    return list(pins.values())


def load_constraints(path: Path, python_version: str = "3.9") -> list[Pin]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UCError(f"{path}: cannot read: {exc}") from None
    return parse_constraints(text, str(path), python_version)
