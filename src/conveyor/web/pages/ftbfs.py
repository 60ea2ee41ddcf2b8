"""The FTBFS page (`/ftbfs`): the packages failing to build now; and its Atom feed
(`/ftbfs.atom`) of failures and fixes, newest first."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from urllib.parse import quote
from xml.etree import ElementTree

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from conveyor.api.context import app_context
from conveyor.config import Config
from conveyor.domain.forge import commit_url
from conveyor.reports.dashboard import PackageList, package_list
from conveyor.reports.ftbfs import FEED_EVENTS, Transition, failing_packages, feed_events
from conveyor.web.render import page

router = APIRouter(include_in_schema=False)

ATOM = "http://www.w3.org/2005/Atom"
ATOM_TYPE = "application/atom+xml"
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@router.get("/ftbfs", response_class=HTMLResponse)
def ftbfs_page(request: Request) -> HTMLResponse:
    ctx = app_context(request)
    packages = package_list(ctx.config)
    with ctx.db.engine.connect() as connection:
        failures = failing_packages(connection, ctx.config, packages, time.time())
    return page(
        request,
        "ftbfs.html",
        "ftbfs",
        "Failing to build from source",
        failures=failures,
        packages=packages,
    )


@router.get("/ftbfs.atom")
def ftbfs_feed(request: Request) -> Response:
    ctx = app_context(request)
    packages = package_list(ctx.config)
    with ctx.db.engine.connect() as connection:
        events = feed_events(connection, FEED_EVENTS)
    base = str(request.base_url).rstrip("/")
    body = atom_feed(ctx.config, packages, events, base, time.time())
    return Response(body, media_type=ATOM_TYPE)


def _rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _xml_text(text: str) -> str:
    """`text` without the characters XML 1.0 cannot hold (the serializer escapes the rest)."""
    return _NOT_XML.sub("\ufffd", text)


def _sub(parent: ElementTree.Element, tag: str, text: str | None = None, **attrs: str) -> None:
    element = ElementTree.SubElement(
        parent, f"{{{ATOM}}}{tag}", {k: _xml_text(v) for k, v in attrs.items()}
    )
    if text is not None:
        element.text = _xml_text(text)


def _entry(
    feed: ElementTree.Element,
    event: Transition,
    packages: PackageList,
    base: str,
    now: float,
) -> None:
    build = event.build
    package_href = f"{base}/package/{quote(build.project, safe='')}"
    entry = ElementTree.SubElement(feed, f"{{{ATOM}}}entry")
    what = "fixed" if event.fixed else "failed to build"
    _sub(entry, "id", f"{package_href}#build-{build.id}")
    _sub(entry, "title", f"{build.project} {what} ({build.commit_hash[:8]})")
    _sub(entry, "updated", _rfc3339(build.dt_build or now))
    _sub(entry, "link", rel="alternate", type="text/html", href=package_href)
    log = f"{base}/repos/{event.repo}/rpmbuild.log" if event.repo else None
    if log:
        _sub(entry, "link", rel="related", type="text/plain", href=log)
    url = commit_url(packages.upstream(build.project), build.commit_hash)
    lines = [
        f"{build.project}: {build.status}",
        f"commit {build.commit_hash}" + (f" ({url})" if url else ""),
    ]
    if event.previous is not None:
        lines.append(
            f"previous build: {event.previous.status}, commit {event.previous.commit_hash}"
        )
    else:
        lines.append("its first build")
    if log:
        lines.append(f"build log: {log}")
    maintainers = packages.maintainers(build.project)
    if maintainers:
        lines.append("maintainers: " + ", ".join(maintainers))
    _sub(entry, "content", "\n".join(lines), type="text")


def atom_feed(
    config: Config, packages: PackageList, events: list[Transition], base: str, now: float
) -> bytes:
    """An Atom document (RFC 4287) of `events`, newest first; every text is escaped by the
    XML serializer."""
    ElementTree.register_namespace("", ATOM)
    feed = ElementTree.Element(f"{{{ATOM}}}feed")
    _sub(feed, "id", f"{base}/ftbfs.atom")
    _sub(feed, "title", f"{config.project_name} {config.source_branch}: build failures and fixes")
    newest = max((e.build.dt_build or 0 for e in events), default=0)
    _sub(feed, "updated", _rfc3339(newest or now))
    _sub(feed, "link", rel="self", type=ATOM_TYPE, href=f"{base}/ftbfs.atom")
    _sub(feed, "link", rel="alternate", type="text/html", href=f"{base}/ftbfs")
    author = ElementTree.SubElement(feed, f"{{{ATOM}}}author")
    _sub(author, "name", "conveyor")
    _sub(feed, "generator", "conveyor")
    for event in events:
        _entry(feed, event, packages, base, now)
    document: bytes = ElementTree.tostring(feed, encoding="utf-8", xml_declaration=True)
    return document
