"""The DLRN API (reference/dlrn.md section 14): same paths, parameters, status codes, error
bodies and JSON keys, so `dlrnapi-client` and existing CI jobs work unchanged.

Where DLRN has a known bug conveyor does the right thing (docs: differences from DLRN):
- `last_tested_repo` fallbacks apply the filters DLRN meant (no `consistent` vote in the
  second chance; the component filter kept);
- `metrics/builds` counts successes and failures over the same half-open day range;
- `promote` answers `timestamp` as an integer, and moves the label by an atomic rename;
- `promote-batch` rebuilds the aggregate of every promoted name, not only the last one;
- `promotions` defaults to (and is capped at) 100 rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from conveyor.api import openapi as doc
from conveyor.api.auth import Identity
from conveyor.api.bisect import bisect_after
from conveyor.api.context import (
    AnyUser,
    ApiContext,
    Ctx,
    Promoter,
    Voter,
    audit,
    audit_values,
)
from conveyor.api.errors import MISSING, NOT_FOUND, ApiError
from conveyor.api.params import Body, Params, Query, json_body
from conveyor.api.promotion import promote_after
from conveyor.domain.labels import BUILDER_LABELS, LabelCollision, check_promotion_label
from conveyor.domain.names import InvalidName
from conveyor.domain.paths import commit_relpath, repo_hash
from conveyor.domain.status import CommitStatus
from conveyor.promote.labels import (
    CommitPurged,
    PromotionConflict,
    PromotionRefused,
    promote_commits,
)
from conveyor.publish.locks import BuilderBusy
from conveyor.publish.repostore import PublishError
from conveyor.store.models import (
    FLAG_PURGED,
    CIVote,
    Commit,
    Promotion,
)
from conveyor.store.queries import find_commit
from conveyor.votes.errors import VoteRefused
from conveyor.votes.queries import (
    TestedQuery,
    aggregate_votes,
    commit_votes,
    last_tested_repo,
    mark_tested,
)
from conveyor.votes.writer import Recorded, VoteJob

router = APIRouter(prefix="/api", tags=["dlrn"])


def created(data: Any) -> JSONResponse:
    return JSONResponse(data, status_code=201)


# -- lookups ---------------------------------------------------------------------------------


def repo_url(ctx: ApiContext, commit: Commit) -> str:
    return ctx.config.url_of(commit_relpath(commit))


def _health(ctx: ApiContext) -> dict[str, str]:
    with ctx.db.reader() as session:
        any_commit = session.scalar(select(Commit.id).limit(1))
    return {"result": "ok" if any_commit is not None else "ok, no commits in DB"}


@router.get("/health", **doc.HEALTH_GET)
def health_get(ctx: Ctx) -> dict[str, str]:
    return _health(ctx)


@router.post("/health", **doc.HEALTH_POST)
def health_post(ctx: Ctx, user: AnyUser) -> dict[str, str]:
    return _health(ctx)


# -- votes -----------------------------------------------------------------------------------


@contextmanager
def _refused() -> Iterator[None]:
    """The votes service's refusals answered as DLRN answers them."""
    try:
        yield
    except VoteRefused as exc:
        raise ApiError(exc.message, exc.status) from None


def _vote_dict(vote: CIVote, commit: Commit) -> dict[str, Any]:
    return {
        "timestamp": vote.timestamp,
        "commit_hash": commit.commit_hash,
        "distro_hash": commit.distro_hash,
        "extended_hash": commit.extended_hash,
        "job_id": vote.ci_name,
        "success": bool(vote.ci_vote),
        "in_progress": vote.ci_in_progress,
        "url": vote.ci_url,
        "notes": vote.notes,
        "user": vote.user,
        "component": vote.component,
    }


@router.get("/repo_status", **doc.REPO_STATUS)
def repo_status(ctx: Ctx, p: Query) -> list[dict[str, Any]]:
    commit_hash, distro_hash = p.req("commit_hash"), p.req("distro_hash")
    extended_hash, success = p.text("extended_hash"), p.flag("success")
    with _refused(), ctx.db.reader() as session:
        found = commit_votes(session, commit_hash, distro_hash, extended_hash, success)
        return [_vote_dict(vote, found.commit) for vote in found.votes]


