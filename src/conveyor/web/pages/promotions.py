"""Promotions: per target of the promotion criteria, where its label points and since when,
the newest candidates with their jobs passed, failed and missing, and the history of
promotions; `/promotions/{target}` shows one target with all its candidates.

The decisions are the promotion service's (`conveyor.promote.engine.explain`, what
`conveyor promote --dry-run --explain` prints); the history, the repositories and the
candidates' CI results are the read side's (`conveyor.reports.promotions`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from conveyor.api.context import app_context
from conveyor.config import Config
from conveyor.domain.names import InvalidName, check_label
from conveyor.domain.promotion import Verdict
from conveyor.promote.criteria import Criteria, CriteriaError
from conveyor.promote.engine import Decision, explain
from conveyor.promote.status import configured_criteria
from conveyor.reports.filecache import StampedCache, stamps_of
from conveyor.reports.promotions import (
    HistoryPage,
    JobResults,
    JobSplit,
    LabelMove,
    Repository,
    aggregate_results,
    aggregate_votes_href,
    commit_results,
    label_moves,
    promotion_history,
    repositories,
    split_jobs,
    state_key,
)
from conveyor.store.database import Database
from conveyor.web.render import not_found, page

router = APIRouter(include_in_schema=False)

CANDIDATES_SHOWN = 10  # per target on the overview; its own page shows them all
HISTORY_PAGE = 30
MAX_OFFSET = 10**7
# Decisions are kept until a commit, a vote or a promotion is added (`state_key`); a purge
# shows within this time.
DECISIONS_TTL = 60.0


@dataclass(frozen=True)
class CandidateView:
    key: str
    verdict: str
    jobs: JobSplit
    repository: Repository | None  # None for an aggregate candidate
    votes_href: str

    @property
    def row_class(self) -> str:
        if self.verdict == Verdict.PROMOTE:
            return "promote"
        if self.jobs.failed:
            return "failed"
        if self.verdict == Verdict.MISSING_JOBS:
            return "missing"
        return ""


@dataclass(frozen=True)
class TargetView:
    name: str
    key: str  # `name` or `component/name`
    component: str | None
    candidate_label: str
    criteria: tuple[str, ...]
    alternatives: dict[str, tuple[str, ...]]
    incumbent: str | None  # its candidate key
    since: LabelMove | None  # the move that made the incumbent
    summary: str
    error: str | None
    candidates: list[CandidateView]
    more: int  # candidates not shown

    @property
    def href(self) -> str:
        return f"/promotions/{self.name}"


def _summary(decision: Decision) -> str:
    """What the promoter would do now, as `conveyor promote --dry-run` says it."""
    explanation = decision.explanation
    chosen = explanation.chosen
    if decision.error is not None:
        return f"not promoted: {decision.error}"
    if chosen is not None:
        return f"would promote {chosen.key}"
    waiting = [c for c in explanation.candidates if c.verdict is Verdict.MISSING_JOBS]
    if waiting:
        return f"nothing to promote: {len(waiting)} newer candidate(s) miss jobs"
    if not explanation.candidates:
        return f"no candidate on {decision.target.candidate_label}"
    return "nothing newer to promote"


def _aggregate(decision: Decision, config_components: bool) -> bool:
    return config_components and decision.target.component is None


def _targets(
    db: Database, decisions: list[Decision], limit: int | None, components: bool
) -> list[TargetView]:
    shown = {id(d): list(d.explanation.candidates[:limit]) for d in decisions}
    commit_ids = [c.order for d in decisions if not _aggregate(d, components) for c in shown[id(d)]]
    hashes = [c.key for d in decisions if _aggregate(d, components) for c in shown[id(d)]]
    by_commit = commit_results(db, list(dict.fromkeys(commit_ids)))
    by_hash = aggregate_results(db, list(dict.fromkeys(hashes)))
    repos = repositories(db, commit_ids)
    moves = label_moves(db, [(d.target.name, d.target.component) for d in decisions])
    nothing = JobResults({}, frozenset())
    views = []
    for decision in decisions:
        target = decision.target
        alternatives = {job: tuple(alts) for job, alts in target.alternative_criteria.items()}
        aggregate = _aggregate(decision, components)
        candidates = []
        for report in shown[id(decision)]:
            if aggregate:
                results, repo = by_hash.get(report.key, nothing), None
                href = aggregate_votes_href(report.key)
            else:
                results, repo = by_commit.get(report.order, nothing), repos.get(report.order)
                href = repo.votes_href if repo is not None else ""
            jobs = split_jobs(target.criteria, alternatives, results)
            candidates.append(CandidateView(report.key, report.verdict.value, jobs, repo, href))
        incumbent = decision.explanation.incumbent
        views.append(
            TargetView(
                name=target.name,
                key=target.key,
                component=target.component,
                candidate_label=target.candidate_label,
                criteria=target.criteria,
                alternatives=alternatives,
                incumbent=incumbent.key if incumbent else None,
                since=moves.get((target.name, target.component)),
                summary=_summary(decision),
                error=decision.error,
                candidates=candidates,
                more=len(decision.explanation.candidates) - len(candidates),
            )
        )
    return views


_decisions: StampedCache[list[TargetView]] = StampedCache(size=64, ttl=DECISIONS_TTL)


def target_views(
    config: Config, db: Database, criteria: Criteria, target: str | None, limit: int | None
) -> list[TargetView]:
    """The decisions of `criteria` now (of `target`'s targets, or all), each with its
    newest `limit` candidates (all when None): what `conveyor promote --dry-run --explain`
    says, and the candidates' repositories and jobs. An evaluation reads every target's
    candidates and their votes (30 ms on a 500,000-commit database): it is kept until the
    database has a new commit, vote or promotion."""

    def compute() -> list[TargetView]:
        decisions = explain(config, db, criteria, target)
        return _targets(db, decisions, limit, config.use_components)

    source = [criteria.path] if criteria.path is not None else []
    name = (db.url, config.use_components, str(criteria.path), target, limit)
    return _decisions.get(name, lambda: (state_key(db), stamps_of(source)), compute)


def _offset(request: Request) -> int:
    raw = request.query_params.get("offset", "")
    return min(int(raw), MAX_OFFSET) if raw.isascii() and raw.isdigit() else 0


def _criteria(request: Request) -> tuple[Criteria | None, str | None]:
    try:
        return configured_criteria(app_context(request).config), None
    except CriteriaError as exc:
        return None, str(exc)


def _history_links(history: HistoryPage, base: str) -> dict[str, str | None]:
    newer = max(history.offset - history.limit, 0)
    return {
        "newer": (f"{base}?offset={newer}" if newer else base) if history.offset else None,
        "older": f"{base}?offset={history.offset + history.limit}" if history.more else None,
    }


@router.get("/promotions", response_class=HTMLResponse)
def promotions_page(request: Request) -> HTMLResponse:
    ctx = app_context(request)
    criteria, problem = _criteria(request)
    targets = []
    if criteria is not None:
        targets = target_views(ctx.config, ctx.db, criteria, None, CANDIDATES_SHOWN)
    history = promotion_history(ctx.db, limit=HISTORY_PAGE, offset=_offset(request))
    values: dict[str, Any] = {
        "targets": targets,
        "history": history,
        "links": _history_links(history, "/promotions"),
        "criteria": criteria,
        "criteria_path": ctx.config.promotion_criteria,
        "problem": problem,
    }
    status = 500 if problem else 200
    return page(request, "promotions.html", "promotions", "Promotions", status, **values)


@router.get("/promotions/{target}", response_class=HTMLResponse)
def promotion_target_page(request: Request, target: str) -> HTMLResponse:
    ctx = app_context(request)
    criteria, problem = _criteria(request)
    try:
        check_label(target)
    except InvalidName:
        return _missing(request, f"{target!r} is not a label name.")
    if criteria is None:
        why = problem or "no promotion criteria are configured (promotion_criteria)"
        return _missing(request, f"No promotion target {target}: {why}.")
    views = target_views(ctx.config, ctx.db, criteria, target, None)
    if not views:
        return _missing(request, f"No promotion target {target} in {criteria.path}.")
    history = promotion_history(
        ctx.db, labels=[target], limit=HISTORY_PAGE, offset=_offset(request)
    )
    return page(
        request,
        "promotions_target.html",
        "promotions",
        f"Promotion target {target}",
        targets=views,
        history=history,
        links=_history_links(history, f"/promotions/{target}"),
    )


def _missing(request: Request, message: str) -> HTMLResponse:
    return not_found(request, "promotions", message, "/promotions", "All promotion targets")
