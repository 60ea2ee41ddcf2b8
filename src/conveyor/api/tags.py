"""Buildsys tags over HTTP: the applied tags and their versions, the declared (rdoinfo)
state against the applied one, and a tag version's dependency closure. Changing a tag stays
with `conveyor tags apply`: it needs the closure gate, an author and a reason, and a review of
the rdoinfo change that declares it.

The one write here is a CI vote on a tag version's repository (`report_result`), recorded as
on trunk repositories (DLRN's `report_result`: the same credentials, body and errors), so the
GA workflow can ask whether a version passed its jobs. A vote changes no tag.

The tag store's repositories are served at /tags/ (`tag_files`) beside /repos/.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session
from starlette.types import ASGIApp

from conveyor.api import openapi as doc
from conveyor.api.context import Ctx, Voter, audit
from conveyor.api.dlrn import created
from conveyor.api.errors import MISSING, ApiError, Message
from conveyor.api.params import Body, Params
from conveyor.api.serving import RepoFiles
from conveyor.config import Config
from conveyor.metadata.buildsys import check_tag_name
from conveyor.tags.service import TagsError, declared_diff, load_desired
from conveyor.tags.state import AppliedTag, history, newest_versions, version_of
from conveyor.tags.verdict import LookasideUnavailable, VersionUnreadable, version_closure
from conveyor.tags.votes import TagVoteError, record_tag_vote, resolve_version, votes_json

__all__ = ["router", "tag_files"]

router = APIRouter(prefix="/api", tags=["tags"])

# Versions (and vote times) are SQL integers: a larger number could only overflow the
# query, never exist.
MAX_SQL_INT = 2**31 - 1
Version = Annotated[int | None, Query(ge=1, le=MAX_SQL_INT, description="a past version")]


def _errors(described: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """The error statuses of an operation, for the OpenAPI document."""
    return {status: {"model": Message, "description": d} for status, d in described.items()}


_NAME_ERRORS = {400: "Not a valid buildsys tag name", 404: "No such tag or version"}


def _checked(tag: str) -> str:
    """The tag name, or 400: a name the store could never hold is the caller's mistake,
    not a tag that happens to be missing."""
    try:
        return check_tag_name(tag)
    except ValueError as exc:
        raise ApiError(str(exc), 400) from None


def _found(session: Session, tag: str, version: int | None) -> AppliedTag:
    """The newest version of `tag`, or `version` of it; 404 saying which is missing."""
    if version is None:
        versions = history(session, tag)
        if not versions:
            raise ApiError(f"{tag}: no such tag", 404)
        return versions[-1]
    found = version_of(session, tag, version)
    if found is None:
        raise ApiError(f"{tag}: no version {version}", 404)
    return found


def _summary(applied: AppliedTag) -> dict[str, object]:
    """A version without its builds mapping (their count instead): lists stay small when a
    release tag holds a thousand builds."""
    return {**applied.to_json(), "builds": len(applied.content)}


@router.get("/tags")
def list_tags(ctx: Ctx) -> list[dict[str, object]]:
    """Every applied tag's newest version: its number, build count, when and by whom."""
    with ctx.db.reader() as session:
        applied = newest_versions(session)
    return [a.summary() for a in sorted(applied.values(), key=lambda a: a.tag)]


# Before /tags/{tag}: a path of its own, not a tag named "diff".
@router.get(
    "/tags/diff",
    responses=_errors(
        {
            400: "Not a valid buildsys tag name",
            404: "The tag is not declared",
            409: "The buildsys-tags files cannot be read",
        }
    ),
)
def tags_diff(
    ctx: Ctx, tag: Annotated[str | None, Query(max_length=200)] = None
) -> dict[str, list[dict[str, str]]]:
    """The actions (register, tag, untag, move) from the applied state to the one rdoinfo
    declares, without the closure gate: a read, the gate's verdict is `conveyor tags diff`'s.

    A buildsys-tags file that is missing or malformed answers 409, not 500: the server works,
    its rdoinfo checkout does not say anything usable, and fixing that (a commit to rdoinfo)
    resolves the conflict; nor is it 400, the request itself is fine."""
    only = None if tag is None else {_checked(tag)}
    try:
        desired = load_desired(ctx.config)
    except TagsError as exc:
        raise ApiError(f"declared tags unreadable: {exc}", 409) from None
    if tag is not None and tag not in desired.tags:
        raise ApiError(f"{tag}: no such tag declared", 404)
    with ctx.db.reader() as session:
        actions = declared_diff(desired, session, only)
    return {"actions": [a.to_json() for a in actions]}


@router.get("/tags/{tag}", responses=_errors(_NAME_ERRORS))
def show_tag(ctx: Ctx, tag: str, version: Version = None) -> dict[str, object]:
    """A tag's newest version (or `version`): its builds by package name, who made it, when,
    why, and the actions it applied."""
    _checked(tag)
    with ctx.db.reader() as session:
        return _found(session, tag, version).to_json()


@router.get("/tags/{tag}/history", responses=_errors(_NAME_ERRORS))
def tag_history(ctx: Ctx, tag: str) -> list[dict[str, object]]:
    """Every version of a tag, oldest first: who, when, why, forced or not, what changed."""
    _checked(tag)
    with ctx.db.reader() as session:
        versions = history(session, tag)
    if not versions:
        raise ApiError(f"{tag}: no such tag", 404)
    return [_summary(v) for v in versions]


