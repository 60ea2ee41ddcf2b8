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
import os
import time
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from conveyor.api import openapi as doc
from conveyor.api.auth import Identity, Role
from conveyor.api.context import ApiContext, audit, audit_values, authenticate, context
from conveyor.api.errors import MISSING, NOT_FOUND, ApiError
from conveyor.api.params import Params, json_body, json_params, query_params
from conveyor.api.promotion import evaluation_needed, promote_after_vote
from conveyor.api.votes import Recorded, VoteJob
from conveyor.domain.labels import BUILDER_LABELS, CONSISTENT, LabelCollision, check_promotion_label
from conveyor.domain.names import InvalidName
from conveyor.domain.paths import repo_hash
from conveyor.domain.status import CommitStatus
from conveyor.publish.repostore import PublishError
from conveyor.store.models import (
    FLAG_PURGED,
    CIVote,
    CIVoteAggregate,
    Commit,
    Promotion,
)
from conveyor.store.queries import find_commit
from conveyor.trunk.components import aggregate_for_label
from conveyor.trunk.lock import BuilderBusy, publish_lock
from conveyor.trunk.publishing import commit_relpath, component_base

router = APIRouter(prefix="/api", tags=["dlrn"])

Ctx = Annotated[ApiContext, Depends(context)]
Query = Annotated[Params, Depends(query_params)]
Body = Annotated[Params, Depends(json_params)]


def _reader(role: Role | None) -> Any:
    async def dependency(request: Request) -> Identity:
        return await authenticate(request, role)

    return Depends(dependency)


AnyUser = Annotated[Identity, _reader(None)]
Voter = Annotated[Identity, _reader(Role.VOTER)]
Promoter = Annotated[Identity, _reader(Role.PROMOTER)]
Admin = Annotated[Identity, _reader(Role.ADMIN)]


def created(data: Any) -> JSONResponse:
    return JSONResponse(data, status_code=201)


# -- lookups ---------------------------------------------------------------------------------


def repo_url(ctx: ApiContext, commit: Commit) -> str:
    return f"{ctx.config.baseurl.rstrip('/')}/{commit_relpath(commit)}"


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
    with ctx.db.reader() as session:
        commit = find_commit(session, commit_hash, distro_hash, extended_hash)
        if commit is None:
            raise ApiError(NOT_FOUND, 400)
        query = select(CIVote).where(CIVote.commit_id == commit.id)
        if success is not None:
            query = query.where(CIVote.ci_vote.is_(success))
        votes = session.scalars(query.order_by(CIVote.id))
        return [_vote_dict(vote, commit) for vote in votes]


@router.get("/agg_status", **doc.AGG_STATUS)
def agg_status(ctx: Ctx, p: Query) -> list[dict[str, Any]]:
    aggregate_hash, success = p.req("aggregate_hash"), p.flag("success")
    query = select(CIVoteAggregate).where(CIVoteAggregate.ref_hash == aggregate_hash)
    if success is not None:
        query = query.where(CIVoteAggregate.ci_vote.is_(success))
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
            for vote in session.scalars(query.order_by(CIVoteAggregate.id))
        ]


def _cutoff(max_age: int) -> int:
    if max_age < 0:
        raise ApiError("max_age must be 0 or a positive number of hours")
    # Never below 0 (the cutoff of "any age"): a huge max_age must not overflow SQLite.
    return 0 if max_age == 0 else max(0, int(time.time()) - max_age * 3600)


def _newest_vote(session: Session, *conditions: Any) -> CIVote | None:
    query = select(CIVote).where(*conditions)
    return session.scalars(
        query.order_by(CIVote.timestamp.desc(), CIVote.id.desc()).limit(1)
    ).first()


def get_vote(session: Session, p: Params) -> CIVote:
    """DLRN's getVote, with the fallback filters it meant to apply."""
    max_age = p.number("max_age")
    if max_age is None:
        raise ApiError(MISSING)
    success, job_id = p.flag("success"), p.text("job_id")
    component, sequential = p.text("component"), p.flag("sequential_mode")
    previous_job_id = p.text("previous_job_id")
    if sequential and previous_job_id is None:
        raise ApiError("Missing parameter previous_job_id")
    common: list[Any] = [CIVote.timestamp > _cutoff(max_age)]
    if success is not None:
        common.append(CIVote.ci_vote.is_(success))
    if component is not None:
        common.append(CIVote.component == component)
    real = CIVote.ci_name != CONSISTENT
    if sequential:
        vote = _newest_vote(session, *common, real, CIVote.ci_name == previous_job_id)
        if vote is None:
            raise ApiError("No vote found")
        return vote
    if job_id is not None:
        vote = _newest_vote(session, *common, real, CIVote.ci_name == job_id)
        if vote is not None:
            return vote
    vote = _newest_vote(session, *common, real) or _newest_vote(
        session, *common, CIVote.ci_name == CONSISTENT
    )
    if vote is None:
        raise ApiError("No vote found")
    return vote


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
    with ctx.db.reader() as session:
        vote = get_vote(session, p)
        commit = session.get(Commit, vote.commit_id)
        assert commit is not None  # a foreign key
        return _repo_dict(vote, commit)


