"""The trunk's questions to the database, each one indexed query."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Select, bindparam, exists, func, or_, select, tuple_
from sqlalchemy.orm import Session

from conveyor.domain.promotion import Vote, group_votes
from conveyor.domain.status import CommitStatus
from conveyor.store.models import (
    FLAG_RECHECKED,
    BisectStep,
    CIVote,
    CIVoteAggregate,
    Commit,
    PackageStatus,
    Promotion,
)

RPM = "rpm"


def _newest_per_project(
    session: Session, inner: Select[Any], projects: Collection[str] | None
) -> dict[str, Commit]:
    if projects is not None:
        inner = inner.where(Commit.project_name.in_(projects))
    ids = inner.where(Commit.type == RPM).group_by(Commit.project_name)
    rows = session.scalars(select(Commit).where(Commit.id.in_(ids)))
    return {row.project_name: row for row in rows}


def last_processed(session: Session, projects: Collection[str]) -> dict[str, Commit]:
    """DLRN's "last processed commit" of each project: its newest row not pending a retry."""
    inner = select(func.max(Commit.id)).where(
        Commit.status != CommitStatus.RETRY, Commit.flags.op("&")(FLAG_RECHECKED) == 0
    )
    return _newest_per_project(session, inner, projects)


def already_built(
    session: Session,
    project: str,
    commit_hash: str,
    distro_hash: str,
    extended_hash: str | None,
) -> bool:
    """A non-retry row for the same source and distgit state exists.

    DLRN also treats a commit with the same commit *time* as built; two commits pushed in one
    second (bots, merges) would then lose the second, so conveyor compares hashes only.
    """
    query = select(Commit.id).where(
        Commit.project_name == project,
        Commit.type == RPM,
        Commit.status != CommitStatus.RETRY,
        Commit.flags.op("&")(FLAG_RECHECKED) == 0,
        Commit.commit_hash == commit_hash,
        Commit.distro_hash == distro_hash,
        Commit.extended_hash.is_(None)
        if extended_hash is None
        else Commit.extended_hash == extended_hash,
    )
    return session.scalar(query.limit(1)) is not None


def newest_consistent(session: Session, component: str | None) -> Commit | None:
    """The commit of the newest `consistent` vote (the label's truth in the database)."""
    query = (
        select(Commit)
        .join(CIVote, CIVote.commit_id == Commit.id)
        .where(CIVote.ci_name == "consistent", CIVote.ci_vote.is_(True))
        .order_by(CIVote.id.desc())
        .limit(1)
    )
    if component is not None:
        query = query.where(Commit.component == component)
    return session.scalars(query).first()


def successes_with_hash(session: Session, commit_hash: str) -> list[Commit]:
    return list(
        session.scalars(
            select(Commit).where(
                Commit.commit_hash == commit_hash, Commit.status == CommitStatus.SUCCESS
            )
        )
    )


def retries_of(session: Session, project: str, commit_hash: str, distro_hash: str) -> int:
    """How often this exact build was already retried (DLRN's maxretries counter)."""
    query = select(func.count(Commit.id)).where(
        Commit.project_name == project,
        Commit.commit_hash == commit_hash,
        Commit.distro_hash == distro_hash,
        Commit.status == CommitStatus.RETRY,
    )
    return session.scalar(query) or 0


@dataclass(frozen=True)
class Standing:
    """What the database says about the packages sharing a repository."""

    statuses: Mapping[str, PackageStatus]
    commits: Mapping[int, Commit]  # each package's last success and last build, by id

    def last_success(self, name: str) -> Commit | None:
        status = self.statuses.get(name)
        return self.commits.get(status.last_success_id or -1) if status else None

    def last_build(self, name: str) -> Commit | None:
        status = self.statuses.get(name)
        return self.commits.get(status.last_commit_id) if status else None


def standing(session: Session, names: Sequence[str]) -> Standing:
    statuses = {
        s.project_name: s
        for s in session.scalars(select(PackageStatus).where(PackageStatus.project_name.in_(names)))
    }
    ids = {s.last_commit_id for s in statuses.values()}
    ids |= {s.last_success_id for s in statuses.values() if s.last_success_id is not None}
    commits = {c.id: c for c in session.scalars(select(Commit).where(Commit.id.in_(ids)))}
    return Standing(statuses, commits)


def _commit_lookup(*columns: Any, extended: bool) -> Select[Any]:
    query = select(*columns).where(
        Commit.status == CommitStatus.SUCCESS,
        Commit.commit_hash == bindparam("commit_hash"),
        Commit.distro_hash == bindparam("distro_hash"),
    )
    if extended:
        query = query.where(Commit.extended_hash == bindparam("extended_hash"))
    return query.order_by(Commit.id.desc()).limit(1)


