"""Bisections over HTTP (conveyor.bisect): list, show, start, reset; and the advance that
follows a CI vote on a step's repository (`report_result --agg-hash`), as the promotion's
evaluation follows every vote (conveyor.api.promotion)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from conveyor.api import openapi as doc
from conveyor.api.context import ApiContext, Ctx, Promoter, audit
from conveyor.api.errors import ApiError
from conveyor.api.params import Body
from conveyor.bisect.plan import BisectError
from conveyor.bisect.service import (
    advance_after_vote,
    bisection_status,
    list_bisections,
    reset_bisection,
    start_bisection,
)
from conveyor.publish.locks import BuilderBusy

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api", tags=["bisect"])

BisectionId = Annotated[int, Path(ge=1, le=2**31 - 1, description="the bisection's number")]


async def bisect_after(ctx: ApiContext, aggregate_hash: str | None) -> None:
    """After a recorded vote on an aggregate hash, before its response: the bisection whose
    step it is advances (publishes its next step, or concludes). Before, not after: a CI
    loop that asks for the next step once its vote is answered must not get the same step
    back (a trial's loop tested every step twice). A failure is logged, never answered:
    the vote is recorded, and `conveyor bisect status` advances later."""
    if not aggregate_hash:
        return
    try:
        await run_in_threadpool(advance_after_vote, ctx.config, ctx.db, aggregate_hash)
    except Exception:
        log.exception("bisection not advanced after the vote on %s", aggregate_hash)


@contextmanager
def _refused() -> Iterator[None]:
    try:
        yield
    except BisectError as exc:
        raise ApiError(str(exc), exc.status) from None
    except BuilderBusy as exc:
        raise ApiError(str(exc), 409) from None


@router.get("/bisections")
def bisections(ctx: Ctx) -> list[dict[str, Any]]:
    """The newest bisections first (at most 100), each with its steps and conclusion."""
    return [view.as_json() for view in list_bisections(ctx.config, ctx.db)]


@router.get("/bisections/{bisection_id}")
def bisection(ctx: Ctx, bisection_id: BisectionId) -> dict[str, Any]:
    """A bisection: its changes in order, steps and verdicts, suspects left, the step
    waiting for CI (`pending`) and the conclusion."""
    with _refused():
        return bisection_status(ctx.config, ctx.db, bisection_id, advance=False).as_json()


_START_BODY = doc.json_object(
    [
        doc.Param("good", "string", "The repository that passed: a hash or a label", required=True),
        doc.Param("bad", "string", "The repository that failed: a hash or a label", required=True),
        doc.Param("job_id", "string", "The CI job that tells them apart", required=True),
    ]
)


@router.post(
    "/bisections",
    status_code=201,
    **doc.write(dict[str, Any], _START_BODY, errors=[404, 409]),
)
def start(request: Request, ctx: Ctx, user: Promoter, p: Body) -> JSONResponse:
    """Start a bisection: JSON `good`, `bad` (hashes or labels) and `job_id`; answers it
    with its first step. 409 while one of that job runs."""
    good, bad, job_id = p.req("good"), p.req("bad"), p.req("job_id")
    with _refused():
        view = start_bisection(ctx.config, ctx.db, good, bad, job_id, user.username)
    with ctx.db.transaction() as session:
        audit(session, request, user, 201, {"bisection": view.id, "job_id": job_id})
    return JSONResponse(view.as_json(), status_code=201)


@router.post(
    "/bisections/{bisection_id}/reset",
    **doc.write(dict[str, Any], None, errors=[403, 404], ok=200, description="Ended"),
)
def reset(request: Request, ctx: Ctx, user: Promoter, bisection_id: BisectionId) -> dict[str, Any]:
    """End a bisection without a conclusion."""
    with _refused():
        view = reset_bisection(ctx.config, ctx.db, bisection_id)
    with ctx.db.transaction() as session:
        audit(session, request, user, 200, {"bisection": view.id, "state": view.state})
    return view.as_json()
