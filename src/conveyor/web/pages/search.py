"""The search box (`/search?q=`): packages by name, builds by commit hash prefix, current
NVRs and labels; a short help without a query."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from conveyor.api.context import app_context
from conveyor.reports.dashboard import (
    MIN_HASH_PREFIX,
    SEARCH_LIMIT,
    SearchResults,
    package_list,
    search,
)
from conveyor.web.render import page

router = APIRouter(include_in_schema=False)

# Longer text is no package name, hash or NVR: it is cut rather than searched.
MAX_QUERY = 200


@router.get("/search", response_class=HTMLResponse)
def search_page(request: Request) -> HTMLResponse:
    ctx = app_context(request)
    text = request.query_params.get("q", "").strip()[:MAX_QUERY]
    if text:
        packages = package_list(ctx.config)
        with ctx.db.engine.connect() as connection:
            results = search(connection, ctx.config, packages, text)
    else:
        results = SearchResults(text)
    return page(
        request,
        "search.html",
        "search",
        f"Search: {text}" if text else "Search",
        results=results,
        limit=SEARCH_LIMIT,
        min_hash=MIN_HASH_PREFIX,
    )
