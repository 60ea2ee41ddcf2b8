"""DLRN's hashed repository paths (reference/dlrn.md section 8), kept identical on purpose."""

from __future__ import annotations

from pathlib import PurePosixPath

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
    prefix = f"component/{check_component(component)}/" if component else ""
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
