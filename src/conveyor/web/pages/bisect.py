"""/bisections: every bisection with its state; /bisections/{id}: its changes in order, its
steps with their verdicts, the step waiting for CI and the conclusion with links to both
builds and the upstream change (conveyor.bisect, as `conveyor bisect status` shows it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse

from conveyor.api.context import app_context
from conveyor.bisect.service import UnknownBisection, bisection_status, list_bisections
from conveyor.web.render import not_found, page

router = APIRouter(include_in_schema=False)


@router.get("/bisections", response_class=HTMLResponse)
def bisections_page(request: Request) -> HTMLResponse:
    ctx = app_context(request)
    found = list_bisections(ctx.config, ctx.db)
    return page(request, "bisections.html", "bisect", "Bisections", bisections=found)


@router.get("/bisections/{bisection_id}", response_class=HTMLResponse)
def bisection_page(
    request: Request, bisection_id: Annotated[int, Path(ge=1, le=2**31 - 1)]
) -> HTMLResponse:
    ctx = app_context(request)
    try:
        view = bisection_status(ctx.config, ctx.db, bisection_id, advance=False)
    except UnknownBisection as exc:
        return not_found(request, "bisect", str(exc), "/bisections", "Bisections")
    title = f"Bisection {view.id} of {view.job_id}"
    return page(request, "bisection.html", "bisect", title, b=view)
