"""The aggregate repository of a trunk built by components (reference/dlrn.md section 11).

With components on, every component has its own `current` and `consistent`; the label of the
whole trunk is the aggregate of the components' labels: their `.repo` files one after the
other. The aggregate hash names it, and CI votes and promotions refer to it, so the formula is
DLRN's to the byte: MD5 of, for each component in sorted order, its `.repo` file followed by
a newline. DLRN reads these files in text mode; conveyor's `.repo` files are ASCII with `\\n`
line ends, so working on bytes gives the same hash.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

from conveyor.domain.names import InvalidName, check_component

# DLRN has no such thing: its post-build cannot place a build without a component once
# components are on. conveyor files those packages here, so that every build belongs to exactly
# one component tree and the aggregate covers the whole distribution.
DEFAULT_COMPONENT = "default"

# DLRN writes this header itself instead of keeping a component file's first line.
AGGREGATE_VERSIONS_HEADER = (
    b"Project,Source Repo,Source Sha,Dist Repo,Dist Sha,Status,Last Success Timestamp,"
    b"Component,Extended Sha,Pkg NVR\n"
)

_MD5_HEX = re.compile(r"^[0-9a-f]{32}$")


def component_of(component: str | None, use_components: bool) -> str | None:
    """The component tree a package is published in; None when components are off."""
    if not use_components:
        return None
    return check_component(component) if component else DEFAULT_COMPONENT


@dataclass(frozen=True)
class ComponentFiles:
    """What one component's label holds; None for a file that is missing there."""

    repo: bytes | None  # <label>/<reponame>.repo
    versions: bytes | None  # <label>/versions.csv


@dataclass(frozen=True)
class Aggregate:
    hash: str
    repo: bytes  # the aggregate <reponame>.repo
    versions: bytes  # the aggregate versions.csv

    @property
    def md5_file(self) -> bytes:
        """The `<reponame>.repo.md5` file: the hash alone, without a newline, as DLRN writes."""
        return self.hash.encode("ascii")

    @property
    def relpath(self) -> PurePosixPath:
        """Where it lives below the label's directory."""
        return aggregate_relpath(self.hash)


def aggregate_relpath(aggregate_hash: str) -> PurePosixPath:
    """`<h[0:2]>/<h[2:4]>/<h>`, once `aggregate_hash` is known to be an MD5 hex digest."""
    if not isinstance(aggregate_hash, str) or not _MD5_HEX.fullmatch(aggregate_hash):
        raise InvalidName(f"invalid aggregate hash {aggregate_hash!r}")
    return PurePosixPath(aggregate_hash[0:2], aggregate_hash[2:4], aggregate_hash)


def _concatenated_repo(repo_files: Mapping[str, bytes]) -> bytes:
    return b"".join(repo_files[name] + b"\n" for name in sorted(repo_files))


def aggregate_hash(repo_files: Mapping[str, bytes]) -> str:
    """DLRN's aggregate hash of the components' `.repo` files (component name → content)."""
    return hashlib.md5(_concatenated_repo(repo_files), usedforsecurity=False).hexdigest()


def _rows(versions: bytes) -> bytes:
    # Everything after the header line: what DLRN's `readlines()[1:]` keeps.
    return versions.partition(b"\n")[2]


def aggregate(components: Mapping[str, ComponentFiles]) -> Aggregate:
    """The aggregate of the components' labels. The caller passes the components DLRN would:
    those of the package list that have the label; a missing file is skipped on its own,
    as DLRN checks each file separately."""
    repo_files = {name: f.repo for name, f in components.items() if f.repo is not None}
    versions = AGGREGATE_VERSIONS_HEADER + b"".join(
        _rows(files.versions)
        for _, files in sorted(components.items())
        if files.versions is not None
    )
    return Aggregate(aggregate_hash(repo_files), _concatenated_repo(repo_files), versions)