@router.post("/last_tested_repo", status_code=201, **doc.LAST_TESTED_POST)
def last_tested_repo_post(request: Request, ctx: Ctx, user: Voter, p: Body) -> JSONResponse:
    reporting_job_id = p.text("reporting_job_id")
    if p.raw("max_age") is None or reporting_job_id is None:
        raise ApiError(MISSING)
    with ctx.db.transaction() as session:
        vote = get_vote(session, p)
        commit = session.get(Commit, vote.commit_id)
        assert commit is not None
        new = CIVote(
            commit_id=vote.commit_id,
            ci_name=reporting_job_id,
            ci_url="",
            ci_vote=False,
            ci_in_progress=True,
            timestamp=int(time.time()),
            notes="",
            user=user.username,
            component=vote.component,
        )
        session.add(new)
        result = _repo_dict(new, commit)
        audit(session, request, user, 201, {"commit_id": commit.id, "job_id": reporting_job_id})
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
    recorded = await ctx.votes.record(job)
    request.state.audited = True
    # After the response: a vote that completes the criteria promotes now, not at a poll.
    if evaluation_needed(ctx, job_id):
        background.add_task(promote_after_vote, ctx, user.username)
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


class _Move:
    """One label move of a promotion, with what it replaced (for a batch's rollback)."""

    def __init__(self, ctx: ApiContext, commit: Commit, name: str) -> None:
        self.ctx, self.commit, self.name = ctx, commit, name
        self.base = (
            component_base(commit.component) if ctx.config.use_components else PurePosixPath()
        )
        self.previous: str | None = None

    def apply(self) -> None:
        directory = self.ctx.store.path_of(self.base)
        directory.mkdir(parents=True, exist_ok=True)
        self.previous = self.ctx.store.label_target(self.name, self.base)
        self.ctx.store.move_label(self.name, commit_relpath(self.commit), self.base)

    def undo(self) -> None:
        link = self.ctx.store.path_of(self.base) / self.name
        if self.previous is None:
            link.unlink(missing_ok=True)
            return
        tmp = link.with_name(f".{self.name}.undo{os.getpid()}")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(self.previous)
        tmp.replace(link)


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
    # The publish lock is held until the rows are committed, as promote_label does: released
    # between the link move and the commit, a racing promotion of the same label could move
    # the link after this one yet commit its row first, leaving the link on a commit that is
    # not the label's newest row.
    try:
        with publish_lock(ctx.config):
            return _promote_locked(request, ctx, user, items, batch)
    except BuilderBusy as exc:
        raise ApiError(str(exc), 409) from None


def _promote_locked(
    request: Request, ctx: ApiContext, user: Identity, items: list[Params], batch: bool
) -> dict[str, Any]:
    with ctx.db.transaction() as session:
        checked = [_checked_commit(session, item, batch) for item in items]
        moves = [_Move(ctx, commit, name) for commit, name in checked]
        aggregates: dict[str, str | None] = {}
        try:
            with publish_lock(ctx.config):
                done: list[_Move] = []
                try:
                    for move in moves:
                        move.apply()
                        done.append(move)
                    if ctx.config.use_components:
                        for name in dict.fromkeys(m.name for m in moves):
                            aggregates[name] = aggregate_for_label(ctx.config, name)
                except (OSError, PublishError, InvalidName) as exc:
                    for move in reversed(done):
                        move.undo()
                    if isinstance(exc, PublishError):  # the tree holds something else there
                        raise ApiError(str(exc), 409) from None
                    raise ApiError(f"Symlink creation failed with error: {exc}", 500) from None
        except BuilderBusy as exc:
            raise ApiError(str(exc), 409) from None
        now = int(time.time())
        last: Promotion | None = None
        for move in moves:
            last = Promotion(
                commit_id=move.commit.id,
                promotion_name=move.name,
                timestamp=now,
                user=user.username,
                component=move.commit.component,
                aggregate_hash=aggregates.get(move.name),
            )
            session.add(last)
        assert last is not None
        commit = moves[-1].commit
        result = {
            "commit_hash": commit.commit_hash,
            "distro_hash": commit.distro_hash,
            "extended_hash": commit.extended_hash,
            "repo_hash": repo_hash(commit.commit_hash, commit.distro_hash),
            "repo_url": repo_url(ctx, commit),
            "promote_name": last.promotion_name,
            "component": commit.component,
            "timestamp": now,
            "user": user.username,
            "aggregate_hash": last.aggregate_hash,
        }
        details = {"promotions": [[m.commit.id, m.name, m.previous] for m in moves]}
        audit(session, request, user, 201, details)
    return result


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