@router.get(
    "/tags/{tag}/closure",
    responses=_errors(
        _NAME_ERRORS
        | {500: "The tag store is damaged", 503: "A lookaside repository cannot be read"}
    ),
)
def tag_closure(ctx: Ctx, tag: str, version: Version = None) -> dict[str, object]:
    """Whether every package of the tag's newest version (or `version`) has its Requires
    provided by the tag itself or the configured lookasides, as `dnf repoclosure` judges.
    Runs on a worker thread (a plain function): libsolv takes a moment on large tags."""
    _checked(tag)
    with ctx.db.reader() as session:
        number = _found(session, tag, version).version
    try:
        unresolved = version_closure(ctx.config, tag, number)
    except VersionUnreadable as exc:
        raise ApiError(str(exc), 500) from None
    except LookasideUnavailable as exc:
        raise ApiError(str(exc), 503) from None
    return {
        "tag": tag,
        "version": number,
        "closed": not unresolved,
        "unresolved": [u.as_json() for u in unresolved],
    }


# -- CI votes on a tag version ---------------------------------------------------------------


class TagVoteAnswer(BaseModel):
    """A CI vote on a tag version: DLRN's vote keys, the tag and version for the hashes."""

    model_config = ConfigDict(extra="forbid")
    tag: str
    version: int
    job_id: str
    success: bool
    url: str
    notes: str
    timestamp: int
    user: str


class TagVotesAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tag: str
    version: int
    votes: list[TagVoteAnswer]


_REPORT_PARAMS = (
    doc.Param("version", "integer", "The tag version voted on", required=True, minimum=1),
    doc.Param("job_id", "string", "The CI job voting (at most 255 characters)", required=True),
    doc.Param(
        "url",
        "string",
        "Where the CI job's results are: an http(s) URL, or empty (another scheme is 400)",
        required=True,
    ),
    doc.Param("timestamp", "integer", "When the job ran (epoch seconds)", required=True, minimum=0),
    doc.Param("success", "boolean", "The vote", required=True),
    doc.Param("notes", "string", "Free text"),
)
_REPORT_BODY = doc.json_object(_REPORT_PARAMS)
MAX_JOB_ID, MAX_URL = 255, 1024  # the tag_votes columns


def _integer(p: Params, name: str, low: int) -> int:
    """A required integer parameter between `low` and what the database holds."""
    number = p.number(name)
    if number is None:
        raise ApiError(MISSING)
    if not low <= number <= MAX_SQL_INT:
        raise ApiError(f"Integer value out of range for parameter {name}: {low} to {MAX_SQL_INT}")
    return number


def _at_most(name: str, text: str, limit: int) -> str:
    if len(text) > limit:
        raise ApiError(f"Invalid value for parameter {name}: at most {limit} characters")
    return text


@router.post(
    "/tags/{tag}/report_result",
    status_code=201,
    **doc.write(TagVoteAnswer, _REPORT_BODY, errors=[404]),
)
def report_tag_result(request: Request, ctx: Ctx, user: Voter, tag: str, p: Body) -> JSONResponse:
    """A CI job's vote on a tag version's repository, as `report_result` takes one on a
    trunk repository (a voter's credentials; `version` instead of the hashes). Recorded with
    its audit row in one transaction; 404 when the tag has no such version."""
    _checked(tag)
    for name in ("version", "timestamp", "job_id", "success", "url"):
        if name not in p.values:
            raise ApiError(MISSING)
    version, timestamp = _integer(p, "version", 1), _integer(p, "timestamp", 0)
    job_id, success = p.text("job_id"), p.flag("success")
    if job_id is None or success is None:
        raise ApiError(MISSING)
    # Only http(s), as report_result: the pages link to it.
    url = _at_most("url", p.http_url("url"), MAX_URL)
    job_id, notes = _at_most("job_id", job_id, MAX_JOB_ID), p.text("notes") or ""
    with ctx.db.transaction() as session:
        try:
            recorded = record_tag_vote(
                session, tag, version, job_id, success, url, notes, timestamp, user.username
            )
        except TagVoteError as exc:
            raise ApiError(str(exc), 404) from None
        answer = recorded.to_json()
        audit(session, request, user, 201, answer)
    return created(answer)


@router.get("/tags/{tag}/votes", response_model=TagVotesAnswer, responses=_errors(_NAME_ERRORS))
def tag_votes(ctx: Ctx, tag: str, version: Version = None) -> dict[str, object]:
    """The CI votes on a tag's newest version (or `version`), in the order they came."""
    _checked(tag)
    with ctx.db.reader() as session:
        try:
            number = resolve_version(session, tag, version)
        except TagVoteError as exc:
            raise ApiError(str(exc), 404) from None
        return {"tag": tag, "version": number, "votes": votes_json(session, tag, number)}


def tag_files(config: Config) -> ASGIApp:
    """The tag store's tree, served as /repos/ is (links resolving outside it answer 404).
    The folder must exist: StaticFiles refuses a missing one, at start and at each first
    request; the caller creates it, empty until `conveyor tags apply` fills it."""
    return RepoFiles(config.tags_dir)
