"""Aggregate repositories on disk: `repos/<label>/` as a directory when components are on.

    repos/<label>/<h[0:2]>/<h[2:4]>/<h>/{<reponame>.repo, <reponame>.repo.md5, versions.csv}
    repos/<label>/{<reponame>.repo, <reponame>.repo.md5, versions.csv} -> the newest <h>/ files

A hashed directory is written once, staged beside its place and renamed in; the same hash
means the same `.repo`, so one that exists already is checked, never rewritten. The three
top-level links move one by one, each by an atomic rename, in DLRN's order (`.repo`, `.md5`,
`versions.csv`): there is no way to swap three files at once, and DLRN readers live with that.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from conveyor.config import Config
from conveyor.domain.aggregate import Aggregate, ComponentFiles, aggregate
from conveyor.domain.labels import COMPONENT_DIR, layout_collision
from conveyor.domain.names import InvalidName, check_component, check_label
from conveyor.publish.locks import publish_lock
from conveyor.publish.repostore import PublishError

_STAGING_PREFIX = ".staging-"
# A staging directory this old belongs to a writer that was killed, not to one still writing.
_STALE_STAGING_SECONDS = 3600


def _file_names(reponame: str) -> tuple[str, str, str]:
    check_label(reponame)  # same rule: it becomes a file name
    return f"{reponame}.repo", f"{reponame}.repo.md5", "versions.csv"


def _read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def read_component_label(
    repos_dir: Path, component: str, label: str, reponame: str
) -> ComponentFiles | None:
    """The files of `repos/component/<component>/<label>`; None while that label does not
    exist (a component whose packages never succeeded is left out of the aggregate)."""
    link = repos_dir / COMPONENT_DIR / check_component(component) / check_label(label)
    if not link.exists():
        return None
    # Both files come from one directory, even if the label moves while they are read.
    directory = link.resolve()
    if not directory.is_relative_to(repos_dir.resolve()):
        raise PublishError(f"{link} points outside {repos_dir}")
    repo_name, _, versions_name = _file_names(reponame)
    return ComponentFiles(
        _read_or_none(directory / repo_name), _read_or_none(directory / versions_name)
    )


def read_components(
    repos_dir: Path, label: str, reponame: str, components: Iterable[str]
) -> dict[str, ComponentFiles]:
    """The label's files of each component that has it."""
    found = {}
    for component in components:
        files = read_component_label(repos_dir, component, label, reponame)
        if files is not None:
            found[component] = files
    return found


def published_hash(repos_dir: Path, label: str, reponame: str) -> str | None:
    """The aggregate hash `repos/<label>/` serves now (from its `.repo.md5`); None if none."""
    _, md5_name, _ = _file_names(reponame)
    md5 = _read_or_none(repos_dir / check_label(label) / md5_name)
    return md5.decode("ascii", errors="replace") if md5 is not None else None


def _swap_link(link: Path, target: str) -> None:
    try:
        if str(link.readlink()) == target:
            return
    except OSError:
        pass  # missing, or not a link: replaced below
    # Unique, so two writers in one process (API threads) never share a temporary name.
    tmp = link.with_name(f".{link.name}.{secrets.token_hex(6)}")
    tmp.symlink_to(target)
    tmp.replace(link)


def _sweep_stale_staging(label_dir: Path) -> None:
    cutoff = time.time() - _STALE_STAGING_SECONDS
    for leftover in label_dir.glob(_STAGING_PREFIX + "*"):
        try:
            if leftover.lstat().st_mtime < cutoff:
                shutil.rmtree(leftover)
        except FileNotFoundError:
            continue  # another writer removed it first


def _check_published(final: Path, repo_name: str, result: Aggregate) -> None:
    if _read_or_none(final / repo_name) != result.repo:
        raise PublishError(f"{final} is already published with different content")


def _write_hashed_dir(label_dir: Path, reponame: str, result: Aggregate) -> Path:
    repo_name, md5_name, versions_name = _file_names(reponame)
    final = label_dir.joinpath(*result.relpath.parts)
    if final.is_dir():
        _check_published(final, repo_name, result)
        return final
    _sweep_stale_staging(label_dir)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=label_dir))
    try:
        (staging / repo_name).write_bytes(result.repo)
        (staging / md5_name).write_bytes(result.md5_file)
        (staging / versions_name).write_bytes(result.versions)
        staging.chmod(0o755)  # mkdtemp makes it private; the web server must read it
        try:
            staging.rename(final)
        except OSError:
            if not final.is_dir():
                raise
            # Another writer published the same hash first: same hash, same content.
            _check_published(final, repo_name, result)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return final


def _fill_label_dir(label_dir: Path, reponame: str, result: Aggregate) -> None:
    final = _write_hashed_dir(label_dir, reponame, result)
    for name in _file_names(reponame):
        _swap_link(label_dir / name, os.path.relpath(final / name, label_dir))


def write_aggregate(
    repos_dir: Path, label: str, reponame: str, components: Mapping[str, ComponentFiles]
) -> str:
    """Publish the aggregate of `components` (the label's files of each component that has
    it) as `repos/<label>/`; returns its hash."""
    reason = layout_collision(check_label(label))
    if reason is not None:
        raise InvalidName(f"label {label!r} is reserved by the repository layout: {reason}")
    for component in components:
        check_component(component)
    result = aggregate(components)
    label_dir = repos_dir / label
    if label_dir.is_symlink():
        _switch_to_directory(label_dir, reponame, result)
    elif label_dir.exists() and not label_dir.is_dir():
        raise PublishError(f"{label_dir} is neither a label link nor an aggregate directory")
    else:
        label_dir.mkdir(parents=True, exist_ok=True)
        _fill_label_dir(label_dir, reponame, result)
    return result.hash


def _switch_to_directory(link: Path, reponame: str, result: Aggregate) -> None:
    """Replace a label link left by a run without components with an aggregate directory.

    The directory is complete before it takes the link's place. Swapping a link for a
    directory cannot be one rename, so readers see no label for the two system calls in
    between; this happens once, when components are switched on. A process killed between
    them leaves no label and a `.<label>.*` folder; the next write makes the label again.
    """
    fresh = Path(tempfile.mkdtemp(prefix=f".{link.name}.", dir=link.parent))
    try:
        fresh.chmod(0o755)
        _fill_label_dir(fresh, reponame, result)
        link.unlink()
        fresh.rename(link)
    finally:
        if fresh.exists():
            shutil.rmtree(fresh)


def aggregate_for_label(config: Config, label: str, components: Sequence[str]) -> str | None:
    """Write the aggregate of `label` (`repos/<label>/`) from the labels of `components` (the
    package list's, see metadata.targets.package_components) and return its hash; None,
    writing nothing, when no component has that label yet."""
    # Under the lock every publisher takes (reentrant): a cycle's build, a remote import and
    # a promotion must not interleave a component label's move with its aggregate.
    with publish_lock(config):
        parts = read_components(config.repos_dir, label, config.reponame, components)
        if not parts:
            return None
        return write_aggregate(config.repos_dir, label, config.reponame, parts)
