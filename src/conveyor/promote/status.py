"""Promotion between polls, and its status: the configured criteria (parsed again only when
their file changes), whether a vote can change a decision, the evaluation that follows a vote,
and a decision as plain data.

Part of the promotion service, not of the API: none of it needs HTTP, and a command or a
dashboard showing the promotion status asks the same questions. The API runs the evaluation
after a vote as a job on PostgreSQL (conveyor.assembly.promotions), or as a background task,
and answers `/api/v2/promotion-status` with `decision_status`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from conveyor.config import Config
from conveyor.domain.labels import CONSISTENT
from conveyor.promote.criteria import Criteria, CriteriaError, load_criteria
from conveyor.promote.engine import Decision, evaluate_after_vote
from conveyor.store.database import Database

log = logging.getLogger(__name__)

# Criteria are data under review in git: a change counts from the next vote. They are parsed
# again only when the file changed (its stat), not for every vote.
_parsed: dict[Path, tuple[tuple[int, int, int], Criteria]] = {}


def configured_criteria(config: Config) -> Criteria | None:
    """The criteria of `promotion_criteria`, None when none is configured; CriteriaError when
    the file is unusable."""
    path = config.promotion_criteria
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


def evaluation_needed(config: Config, job: str) -> bool:
    """Whether a vote of `job` is worth an evaluation after it is recorded (unusable criteria
    are: the evaluation logs why)."""
    try:
        criteria = configured_criteria(config)
    except CriteriaError:
        return True
    return criteria is not None and can_matter(criteria, job)


def promote_now(config: Config, db: Database, user: str) -> None:
    """Evaluate the criteria and promote what they choose, as `user` (after a vote that
    `evaluation_needed` let through). Unusable criteria are logged, not raised: evaluating
    again would not make them usable; any other failure is raised."""
    try:
        criteria = configured_criteria(config)
    except CriteriaError as exc:
        log.error("promotion criteria unusable, nothing promoted: %s", exc)
        return
    if criteria is not None:
        evaluate_after_vote(config, db, criteria, user=user)  # it logs what it promotes


def promote_after_vote(config: Config, db: Database, user: str) -> None:
    """`promote_now` in the voting process, after the vote's response: a problem is logged,
    never raised (the vote is recorded already)."""
    try:
        promote_now(config, db, user)
    except Exception:
        log.exception("evaluation after a vote failed")


def decision_status(decision: Decision) -> dict[str, Any]:
    """A target's decision as plain data: its criteria, the incumbent, the chosen candidate
    and every candidate's verdict with its passed and missing jobs."""
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


def decision_report(decision: Decision) -> dict[str, Any]:
    """`decision_status` (the shape of /api/v2/promotion-status) and what the evaluation did:
    `promoted`, `dry_run`, `lost_race` (another promoter moved the label first) and, when a
    commit was chosen, `chosen_commit` with DLRN's names for it (commit_hash, distro_hash,
    extended_hash, component); `conveyor promote --json` prints one per target."""
    chosen = decision.chosen
    return decision_status(decision) | {
        "promoted": decision.promoted,
        "dry_run": decision.dry_run,
        "lost_race": decision.lost_race,
        "chosen_commit": {
            "commit_hash": chosen.commit_hash,
            "distro_hash": chosen.distro_hash,
            "extended_hash": chosen.extended_hash,
            "component": chosen.component,
        }
        if chosen is not None
        else None,
    }
