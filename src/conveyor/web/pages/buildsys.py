"""Buildsys tags: the applied tags (`/buildsys`), and per tag (`/buildsys/{tag}`) its content
(package -> NVR), its history (who, when, why, forced, what changed), the closure verdict of
the version shown (`dnf repoclosure` on its repository, as `GET /api/tags/{tag}/closure`),
the CI votes on that version and, for a -testing tag, the GA criteria they meet.

Reads only: a tag changes through `conveyor tags apply` (reviewed declarations, the closure
gate, an author and a reason).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from conveyor.api.context import app_context
from conveyor.closure import Unresolved
from conveyor.config import Config, TagBackend
from conveyor.domain.urls import is_http_url
from conveyor.metadata.buildsys import check_tag_name
from conveyor.promote.criteria import CriteriaError
from conveyor.promote.status import configured_criteria
from conveyor.reports.buildsys import applied_tags, tag_versions
from conveyor.reports.promotions import JobSplit, job_results, split_jobs
from conveyor.store.database import Database
from conveyor.tags.state import AppliedTag, version_of
from conveyor.tags.verdict import LookasideUnavailable, VersionUnreadable, cached_version_closure
from conveyor.tags.votes import TagVoteError, TagVoteRecord, resolve_version, tag_vote_records
from conveyor.web.render import not_found, page

router = APIRouter(include_in_schema=False)

MAX_VERSION = 2**31 - 1


@dataclass(frozen=True)
class ClosureView:
    closed: bool | None  # None: no verdict (`problem` says why)
    unresolved: list[Unresolved]
    problem: str | None = None


@dataclass(frozen=True)
class GaView:
    """The GA criteria (`release:` of the promotion criteria) against a -testing version."""

    split: JobSplit | None
    problem: str | None = None


def _closure(config: Config, tag: str, version: int) -> ClosureView:
    if config.tags.backend is TagBackend.KOJI:
        return ClosureView(None, [], "the tags live on Koji: `conveyor tags diff` asks its gate")
    try:
        unresolved = cached_version_closure(config, tag, version)
    except (VersionUnreadable, LookasideUnavailable) as exc:
        return ClosureView(None, [], str(exc))
    return ClosureView(not unresolved, unresolved)


def _ga(config: Config, tag: str, votes: list[TagVoteRecord]) -> GaView | None:
    if not tag.endswith("-testing"):
        return None
    try:
        criteria = configured_criteria(config)
    except CriteriaError as exc:
        return GaView(None, f"the promotion criteria cannot be used: {exc}")
    if criteria is None or criteria.release is None:
        return None
    release = criteria.release
    results = job_results([v.vote() for v in votes])
    alternatives = {job: tuple(alts) for job, alts in release.alternative_criteria.items()}
    return GaView(split_jobs(release.criteria, alternatives, results))


@router.get("/buildsys", response_class=HTMLResponse)
def buildsys_page(request: Request) -> HTMLResponse:
    ctx = app_context(request)
    return page(
        request,
        "buildsys.html",
        "buildsys",
        "Buildsys tags",
        tags=applied_tags(ctx.db),
        backend=ctx.config.tags.backend.value,
    )


def _version(request: Request) -> int | str | None:
    """The `version` asked for: None for the newest, or a message when it is not one."""
    raw = request.query_params.get("version")
    if raw is None or raw == "":
        return None
    if raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_VERSION:
        return int(raw)
    return "version must be a whole number from 1"


def _read(db: Database, tag: str, wanted: int | None) -> tuple[AppliedTag, list[TagVoteRecord]]:
    with db.reader() as session:
        number = resolve_version(session, tag, wanted)  # TagVoteError: no such tag or version
        applied = version_of(session, tag, number)
        if applied is None:
            raise TagVoteError(f"{tag}: no version {number}")
        return applied, tag_vote_records(session, tag, number)


@router.get("/buildsys/{tag}", response_class=HTMLResponse)
def tag_page(request: Request, tag: str) -> HTMLResponse:
    # A plain function: FastAPI runs it on a worker thread, and the closure check (libsolv,
    # a moment on a large tag the first time) does not hold the server's loop.
    ctx = app_context(request)
    try:
        check_tag_name(tag)
    except ValueError as exc:
        return _missing(request, str(exc))
    wanted = _version(request)
    if isinstance(wanted, str):
        return _missing(request, f"{tag}: {wanted}")
    try:
        applied, votes = _read(ctx.db, tag, wanted)
    except TagVoteError as exc:
        return _missing(request, f"{exc}.")
    versions = tag_versions(ctx.db, tag)
    closure = _closure(ctx.config, tag, applied.version)
    newest = versions[0].version if versions else applied.version
    values: dict[str, Any] = {
        "tag": tag,
        "applied": applied,
        "content": sorted(applied.content.items()),
        "newest": newest,
        "versions": versions,
        "closure": closure,
        "votes": votes,
        # A vote's URL is a link only when http(s): the API checks it, the page again.
        "linked": {v.url for v in votes if is_http_url(v.url)},
        "ga": _ga(ctx.config, tag, votes),
        "store": ctx.config.tags.backend is TagBackend.STORE,
    }
    title = f"{tag}" if applied.version == newest else f"{tag} version {applied.version}"
    return page(request, "buildsys_tag.html", "buildsys", title, **values)


def _missing(request: Request, message: str) -> HTMLResponse:
    return not_found(request, "buildsys", message, "/buildsys", "All buildsys tags")
