"""Promotion through the API: every accepted vote is followed by an evaluation of the
criteria, so a vote that completes them promotes at once (RDO's promoter polls every 600 s);
`/api/v2/promotion-status` explains each target's decision. The work is the promotion
service's (promote/status.py); this module schedules it and answers HTTP."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Query

from conveyor.api.context import ApiContext, Ctx
from conveyor.api.errors import ApiError
from conveyor.promote.criteria import CriteriaError
from conveyor.promote.engine import explain
from conveyor.promote.status import (
    configured_criteria,
    decision_status,
    evaluation_needed,
    promote_after_vote,
)

router = APIRouter(prefix="/api/v2", tags=["promotion"])


async def promote_after(background: BackgroundTasks, ctx: ApiContext, job: str, user: str) -> None:
    """After a recorded vote of `job`: a vote that completes the criteria promotes now, not
    at a poll (only a vote that can change a decision is evaluated). On PostgreSQL the
    evaluation is a job, deferred before the vote is answered (any server process takes it);
    otherwise it runs in this process after the response."""
    if not evaluation_needed(ctx.config, job):
        return
    if ctx.promotions is not None and await ctx.promotions.request(user):
        return
    background.add_task(promote_after_vote, ctx.config, ctx.db, user)


@router.get("/promotion-status")
def promotion_status(
    ctx: Ctx,
    target: Annotated[str | None, Query(max_length=255)] = None,
) -> list[dict[str, Any]]:
    """Each target's decision as the promoter would take it now: every candidate with its
    passed and missing jobs."""
    try:
        criteria = configured_criteria(ctx.config)
    except CriteriaError as exc:
        raise ApiError(f"promotion criteria unusable: {exc}", 500) from None
    if criteria is None:
        raise ApiError("no promotion criteria configured (promotion_criteria)", 404)
    decisions = explain(ctx.config, ctx.db, criteria, target)
    if target is not None and not decisions:
        raise ApiError(f"unknown promotion target {target!r}", 404)
    return [decision_status(d) for d in decisions]
