"""Which hash directories a purge removes: the pure decision, no disk and no database.

The rules are DLRN's (reference/dlrn.md section 12) plus what DLRN leaves to `--exclude-dirs`
and to luck:

- only builds older than the cutoff are candidates;
- each package's newest good build (SUCCESS, not purged) stays: other repositories link to it
  and the next build will link to it;
- a FAILED or RETRY build stays when a SUCCESS row has the same commit hash (DLRN's rule: the
  directory may be the one the success was later published in);
- builds named by `keep_ids` (promotions, the newest `consistent` vote) stay;
- directories in `kept_paths` stay: those labels point at, and those a kept repository links
  to (the caller reads the symlinks; the planner only compares paths);
- a directory stays while any row that maps to it stays.

Step repositories of bisections (repos/bisect/) are not builds: those of a bisection that
ended (concluded or reset) before the cutoff go, with its `current-<id>` pointer; the others
stay, and keep what they link to like a kept repository (the caller reads those links).

Rows already marked purged are skipped, as DLRN skips them, except after an interrupted purge
(`finish_purged`): a purge marks its rows before it removes their directories, so the next one
removes what is left of those, unless something above keeps it, in which case the mark is
lifted so that the database says what is on disk.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from conveyor.domain.paths import pointer_relpath
from conveyor.domain.status import CommitStatus

SECONDS_PER_DAY = 86_400

# Why an old build stays; the keys of PurgePlan.kept, in the order they are decided.
KEPT_NEWEST_GOOD = "newest good build of its package"
KEPT_REFERENCED = "promoted or voted consistent"
KEPT_SUCCESS_SAME_HASH = "failed, but a success has the same commit hash"
KEPT_LINKED = "pointed at by a label or linked from a kept repository"
KEPT_SHARED = "shares its directory with a build that stays"
KEPT_UNKNOWN_PATH = "its hashes do not make a valid directory name"
_YOUNG = "built after the cutoff"  # not a candidate at all, so not counted as kept


@dataclass(frozen=True, slots=True)
class BuildRecord:
    """One `commits` row, as much of it as purge needs."""

    id: int
    project: str
    status: str
    commit_hash: str
    relpath: str | None  # its hash directory below repos/; None if the hashes are invalid
    dt_build: int | None
    purged: bool


@dataclass(frozen=True)
class PurgePlan:
    cutoff: int
    remove: tuple[str, ...]  # hash directories (below repos/) of the rows to mark, oldest first
    mark: tuple[int, ...]  # rows to mark purged
    # Directories of rows an interrupted purge marked: removed if they are still there.
    finish: tuple[str, ...] = ()
    # Rows marked purged whose directory must stay: unmarked if the directory exists.
    restore: Mapping[int, str] = field(default_factory=dict)
    kept: Mapping[str, int] = field(default_factory=dict)  # old builds kept, by reason
    # Step repositories of bisections that ended before the cutoff, and their pointers.
    steps: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One `bisect_steps` row with its bisection's state, as much of it as purge needs."""

    bisection_id: int
    relpath: str | None  # its step repository below repos/; None if the hash is invalid
    running: bool  # the bisection has not ended
    ended: int  # the latest of the step's creation and its bisection's last change


def cutoff_for(now: int, older_than_days: int) -> int:
    """Builds whose dt_build is before this epoch second are old."""
    return now - older_than_days * SECONDS_PER_DAY


def is_old(record: BuildRecord, cutoff: int) -> bool:
    """A build with no dt_build counts as old. DLRN means to do the same (legacy rows have
    none) but its filter `dt_build < cutoff or dt_build is None` is written with Python's
    `is`, which SQLAlchemy cannot turn into SQL, so those rows are never purged there."""
    return record.dt_build is None or record.dt_build < cutoff


def newest_good_ids(records: Iterable[BuildRecord]) -> set[int]:
    """Each package's newest SUCCESS row that is not purged ("newest" = highest id: ids
    follow publication order, which is the order packages link to each other)."""
    newest: dict[str, int] = {}
    for r in records:
        if r.status == CommitStatus.SUCCESS and not r.purged and r.id > newest.get(r.project, 0):
            newest[r.project] = r.id
    return set(newest.values())


