"""The CI vote pages' read side: what civotes.html, civotes_agg.html, civotes_detail.html and
civotes_agg_detail.html show, read from one bounded query each (DLRN runs three sub-queries
per repository on the page and takes 28 s on a big database), and their HTML.

In reports/ with the other pages, not in the API: the queries return plain views and the
HTML comes from the bundled templates (templates/civotes*.html, autoescaped), so the API only
parses parameters and returns what these give, and a dashboard can show the same pages. Each
function reads in a session of its own; no database row leaves it.

Each repository shows its package (the commits row's project) and the promotion labels it was
moved to, read for the repositories of the page only. The pages wear the dashboard's look and
navigation when the caller gives them (`Chrome`: the API gives the dashboard's); without one
they are plain pages, and they hold no inline style or script either way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, case, func, select
from sqlalchemy.orm import Session

from conveyor.domain.labels import CONSISTENT
from conveyor.domain.names import InvalidName, check_label
from conveyor.domain.paths import repo_dir
from conveyor.domain.urls import is_http_url
from conveyor.reports.render import render_template
from conveyor.reports.views import utc_time
from conveyor.store.database import Database
from conveyor.store.models import FLAG_PURGED, CIVote, CIVoteAggregate, Commit, Promotion
from conveyor.store.queries import find_commit

# DLRN's first three columns, in its order; conveyor adds the package and the promotions.
COMMIT_HEADERS = ("Commit hash", "Distro hash", "Component", "Package")
AGGREGATE_HEADERS = ("Aggregate hash",)


@dataclass(frozen=True, slots=True)
class NavLink:
    key: str
    label: str
    href: str


@dataclass(frozen=True, slots=True)
class Chrome:
    """The dashboard around a vote page: its navigation (`current` highlighted), its
    stylesheet and script (served by the application, never inline)."""

    nav: tuple[NavLink, ...]
    current: str
    stylesheet: str
    script: str


@dataclass(frozen=True, slots=True)
class PromotionMark:
    """A promotion of a repository: `label` (of `component`) moved to it at `timestamp`."""

    label: str
    component: str | None
    time: str
    href: str | None  # the label's promotions page; None for a name that cannot be one


@dataclass(frozen=True, slots=True)
class RepositorySummary:
    """The repository a detail page is about: what built it, where it is, where it went."""

    package: str
    component: str | None
    status: str
    built: str
    href: str | None  # below /repos/; None when purged or unnamed
    promotions: tuple[PromotionMark, ...]


@dataclass(frozen=True, slots=True)
class VoteGroup:
    """A summary row: the votes on one commit or aggregate. `cells` are the row's first
    columns (the first one links to `href`, its detail page)."""

    cells: tuple[str, ...]
    href: str
    success: int
    failure: int
    last: str  # the newest vote's time
    promotions: tuple[PromotionMark, ...] = ()


@dataclass(frozen=True, slots=True)
class VoteGroups:
    """A summary page: `limit` votes from `offset`, newest first, grouped; `more` when an
    older page has any."""

    rows: list[VoteGroup]
    offset: int
    limit: int
    more: bool


@dataclass(frozen=True, slots=True)
class VoteRow:
    """A detail row: one vote, after the `cells` naming what it is on."""

    cells: tuple[str, ...]
    job: str | None
    url: str
    linked: bool  # `url` is shown as a link: only an http(s) URL is
    success: bool
    in_progress: bool
    time: str
    user: str
    notes: str


def _time(epoch: int | None) -> str:
    return utc_time(epoch or 0)


def _counts(vote: Any) -> tuple[Any, Any, Any]:
    """Successful and failed votes, and the newest vote's time, of a page's group."""
    return (
        func.sum(case((vote.ci_vote.is_(True), 1), else_=0)).cast(Integer),
        func.sum(case((vote.ci_vote.is_(True), 0), else_=1)).cast(Integer),
        func.max(vote.timestamp),
    )


def _mark(label: str, component: str | None, timestamp: int | None) -> PromotionMark:
    try:
        href: str | None = f"/promotions/{check_label(label)}"
    except InvalidName:
        href = None
    return PromotionMark(label, component, _time(timestamp), href)


def _promotions(
    session: Session, column: Any, keys: Sequence[object]
) -> dict[Any, tuple[PromotionMark, ...]]:
    """The promotions of the page's repositories (by commit id) or aggregates (by hash),
    oldest first. `promotions` has no index on these columns: the table is read once for
    the page, never once per repository."""
    if not keys:
        return {}
    rows = session.execute(
        select(column, Promotion.promotion_name, Promotion.component, Promotion.timestamp)
        .where(column.in_(list(keys)))
        .order_by(Promotion.id)
    )
    found: dict[Any, list[PromotionMark]] = {}
    for key, label, component, timestamp in rows:
        found.setdefault(key, []).append(_mark(label, component, timestamp))
    return {key: tuple(marks) for key, marks in found.items()}


def _vote_row(cells: tuple[str, ...], vote: CIVote | CIVoteAggregate) -> VoteRow:
    url = vote.ci_url or ""
    return VoteRow(
        cells=cells,
        job=vote.ci_name,
        url=url,
        linked=bool(url) and is_http_url(url),
        success=bool(vote.ci_vote),
        in_progress=bool(vote.ci_in_progress),
        time=_time(vote.timestamp),
        user=vote.user or "",
        notes=vote.notes or "",
    )


def commit_vote_groups(db: Database, offset: int, limit: int) -> VoteGroups:
    """civotes.html: the newest `limit` votes from `offset` (but `consistent` ones), by
    commit, the commit with the newest vote first."""
    # One more vote than a page: whether an older page exists, without counting them all.
    page = (
        select(CIVote.commit_id, CIVote.ci_vote, CIVote.timestamp, CIVote.id)
        .where(CIVote.ci_name != CONSISTENT)
        .order_by(CIVote.timestamp.desc(), CIVote.id.desc())
        .limit(limit + 1)
        .offset(offset)
    )
    with db.reader() as session:
        votes = session.execute(page).all()
        more = len(votes) > limit
        ids = [vote.id for vote in votes[:limit]]
        inner = select(CIVote).where(CIVote.id.in_(ids)).subquery()
        columns = (Commit.id, Commit.commit_hash, Commit.distro_hash, Commit.component)
        grouped = (
            select(*columns, Commit.project_name, *_counts(inner.c))
            .join(Commit, Commit.id == inner.c.commit_id)
            .group_by(inner.c.commit_id, *columns, Commit.project_name)
            .order_by(func.max(inner.c.timestamp).desc())
        )
        found = session.execute(grouped).all()
        promoted = _promotions(session, Promotion.commit_id, [row[0] for row in found])
        rows = [
            VoteGroup(
                cells=(ch, (dh or "")[:8], comp or "", package),
                href=f"civotes_detail.html?commit_hash={ch}&distro_hash={dh or ''}",
                success=ok or 0,
                failure=ko or 0,
                last=_time(last),
                promotions=promoted.get(commit_id, ()),
            )
            for commit_id, ch, dh, comp, package, ok, ko, last in found
        ]
    return VoteGroups(rows, offset, limit, more)


def aggregate_vote_groups(db: Database, offset: int, limit: int) -> VoteGroups:
    """civotes_agg.html: the newest `limit` aggregate votes from `offset`, by aggregate."""
    page = (
        select(CIVoteAggregate.id)
        .order_by(CIVoteAggregate.timestamp.desc(), CIVoteAggregate.id.desc())
        .limit(limit + 1)
        .offset(offset)
    )
    with db.reader() as session:
        ids = list(session.scalars(page))
        more = len(ids) > limit
        inner = select(CIVoteAggregate).where(CIVoteAggregate.id.in_(ids[:limit])).subquery()
        grouped = (
            select(inner.c.ref_hash, *_counts(inner.c))
            .group_by(inner.c.ref_hash)
            .order_by(func.max(inner.c.timestamp).desc())
        )
        found = session.execute(grouped).all()
        promoted = _promotions(session, Promotion.aggregate_hash, [row[0] for row in found])
        rows = [
            VoteGroup(
                cells=(ref_hash,),
                href=f"civotes_agg_detail.html?ref_hash={ref_hash}",
                success=ok or 0,
                failure=ko or 0,
                last=_time(last),
                promotions=promoted.get(ref_hash, ()),
            )
            for ref_hash, ok, ko, last in found
        ]
    return VoteGroups(rows, offset, limit, more)


def commit_vote_rows(
    db: Database,
    *,
    commit_hash: str | None = None,
    distro_hash: str | None = None,
    component: str | None = None,
    ci_name: str | None = None,
    offset: int = 0,
    limit: int,
) -> list[VoteRow]:
    """civotes_detail.html: the newest votes first, of the commit of `commit_hash` and
    `distro_hash` (both, or neither is used), of `component`, of the job `ci_name`."""
    query = select(CIVote, Commit).join(Commit, Commit.id == CIVote.commit_id)
    with db.reader() as session:
        if commit_hash and distro_hash:
            commit = find_commit(session, commit_hash, distro_hash)
            query = query.where(CIVote.commit_id == (commit.id if commit else -1))
        if component:
            query = query.where(CIVote.component == component)
        if ci_name:
            query = query.where(CIVote.ci_name == ci_name)
        query = query.order_by(CIVote.id.desc()).limit(limit).offset(offset)
        return [
            _vote_row(
                (c.commit_hash, (c.distro_hash or "")[:8], v.component or "", c.project_name), v
            )
            for v, c in session.execute(query)
        ]


def repository_summary(
    db: Database, commit_hash: str, distro_hash: str
) -> RepositorySummary | None:
    """The repository of `commit_hash` and `distro_hash` (as civotes_detail.html names it):
    its package, state and promotions; None when no build has these hashes."""
    with db.reader() as session:
        commit = find_commit(session, commit_hash, distro_hash)
        if commit is None:
            return None
        promoted = _promotions(session, Promotion.commit_id, [commit.id])
        try:
            path = repo_dir(
                commit.commit_hash, commit.distro_hash, commit.extended_hash, commit.component
            )
            href: str | None = None if commit.flags & FLAG_PURGED else f"/repos/{path}/"
        except InvalidName:
            href = None
        return RepositorySummary(
            package=commit.project_name,
            component=commit.component,
            status=commit.status,
            built=_time(commit.dt_build),
            href=href,
            promotions=promoted.get(commit.id, ()),
        )


def aggregate_promotions(db: Database, ref_hash: str) -> tuple[PromotionMark, ...]:
    """The promotions that produced (or moved to) the aggregate `ref_hash`."""
    with db.reader() as session:
        return _promotions(session, Promotion.aggregate_hash, [ref_hash]).get(ref_hash, ())


def aggregate_vote_rows(
    db: Database,
    *,
    ref_hash: str | None = None,
    ci_name: str | None = None,
    offset: int = 0,
    limit: int,
) -> list[VoteRow]:
    """civotes_agg_detail.html: the newest votes first, on the aggregate `ref_hash`, of the
    job `ci_name`."""
    query = select(CIVoteAggregate)
    if ref_hash:
        query = query.where(CIVoteAggregate.ref_hash == ref_hash)
    if ci_name:
        query = query.where(CIVoteAggregate.ci_name == ci_name)
    query = query.order_by(CIVoteAggregate.id.desc()).limit(limit).offset(offset)
    with db.reader() as session:
        return [_vote_row((v.ref_hash,), v) for v in session.scalars(query)]


# --- pages ---------------------------------------------------------------------------------


def _render(template: str, chrome: Chrome | None, **values: object) -> str:
    return render_template(template, chrome=chrome, **values)


def commit_groups_html(page: VoteGroups, chrome: Chrome | None = None) -> str:
    return _render("civotes.html", chrome, title="CI votes", headers=COMMIT_HEADERS, page=page)


def aggregate_groups_html(page: VoteGroups, chrome: Chrome | None = None) -> str:
    return _render(
        "civotes.html",
        chrome,
        title="CI votes on aggregates",
        headers=AGGREGATE_HEADERS,
        page=page,
    )


def commit_rows_html(
    rows: list[VoteRow],
    chrome: Chrome | None = None,
    repository: RepositorySummary | None = None,
) -> str:
    return _render(
        "civotes_detail.html",
        chrome,
        title="CI votes detail",
        headers=COMMIT_HEADERS,
        rows=rows,
        repository=repository,
        promotions=repository.promotions if repository else (),
    )


def aggregate_rows_html(
    rows: list[VoteRow],
    chrome: Chrome | None = None,
    promotions: Iterable[PromotionMark] = (),
) -> str:
    return _render(
        "civotes_detail.html",
        chrome,
        title="CI votes detail (aggregates)",
        headers=AGGREGATE_HEADERS,
        rows=rows,
        repository=None,
        promotions=tuple(promotions),
    )
