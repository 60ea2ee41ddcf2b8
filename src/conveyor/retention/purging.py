"""`conveyor purge`: remove old hash directories without breaking what is still served.

Order of operations, chosen so that a purge stopped at any point is finished by the next one
and leaves nothing that `conveyor fsck` complains about once it is:

1. Leftover trash of an interrupted purge is deleted (under the purge lock, so it is nobody's).
2. The plan is made from one read of the database and of the labels and links on disk.
3. A journal (`<datadir>/.purging`) is written: from here on, a stop is finished by the next
   purge, which then also looks at the rows already marked (otherwise they are skipped, as
   DLRN skips them, and no time goes into checking their directories are gone).
4. All rows to purge are marked in one transaction, before any directory goes. The database
   then never names a directory that is gone: the publisher links only to builds not marked,
   and the API refuses to promote a marked one, from this instant on.
5. Each directory is renamed into `repos/.trash-<pid>/` and then deleted: it disappears from
   its place in one step, so no one ever sees a half-deleted repository; a kill during the
   delete leaves only trash, which step 1 of the next run sweeps.
6. The journal is removed.

Step repositories of bisections (repos/bisect/) are not builds and have no rows to mark: those
of bisections that ended before the cutoff are removed in step 5 with their `current-<id>`
pointers; every other one stays and keeps what it links to, so a running bisection's CI never
tests a repository with links into removed builds.

A purge needs no builder lock: it never removes a package's newest good build, which is the
only old build a cycle running at the same time links to, and a cycle's new directories are
not in the plan.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from conveyor.config import Config
from conveyor.domain.labels import BISECT_DIR
from conveyor.domain.names import check_label
from conveyor.publish.locks import file_lock
from conveyor.retention.plan import (
    PurgePlan,
    cutoff_for,
    expired_steps,
    plan_purge,
    protected_paths,
)
from conveyor.retention.records import (
    build_records,
    referenced_commit_ids,
    set_purged,
    step_records,
)
from conveyor.retention.tree import (
    TRASH_PREFIX,
    hash_dir_of,
    label_bases,
    label_directories,
    linked_closure,
    read_labels,
    step_directories,
    trash_dirs,
)
from conveyor.store.database import Database

log = logging.getLogger(__name__)

LOCK_NAME = ".purge.lock"
JOURNAL_NAME = ".purging"  # a purge marked rows and may not have removed all their directories


class RetentionError(Exception):
    """A purge cannot run as asked; the message says why."""


class PurgeObserver(Protocol):
    """Told about the removals of a real run (a progress bar, or log lines)."""

    def removing(self, total: int) -> None: ...
    def removed(self, relpath: str) -> None: ...


class LoggingObserver:
    def removing(self, total: int) -> None:
        log.info("purge: removing %d hash directories", total)

    def removed(self, relpath: str) -> None:
        log.debug("purge: removed repos/%s", relpath)


@dataclass(frozen=True)
class PurgeReport:
    plan: PurgePlan
    dry_run: bool
    removed: tuple[str, ...]  # directories removed (would be, in a dry run), below repos/
    marked: int  # rows marked purged (would be)
    restored: tuple[int, ...]  # rows whose mark was lifted: something needs their directory
    swept: tuple[Path, ...]  # trash of interrupted purges deleted (found, in a dry run)
    missing_labels: tuple[str, ...]  # --keep-label names with no label anywhere
    size: int | None  # bytes of the removed directories' own files, when asked
    steps: int = 0  # how many of `removed` are bisections' step repositories and pointers


@contextmanager
def purge_lock(datadir: Path) -> Iterator[None]:
    """One purge at a time: a second one would sweep the first one's trash."""
    with file_lock(datadir / LOCK_NAME) as (_, locked):
        if not locked:
            raise RetentionError(f"another purge is running on {datadir}")
        yield


def _check_days(older_than_days: int) -> int:
    if isinstance(older_than_days, bool) or not isinstance(older_than_days, int):
        raise RetentionError(f"--older-than must be a whole number of days: {older_than_days!r}")
    if older_than_days < 1:
        raise RetentionError(f"--older-than must be at least 1 day, not {older_than_days}")
    return older_than_days


def _missing_labels(repos: Path, names: Sequence[str]) -> tuple[str, ...]:
    """Names that are neither a label nor a label folder, in repos/ or any component."""
    bases = label_bases(repos) if repos.is_dir() else []
    places = [[repos / base / name for base in bases] for name in names]
    return tuple(
        name
        for name, paths in zip(names, places, strict=True)
        if not any(p.is_symlink() or p.is_dir() for p in paths)
    )


