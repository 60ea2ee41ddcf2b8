"""Moving a promotion label: the one mover behind `conveyor promote`, the engine, and the
API's `/api/promote` and `/api/promote-batch` (DLRN's semantics, `promote_commits`).

Under the publish lock and inside one database transaction:
1. the label's incumbent is read (its newest `promotions` row) and, when the caller says which
   incumbent it expects, compared with it: someone else moved the label -> PromotionConflict
   (compare-and-swap, RDO's `check_named_hashes_unchanged` done natively);
2. the incumbent is promoted to `previous-<label>` (row and symlink);
3. the new `promotions` row is written and the label's symlink swapped atomically (relative,
   `repos/<label>` or `repos/component/<c>/<label>` when components are on);
4. with components on, the aggregate `repos/<label>/` is rebuilt and its hash stored in
   `promotions.aggregate_hash`.
If anything fails, the links are put back and the transaction rolls back.

DLRN's API moves labels without `previous-` rows and without a compare-and-swap, several at
once for `promote-batch`: `promote_commits` is that mode of the same mover.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from conveyor.config import Config
from conveyor.domain.labels import check_promotion_label, previous_label
from conveyor.domain.names import check_component
from conveyor.domain.paths import commit_relpath, component_base
from conveyor.domain.status import CommitStatus
from conveyor.metadata.targets import components_of
from conveyor.publish.aggregate import aggregate_for_label
from conveyor.publish.locks import publish_lock
from conveyor.publish.repostore import RepoStore
from conveyor.store.database import Database
from conveyor.store.models import FLAG_PURGED, Commit, Promotion

log = logging.getLogger(__name__)


class PromotionError(Exception):
    """A promotion that cannot be done; the subclasses say why (the API maps them)."""


class PromotionRefused(PromotionError):
    """The commit cannot be promoted: unknown, not a successful build, wrong component (400)."""


class CommitPurged(PromotionError):
    """The commit's repository was purged (410, as DLRN)."""


class PromotionConflict(PromotionError):
    """The label moved since the caller read it (409): someone else promoted first."""


class _AnyIncumbent:
    def __repr__(self) -> str:
        return "ANY_INCUMBENT"


ANY_INCUMBENT: Final = _AnyIncumbent()
"""`expected=ANY_INCUMBENT`: promote whatever the label points at now (the API's behaviour)."""

Expected = int | None | _AnyIncumbent
"""The id of the `promotions` row the caller saw as the label's incumbent; None when it saw
the label unset; ANY_INCUMBENT to skip the compare-and-swap."""


@dataclass(frozen=True)
class LabelPlace:
    """Where a label lives: its component folder when components are on."""

    name: str
    component: str | None  # the folder: component/<component>/

    @property
    def base(self) -> PurePosixPath:
        return component_base(self.component)


def label_component(config: Config, commit: Commit) -> str | None:
    """The component folder a commit's labels live in."""
    return commit.component if config.use_components else None


def incumbent_of(session: Session, name: str, component: str | None) -> Promotion | None:
    """The newest `promotions` row of a label (of a component's label when `component`)."""
    query = select(Promotion).where(Promotion.promotion_name == name)
    if component is not None:
        query = query.where(Promotion.component == component)
    return session.scalars(query.order_by(Promotion.id.desc()).limit(1)).first()


def repo_store(config: Config) -> RepoStore:
    return RepoStore.of(config)


class _LinkJournal:
    """The label links moved so far, so a failure can put them back."""

    def __init__(self, store: RepoStore, refresh: Callable[[str], object] | None) -> None:
        self.store = store
        self.refresh = refresh  # rebuilds a label's aggregate after its link went back
        self.moved: list[tuple[str, PurePosixPath, str | None]] = []

    def move(self, name: str, relpath: PurePosixPath, base: PurePosixPath) -> None:
        before = self.store.label_target(name, base)
        self.store.move_label(name, relpath, base)
        # Journaled once moved: a refused move changed nothing, and restoring "no label"
        # there would delete the file or folder the move refused to replace.
        self.moved.append((name, base, before))

    def restore(self) -> None:
        for name, base, old in reversed(self.moved):
            directory = self.store.path_of(base)
            link = directory / name
            try:
                if old is None:
                    link.unlink(missing_ok=True)
                else:
                    tmp = directory / f".{name}.tmp{os.getpid()}"
                    tmp.unlink(missing_ok=True)
                    tmp.symlink_to(old)
                    tmp.replace(link)
            except OSError:
                pass  # the next `Publisher.recover` / fsck reports it; keep the first error
        if self.refresh is not None:
            for name in dict.fromkeys(name for name, _, _ in self.moved):
                try:
                    self.refresh(name)
                except Exception:  # best effort; the first error is the one raised
                    log.exception("could not rebuild the aggregate of %s", name)


