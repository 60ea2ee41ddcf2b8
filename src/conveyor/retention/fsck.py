"""`conveyor fsck`: does the published tree agree with itself and with the database?

One walk of repos/ and one read of the `commits` table; every mismatch is reported, none is
repaired. Run it while the builder is idle: a publish in progress legitimately has a staging
directory and a journal for a moment.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from conveyor.config import Config
from conveyor.domain.labels import (
    BISECT_DIR,
    BUILDER_LABELS,
    COMPONENT_DIR,
    is_shard,
    layout_collision,
)
from conveyor.domain.status import CommitStatus
from conveyor.retention.purging import JOURNAL_NAME as PURGE_JOURNAL
from conveyor.retention.records import TreeRecord, tree_records
from conveyor.retention.tree import (
    JOURNAL,
    STAGING_PREFIX,
    TRASH_PREFIX,
    Label,
    inside,
    label_bases,
    resolve_link,
)
from conveyor.store.database import Database

# RepoStore.move_label creates `.<label>.tmp<pid>` and renames it over the label.
_LABEL_TMP = re.compile(r"^\..+\.tmp[0-9]+$")
_REPODATA = "repodata"


@dataclass(frozen=True, order=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class _Link:
    folder: str  # where the link is, relative to repos/
    name: str
    target: str


@dataclass
class _Walk:
    """What one pass over repos/ found."""

    root: str
    hash_dirs: dict[str, frozenset[str]] = field(default_factory=dict)  # -> real entries
    labels: list[Label] = field(default_factory=list)
    links: list[_Link] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def report(self, relpath: str, message: str) -> None:
        self.problems.append(Problem(f"{self.root}/{relpath}", message))


def _entries(path: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as entries:
            return list(entries)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _walk_folder(walk: _Walk, relpath: str) -> set[str]:
    """Record the links anywhere under `relpath`; returns the names of its real entries."""
    real: set[str] = set()
    subfolders: list[str] = []
    try:
        fd = os.open(f"{walk.root}/{relpath}", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return real
    try:
        with os.scandir(fd) as entries:
            for entry in entries:
                if entry.is_symlink():
                    # Relative to the open folder: a repository holds ~1,200 links.
                    target = os.readlink(entry.name, dir_fd=fd)
                    walk.links.append(_Link(relpath, entry.name, target))
                    continue
                real.add(entry.name)
                if entry.is_dir():
                    subfolders.append(f"{relpath}/{entry.name}")
    finally:
        os.close(fd)
    for subfolder in subfolders:
        _walk_folder(walk, subfolder)
    return real


def _walk_shards(walk: _Walk, base: str, first: str) -> None:
    """repos/[component/<c>/]xx/yy/<hash dir>."""
    prefix = "" if base == "." else f"{base}/"
    for second in _entries(f"{walk.root}/{prefix}{first}"):
        folder = f"{prefix}{first}/{second.name}"
        if not (is_shard(second.name) and second.is_dir(follow_symlinks=False)):
            walk.report(folder, "unexpected entry in the hash directory tree")
            continue
        for entry in _entries(f"{walk.root}/{folder}"):
            relpath = f"{folder}/{entry.name}"
            if entry.name.startswith(STAGING_PREFIX):
                walk.report(relpath, "staging directory left by an interrupted publish")
            elif entry.is_dir(follow_symlinks=False):
                walk.hash_dirs[relpath] = frozenset(_walk_folder(walk, relpath))
            else:
                walk.report(relpath, "unexpected entry in the hash directory tree")


def _walk_base(walk: _Walk, base: str) -> None:
    """repos/ or repos/component/<c>/: labels, shards, and whatever else lives there."""
    prefix = "" if base == "." else f"{base}/"
    for entry in _entries(f"{walk.root}/{prefix}".rstrip("/")):
        name, relpath = entry.name, f"{prefix}{entry.name}"
        if base == "." and name == JOURNAL:
            walk.report(relpath, "journal of an interrupted publish (`conveyor run` clears it)")
        elif base == "." and name.startswith(TRASH_PREFIX):
            walk.report(relpath, "left by an interrupted purge (`conveyor purge` removes it)")
        elif entry.is_symlink():
            if _LABEL_TMP.match(name):
                walk.report(relpath, "temporary link left by an interrupted label move")
                continue
            target = str(Path(entry.path).readlink())
            resolved = inside(walk.root, os.path.realpath(entry.path))
            walk.labels.append(Label(relpath, target, resolved))
            if name not in BUILDER_LABELS and (reason := layout_collision(name)) is not None:
                walk.report(relpath, f"label name collides with the repository layout: {reason}")
        elif not entry.is_dir():
            if is_shard(name) or (base == "." and name == COMPONENT_DIR):
                walk.report(relpath, "a file where the repository layout needs a folder")
        elif is_shard(name):
            _walk_shards(walk, base, name)
        elif base == "." and name == BISECT_DIR:
            _walk_folder(walk, relpath)  # bisections' repositories: their links are checked
        elif not (base == "." and name == COMPONENT_DIR):
            if name not in BUILDER_LABELS and (reason := layout_collision(name)) is not None:
                walk.report(relpath, f"folder collides with the repository layout: {reason}")
            _walk_folder(walk, relpath)  # a label folder (DLRN's aggregates): only its links


def _check_labels(walk: _Walk) -> Iterator[Problem]:
    for label in walk.labels:
        path = f"{walk.root}/{label.path}"
        if label.resolved is None:
            yield Problem(path, f"label points outside repos/: {label.target}")
        elif not Path(path).exists():
            yield Problem(path, f"dangling label: {label.target} does not exist")
        elif label.resolved not in walk.hash_dirs:
            yield Problem(path, f"label points at {label.resolved}, not at a hash directory")
        elif _REPODATA not in walk.hash_dirs[label.resolved]:
            yield Problem(path, f"label points at {label.resolved}, a build without a repository")


def _present(walk: _Walk, relpath: str) -> bool:
    """Whether repos/<relpath> exists; hash directories' listings answer most questions."""
    folder, _, name = relpath.rpartition("/")
    listing = walk.hash_dirs.get(folder)
    if listing is not None and name in listing:
        return True
    return Path(walk.root, relpath).exists()  # follows chains of links, as a web server does


