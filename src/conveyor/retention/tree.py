"""Reading the published tree for retention: hash directory paths, labels, and the links
between repositories.

Paths here are `str` relative to `repos/`, joined with `/`: purge handles tens of thousands of
them, and os / posixpath on strings are several times faster than pathlib objects.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from conveyor.domain.labels import BISECT_DIR, COMPONENT_DIR, is_shard
from conveyor.domain.names import InvalidName
from conveyor.domain.paths import repo_dir
from conveyor.domain.paths import step_relpath as step_path

JOURNAL = ".publishing"  # RepoStore's journal of a publish in progress
STAGING_PREFIX = ".staging-"  # RepoStore's staging directories
TRASH_PREFIX = ".trash-"  # where purge moves a directory before deleting it


def hash_relpath(
    commit_hash: str,
    distro_hash: str | None,
    extended_hash: str | None,
    component: str | None,
) -> str | None:
    """`domain.paths.repo_dir`, or None for a row whose hashes cannot name a directory."""
    try:
        return repo_dir(commit_hash, distro_hash, extended_hash, component)
    except InvalidName:
        return None


def step_relpath(step_hash: str) -> str | None:
    """`domain.paths.step_relpath` as a string, or None for a hash that names no folder."""
    try:
        return step_path(step_hash).as_posix()
    except InvalidName:
        return None


def step_directories(repos: Path) -> list[str]:
    """The step repositories of bisections on disk: repos/bisect/<h[0:2]>/<h[2:4]>/<h>/."""
    found = []
    pending = [(BISECT_DIR, 0)]
    while pending:
        relpath, depth = pending.pop()
        try:
            with os.scandir(repos / relpath) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False) and not entry.name.startswith("."):
                        child = f"{relpath}/{entry.name}"
                        if depth == 2:
                            found.append(child)
                        elif is_shard(entry.name):
                            pending.append((child, depth + 1))
        except (FileNotFoundError, NotADirectoryError):
            continue
    return sorted(found)


def hash_dir_of(relpath: str) -> str | None:
    """The hash directory holding `relpath` (itself, or a file or folder in it), or None when
    `relpath` is not inside the hash directory tree."""
    parts = relpath.split("/")
    if parts[0] == COMPONENT_DIR:
        parts = parts[2:]
        prefix = relpath.split("/", 2)[:2]
    else:
        prefix = []
    if len(parts) < 3 or not (is_shard(parts[0]) and is_shard(parts[1])):
        return None
    return "/".join(prefix + parts[:3])


def inside(repos: str, path: str) -> str | None:
    """`path` (absolute, normalized) relative to `repos`, or None when it is outside."""
    if path == repos:
        return "."
    if path.startswith(repos + "/"):
        return path[len(repos) + 1 :]
    return None


def resolve_link(repos: str, link_dir: str, target: str) -> str | None:
    """Where a symlink in `link_dir` (relative to repos/) points, relative to repos/, read
    lexically as a web server serving repos/ would; None when that is outside repos/."""
    if posixpath.isabs(target):
        return inside(repos, posixpath.normpath(target))
    joined = posixpath.normpath(posixpath.join(link_dir, target))
    if joined == ".." or joined.startswith("../"):
        return None
    return joined


@dataclass(frozen=True)
class Label:
    """A symlink directly in repos/ or in repos/component/<c>/."""

    path: str  # the link, relative to repos/
    target: str  # what it says
    resolved: str | None  # the path it reaches, relative to repos/; None: outside repos/


def label_bases(repos: Path) -> list[str]:
    """repos/ itself and each component folder: the places labels live (relative paths)."""
    bases = ["."]
    try:
        with os.scandir(repos / COMPONENT_DIR) as entries:
            bases += [
                f"{COMPONENT_DIR}/{e.name}"
                for e in entries
                if e.is_dir(follow_symlinks=False) and not e.name.startswith(".")
            ]
    except (FileNotFoundError, NotADirectoryError):
        pass
    return sorted(bases)


def read_labels(repos: Path) -> list[Label]:
    """Every label of the trunk and of each component. A label may point at another label
    (`current-passed-ci` → `current`), so it is followed to its end with realpath."""
    root = os.path.realpath(repos)
    labels = []
    for base in label_bases(repos):
        directory = repos / base
        with os.scandir(directory) as entries:
            for entry in entries:
                if not entry.is_symlink():
                    continue
                target = str(Path(entry.path).readlink())
                resolved = inside(root, os.path.realpath(entry.path))
                labels.append(Label(posixpath.normpath(f"{base}/{entry.name}"), target, resolved))
    return sorted(labels, key=lambda label: label.path)


def label_directories(repos: Path) -> list[str]:
    """Folders beside the labels that are neither hash shards nor `component/`: with
    components, DLRN's promotion names are such folders (reference/dlrn.md section 11)."""
    found = []
    for base in label_bases(repos):
        with os.scandir(repos / base) as entries:
            for entry in entries:
                name = entry.name
                if (
                    entry.is_dir(follow_symlinks=False)
                    and not name.startswith(".")
                    and not is_shard(name)
                    and not (base == "." and name == COMPONENT_DIR)
                ):
                    found.append(posixpath.normpath(f"{base}/{name}"))
    return sorted(found)


