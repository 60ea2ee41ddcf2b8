"""Questions about CI votes: a commit's votes, an aggregate's votes, the last tested repository
(DLRN's `repo_status`, `agg_status` and `last_tested_repo`).

Part of the votes service, not of the API: the answers are rows, which the API turns into
DLRN's JSON and another interface may show as it likes. Each function takes the caller's
Session, so that a write built on an answer (`mark_tested` after `last_tested_repo`, with the
API's audit row) commits in the same transaction. A refusal is a `VoteRefused` with DLRN's
message.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from conveyor.domain.labels import CONSISTENT
from conveyor.store.models import CIVote, CIVoteAggregate, Commit
from conveyor.store.queries import find_commit
from conveyor.votes.errors import BAD_MAX_AGE, COMMIT_NOT_FOUND, NO_VOTE, VoteRefused


@dataclass(frozen=True)
class CommitVotes:
    """A commit and its votes, oldest first."""

    commit: Commit
    votes: list[CIVote]


def commit_votes(
    session: Session,
    commit_hash: str,
    distro_hash: str,
    extended_hash: str | None = None,
    success: bool | None = None,
) -> CommitVotes:
    """The votes on the commit of these hashes (`repo_status`); only the successful or only
    the failed ones when `success` says which. VoteRefused when there is no such commit."""
    commit = find_commit(session, commit_hash, distro_hash, extended_hash)
    if commit is None:
        raise VoteRefused(COMMIT_NOT_FOUND)
    query = select(CIVote).where(CIVote.commit_id == commit.id)
    if success is not None:
        query = query.where(CIVote.ci_vote.is_(success))
    return CommitVotes(commit, list(session.scalars(query.order_by(CIVote.id))))


def aggregate_votes(
    session: Session, aggregate_hash: str, success: bool | None = None
) -> list[CIVoteAggregate]:
    """The votes on an aggregate (`agg_status`), oldest first; none for an unknown hash."""
    query = select(CIVoteAggregate).where(CIVoteAggregate.ref_hash == aggregate_hash)
    if success is not None:
        query = query.where(CIVoteAggregate.ci_vote.is_(success))
    return list(session.scalars(query.order_by(CIVoteAggregate.id)))


def cutoff(max_age: int, now: float | None = None) -> int:
    """The oldest vote time `max_age` hours allow (0: any age). VoteRefused when negative."""
    if max_age < 0:
        raise VoteRefused(BAD_MAX_AGE)
    # Never below 0 (the cutoff of "any age"): a huge max_age must not overflow SQLite.
    current = int(time.time() if now is None else now)
    return 0 if max_age == 0 else max(0, current - max_age * 3600)


@dataclass(frozen=True)
class TestedQuery:
    """What `last_tested_repo` looks for: votes newer than `max_age` hours (0: any), of
    `component` when given, successful or failed when `success` says which. `job_id`: that
    job's vote if it has one. `previous_job_id`: sequential mode, only that job's vote."""

    max_age: int
    success: bool | None = None
    job_id: str | None = None
    component: str | None = None
    previous_job_id: str | None = None


@dataclass(frozen=True)
class TestedRepo:
    """The vote `last_tested_repo` found, and its commit."""

    vote: CIVote
    commit: Commit


def _newest_vote(session: Session, *conditions: Any) -> CIVote | None:
    query = select(CIVote).where(*conditions)
    return session.scalars(
        query.order_by(CIVote.timestamp.desc(), CIVote.id.desc()).limit(1)
    ).first()


def _find_vote(session: Session, query: TestedQuery) -> CIVote:
    common: list[Any] = [CIVote.timestamp > cutoff(query.max_age)]
    if query.success is not None:
        common.append(CIVote.ci_vote.is_(query.success))
    if query.component is not None:
        common.append(CIVote.component == query.component)
    real = CIVote.ci_name != CONSISTENT
    if query.previous_job_id is not None:
        vote = _newest_vote(session, *common, real, CIVote.ci_name == query.previous_job_id)
        if vote is None:
            raise VoteRefused(NO_VOTE)
        return vote
    if query.job_id is not None:
        vote = _newest_vote(session, *common, real, CIVote.ci_name == query.job_id)
        if vote is not None:
            return vote
    vote = _newest_vote(session, *common, real) or _newest_vote(
        session, *common, CIVote.ci_name == CONSISTENT
    )
    if vote is None:
        raise VoteRefused(NO_VOTE)
    return vote


def last_tested_repo(session: Session, query: TestedQuery) -> TestedRepo:
    """DLRN's getVote, with the fallback filters it meant to apply: the newest vote of
    `job_id` (or, sequential, of `previous_job_id` alone), else the newest vote of any job
    but `consistent`, else the newest `consistent` vote. VoteRefused when there is none, or
    when `max_age` is negative."""
    vote = _find_vote(session, query)
    commit = session.get(Commit, vote.commit_id)
    assert commit is not None  # a foreign key
    return TestedRepo(vote, commit)


def mark_tested(
    session: Session, tested: TestedRepo, job_id: str, user: str, now: int | None = None
) -> CIVote:
    """Record that `job_id` started testing the repository `last_tested_repo` found (DLRN's
    POST: an in-progress vote, unsuccessful until the job reports), in the caller's
    transaction."""
    vote = CIVote(
        commit_id=tested.vote.commit_id,
        ci_name=job_id,
        ci_url="",
        ci_vote=False,
        ci_in_progress=True,
        timestamp=int(time.time()) if now is None else now,
        notes="",
        user=user,
        component=tested.vote.component,
    )
    session.add(vote)
    return vote