@contextmanager
def _links_restored_on_error(
    store: RepoStore, refresh: Callable[[str], object] | None
) -> Iterator[_LinkJournal]:
    journal = _LinkJournal(store, refresh)
    try:
        yield journal
    except BaseException:
        journal.restore()
        raise


def _check_commit(config: Config, store: RepoStore, commit: Commit | None, ident: object) -> Commit:
    if commit is None:
        raise PromotionRefused(f"commit {ident} does not exist")
    if commit.status != CommitStatus.SUCCESS:
        raise PromotionRefused(
            f"commit {commit.commit_hash[:8]} of {commit.project_name} is {commit.status}; "
            "only successful builds can be promoted"
        )
    if commit.flags & FLAG_PURGED:
        raise CommitPurged(
            f"the repository of {commit.project_name} {commit.commit_hash[:8]} was purged"
        )
    if not store.path_of(commit_relpath(commit)).is_dir():
        raise CommitPurged(f"repos/{commit_relpath(commit)} does not exist (purged?)")
    return commit


@contextmanager
def _promotion_scope(
    config: Config, db: Database
) -> Iterator[tuple[RepoStore, _LinkJournal, Session]]:
    """The publish lock, a journal of the links moved and one transaction. The links context
    is outside the transaction: a failing commit puts the links back too."""
    store = repo_store(config)
    refresh = (
        (lambda label: aggregate_for_label(config, label, components_of(config)))
        if config.use_components
        else None
    )
    with (
        publish_lock(config),
        _links_restored_on_error(store, refresh) as links,
        db.transaction() as session,
    ):
        yield store, links, session


def _check_expected(name: str, expected: Expected, incumbent: Promotion | None) -> None:
    if isinstance(expected, _AnyIncumbent):
        return
    seen = incumbent.id if incumbent is not None else None
    if seen != expected:
        raise PromotionConflict(
            f"label {name!r} moved while this promotion was decided "
            f"(expected promotion {expected}, found {seen})"
        )


def _move_label(
    session: Session,
    links: _LinkJournal,
    row: Commit,
    place: LabelPlace,
    incumbent: Promotion | None,
    user: str | None,
    now: int,
    *,
    always_previous: bool = False,
) -> tuple[Promotion, Promotion | None]:
    """Point `place` at `row` (row and link), the incumbent first moved to `previous-<name>`
    unless it is `row` already (and `always_previous` is off). Returns the two new rows."""
    previous: Promotion | None = None
    if incumbent is not None and (always_previous or incumbent.commit_id != row.id):
        former = session.get(Commit, incumbent.commit_id)
        if former is not None:
            previous = Promotion(
                commit_id=former.id,
                promotion_name=previous_label(place.name),
                timestamp=now,
                user=user,
                component=former.component,
                aggregate_hash=incumbent.aggregate_hash,
            )
            session.add(previous)
            links.move(previous.promotion_name, commit_relpath(former), place.base)
    promotion = Promotion(
        commit_id=row.id,
        promotion_name=place.name,
        timestamp=now,
        user=user,
        component=row.component,
    )
    session.add(promotion)
    links.move(place.name, commit_relpath(row), place.base)
    return promotion, previous


def _store_aggregate_hashes(
    config: Config, name: str, promotions: list[Promotion], previous: list[Promotion]
) -> None:
    """Rebuild the aggregates of `name` (and of `previous-<name>` when it moved) and store
    their hashes in the rows that moved them."""
    components = components_of(config)
    new_hash = aggregate_for_label(config, name, components)
    for promotion in promotions:
        promotion.aggregate_hash = new_hash
    if previous:
        previous_hash = aggregate_for_label(config, previous_label(name), components)
        for promotion in previous:
            promotion.aggregate_hash = previous_hash