def _check_links(walk: _Walk) -> Iterator[Problem]:
    for link in walk.links:
        path = f"{walk.root}/{link.folder}/{link.name}"
        resolved = resolve_link(walk.root, link.folder, link.target)
        if resolved is None:
            yield Problem(path, f"link points outside repos/: {link.target}")
        elif not _present(walk, resolved):
            yield Problem(path, f"dangling link: {link.target} does not exist")


def _who(rows: Sequence[TreeRecord]) -> str:
    return ", ".join(f"commit {r.id} ({r.project})" for r in rows)


def _check_rows(walk: _Walk, records: Sequence[TreeRecord]) -> Iterator[Problem]:
    by_path: dict[str, list[TreeRecord]] = defaultdict(list)
    for record in records:
        if record.relpath is not None:
            by_path[record.relpath].append(record)
    for relpath in walk.hash_dirs:
        path = f"{walk.root}/{relpath}"
        rows = by_path.get(relpath)
        if not rows:
            yield Problem(path, "hash directory with no row in the database (orphan)")
        elif all(r.purged for r in rows):
            yield Problem(path, f"marked purged but still present: {_who(rows)}")
    for record in records:
        if record.status != CommitStatus.SUCCESS or record.purged:
            continue
        if record.relpath is None:
            yield Problem(
                f"commits.id={record.id}",
                f"SUCCESS build of {record.project} whose hashes make no valid directory name",
            )
        elif record.relpath not in walk.hash_dirs:
            yield Problem(
                f"{walk.root}/{record.relpath}",
                f"directory missing for SUCCESS {_who([record])}, which is not marked purged",
            )
        else:
            for artifact in record.artifacts:
                relpath = artifact.removeprefix("repos/")
                if artifact == relpath or not _present(walk, relpath):
                    yield Problem(
                        f"{walk.root}/{relpath}", f"artifact of {_who([record])} is missing"
                    )


def check_trunk(config: Config) -> list[Problem]:
    """Every mismatch between the tree under repos/ and the database, sorted by path."""
    repos = config.repos_dir
    walk = _Walk(os.path.realpath(repos))
    if Path(walk.root).is_dir():
        for base in label_bases(Path(walk.root)):
            _walk_base(walk, base)
    db = Database(config.database_url)
    try:
        with db.reader() as session:
            records = tree_records(session)
    finally:
        db.close()
    journal = config.datadir / PURGE_JOURNAL
    if journal.exists():
        walk.problems.append(
            Problem(str(journal), "a purge was interrupted (`conveyor purge` finishes it)")
        )
    problems = [
        *walk.problems,
        *_check_labels(walk),
        *_check_links(walk),
        *_check_rows(walk, records),
    ]
    return sorted(problems)
