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
from conveyor.api.params import MAX_LIMIT, Params, query_params
from conveyor.store.models import CIVote, Commit
from conveyor.store.queries import find_commit
from conveyor.trunk.publishing import CONSISTENT

router = APIRouter(prefix="/api", tags=["pages"], include_in_schema=False)
Ctx = Annotated[ApiContext, Depends(context)]
Query = Annotated[Params, Depends(query_params)]

_env = Environment(autoescape=True)
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
        """<table><tr><th>Commit hash</th><th>Distro hash</th><th>Component</th>
<th>Successful votes</th><th>Failed votes</th><th>Last vote</th></tr>
{% for r in rows %}<tr><td><a href="civotes_detail.html?commit_hash={{ r.commit_hash
}}&amp;distro_hash={{ r.distro_hash }}">{{ r.commit_hash }}</a></td>
<td>{{ r.distro_hash[:8] }}</td><td>{{ r.component or "" }}</td>
<td class="ok">{{ r.success }}</td><td class="ko">{{ r.failure }}</td>
<td>{{ r.last | utc }}</td></tr>{% endfor %}</table>
<p>{% if offset > 0 %}<a href="?offset={{ [offset - limit, 0] | max }}">newer</a>{% endif %}
{% if more %}<a href="?offset={{ offset + limit }}">older</a>{% endif %}</p>""",
    )
)
_DETAIL = _env.from_string(
    _LAYOUT.replace(
        "{% block body %}{% endblock %}",
        """<table><tr><th>Commit hash</th><th>Distro hash</th><th>Component</th><th>Job</th>
<th>Result</th><th>Time</th><th>User</th><th>Notes</th></tr>
{% for v, c in rows %}<tr><td>{{ c.commit_hash }}</td><td>{{ (c.distro_hash or "")[:8] }}</td>
<td>{{ v.component or "" }}</td><td>{% if v.ci_url %}<a href="{{ v.ci_url }}">{{ v.ci_name
}}</a>{% else %}{{ v.ci_name }}{% endif %}</td>
<td class="{{ 'ok' if v.ci_vote else 'ko' }}">{{ "in progress" if v.ci_in_progress
else ("success" if v.ci_vote else "failure") }}</td><td>{{ v.timestamp | utc }}</td>
<td>{{ v.user or "" }}</td><td>{{ v.notes or "" }}</td></tr>{% endfor %}</table>""",
    )
)


@router.get("/civotes.html", response_class=HTMLResponse)
def civotes(ctx: Ctx, p: Query) -> HTMLResponse:
    offset = p.offset()
    page = (
        select(CIVote.commit_id, CIVote.ci_vote, CIVote.timestamp)
        .where(CIVote.ci_name != CONSISTENT)
        .order_by(CIVote.timestamp.desc(), CIVote.id.desc())
        .limit(MAX_LIMIT + 1)
        .offset(offset)
        .subquery()
    )
    with ctx.db.reader() as session:
        window = session.execute(select(func.count()).select_from(page)).scalar_one()
        inner = (
            select(CIVote.commit_id, CIVote.ci_vote, CIVote.timestamp)
            .where(CIVote.ci_name != CONSISTENT)
            .order_by(CIVote.timestamp.desc(), CIVote.id.desc())
            .limit(MAX_LIMIT)
            .offset(offset)
            .subquery()
        )
        grouped = (
            select(
                Commit.commit_hash,
                Commit.distro_hash,
                Commit.component,
                func.sum(case((inner.c.ci_vote.is_(True), 1), else_=0)).cast(Integer),
                func.sum(case((inner.c.ci_vote.is_(True), 0), else_=1)).cast(Integer),
                func.max(inner.c.timestamp),
            )
            .join(Commit, Commit.id == inner.c.commit_id)
            .group_by(inner.c.commit_id, Commit.commit_hash, Commit.distro_hash, Commit.component)
            .order_by(func.max(inner.c.timestamp).desc())
        )
        rows: list[dict[str, Any]] = [
            {
                "commit_hash": ch,
                "distro_hash": dh or "",
                "component": comp,
                "success": ok or 0,
                "failure": ko or 0,
                "last": last,
            }
            for ch, dh, comp, ok, ko, last in session.execute(grouped)
        ]
    html = _SUMMARY.render(
        title="CI votes", rows=rows, offset=offset, limit=MAX_LIMIT, more=window > MAX_LIMIT
    )
    return HTMLResponse(html)


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
        rows = list(session.execute(query))
        html = _DETAIL.render(title="CI votes detail", rows=rows)
    return HTMLResponse(html)
