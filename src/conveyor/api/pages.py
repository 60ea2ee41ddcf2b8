"""The CI vote pages, rendered on the server from one bounded query each (DLRN runs three
sub-queries per repository on the page and takes 28 s on a big database)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse
from jinja2 import Environment
from sqlalchemy import Integer, case, func, select

from conveyor.api.context import ApiContext, context
from conveyor.api.errors import ApiError
from conveyor.api.params import MAX_LIMIT, Params, is_http_url, query_params
from conveyor.domain.labels import CONSISTENT
from conveyor.store.models import CIVote, CIVoteAggregate, Commit
from conveyor.store.queries import find_commit

router = APIRouter(prefix="/api", tags=["pages"], include_in_schema=False)
Ctx = Annotated[ApiContext, Depends(context)]
Query = Annotated[Params, Depends(query_params)]

_env = Environment(autoescape=True)
# A vote's URL is a link only when http(s): rows imported from DLRN, or written before
# report_result checked the scheme, may hold `javascript:` URLs, shown as text instead.
_env.tests["http_url"] = is_http_url
_env.filters["utc"] = lambda ts: __import__("time").strftime(
    "%Y-%m-%d %H:%M:%S", __import__("time").gmtime(ts or 0)
)
_LAYOUT = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>{{ title }}</title>
<style>body{font-family:sans-serif}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:2px 6px}.ok{color:#070}.ko{color:#a00}</style>
</head><body><h1>{{ title }}</h1>{% block body %}{% endblock %}</body></html>"""
_SUMMARY = _env.from_string(
    _LAYOUT.replace(
        "{% block body %}{% endblock %}",
        """<table><tr>{% for h in headers %}<th>{{ h }}</th>{% endfor %}
<th>Successful votes</th><th>Failed votes</th><th>Last vote</th></tr>
{% for r in rows %}<tr><td><a href="{{ r.href }}">{{ r.cells[0] }}</a></td>
{% for cell in r.cells[1:] %}<td>{{ cell }}</td>{% endfor %}
<td class="ok">{{ r.success }}</td><td class="ko">{{ r.failure }}</td>
<td>{{ r.last | utc }}</td></tr>{% endfor %}</table>
<p>{% if offset > 0 %}<a href="?offset={{ [offset - limit, 0] | max }}">newer</a>{% endif %}
{% if more %}<a href="?offset={{ offset + limit }}">older</a>{% endif %}</p>""",
    )
)
_DETAIL = _env.from_string(
    _LAYOUT.replace(
        "{% block body %}{% endblock %}",
        """<table><tr>{% for h in headers %}<th>{{ h }}</th>{% endfor %}<th>Job</th>
<th>Result</th><th>Time</th><th>User</th><th>Notes</th></tr>
{% for cells, v in rows %}<tr>{% for cell in cells %}<td>{{ cell }}</td>{% endfor %}
<td>{% if v.ci_url and v.ci_url is http_url %}<a href="{{ v.ci_url }}">{{ v.ci_name }}</a>
{%- else %}{{ v.ci_name }}{% if v.ci_url %} ({{ v.ci_url }}){% endif %}{% endif %}</td>
<td class="{{ 'ok' if v.ci_vote else 'ko' }}">{{ "in progress" if v.ci_in_progress
else ("success" if v.ci_vote else "failure") }}</td><td>{{ v.timestamp | utc }}</td>
<td>{{ v.user or "" }}</td><td>{{ v.notes or "" }}</td></tr>{% endfor %}</table>""",
    )
)


def _counts(vote: Any) -> tuple[Any, Any, Any]:
    """Successful and failed votes, and the newest vote's time, of a page's group."""
    return (
        func.sum(case((vote.ci_vote.is_(True), 1), else_=0)).cast(Integer),
        func.sum(case((vote.ci_vote.is_(True), 0), else_=1)).cast(Integer),
        func.max(vote.timestamp),
    )


def _summary(
    title: str, headers: list[str], rows: list[dict[str, Any]], offset: int, more: bool
) -> HTMLResponse:
    """A page of grouped votes; `more` when an older page has any."""
    html = _SUMMARY.render(
        title=title, headers=headers, rows=rows, offset=offset, limit=MAX_LIMIT, more=more
    )
    return HTMLResponse(html)


