"""The promotion engine: for every target, in dependency order, read the incumbent, the
candidates and their votes, decide (promote/decide.py) and move the label (promote/labels.py).

Stateless and idempotent, like RDO's promoter: it can be killed at any point and run again.
Two triggers: `conveyor promote --once|--loop`, and `evaluate_after_vote` which the API calls
after every vote it records.

Candidates of a target, newest first, at most `latest_hashes_count`:
- candidate label `consistent`: the commits with a successful `consistent` vote;
- candidate label `current`: the successful builds;
- any other label: the commits promoted to that label (`promotions` rows).
"Newer" means a larger commit id: a repository built later carries every package's newest
good build at its time. The incumbent is the commit of the target's newest `promotions` row.

With components on, a target without a component promotes aggregates: its candidates are the
aggregate hashes its candidate label had, voted on through `civotes_agg` (promote/aggregate.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from conveyor.config import Config
from conveyor.domain.labels import CONSISTENT, CURRENT
from conveyor.domain.paths import commit_relpath
from conveyor.domain.promotion import (
    Candidate,
    Explanation,
    Incumbent,
    decide,
)
from conveyor.domain.status import CommitStatus
from conveyor.promote.aggregate import (
    AggregateCandidate,
    aggregate_candidates,
    aggregate_history,
    aggregate_incumbent,
    newest_candidates,
)
from conveyor.promote.criteria import Criteria, PromotionTarget
from conveyor.promote.labels import (
    PromotionConflict,
    PromotionError,
    incumbent_of,
    promote_aggregate,
    promote_label,
)
from conveyor.store.database import Database
from conveyor.store.models import FLAG_PURGED, CIVote, Commit, Promotion
from conveyor.store.queries import commit_votes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    """What the engine decided for one target, and what it did."""

    target: PromotionTarget
    explanation: Explanation
    chosen: Commit | None = None  # the commit the target is (or would be) promoted to; None
    # for an aggregate target (explanation.chosen names the aggregate hash)
    promotion: Promotion | None = None  # the (first) row written; None if nothing was
    error: str | None = None  # why a chosen promotion was not done (conflict, refused)
    dry_run: bool = False
    lost_race: bool = False  # `error` says another promoter moved the label first

    @property
    def promoted(self) -> bool:
        return self.promotion is not None


def candidate_key(commit: Commit) -> str:
    """How a candidate is named in explanations: its hash directory's name."""
    return commit_relpath(commit).name


def _candidate_commits(
    session: Session, label: str, component: str | None, limit: int
) -> list[Commit]:
    if label == CONSISTENT:
        query = (
            select(Commit)
            .join(CIVote, CIVote.commit_id == Commit.id)
            .where(CIVote.ci_name == CONSISTENT, CIVote.ci_vote.is_(True))
            .order_by(CIVote.id.desc())
        )
    elif label == CURRENT:
        query = (
            select(Commit)
            .where(Commit.status == CommitStatus.SUCCESS, Commit.type == "rpm")
            .order_by(Commit.id.desc())
        )
    else:
        query = (
            select(Commit)
            .join(Promotion, Promotion.commit_id == Commit.id)
            .where(Promotion.promotion_name == label)
            .order_by(Promotion.id.desc())
        )
        if component is not None:
            query = query.where(Promotion.component == component)
    if component is not None:
        query = query.where(Commit.component == component)
    found: dict[int, Commit] = {}
    for commit in session.scalars(query.limit(limit)):
        found.setdefault(commit.id, commit)
    return list(found.values())


@dataclass(frozen=True)
class _Reading:
    explanation: Explanation
    commits: dict[str, Commit]  # by candidate key
    incumbent: Promotion | None


def _read_target(
    session: Session,
    target: PromotionTarget,
    limit: int,
    extra: Sequence[Commit] = (),
) -> _Reading:
    commits = [
        *extra,
        *_candidate_commits(session, target.candidate_label, target.component, limit),
    ]
    incumbent_row = incumbent_of(session, target.name, target.component)
    incumbent = None
    if incumbent_row is not None:
        current = session.get(Commit, incumbent_row.commit_id)
        if current is not None:
            incumbent = Incumbent(candidate_key(current), current.id)
    votes = commit_votes(session, list(dict.fromkeys(c.id for c in commits)))
    by_key: dict[str, Commit] = {}
    candidates = []
    for commit in commits:
        key = candidate_key(commit)
        by_key.setdefault(key, commit)
        candidates.append(
            Candidate(
                key=key,
                order=commit.id,
                votes=tuple(votes.get(commit.id, ())),
                purged=bool(commit.flags & FLAG_PURGED),
            )
        )
    explanation = decide(
        target.key, target.criteria, target.alternative_criteria, incumbent, candidates
    )
    return _Reading(explanation, by_key, incumbent_row)


def _unsupported(config: Config, target: PromotionTarget) -> str | None:
    if not config.use_components and target.component is not None:
        return "a per-component target needs use_components = true"
    if _is_aggregate(config, target) and target.candidate_label in (CONSISTENT, CURRENT):
        # The builder's aggregates are not recorded with a hash CI could vote on (as DLRN).
        return (
            f"an aggregate target takes its candidates from a promoted label; "
            f"{target.candidate_label!r} is the builder's: promote components to a label "
            "first (a target under `components:`)"
        )
    return None


def _is_aggregate(config: Config, target: PromotionTarget) -> bool:
    return config.use_components and target.component is None