def _keep_reason(
    record: BuildRecord,
    cutoff: int,
    newest_good: Collection[int],
    keep_ids: Collection[int],
    succeeded_hashes: Collection[str],
) -> str | None:
    """Why this row's directory must stay, judging the row alone (None: it may go)."""
    if record.purged:
        return None  # decided by an earlier purge; only labels and links can keep it now
    if record.relpath is None:
        return KEPT_UNKNOWN_PATH
    if not is_old(record, cutoff):
        return _YOUNG
    if record.id in newest_good:
        return KEPT_NEWEST_GOOD
    if record.id in keep_ids:
        return KEPT_REFERENCED
    if record.status != CommitStatus.SUCCESS and record.commit_hash in succeeded_hashes:
        return KEPT_SUCCESS_SAME_HASH
    return None


def _succeeded_hashes(records: Sequence[BuildRecord]) -> set[str]:
    return {r.commit_hash for r in records if r.status == CommitStatus.SUCCESS}


def protected_paths(
    records: Sequence[BuildRecord], cutoff: int, keep_ids: Collection[int]
) -> set[str]:
    """The directories the rows alone keep: where the search for links starts."""
    newest_good = newest_good_ids(records)
    succeeded = _succeeded_hashes(records)
    return {
        r.relpath
        for r in records
        if r.relpath is not None and _keep_reason(r, cutoff, newest_good, keep_ids, succeeded)
    }


def expired_steps(steps: Sequence[StepRecord], cutoff: int) -> tuple[str, ...]:
    """The step repositories of bisections that ended before the cutoff, then the pointer of
    each such bisection; a step shared with a bisection still running, or ended later,
    stays."""
    staying = {s.relpath for s in steps if s.running or s.ended >= cutoff}
    ended = {s.bisection_id for s in steps if not s.running}
    ended -= {s.bisection_id for s in steps if s.running or s.ended >= cutoff}
    remove = {
        s.relpath: None
        for s in sorted(steps, key=lambda s: (s.ended, s.bisection_id))
        if s.bisection_id in ended and s.relpath is not None and s.relpath not in staying
    }
    return (*remove, *(pointer_relpath(i).as_posix() for i in sorted(ended)))


def plan_purge(
    records: Sequence[BuildRecord],
    cutoff: int,
    keep_ids: Collection[int],
    kept_paths: Collection[str],
    finish_purged: bool = False,
) -> PurgePlan:
    """Decide what a purge removes; see the module docstring for the rules."""
    newest_good = newest_good_ids(records)
    succeeded = _succeeded_hashes(records)
    reasons = {r.id: _keep_reason(r, cutoff, newest_good, keep_ids, succeeded) for r in records}
    staying = {r.relpath for r in records if reasons[r.id] is not None and r.relpath is not None}
    staying.update(kept_paths)

    # A directory that a row not purged maps to belongs to that row (a rebuild after a purge
    # reuses the path); a purged row never claims it back.
    owned = {r.relpath for r in records if not r.purged}

    remove: dict[str, None] = {}  # ordered sets: oldest build first
    finish: dict[str, None] = {}
    mark: list[int] = []
    restore: dict[int, str] = {}
    kept: Counter[str] = Counter()
    for r in sorted(records, key=lambda r: r.id):
        reason = reasons[r.id]
        if reason == _YOUNG or (r.purged and not finish_purged):
            continue
        if reason is not None:
            kept[reason] += 1
        elif r.relpath is None:
            continue  # purged, and no directory to look for
        elif r.relpath not in staying:
            if r.purged:
                finish[r.relpath] = None
            else:
                remove[r.relpath] = None
                mark.append(r.id)
        elif not r.purged:
            kept[KEPT_LINKED if r.relpath in kept_paths else KEPT_SHARED] += 1
        elif r.relpath not in owned:
            restore[r.id] = r.relpath  # a label or a link came to need it after all
    finish_only = tuple(f for f in finish if f not in remove)
    return PurgePlan(cutoff, tuple(remove), tuple(mark), finish_only, restore, dict(kept))
