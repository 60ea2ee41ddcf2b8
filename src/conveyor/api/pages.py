"""The CI vote pages, rendered on the server: this module parses the parameters, the read side
(reports/civotes.py) reads the votes and renders the bundled templates."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse

from conveyor.api.context import ApiContext, context
from conveyor.api.errors import ApiError
from conveyor.api.params import MAX_LIMIT, Params, query_params
from conveyor.reports.civotes import (
    aggregate_groups_html,
    aggregate_rows_html,
    aggregate_vote_groups,
    aggregate_vote_rows,
    commit_groups_html,
    commit_rows_html,
    commit_vote_groups,
    commit_vote_rows,
)

router = APIRouter(prefix="/api", tags=["pages"], include_in_schema=False)
Ctx = Annotated[ApiContext, Depends(context)]
Query = Annotated[Params, Depends(query_params)]


@router.get("/civotes.html", response_class=HTMLResponse)
def civotes(ctx: Ctx, p: Query) -> HTMLResponse:
    page = commit_vote_groups(ctx.db, p.offset(), MAX_LIMIT)
    return HTMLResponse(commit_groups_html(page))


@router.get("/civotes_agg.html", response_class=HTMLResponse)
def civotes_agg(ctx: Ctx, p: Query) -> HTMLResponse:
    page = aggregate_vote_groups(ctx.db, p.offset(), MAX_LIMIT)
    return HTMLResponse(aggregate_groups_html(page))


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
    return HTMLResponse(commit_rows_html(rows))


@router.get("/civotes_agg_detail.html", response_class=HTMLResponse)
def civotes_agg_detail(ctx: Ctx, p: Query) -> HTMLResponse:
    ref_hash, ci_name = p.text("ref_hash"), p.text("ci_name")
    if not ref_hash and not ci_name:
        raise ApiError("Please specify either ref_hash or ci_name as parameters.")
    rows = aggregate_vote_rows(
        ctx.db, ref_hash=ref_hash, ci_name=ci_name, offset=p.offset(), limit=MAX_LIMIT
    )
    return HTMLResponse(aggregate_rows_html(rows))