def _evaluate_aggregate(
    config: Config,
    db: Database,
    criteria: Criteria,
    target: PromotionTarget,
    dry_run: bool,
    user: str | None,
    simulated: dict[str, AggregateCandidate],
) -> Decision:
    """A target without a component while components are on (promote/aggregate.py)."""
    unsupported = _unsupported(config, target)
    if unsupported is not None:
        nothing = Explanation(target.key, None, ())
        return Decision(target, nothing, error=unsupported, dry_run=dry_run)
    with db.reader() as session:
        history = aggregate_history(session, target.candidate_label)
        extra = simulated.get(target.candidate_label)
        if extra is not None:
            history[extra.hash] = extra
        newest = newest_candidates(history, criteria.latest_hashes_count)
        incumbent_row, incumbent = aggregate_incumbent(session, target.name, history)
        candidates = aggregate_candidates(session, newest)
    explanation = decide(
        target.key, target.criteria, target.alternative_criteria, incumbent, candidates
    )
    chosen_report = explanation.chosen
    if chosen_report is None:
        return Decision(target, explanation, dry_run=dry_run)
    chosen = history[chosen_report.key]
    if dry_run:
        simulated[target.name] = AggregateCandidate(
            chosen.hash, max(c.order for c in history.values()) + 1, chosen.members
        )
        return Decision(target, explanation, dry_run=True)
    expected = incumbent_row.id if incumbent_row is not None else None
    try:
        rows = promote_aggregate(config, db, chosen.members, target.name, user, expected=expected)
    except PromotionError as exc:
        log.warning("promotion of the aggregate %s to %s skipped: %s", chosen.hash, target.key, exc)
        lost = isinstance(exc, PromotionConflict)
        return Decision(target, explanation, error=str(exc), lost_race=lost)
    log.info("promoted the aggregate %s to %s", chosen.hash, target.key)
    return Decision(target, explanation, promotion=rows[0])


def explain(
    config: Config, db: Database, criteria: Criteria, target: str | None = None
) -> list[Decision]:
    """What `evaluate` would do now, without changing anything (the promotion-status page).
    `target` keeps only the decisions of targets with that name (any component)."""
    decisions = evaluate(config, db, criteria, dry_run=True)
    return [d for d in decisions if target is None or d.target.name == target]


def evaluate(
    config: Config,
    db: Database,
    criteria: Criteria,
    dry_run: bool = False,
    *,
    user: str | None = None,
) -> list[Decision]:
    """Decide every target in dependency order and, unless `dry_run`, promote. A chained
    target sees the promotion its source got earlier in the same pass (also on a dry run,
    where it is simulated)."""
    decisions: list[Decision] = []
    simulated: dict[tuple[str | None, str], Commit] = {}
    simulated_aggregates: dict[str, AggregateCandidate] = {}
    for target in criteria.targets:
        if _is_aggregate(config, target):
            decisions.append(
                _evaluate_aggregate(
                    config, db, criteria, target, dry_run, user, simulated_aggregates
                )
            )
            continue
        unsupported = _unsupported(config, target)
        with db.reader() as session:
            extra = simulated.get((target.component, target.candidate_label))
            reading = _read_target(
                session, target, criteria.latest_hashes_count, [extra] if extra else []
            )
        chosen_report = reading.explanation.chosen
        chosen = reading.commits[chosen_report.key] if chosen_report is not None else None
        if chosen is None or unsupported is not None:
            decisions.append(
                Decision(target, reading.explanation, chosen, error=unsupported, dry_run=dry_run)
            )
            continue
        if dry_run:
            simulated[(target.component, target.name)] = chosen
            decisions.append(Decision(target, reading.explanation, chosen, dry_run=True))
            continue
        expected = reading.incumbent.id if reading.incumbent is not None else None
        try:
            promotion = promote_label(
                config, db, chosen.id, target.name, user, target.component, expected=expected
            )
        except PromotionConflict as exc:
            log.warning("promotion of %s skipped: %s", target.key, exc)
            decisions.append(
                Decision(target, reading.explanation, chosen, error=str(exc), lost_race=True)
            )
            continue
        except PromotionError as exc:
            log.error("promotion of %s refused: %s", target.key, exc)
            decisions.append(Decision(target, reading.explanation, chosen, error=str(exc)))
            continue
        log.info("promoted %s to %s", candidate_key(chosen), target.key)
        decisions.append(Decision(target, reading.explanation, chosen, promotion))
    return decisions


class AfterVoteEvaluator:
    """Runs `evaluate` after votes, coalescing: a vote arriving while an evaluation runs makes
    that evaluation run once more instead of starting a second one in parallel."""

    def __init__(self) -> None:
        self._running = threading.Lock()
        self._pending = threading.Event()

    def __call__(self, run: Callable[[], list[Decision]]) -> list[Decision]:
        decisions: list[Decision] = []
        self._pending.set()
        while self._pending.is_set():
            if not self._running.acquire(blocking=False):
                return decisions  # the running evaluation will see this vote
            try:
                while self._pending.is_set():
                    self._pending.clear()
                    decisions = run()
            finally:
                self._running.release()
        return decisions


_evaluators: dict[str, AfterVoteEvaluator] = {}
_evaluators_lock = threading.Lock()


def evaluate_after_vote(
    config: Config, db: Database, criteria: Criteria, *, user: str | None = None
) -> list[Decision]:
    """Called by the API after it recorded a vote: promote what that vote made promotable.
    Concurrent calls for one database coalesce (those that find an evaluation running return
    [] at once; that evaluation runs again and sees their votes)."""
    with _evaluators_lock:
        evaluator = _evaluators.setdefault(db.url, AfterVoteEvaluator())
    return evaluator(lambda: evaluate(config, db, criteria, user=user))