# Built once: constructing a statement costs more than running it (the API's hot path).
_FIND_COMMIT = {e: _commit_lookup(Commit, extended=e) for e in (False, True)}


def _lookup_params(commit_hash: str, distro_hash: str, extended_hash: str | None) -> dict[str, str]:
    params = {"commit_hash": commit_hash, "distro_hash": distro_hash}
    if extended_hash:
        params["extended_hash"] = extended_hash
    return params


def find_commit(
    session: Session, commit_hash: str, distro_hash: str, extended_hash: str | None = None
) -> Commit | None:
    """DLRN's commit lookup (API and promotions): the newest successful build of these
    hashes; an empty extended hash matches any."""
    params = _lookup_params(commit_hash, distro_hash, extended_hash)
    return session.scalars(_FIND_COMMIT[bool(extended_hash)], params).first()


class CommitKey(NamedTuple):
    id: int
    component: str | None
    extended_hash: str | None


LookupKey = tuple[str, str, str | None]  # commit hash, distro hash, extended hash or None


def find_commit_keys(session: Session, keys: Sequence[LookupKey]) -> dict[LookupKey, CommitKey]:
    """find_commit's answer for many builds at once, without loading the rows: what a batch
    of votes needs, in one round trip to a database server instead of one per vote."""
    pairs = list({(commit_hash, distro_hash) for commit_hash, distro_hash, _ in keys})
    if not pairs:
        return {}
    rows = session.execute(
        select(
            Commit.commit_hash,
            Commit.distro_hash,
            Commit.id,
            Commit.component,
            Commit.extended_hash,
        )
        .where(
            Commit.status == CommitStatus.SUCCESS,
            tuple_(Commit.commit_hash, Commit.distro_hash).in_(pairs),
        )
        .order_by(Commit.id.desc())
    ).all()
    builds: dict[tuple[str, str], list[CommitKey]] = {}
    for row in rows:  # newest first, as find_commit's LIMIT 1
        key_of = (row.commit_hash, row.distro_hash)
        builds.setdefault(key_of, []).append(CommitKey(row.id, row.component, row.extended_hash))
    found: dict[LookupKey, CommitKey] = {}
    for key in keys:
        commit_hash, distro_hash, extended_hash = key
        for build in builds.get((commit_hash, distro_hash), ()):
            if not extended_hash or build.extended_hash == extended_hash:
                found[key] = build
                break
    return found


# A bisection's step repositories are voted on as aggregates are: CI jobs report on them
# unchanged (`report_result --agg-hash`). One statement answers both.
_AGGREGATE_KNOWN = select(
    or_(
        exists().where(Promotion.aggregate_hash == bindparam("aggregate_hash")),
        exists().where(BisectStep.hash == bindparam("aggregate_hash")),
    )
)


def known_aggregate(session: Session, aggregate_hash: str) -> bool:
    """Whether a promotion made this aggregate (DLRN accepts votes only on those), or it is
    the repository of a bisection's step."""
    return bool(session.scalar(_AGGREGATE_KNOWN, {"aggregate_hash": aggregate_hash}))


def commit_votes(session: Session, commit_ids: Sequence[int]) -> dict[int, list[Vote]]:
    """The CI votes on each commit's repository (`civotes`), as the promotion rules read
    them. Columns, not CIVote objects: the votes of 100 candidates (a thousand and more) as
    ORM objects were half of an evaluation's CPU time (9.4 -> 5.1 ms, bench/api.py)."""
    if not commit_ids:
        return {}
    rows = session.execute(
        select(
            CIVote.commit_id,
            CIVote.ci_name,
            CIVote.ci_vote,
            CIVote.ci_in_progress,
            CIVote.timestamp,
            CIVote.id,
        ).where(CIVote.commit_id.in_(list(commit_ids)))
    )
    return group_votes(commit_ids, rows)


def aggregate_votes(session: Session, hashes: Sequence[str]) -> dict[str, list[Vote]]:
    """The CI votes on each aggregate hash (`civotes_agg`)."""
    if not hashes:
        return {}
    rows = session.execute(
        select(
            CIVoteAggregate.ref_hash,
            CIVoteAggregate.ci_name,
            CIVoteAggregate.ci_vote,
            CIVoteAggregate.ci_in_progress,
            CIVoteAggregate.timestamp,
            CIVoteAggregate.id,
        ).where(CIVoteAggregate.ref_hash.in_(list(hashes)))
    )
    return group_votes(hashes, rows)
