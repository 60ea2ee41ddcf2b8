"""The promotions page's read side: the history of promotions, since when a label points where
it does, the repositories behind candidates, and each candidate's CI results split into jobs
passed, failed and missing.

The promotion service decides (conveyor.promote: its `explain` lists each target's
candidates with their verdicts); this module reads what the page shows around that decision.
"Missing" in a decision means "not passed"; a person needs to tell a job that failed (its
latest vote is a failure) from one that has not voted yet, so the jobs are split here from
each candidate's latest results (`conveyor.domain.promotion.latest_results`).

Every query is bounded: rows by primary key or by the indexed label name, votes of the few
candidates shown. No database row leaves a function.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import func, select

from conveyor.domain.names import InvalidName
from conveyor.domain.paths import repo_dir
from conveyor.domain.promotion import Vote, latest_results
from conveyor.reports.queries import REPOSITORY_COLUMNS
from conveyor.store.database import Database
from conveyor.store.models import FLAG_PURGED, CIVote, CIVoteAggregate, Commit, Promotion
from conveyor.store.queries import aggregate_votes, commit_votes

__all__ = [
    "HistoryPage",
    "JobResults",
    "JobSplit",
    "LabelMove",
    "Repository",
    "aggregate_results",
    "commit_results",
    "job_results",
    "label_moves",
    "promotion_history",
    "repositories",
    "split_jobs",
    "state_key",
]

VOTES_PAGE = "/api/civotes_detail.html"
AGGREGATE_VOTES_PAGE = "/api/civotes_agg_detail.html"


@dataclass(frozen=True, slots=True)
class Repository:
    """A commit's repository, as the pages name and link it."""

    commit_id: int
    project: str
    commit_hash: str
    distro_hash: str | None
    extended_hash: str | None
    component: str | None
    status: str
    dt_build: int | None
    purged: bool

    @property
    def path(self) -> str | None:
        """Below /repos/; None when the row's hashes could not name a directory."""
        try:
            return repo_dir(self.commit_hash, self.distro_hash, self.extended_hash, self.component)
        except InvalidName:
            return None

    @property
    def href(self) -> str | None:
        path = self.path
        return None if path is None or self.purged else f"/repos/{path}/"

    @property
    def votes_href(self) -> str:
        """Its vote detail page (DLRN's parameters)."""
        query = urlencode({"commit_hash": self.commit_hash, "distro_hash": self.distro_hash or ""})
        return f"{VOTES_PAGE}?{query}"


def aggregate_votes_href(ref_hash: str) -> str:
    return f"{AGGREGATE_VOTES_PAGE}?{urlencode({'ref_hash': ref_hash})}"


def _repository(row: Any) -> Repository:
    return Repository(
        row.id,
        row.project_name,
        row.commit_hash,
        row.distro_hash,
        row.extended_hash,
        row.component,
        row.status,
        row.dt_build,
        bool((row.flags or 0) & FLAG_PURGED),
    )


def repositories(db: Database, commit_ids: Iterable[int]) -> dict[int, Repository]:
    """The repositories of `commit_ids` (those that exist), by id."""
    ids = sorted(set(commit_ids))
    if not ids:
        return {}
    with db.reader() as session:
        rows = session.execute(select(*REPOSITORY_COLUMNS).where(Commit.id.in_(ids)))
        return {row.id: _repository(row) for row in rows}


def state_key(db: Database) -> tuple[int, ...]:
    """Changes whenever a promotion decision may: the newest commit, vote, aggregate vote
    and promotion rows (four primary-key lookups). Not when a repository is purged: a
    purge changes a row's flags only."""
    with db.reader() as session:
        return tuple(
            int(session.scalar(select(func.max(column))) or 0)
            for column in (Commit.id, CIVote.id, CIVoteAggregate.id, Promotion.id)
        )


# --- history -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LabelMove:
    """One `promotions` row: `label` moved to `repository` at `timestamp`."""

    id: int
    label: str
    component: str | None
    timestamp: int
    user: str | None
    aggregate_hash: str | None
    repository: Repository | None  # None only if the commit row is gone


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """`limit` moves from `offset`, newest first; `more` when older ones exist."""

    moves: list[LabelMove]
    offset: int
    limit: int
    more: bool


def _moves(db: Database, query: Any) -> list[LabelMove]:
    with db.reader() as session:
        rows = session.execute(query).all()
    found = repositories(db, (row.commit_id for row in rows))
    return [
        LabelMove(
            row.id,
            row.promotion_name,
            row.component,
            row.timestamp,
            row.user,
            row.aggregate_hash,
            found.get(row.commit_id),
        )
        for row in rows
    ]


