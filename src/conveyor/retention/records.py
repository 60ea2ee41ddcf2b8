"""What retention asks the database: whole-table reads, one query each, and the purge mark.

Purge looks at every build at once, so it reads the table in one pass (60,000 rows in about
0.1 s) instead of asking per package as DLRN does (one COUNT per package and per failed
commit: 54 s on the same table).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from conveyor.domain.bisect import RUNNING
from conveyor.domain.labels import CONSISTENT
from conveyor.retention.plan import BuildRecord, StepRecord
from conveyor.retention.tree import hash_relpath, step_relpath
from conveyor.store.models import FLAG_PURGED, Bisection, BisectStep, CIVote, Commit, Promotion

RPM = "rpm"
# Ids per UPDATE statement: well under SQLite's limit on bound parameters.
_BATCH = 500
# A build and where its directory is: row[0:7] of both record queries (hash_relpath(row[3:7])).
_IDENTITY = (
    Commit.id,
    Commit.project_name,
    Commit.status,
    Commit.commit_hash,
    Commit.distro_hash,
    Commit.extended_hash,
    Commit.component,
)


def build_records(session: Session) -> list[BuildRecord]:
    """Every rpm build, oldest first."""
    query = (
        select(*_IDENTITY, Commit.dt_build, Commit.flags)
        .where(Commit.type == RPM)
        .order_by(Commit.id)
    )
    return [
        BuildRecord(
            id=row[0],
            project=row[1],
            status=row[2],
            commit_hash=row[3],
            relpath=hash_relpath(row[3], row[4], row[5], row[6]),
            dt_build=row[7],
            purged=bool((row[8] or 0) & FLAG_PURGED),
        )
        for row in session.execute(query)
    ]


def referenced_commit_ids(session: Session) -> set[int]:
    """Builds something outside the tree names: every promotion, and the newest `consistent`
    vote of each component (where the builder puts `consistent` back after a crash)."""
    ids = set(session.scalars(select(Promotion.commit_id).distinct()))
    newest_votes = (
        select(func.max(CIVote.id))
        .where(CIVote.ci_name == CONSISTENT, CIVote.ci_vote.is_(True))
        .group_by(CIVote.component)
    )
    ids.update(session.scalars(select(CIVote.commit_id).where(CIVote.id.in_(newest_votes))))
    return ids


def step_records(session: Session) -> list[StepRecord]:
    """Every bisection step, with whether its bisection is still running."""
    query = select(
        BisectStep.bisection_id,
        BisectStep.hash,
        BisectStep.created,
        Bisection.state,
        Bisection.updated,
    ).join(Bisection, Bisection.id == BisectStep.bisection_id)
    return [
        StepRecord(
            bisection_id=row[0],
            relpath=step_relpath(row[1]),
            running=row[3] == RUNNING,
            ended=max(row[2] or 0, row[4] or 0),
        )
        for row in session.execute(query)
    ]


def _batches(ids: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), _BATCH):
        yield ids[start : start + _BATCH]


def set_purged(session: Session, mark: Collection[int], unmark: Collection[int]) -> None:
    """Flag `mark` purged and lift the flag from `unmark`; other flag bits are kept."""
    flags = func.coalesce(Commit.flags, 0)
    for batch in _batches(sorted(mark)):
        session.execute(
            update(Commit)
            .where(Commit.id.in_(batch))
            .values(flags=flags.op("|")(FLAG_PURGED))
            .execution_options(synchronize_session=False)
        )
    for batch in _batches(sorted(unmark)):
        session.execute(
            update(Commit)
            .where(Commit.id.in_(batch))
            .values(flags=flags.op("&")(~FLAG_PURGED))
            .execution_options(synchronize_session=False)
        )


@dataclass(frozen=True, slots=True)
class TreeRecord:
    """One `commits` row, as fsck needs it."""

    id: int
    project: str
    status: str
    commit_hash: str
    relpath: str | None
    artifacts: tuple[str, ...]  # relative to the data directory: repos/xx/yy/<dir>/<file>
    purged: bool


def tree_records(session: Session) -> list[TreeRecord]:
    """Every build of any type: a directory of any row is not an orphan."""
    query = select(*_IDENTITY, Commit.artifacts, Commit.flags).order_by(Commit.id)
    return [
        TreeRecord(
            id=row[0],
            project=row[1],
            status=row[2],
            commit_hash=row[3],
            relpath=hash_relpath(row[3], row[4], row[5], row[6]),
            artifacts=tuple(a for a in (row[7] or "").split(",") if a),
            purged=bool((row[8] or 0) & FLAG_PURGED),
        )
        for row in session.execute(query)
    ]
