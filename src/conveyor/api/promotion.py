"""Promotion through the API: every accepted vote is followed by an evaluation of the
criteria, so a vote that completes them promotes at once (RDO's promoter polls every 600 s);
`/api/v2/promotion-status` explains each target's decision."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from conveyor.api.context import ApiContext, context
from conveyor.api.errors import ApiError
from conveyor.domain.labels import CONSISTENT
from conveyor.promote.criteria import Criteria, CriteriaError, load_criteria
from conveyor.promote.engine import Decision, evaluate_after_vote, explain

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v2", tags=["promotion"])


# Criteria are data under review in git: a change counts from the next vote. They are parsed
# again only when the file changed (its stat), not for every vote.
_parsed: dict[Path, tuple[tuple[int, int, int], Criteria]] = {}


def _criteria(ctx: ApiContext) -> Criteria | None:
    path = ctx.config.promotion_criteria
    if path is None:
        return None
    try:
        info = path.stat()
    except OSError:
        return load_criteria(path)  # raises the CriteriaError that says why
    key = (info.st_mtime_ns, info.st_size, info.st_ino)
    known = _parsed.get(path)
    if known is not None and known[0] == key:
        return known[1]
    criteria = load_criteria(path)
    _parsed[path] = (key, criteria)
    return criteria


def evaluation_needed(ctx: ApiContext, job: str) -> bool:
    """Whether a vote of `job` is worth an evaluation after its response (unusable criteria
    are: the evaluation logs why)."""
    try:
        criteria = _criteria(ctx)
    except CriteriaError:
        return True
    return criteria is not None and can_matter(criteria, job)


def can_matter(criteria: Criteria, job: str) -> bool:
    """Whether a vote of `job` can change a decision. Decisions read only the votes of the
    jobs the criteria name (or their alternatives), and `consistent` votes make candidates;
    the votes of every other job (most of a busy API's votes) need no evaluation, which
    costs tens of milliseconds on a big database."""
    return job == CONSISTENT or any(
        job in target.criteria
        or any(job in alternatives for alternatives in target.alternative_criteria.values())
        for target in criteria.targets
    )


def promote_after_vote(ctx: ApiContext, user: str) -> None:
    """Run after the response to a vote that `evaluation_needed` let through; a problem is
    logged, never raised."""
    try:
        criteria = _criteria(ctx)
        if criteria is not None:
            for decision in evaluate_after_vote(ctx.config, ctx.db, criteria, user=user):
                chosen = decision.explanation.chosen
                if decision.promoted and chosen is not None:
                    log.info("promoted %s to %s", chosen.key, decision.target.key)
    except CriteriaError as exc:
        log.error("promotion criteria unusable, nothing promoted: %s", exc)
    except Exception:
        log.exception("evaluation after a vote failed")


def _decision_dict(decision: Decision) -> dict[str, Any]:
    explanation = decision.explanation
    return {
        "target": decision.target.name,
        "component": decision.target.component,
        "candidate_label": decision.target.candidate_label,
        "criteria": list(decision.target.criteria),
        "incumbent": explanation.incumbent.key if explanation.incumbent else None,
        "chosen": explanation.chosen.key if explanation.chosen else None,
        "error": decision.error,
        "candidates": [
            {
                "key": report.key,
                "verdict": report.verdict.value,
                "passed": list(report.passed),
                "missing": list(report.missing),
                "alternatives_used": dict(report.alternatives_used),
            }
            for report in explanation.candidates
        ],
    }


@router.get("/promotion-status")
def promotion_status(
    ctx: Annotated[ApiContext, Depends(context)],
    target: Annotated[str | None, Query(max_length=255)] = None,
) -> list[dict[str, Any]]:
    """Each target's decision as the promoter would take it now: every candidate with its
    passed and missing jobs."""
    try:
        criteria = _criteria(ctx)
    except CriteriaError as exc:
        raise ApiError(f"promotion criteria unusable: {exc}", 500) from None
    if criteria is None:
        raise ApiError("no promotion criteria configured (promotion_criteria)", 404)
    decisions = explain(ctx.config, ctx.db, criteria, target)
    if target is not None and not decisions:
        raise ApiError(f"unknown promotion target {target!r}", 404)
    return [_decision_dict(d) for d in decisions]
