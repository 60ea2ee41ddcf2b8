"""DLRN's hashed repository paths (reference/dlrn.md section 8), kept identical on purpose."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Protocol

from conveyor.domain.labels import BISECT_DIR, COMPONENT_DIR
from conveyor.domain.names import check_component, check_extended_hash, check_hash

# A downstream extended hash is "<distgit sha>_<source sha>" (40 + 1 + 40 characters).
_LONG_EXTENDED = 49


def hash_dir_name(commit_hash: str, distro_hash: str | None, extended_hash: str | None) -> str:
    check_hash(commit_hash, "commit hash")
    name = commit_hash
    if distro_hash:
        name += "_" + check_hash(distro_hash, "distro hash")[:8]
    if extended_hash:
        check_extended_hash(extended_hash)
        if len(extended_hash) < _LONG_EXTENDED:
            name += "_" + extended_hash[:8]
        else:
            name += "_" + extended_hash[:8] + "_" + extended_hash[41:49]
    return name


def repo_dir(
    commit_hash: str,
    distro_hash: str | None,
    extended_hash: str | None = None,
    component: str | None = None,
) -> str:
    """Path of a commit's repository below `repos/`, as a string (purge walks 60,000 rows)."""
    name = hash_dir_name(commit_hash, distro_hash, extended_hash)
    prefix = f"{COMPONENT_DIR}/{check_component(component)}/" if component else ""
    return f"{prefix}{commit_hash[0:2]}/{commit_hash[2:4]}/{name}"


def repo_relpath(
    commit_hash: str,
    distro_hash: str | None,
    extended_hash: str | None = None,
    component: str | None = None,
) -> PurePosixPath:
    """Path of a commit's repository below `repos/`."""
    return PurePosixPath(repo_dir(commit_hash, distro_hash, extended_hash, component))


def repo_hash(commit_hash: str, distro_hash: str | None) -> str:
    """The API's repo_hash: the extended hash is deliberately not part of it."""
    return f"{commit_hash}_{(distro_hash or '')[:8]}"


class BuildIdentity(Protocol):
    """What names a build's directory: a `commits` row, or anything with the same columns."""

    @property
    def commit_hash(self) -> str: ...
    @property
    def distro_hash(self) -> str | None: ...
    @property
    def extended_hash(self) -> str | None: ...
    @property
    def component(self) -> str | None: ...


def commit_relpath(build: BuildIdentity) -> PurePosixPath:
    """Where a build's repository is below `repos/`."""
    return repo_relpath(build.commit_hash, build.distro_hash, build.extended_hash, build.component)


def component_base(component: str | None) -> PurePosixPath:
    """The folder of a component's tree and labels below `repos/` (repos/ itself without)."""
    return (
        PurePosixPath(COMPONENT_DIR, check_component(component)) if component else PurePosixPath()
    )


def pointer_relpath(bisection_id: int) -> PurePosixPath:
    """The link below repos/ to the step a bisection waits for: bisect/current-<id>."""
    return PurePosixPath(BISECT_DIR, f"current-{int(bisection_id)}")


def step_relpath(step_hash: str) -> PurePosixPath:
    """A bisection step's repository below repos/: bisect/<h[0:2]>/<h[2:4]>/<h>
    (InvalidName for a hash that cannot name a folder)."""
    check_hash(step_hash, "step hash")
    return PurePosixPath(BISECT_DIR, step_hash[0:2], step_hash[2:4], step_hash)