_MOVE_COLUMNS = (
    Promotion.id,
    Promotion.commit_id,
    Promotion.promotion_name,
    Promotion.component,
    Promotion.timestamp,
    Promotion.user,
    Promotion.aggregate_hash,
)


def promotion_history(
    db: Database, *, labels: Sequence[str] = (), limit: int, offset: int = 0
) -> HistoryPage:
    """The newest promotions first (of `labels` only, when given): the primary key walked
    backwards, or the (name, id) index per label."""
    query = select(*_MOVE_COLUMNS).order_by(Promotion.id.desc())
    if labels:
        query = query.where(Promotion.promotion_name.in_(sorted(set(labels))))
    moves = _moves(db, query.limit(limit + 1).offset(offset))
    return HistoryPage(moves[:limit], offset, limit, len(moves) > limit)


def label_moves(
    db: Database, labels: Iterable[tuple[str, str | None]]
) -> dict[tuple[str, str | None], LabelMove]:
    """Each (label, component)'s newest move: where it points and since when. A component
    of None matches a move of any component (an aggregate target moves every component's
    label at once)."""
    found: dict[tuple[str, str | None], LabelMove] = {}
    for name, component in dict.fromkeys(labels):
        query = select(*_MOVE_COLUMNS).where(Promotion.promotion_name == name)
        if component is not None:
            query = query.where(Promotion.component == component)
        moves = _moves(db, query.order_by(Promotion.id.desc()).limit(1))
        if moves:
            found[(name, component)] = moves[0]
    return found


# --- CI results of candidates --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobResults:
    """What CI said about one repository: each job's latest finished result, and the jobs
    with a vote still in progress after it."""

    latest: Mapping[str, bool]
    running: frozenset[str]


def job_results(votes: Sequence[Vote]) -> JobResults:
    """Each job's latest finished result, and the jobs voting now, from a repository's votes."""
    latest = latest_results(votes)
    newest_finished: dict[str, tuple[int, int]] = {}
    for vote in votes:
        if not vote.in_progress:
            key = (vote.timestamp, vote.id)
            newest_finished[vote.job] = max(newest_finished.get(vote.job, key), key)
    running = frozenset(
        vote.job
        for vote in votes
        if vote.in_progress and (vote.timestamp, vote.id) > newest_finished.get(vote.job, (-1, -1))
    )
    return JobResults(latest, running)


def commit_results(db: Database, commit_ids: Sequence[int]) -> dict[int, JobResults]:
    """The CI results of each commit's repository (votes through `civotes`)."""
    with db.reader() as session:
        votes = commit_votes(session, commit_ids)
    return {key: job_results(found) for key, found in votes.items()}


def aggregate_results(db: Database, hashes: Sequence[str]) -> dict[str, JobResults]:
    """The CI results of each aggregate hash (votes through `civotes_agg`)."""
    with db.reader() as session:
        votes = aggregate_votes(session, hashes)
    return {key: job_results(found) for key, found in votes.items()}


@dataclass(frozen=True, slots=True)
class JobSplit:
    """The criteria jobs of one candidate, each in one group, in criteria order."""

    passed: tuple[tuple[str, str | None], ...]  # (job, the alternative that passed for it)
    failed: tuple[str, ...]  # its latest result (or an alternative's) is a failure
    missing: tuple[str, ...]  # no finished vote of it nor of an alternative yet
    running: frozenset[str]  # jobs (of any group) with a vote in progress


def split_jobs(
    criteria: Sequence[str], alternatives: Mapping[str, Sequence[str]], results: JobResults
) -> JobSplit:
    """Passed as the promotion rules count it (the job or one of its alternatives passed);
    of the others, failed when one of them has a finished vote, else missing."""
    latest = results.latest
    passed: list[tuple[str, str | None]] = []
    failed: list[str] = []
    missing: list[str] = []
    for job in criteria:
        others = tuple(alternatives.get(job, ()))
        if latest.get(job, False):
            passed.append((job, None))
            continue
        alternative = next((alt for alt in others if latest.get(alt)), None)
        if alternative is not None:
            passed.append((job, alternative))
        elif any(name in latest for name in (job, *others)):
            failed.append(job)
        else:
            missing.append(job)
    watched = set(criteria) | {alt for job in criteria for alt in alternatives.get(job, ())}
    return JobSplit(tuple(passed), tuple(failed), tuple(missing), results.running & watched)