def promote_label(
    config: Config,
    db: Database,
    commit: Commit | int,
    name: str,
    user: str | None = None,
    component: str | None = None,
    *,
    expected: Expected = ANY_INCUMBENT,
    timestamp: int | None = None,
) -> Promotion:
    """Point label `name` at `commit` (a row or its id) and return the new `promotions` row.

    `component`, when given, must be the commit's component (with components on, the label
    lives in that component's folder). `expected` makes it a compare-and-swap (see Expected).
    Raises InvalidName, PromotionRefused, CommitPurged, PromotionConflict, and PublishError /
    OSError when the tree cannot be written (nothing is left half-done).
    """
    check_promotion_label(name)
    if component is not None:
        check_component(component)
    commit_id = commit if isinstance(commit, int) else commit.id
    with _promotion_scope(config, db) as (store, links, session):
        row = _check_commit(config, store, session.get(Commit, commit_id), commit_id)
        place = LabelPlace(name, label_component(config, row))
        if component is not None and component != row.component:
            raise PromotionRefused(
                f"commit {row.commit_hash[:8]} belongs to component {row.component!r}, "
                f"not {component!r}"
            )
        incumbent = incumbent_of(session, name, place.component)
        _check_expected(name, expected, incumbent)
        now = int(time.time()) if timestamp is None else timestamp
        promotion, previous = _move_label(session, links, row, place, incumbent, user, now)
        if config.use_components:
            _store_aggregate_hashes(config, name, [promotion], [previous] if previous else [])
        session.flush()
        return promotion


def promote_commits(
    config: Config,
    db: Database,
    moves: Sequence[tuple[int, str]],
    user: str | None = None,
    *,
    within: Callable[[Session, list[Promotion]], None] | None = None,
) -> list[Promotion]:
    """DLRN's `promote` and `promote-batch`: point each label at its commit (`moves` holds
    commit ids and label names), all or nothing, and rebuild the aggregate of every name when
    components are on. No `previous-` row and no compare-and-swap, as in DLRN. `within` runs
    in the same transaction once the rows are written (the API's audit row). Returns the new
    rows, in the order of `moves`."""
    for _, name in moves:
        check_promotion_label(name)
    if not moves:
        raise PromotionRefused("nothing to promote")
    with _promotion_scope(config, db) as (store, links, session):
        now = int(time.time())
        promotions: list[Promotion] = []
        for commit_id, name in moves:
            row = _check_commit(config, store, session.get(Commit, commit_id), commit_id)
            place = LabelPlace(name, label_component(config, row))
            promotion, _ = _move_label(session, links, row, place, None, user, now)
            promotions.append(promotion)
        if config.use_components:
            components = components_of(config)
            for name in dict.fromkeys(name for _, name in moves):
                written = aggregate_for_label(config, name, components)
                for promotion in promotions:
                    if promotion.promotion_name == name:
                        promotion.aggregate_hash = written
        session.flush()
        if within is not None:
            within(session, promotions)
        return promotions


def promote_aggregate(
    config: Config,
    db: Database,
    members: Sequence[int],
    name: str,
    user: str | None = None,
    *,
    expected: Expected = ANY_INCUMBENT,
    timestamp: int | None = None,
) -> list[Promotion]:
    """Point label `name` of every member's component at that member (commit ids, one per
    component; components must be on), all or nothing, and rebuild the aggregate of `name`.
    `expected` is compared with the label's newest row in any component. Each component's
    former commit goes to `previous-<name>`, unchanged ones too, so that the aggregate of
    `previous-<name>` is the former aggregate. Returns the new rows of `name`."""
    check_promotion_label(name)
    if not config.use_components:
        raise PromotionRefused("an aggregate is promoted only with use_components = true")
    if not members:
        raise PromotionRefused(f"the aggregate promoted to {name!r} has no member")
    with _promotion_scope(config, db) as (store, links, session):
        rows = [_check_commit(config, store, session.get(Commit, i), i) for i in members]
        components = [label_component(config, row) for row in rows]
        if len(set(components)) != len(components):
            raise PromotionRefused(f"two members of the aggregate for {name!r} share a component")
        _check_expected(name, expected, incumbent_of(session, name, None))
        now = int(time.time()) if timestamp is None else timestamp
        promotions: list[Promotion] = []
        previous: list[Promotion] = []
        for row, component in zip(rows, components, strict=True):
            place = LabelPlace(name, component)
            incumbent = incumbent_of(session, name, component)
            promotion, former = _move_label(
                session, links, row, place, incumbent, user, now, always_previous=True
            )
            promotions.append(promotion)
            if former is not None:
                previous.append(former)
        _store_aggregate_hashes(config, name, promotions, previous)
        session.flush()
        return promotions