class _LinkReader:
    """Finds the hash directories that the symlinks of a directory point into.

    A repository of a 600-package trunk holds ~1,200 links, two into each of ~600 other
    repositories, all spelled `../../../xx/yy/<dir>/<file>`. Links are read relative to an
    open directory (40 % faster than by full path), and where a folder part leads is
    resolved once for the whole tree: the leading `../` climb out of the link's directory,
    so the answer depends only on what they leave of its path.
    """

    def __init__(self, repos: str) -> None:
        self.repos = repos
        self.resolved: dict[tuple[str, str], str | None] = {}

    def _read(self, relpath: str) -> tuple[list[str], list[str]]:
        """The link targets directly in `relpath`, and its real subfolders."""
        targets: list[str] = []
        folders: list[str] = []
        try:
            fd = os.open(f"{self.repos}/{relpath}", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError:
            return targets, folders  # gone, or not a directory: it holds no links
        try:
            with os.scandir(fd) as entries:
                for entry in entries:
                    if entry.is_symlink():
                        targets.append(os.readlink(entry.name, dir_fd=fd))
                    elif entry.is_dir(follow_symlinks=False):
                        folders.append(f"{relpath}/{entry.name}")
        finally:
            os.close(fd)
        return targets, folders

    def _folder(self, parts: list[str], current: str, folder: str) -> str | None:
        """The hash directory holding `folder` (a link's folder part, the link being in
        `current`), or None if that folder is not inside one."""
        dots = len(folder) - len(folder.lstrip("./"))
        ups = dots // 3
        if dots % 3 or folder[:dots] != "../" * ups or ups > len(parts) or "." in parts:
            resolved = resolve_link(self.repos, current, folder or ".")  # unusual: no shortcut
            return None if resolved is None else hash_dir_of(resolved)
        key = ("/".join(parts[: len(parts) - ups]), folder[dots:])
        if key not in self.resolved:
            resolved = resolve_link(self.repos, current, folder or ".")
            self.resolved[key] = None if resolved is None else hash_dir_of(resolved)
        return self.resolved[key]

    def hash_dirs(self, relpath: str) -> set[str]:
        """Hash directories that links anywhere inside `relpath` point into."""
        found: set[str] = set()
        pending = [relpath]
        while pending:
            current = pending.pop()
            targets, folders = self._read(current)
            pending += folders
            parts = current.split("/")  # "." only for repos/ itself: never shortcut there
            # Links into one directory (the SRPM and the RPM) share a folder: resolve it once.
            odd = set()
            for folder in {t.rpartition("/")[0] for t in targets}:
                directory = self._folder(parts, current, folder)
                if directory is None:
                    odd.add(folder)
                else:
                    found.add(directory)
            # A folder outside any hash directory: the link may name one (or a label).
            for target in targets:
                if odd and target.rpartition("/")[0] in odd:
                    resolved = resolve_link(self.repos, current, target)
                    directory = None if resolved is None else hash_dir_of(resolved)
                    if directory is not None:
                        found.add(directory)
        return found


def linked_closure(repos: Path, roots: Iterable[str], reached_only: bool = False) -> set[str]:
    """Every hash directory reachable by symlinks from `roots`: the roots included, unless
    `reached_only`, in which case a root is in the answer only if a link reaches it.

    A directory kept because a kept repository links to it must keep its own links whole as
    well, so the search goes on from each directory it finds.
    """
    reader = _LinkReader(os.path.realpath(repos))
    seen = set(roots)
    reached: set[str] = set()
    pending = list(seen)
    while pending:
        for directory in reader.hash_dirs(pending.pop()):
            reached.add(directory)
            if directory not in seen:
                seen.add(directory)
                pending.append(directory)
    return reached if reached_only else seen


def trash_dirs(repos: Path) -> list[Path]:
    """What interrupted purges left behind."""
    try:
        with os.scandir(repos) as entries:
            return sorted(
                repos / e.name
                for e in entries
                if e.name.startswith(TRASH_PREFIX) and e.is_dir(follow_symlinks=False)
            )
    except FileNotFoundError:
        return []