@router.get("/agg_status", **doc.AGG_STATUS)
def agg_status(ctx: Ctx, p: Query) -> list[dict[str, Any]]:
    aggregate_hash, success = p.req("aggregate_hash"), p.flag("success")
    with ctx.db.reader() as session:
        return [
            {
                "timestamp": vote.timestamp,
                "aggregate_hash": aggregate_hash,
                "job_id": vote.ci_name,
                "success": bool(vote.ci_vote),
                "in_progress": vote.ci_in_progress,
                "url": vote.ci_url,
                "notes": vote.notes,
                "user": vote.user,
            }
            for vote in aggregate_votes(session, aggregate_hash, success)
        ]


def _tested_query(p: Params) -> TestedQuery:
    """DLRN's getVote parameters (its search, with the fallbacks it meant, is the service's)."""
    max_age = p.number("max_age")
    if max_age is None:
        raise ApiError(MISSING)
    success, job_id = p.flag("success"), p.text("job_id")
    component, sequential = p.text("component"), p.flag("sequential_mode")
    previous_job_id = p.text("previous_job_id")
    if sequential and previous_job_id is None:
        raise ApiError("Missing parameter previous_job_id")
    return TestedQuery(max_age, success, job_id, component, previous_job_id if sequential else None)


def _repo_dict(vote: CIVote, commit: Commit) -> dict[str, Any]:
    return {
        "commit_hash": commit.commit_hash,
        "distro_hash": commit.distro_hash,
        "extended_hash": commit.extended_hash,
        "timestamp": vote.timestamp,
        "job_id": vote.ci_name,
        "success": vote.ci_vote,
        "in_progress": vote.ci_in_progress,
        "user": vote.user,
        "component": vote.component,
    }


@router.get("/last_tested_repo", **doc.LAST_TESTED_GET)
def last_tested_repo_get(ctx: Ctx, p: Query) -> dict[str, Any]:
    query = _tested_query(p)
    with _refused(), ctx.db.reader() as session:
        found = last_tested_repo(session, query)
        return _repo_dict(found.vote, found.commit)


@router.post("/last_tested_repo", status_code=201, **doc.LAST_TESTED_POST)
def last_tested_repo_post(request: Request, ctx: Ctx, user: Voter, p: Body) -> JSONResponse:
    reporting_job_id = p.text("reporting_job_id")
    if p.raw("max_age") is None or reporting_job_id is None:
        raise ApiError(MISSING)
    query = _tested_query(p)
    with _refused(), ctx.db.transaction() as session:
        found = last_tested_repo(session, query)
        new = mark_tested(session, found, reporting_job_id, user.username)
        result = _repo_dict(new, found.commit)
        details = {"commit_id": found.commit.id, "job_id": reporting_job_id}
        audit(session, request, user, 201, details)
    return created(result)


@router.post("/report_result", status_code=201, **doc.REPORT_RESULT)
async def report_result(
    request: Request, ctx: Ctx, user: Voter, p: Body, background: BackgroundTasks
) -> JSONResponse:
    for name in ("timestamp", "job_id", "success", "url"):
        if name not in p.values:
            raise ApiError(MISSING)
    # Only http(s): the vote pages link to the URL, and a `javascript:` one would run there.
    timestamp, job_id, url = p.number("timestamp"), p.text("job_id"), p.http_url("url")
    success = p.flag("success")
    if timestamp is None or job_id is None or success is None:
        raise ApiError(MISSING)
    commit_hash, distro_hash = p.text("commit_hash"), p.text("distro_hash")
    extended_hash, aggregate_hash = p.text("extended_hash"), p.text("aggregate_hash")
    notes = p.text("notes") or ""
    if not commit_hash and not distro_hash and not aggregate_hash:
        raise ApiError(MISSING)
    if commit_hash and not distro_hash:
        raise ApiError("If commit_hash is provided, distro_hash must be provided too")
    if distro_hash and not commit_hash:
        raise ApiError("If distro_hash is provided, commit_hash must be provided too")
    if aggregate_hash and (commit_hash or distro_hash):
        raise ApiError("aggregate_hash and commit/distro_hash cannot be combined")

    def answer(recorded: Recorded) -> dict[str, Any]:
        return {
            "commit_hash": commit_hash,
            "distro_hash": distro_hash,
            "extended_hash": recorded.extended_hash,
            "aggregate_hash": aggregate_hash,
            "timestamp": timestamp,
            "job_id": job_id,
            "success": success,
            "in_progress": False,
            "url": url,
            "notes": notes,
            "user": user.username,
            "component": recorded.component,
        }

    job = VoteJob(
        fields={
            "ci_name": job_id,
            "ci_url": url,
            "ci_vote": success,
            "ci_in_progress": False,
            "timestamp": timestamp,
            "notes": notes,
            "user": user.username,
        },
        commit_hash=commit_hash,
        distro_hash=distro_hash,
        extended_hash=extended_hash,
        aggregate_hash=aggregate_hash,
        audit=lambda recorded: audit_values(request, user, 201, answer(recorded)),
        loop=asyncio.get_running_loop(),
    )
    with _refused():
        recorded = await ctx.votes.record(job)
    request.state.audited = True
    await promote_after(background, ctx, job_id, user.username)
    await bisect_after(ctx, aggregate_hash)
    return created(answer(recorded))