@router.get("/civotes.html", response_class=HTMLResponse)
def civotes(ctx: Ctx, p: Query) -> HTMLResponse:
    offset = p.offset()
    # One more vote than a page: whether an older page exists, without counting them all.
    page = (
        select(CIVote.commit_id, CIVote.ci_vote, CIVote.timestamp, CIVote.id)
        .where(CIVote.ci_name != CONSISTENT)
        .order_by(CIVote.timestamp.desc(), CIVote.id.desc())
        .limit(MAX_LIMIT + 1)
        .offset(offset)
    )
    with ctx.db.reader() as session:
        votes = session.execute(page).all()
        more = len(votes) > MAX_LIMIT
        ids = [vote.id for vote in votes[:MAX_LIMIT]]
        inner = select(CIVote).where(CIVote.id.in_(ids)).subquery()
        grouped = (
            select(Commit.commit_hash, Commit.distro_hash, Commit.component, *_counts(inner.c))
            .join(Commit, Commit.id == inner.c.commit_id)
            .group_by(inner.c.commit_id, Commit.commit_hash, Commit.distro_hash, Commit.component)
            .order_by(func.max(inner.c.timestamp).desc())
        )
        rows: list[dict[str, Any]] = [
            {
                "cells": [ch, (dh or "")[:8], comp or ""],
                "href": f"civotes_detail.html?commit_hash={ch}&distro_hash={dh or ''}",
                "success": ok or 0,
                "failure": ko or 0,
                "last": last,
            }
            for ch, dh, comp, ok, ko, last in session.execute(grouped)
        ]
    return _summary("CI votes", ["Commit hash", "Distro hash", "Component"], rows, offset, more)


@router.get("/civotes_agg.html", response_class=HTMLResponse)
def civotes_agg(ctx: Ctx, p: Query) -> HTMLResponse:
    offset = p.offset()
    page = (
        select(CIVoteAggregate.id)
        .order_by(CIVoteAggregate.timestamp.desc(), CIVoteAggregate.id.desc())
        .limit(MAX_LIMIT + 1)
        .offset(offset)
    )
    with ctx.db.reader() as session:
        ids = list(session.scalars(page))
        more = len(ids) > MAX_LIMIT
        inner = select(CIVoteAggregate).where(CIVoteAggregate.id.in_(ids[:MAX_LIMIT])).subquery()
        grouped = (
            select(inner.c.ref_hash, *_counts(inner.c))
            .group_by(inner.c.ref_hash)
            .order_by(func.max(inner.c.timestamp).desc())
        )
        rows: list[dict[str, Any]] = [
            {
                "cells": [ref_hash],
                "href": f"civotes_agg_detail.html?ref_hash={ref_hash}",
                "success": ok or 0,
                "failure": ko or 0,
                "last": last,
            }
            for ref_hash, ok, ko, last in session.execute(grouped)
        ]
    return _summary("CI votes on aggregates", ["Aggregate hash"], rows, offset, more)


@router.get("/civotes_detail.html", response_class=HTMLResponse)
def civotes_detail(ctx: Ctx, p: Query) -> HTMLResponse:
    commit_hash, distro_hash = p.text("commit_hash"), p.text("distro_hash")
    component, ci_name = p.text("component"), p.text("ci_name")
    offset = p.offset()
    query = select(CIVote, Commit).join(Commit, Commit.id == CIVote.commit_id)
    with ctx.db.reader() as session:
        if commit_hash and distro_hash:
            commit = find_commit(session, commit_hash, distro_hash)
            query = query.where(CIVote.commit_id == (commit.id if commit else -1))
        elif not ci_name and not component:
            raise ApiError(
                "Please specify either commit_hash+distro_hash, component or ci_name as parameters."
            )
        if component:
            query = query.where(CIVote.component == component)
        if ci_name:
            query = query.where(CIVote.ci_name == ci_name)
        query = query.order_by(CIVote.id.desc()).limit(MAX_LIMIT).offset(offset)
        rows = [
            ([c.commit_hash, (c.distro_hash or "")[:8], v.component or ""], v)
            for v, c in session.execute(query)
        ]
        html = _DETAIL.render(
            title="CI votes detail", headers=["Commit hash", "Distro hash", "Component"], rows=rows
        )
    return HTMLResponse(html)


@router.get("/civotes_agg_detail.html", response_class=HTMLResponse)
def civotes_agg_detail(ctx: Ctx, p: Query) -> HTMLResponse:
    ref_hash, ci_name = p.text("ref_hash"), p.text("ci_name")
    if not ref_hash and not ci_name:
        raise ApiError("Please specify either ref_hash or ci_name as parameters.")
    query = select(CIVoteAggregate)
    if ref_hash:
        query = query.where(CIVoteAggregate.ref_hash == ref_hash)
    if ci_name:
        query = query.where(CIVoteAggregate.ci_name == ci_name)
    query = query.order_by(CIVoteAggregate.id.desc()).limit(MAX_LIMIT).offset(p.offset())
    with ctx.db.reader() as session:
        rows = [([v.ref_hash], v) for v in session.scalars(query)]
        html = _DETAIL.render(
            title="CI votes detail (aggregates)", headers=["Aggregate hash"], rows=rows
        )
    return HTMLResponse(html)
