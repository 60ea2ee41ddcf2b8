"""Where a repository's primary and filelists metadata are: read from repodata/repomd.xml."""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from conveyor.closure.errors import ClosureError

_NS = "{http://linux.duke.edu/metadata/repo}"


@dataclass(frozen=True)
class RepoFiles:
    """The metadata files of one repository folder, and the digest of its repomd.xml."""

    root: Path
    primary: Path
    filelists: Path | None  # file dependencies outside primary's short list need it
    digest: bytes  # sha256 of repomd.xml: a new repomd.xml, a new cache entry


def _inside(root: Path, href: str, repomd: Path) -> Path:
    """`href` under `root`: a repomd.xml pointing elsewhere (`..`, absolute) is refused, as
    the closure reads only the folder it was given."""
    path = (root / href).resolve()
    if not path.is_relative_to(root.resolve()):
        raise ClosureError(f"{repomd}: metadata location {href!r} is outside the repository")
    return path


def repo_files(root: Path) -> RepoFiles:
    """The primary and filelists of the repository at `root`, or ClosureError."""
    repomd = root / "repodata" / "repomd.xml"
    try:
        content = repomd.read_bytes()
    except FileNotFoundError:
        raise ClosureError(f"{root}: not a repository (no repodata/repomd.xml)") from None
    except OSError as exc:
        raise ClosureError(f"{repomd}: {exc.strerror or exc}") from None
    try:
        # No entity can reach a file or the network: expat expands none but the built-in ones.
        tree = ET.fromstring(content)  # noqa: S314
    except ET.ParseError as exc:
        raise ClosureError(f"{repomd}: cannot parse: {exc}") from None
    hrefs: dict[str, str] = {}
    for data in tree.iter(f"{_NS}data"):
        location = data.find(f"{_NS}location")
        kind = data.get("type")
        if kind and location is not None and location.get("href"):
            hrefs[kind] = location.get("href", "")
    if "primary" not in hrefs:
        raise ClosureError(f"{repomd}: no primary metadata listed")
    primary = _inside(root, hrefs["primary"], repomd)
    filelists = _inside(root, hrefs["filelists"], repomd) if "filelists" in hrefs else None
    return RepoFiles(root, primary, filelists, hashlib.sha256(content).digest())