def _kept_paths(repos: Path, roots: set[str]) -> set[str]:
    """What labels and links keep: the labels' targets, label folders, and every directory
    reachable by symlinks from those and from `roots` (the directories the rows keep and the
    bisections' step repositories that stay, which are left out of the answer unless a label
    or a link reaches them too). repos/bisect/ is not a label folder: only the steps in
    `roots` keep what they link to."""
    if not repos.is_dir():
        return set()
    labelled = set(label_directories(repos)) - {BISECT_DIR}
    for label in read_labels(repos):
        if label.resolved is not None:
            labelled.add(label.resolved)
            directory = hash_dir_of(label.resolved)
            if directory is not None:
                labelled.add(directory)
    linked = linked_closure(repos, roots | labelled, reached_only=True)
    return labelled | linked


def _size(path: Path) -> int:
    """Bytes of the regular files under `path`; links are not counted (they free nothing)."""
    total = 0
    pending = [str(path)]
    while pending:
        try:
            with os.scandir(pending.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
        except FileNotFoundError:
            continue
    return total


def _remove(repos: Path, trash: Path, relpaths: Sequence[str], observer: PurgeObserver) -> None:
    observer.removing(len(relpaths))
    trash.mkdir(exist_ok=True)
    for index, relpath in enumerate(relpaths):
        parked = trash / str(index)
        try:
            (repos / relpath).rename(parked)
        except FileNotFoundError:
            pass  # removed since the plan was made (an earlier run, or by hand)
        else:
            _discard(parked)
        observer.removed(relpath)
    trash.rmdir()


def _discard(parked: Path) -> None:
    if parked.is_symlink():
        parked.unlink()  # a bisection's pointer
    else:
        shutil.rmtree(parked)


def _write_journal(journal: Path) -> None:
    """On disk before the rows are marked, or a crash could leave marks nobody finishes."""
    fd = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    directory = os.open(journal.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def purge(
    config: Config,
    older_than_days: int,
    *,
    keep_labels: Sequence[str] = (),
    dry_run: bool = False,
    measure_size: bool = False,
    now: int | None = None,
    observer: PurgeObserver | None = None,
) -> PurgeReport:
    """Remove the hash directories of builds older than `older_than_days` days that nothing
    keeps (conveyor.retention.plan says what keeps a build), and mark their rows purged.

    `keep_labels` names labels that must be kept; every label is kept anyway, so a name
    matters only as a check: the report lists those found nowhere. Nothing is changed when
    `dry_run` is set.
    """
    days = _check_days(older_than_days)
    names = [check_label(name) for name in keep_labels]
    cutoff = cutoff_for(int(time.time()) if now is None else now, days)
    if dry_run:
        return _purge(config, cutoff, names, True, measure_size, LoggingObserver())
    with purge_lock(config.datadir):
        return _purge(config, cutoff, names, False, measure_size, observer or LoggingObserver())


def _purge(
    config: Config,
    cutoff: int,
    keep_labels: Sequence[str],
    dry_run: bool,
    measure_size: bool,
    observer: PurgeObserver,
) -> PurgeReport:
    repos = config.repos_dir
    journal = config.datadir / JOURNAL_NAME
    interrupted = journal.exists()
    swept = tuple(trash_dirs(repos))
    if not dry_run:
        for leftover in swept:
            shutil.rmtree(leftover)
    db = Database(config.database_url)
    try:
        with db.reader() as session:
            records = build_records(session)
            keep_ids = referenced_commit_ids(session)
            steps = step_records(session)
        expired = expired_steps(steps, cutoff)
        staying_steps = set(step_directories(repos)).difference(expired)
        roots = protected_paths(records, cutoff, keep_ids) | staying_steps
        kept = _kept_paths(repos, roots)
        plan = plan_purge(records, cutoff, keep_ids, kept, finish_purged=interrupted)
        plan = replace(plan, steps=expired)
        # Directories of rows about to be marked are there (fsck says so if one is not);
        # those of rows an interrupted purge marked may be gone already.
        root = str(repos)
        doomed = plan.remove + tuple(r for r in plan.finish if os.path.lexists(f"{root}/{r}"))
        gone_steps = tuple(r for r in expired if os.path.lexists(f"{root}/{r}"))
        doomed += gone_steps
        restore = tuple(i for i, r in plan.restore.items() if os.path.lexists(f"{root}/{r}"))
        size = sum(_size(repos / r) for r in doomed) if measure_size else None
        if not dry_run:
            if doomed or plan.mark or restore:
                _write_journal(journal)
                with db.transaction() as session:
                    set_purged(session, plan.mark, restore)
                if doomed:
                    _remove(repos, repos / f"{TRASH_PREFIX}{os.getpid()}", doomed, observer)
            journal.unlink(missing_ok=True)
    finally:
        db.close()
    missing = _missing_labels(repos, keep_labels)
    return PurgeReport(
        plan, dry_run, doomed, len(plan.mark), restore, swept, missing, size, len(gone_steps)
    )
