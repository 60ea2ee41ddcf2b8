"""The CI vote pages, rendered on the server: this module parses the parameters, the read side
(reports/civotes.py) reads the votes and renders the bundled templates, in the dashboard's
look and navigation (conveyor.web), under the dashboard's strict Content-Security-Policy."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from conveyor.api.context import Ctx
from conveyor.api.errors import ApiError
from conveyor.api.params import MAX_LIMIT, Query
from conveyor.reports.civotes import (
    Chrome,
    NavLink,
    aggregate_groups_html,
    aggregate_promotions,
    aggregate_rows_html,
    aggregate_vote_groups,
    aggregate_vote_rows,
    commit_groups_html,
    commit_rows_html,
    commit_vote_groups,
    commit_vote_rows,
    repository_summary,
)
from conveyor.web.render import NAV, PAGE_POLICY, STATIC_URL

router = APIRouter(prefix="/api", tags=["pages"], include_in_schema=False)

# The vote pages belong to the dashboard's "Promotions" part.
CHROME = Chrome(
    nav=tuple(NavLink(item.key, item.label, item.href) for item in NAV),
    current="promotions",
    stylesheet=f"{STATIC_URL}/dashboard.css",
    script=f"{STATIC_URL}/dashboard.js",
)


def _page(html: str) -> HTMLResponse:
    response = HTMLResponse(html)
    response.headers["Content-Security-Policy"] = PAGE_POLICY
    return response


@router.get("/civotes.html", response_class=HTMLResponse)
def civotes(ctx: Ctx, p: Query) -> HTMLResponse:
    page = commit_vote_groups(ctx.db, p.offset(), MAX_LIMIT)
    return _page(commit_groups_html(page, CHROME))


@router.get("/civotes_agg.html", response_class=HTMLResponse)
def civotes_agg(ctx: Ctx, p: Query) -> HTMLResponse:
    page = aggregate_vote_groups(ctx.db, p.offset(), MAX_LIMIT)
    return _page(aggregate_groups_html(page, CHROME))


@router.get("/civotes_detail.html", response_class=HTMLResponse)
def civotes_detail(ctx: Ctx, p: Query) -> HTMLResponse:
    commit_hash, distro_hash = p.text("commit_hash"), p.text("distro_hash")
    component, ci_name = p.text("component"), p.text("ci_name")
    offset = p.offset()
    if not (commit_hash and distro_hash) and not ci_name and not component:
        raise ApiError(
            "Please specify either commit_hash+distro_hash, component or ci_name as parameters."
        )
    rows = commit_vote_rows(
        ctx.db,
        commit_hash=commit_hash,
        distro_hash=distro_hash,
        component=component,
        ci_name=ci_name,
        offset=offset,
        limit=MAX_LIMIT,
    )
    repository = None
    if commit_hash and distro_hash:
        repository = repository_summary(ctx.db, commit_hash, distro_hash)
    return _page(commit_rows_html(rows, CHROME, repository))


@router.get("/civotes_agg_detail.html", response_class=HTMLResponse)
def civotes_agg_detail(ctx: Ctx, p: Query) -> HTMLResponse:
    ref_hash, ci_name = p.text("ref_hash"), p.text("ci_name")
    if not ref_hash and not ci_name:
        raise ApiError("Please specify either ref_hash or ci_name as parameters.")
    rows = aggregate_vote_rows(
        ctx.db, ref_hash=ref_hash, ci_name=ci_name, offset=p.offset(), limit=MAX_LIMIT
    )
    promotions = aggregate_promotions(ctx.db, ref_hash) if ref_hash else ()
    return _page(aggregate_rows_html(rows, CHROME, promotions))