# -- promotions ------------------------------------------------------------------------------


def check_promote_name(name: str) -> str:
    """The promotion service's rule, with DLRN's statuses: 403 for the reserved labels and for
    names that would leave repos/, 400 with the reason for a name the layout uses, 400 for any
    other name that is not a plain label."""
    try:
        return check_promotion_label(name)
    except LabelCollision as exc:
        raise ApiError(f"Invalid promote_name: {exc}", 400) from None
    except InvalidName:
        if name in BUILDER_LABELS or "/" in name or ".." in name or "\\" in name:
            raise ApiError(f"Invalid promote_name {name}", 403) from None
        raise ApiError(
            f"Invalid promote_name {name[:300]!r}: use letters, digits, '.', '_' and '-' "
            "(at most 255 characters)",
            400,
        ) from None


def _checked_commit(session: Session, item: Params, batch: bool) -> tuple[Commit, str]:
    commit_hash, distro_hash = item.req("commit_hash"), item.req("distro_hash")
    name = check_promote_name(item.req("promote_name"))
    extended_hash = item.text("extended_hash")
    commit = find_commit(session, commit_hash, distro_hash, extended_hash)
    where = f" for {commit_hash}_{distro_hash}_{extended_hash}" if batch else ""
    if commit is None:
        raise ApiError(f"{NOT_FOUND}{where}", 400)
    if commit.flags & FLAG_PURGED:
        raise ApiError(
            f"commit_hash+distro_hash+extended_hash{where} has been purged, cannot promote it",
            410,
        )
    return commit, name


def _promote(
    request: Request, ctx: ApiContext, user: Identity, items: list[Params], batch: bool
) -> dict[str, Any]:
    """DLRN's promote and promote-batch, through the one label mover (`promote_commits`):
    the links and the rows move together under the publish lock, all or nothing."""
    with ctx.db.reader() as session:
        checked = [_checked_commit(session, item, batch) for item in items]

    def record(session: Session, promotions: list[Promotion]) -> None:
        moved = [[p.commit_id, p.promotion_name] for p in promotions]
        audit(session, request, user, 201, {"promotions": moved})

    moves = [(commit.id, name) for commit, name in checked]
    try:
        promotions = promote_commits(ctx.config, ctx.db, moves, user.username, within=record)
    except (BuilderBusy, PublishError, PromotionConflict) as exc:  # the tree or a racer
        raise ApiError(str(exc), 409) from None
    except CommitPurged as exc:
        raise ApiError(f"{exc}, cannot promote it", 410) from None
    except PromotionRefused as exc:
        raise ApiError(str(exc), 400) from None
    except (OSError, InvalidName) as exc:
        raise ApiError(f"Symlink creation failed with error: {exc}", 500) from None
    commit, last = checked[-1][0], promotions[-1]
    return {
        "commit_hash": commit.commit_hash,
        "distro_hash": commit.distro_hash,
        "extended_hash": commit.extended_hash,
        "repo_hash": repo_hash(commit.commit_hash, commit.distro_hash),
        "repo_url": repo_url(ctx, commit),
        "promote_name": last.promotion_name,
        "component": commit.component,
        "timestamp": last.timestamp,
        "user": user.username,
        "aggregate_hash": last.aggregate_hash,
    }


