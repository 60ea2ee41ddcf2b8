"""Aggregate targets: with components on, a target without a component promotes the
*aggregate* of its candidate label, as RDO's integration pipeline does after the component
pipeline (reference/peers.md sections 2.2-2.3).

- A candidate is an aggregate hash the candidate label had: every `promotions` row of that
  label stores the hash of the aggregate its move produced. Its members are, for each
  component, the commit the label pointed at then (the newest row of the label in that
  component, up to the row that stored the hash). "Newer" is a later row.
- Its votes are the `civotes_agg` rows of the hash (`report_result` with `aggregate_hash`).
- The incumbent is the target's newest row (any component) and its aggregate hash.
- Promoting it moves the target's label in every member's component folder in one
  transaction, under the publish lock (RDO's promoter sends the same `promote-batch`), then
  rebuilds the target's aggregate: with the same member repositories it has the same hash.

Reading is separate from the engine so that the history sweep is tested on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from conveyor.domain.promotion import Candidate, Incumbent
from conveyor.store.models import FLAG_PURGED, Commit, Promotion
from conveyor.store.queries import aggregate_votes

# A component-less row (a label moved before components were switched on) is its own member.
_NO_COMPONENT = ""


@dataclass(frozen=True)
class AggregateCandidate:
    hash: str
    order: int  # id of the newest `promotions` row of the candidate label with this hash
    members: tuple[int, ...]  # commit ids, one per component, in component order


def aggregate_history(session: Session, label: str) -> dict[str, AggregateCandidate]:
    """Every aggregate hash `label` had, with its members, keyed by hash (the newest
    occurrence of a hash that came back wins)."""
    rows = session.execute(
        select(Promotion.id, Promotion.component, Promotion.commit_id, Promotion.aggregate_hash)
        .where(Promotion.promotion_name == label)
        .order_by(Promotion.id)
    )
    pointing: dict[str, int] = {}
    found: dict[str, AggregateCandidate] = {}
    for row_id, component, commit_id, aggregate_hash in rows:
        pointing[component or _NO_COMPONENT] = commit_id
        if aggregate_hash:
            members = tuple(pointing[c] for c in sorted(pointing))
            found[aggregate_hash] = AggregateCandidate(aggregate_hash, row_id, members)
    return found


def aggregate_incumbent(
    session: Session, target: str, history: dict[str, AggregateCandidate]
) -> tuple[Promotion | None, Incumbent | None]:
    """The target's newest row and the incumbent it makes. An incumbent hash the candidate
    label never had (a manual promotion) ranks after every candidate older than its row, so
    only what the candidate label got since can replace it."""
    row = session.scalars(
        select(Promotion)
        .where(Promotion.promotion_name == target)
        .order_by(Promotion.id.desc())
        .limit(1)
    ).first()
    if row is None or not row.aggregate_hash:
        return row, None
    known = history.get(row.aggregate_hash)
    if known is not None:
        return row, Incumbent(row.aggregate_hash, known.order)
    older = (c.order for c in history.values() if c.order < row.id)
    return row, Incumbent(row.aggregate_hash, max(older, default=0))


def aggregate_candidates(session: Session, newest: Sequence[AggregateCandidate]) -> list[Candidate]:
    """The decision's view of `newest`: their votes, and purged when a member was purged."""
    hashes = [c.hash for c in newest]
    votes = aggregate_votes(session, hashes)
    member_ids = {i for c in newest for i in c.members}
    rows = session.execute(select(Commit.id, Commit.flags).where(Commit.id.in_(member_ids)))
    purged = {commit_id for commit_id, flags in rows if flags & FLAG_PURGED}
    return [
        Candidate(
            key=c.hash,
            order=c.order,
            votes=tuple(votes[c.hash]),
            purged=any(i in purged for i in c.members),
        )
        for c in newest
    ]


def newest_candidates(
    history: dict[str, AggregateCandidate], limit: int
) -> list[AggregateCandidate]:
    return sorted(history.values(), key=lambda c: c.order, reverse=True)[:limit]