@router.post("/promote", status_code=201, **doc.PROMOTE)
def promote(request: Request, ctx: Ctx, user: Promoter, p: Body) -> JSONResponse:
    return created(_promote(request, ctx, user, [p], batch=False))


async def _batch_body(request: Request) -> list[Params]:
    body = await json_body(request)
    if not isinstance(body, list) or not body or not all(isinstance(i, dict) for i in body):
        raise ApiError("The JSON body must be a non-empty list of promotions")
    return [Params(item) for item in body]


@router.post("/promote-batch", status_code=201, **doc.PROMOTE_BATCH)
def promote_batch(
    request: Request,
    ctx: Ctx,
    user: Promoter,
    items: Annotated[list[Params], Depends(_batch_body)],
) -> JSONResponse:
    return created(_promote(request, ctx, user, items, batch=True))


@router.get("/promotions", **doc.PROMOTIONS)
def promotions(ctx: Ctx, p: Query) -> list[dict[str, Any]]:
    commit_hash, distro_hash = p.text("commit_hash"), p.text("distro_hash")
    extended_hash, aggregate_hash = p.text("extended_hash"), p.text("aggregate_hash")
    promote_name, component = p.text("promote_name"), p.text("component")
    limit, offset = p.limit(), p.offset()
    if bool(commit_hash) != bool(distro_hash):
        raise ApiError("Both commit_hash and distro_hash must be specified if any of them is.")
    query = select(Promotion, Commit).join(Commit, Promotion.commit_id == Commit.id)
    with ctx.db.reader() as session:
        if commit_hash and distro_hash:
            commit = find_commit(session, commit_hash, distro_hash, extended_hash)
            if commit is None:
                raise ApiError(NOT_FOUND, 400)
            query = query.where(Promotion.commit_id == commit.id)
        if promote_name is not None:
            query = query.where(Promotion.promotion_name == promote_name)
        if aggregate_hash is not None:
            query = query.where(Promotion.aggregate_hash == aggregate_hash)
        if component is not None:
            query = query.where(Promotion.component == component)
        rows = session.execute(query.order_by(Promotion.id.desc()).limit(limit).offset(offset))
        return [
            {
                "timestamp": promotion.timestamp,
                "commit_hash": commit.commit_hash,
                "distro_hash": commit.distro_hash,
                "extended_hash": commit.extended_hash,
                "aggregate_hash": promotion.aggregate_hash,
                "repo_hash": repo_hash(commit.commit_hash, commit.distro_hash),
                "repo_url": repo_url(ctx, commit),
                "promote_name": promotion.promotion_name,
                "component": promotion.component,
                "user": promotion.user,
            }
            for promotion, commit in rows
        ]


@router.get("/components", **doc.COMPONENTS)
def components(ctx: Ctx) -> dict[str, list[str]]:
    query = (
        select(Promotion.component)
        .distinct()
        .where(Promotion.component.is_not(None), Promotion.component != "")
    )
    with ctx.db.reader() as session:
        return {"components": sorted(c for c in session.scalars(query) if c)}


def _day(text: str) -> int:
    try:
        return int(datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC).timestamp())
    except ValueError:
        raise ApiError("Invalid date format, it must be YYYY-mm-dd") from None


@router.get("/metrics/builds", **doc.BUILD_METRICS)
def build_metrics(ctx: Ctx, p: Query) -> dict[str, int]:
    start, end = _day(p.req("start_date")), _day(p.req("end_date"))
    package_name = p.text("package_name")
    query = select(Commit.status, func.count(Commit.id)).where(
        Commit.dt_build >= start,
        Commit.dt_build < end,
        Commit.status.in_([CommitStatus.SUCCESS, CommitStatus.FAILED]),
    )
    if package_name:
        query = query.where(Commit.project_name == package_name)
    with ctx.db.reader() as session:
        counts = dict(session.execute(query.group_by(Commit.status)).all())
    succeeded = counts.get(CommitStatus.SUCCESS, 0)
    failed = counts.get(CommitStatus.FAILED, 0)
    return {"succeeded": succeeded, "failed": failed, "total": succeeded + failed}
