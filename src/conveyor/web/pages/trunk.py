"""The trunk page (`/`): the builder, its labels, what `consistent` waits for, what is building
and queued, builds per day and the package table; and a package's page (`/package/{name}`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from conveyor.api.context import app_context
from conveyor.domain.names import InvalidName, check_package_name
from conveyor.queue.jobs import queue_state
from conveyor.reports.dashboard import (
    PACKAGE_BUILDS,
    builder_view,
    building_now,
    builds_per_day,
    consistent_waits_for,
    labels,
    package_list,
    package_page,
    package_table,
    queue,
)
from conveyor.reports.views import PackageView
from conveyor.web.render import page

router = APIRouter(include_in_schema=False)

# The package table's rows, rendered once and kept while a package's line does not change:
# a thousand rows through the template took most of the page's time. Markup.format escapes
# every value; a row depends on nothing but its PackageView (no age, no clock).
_ROW = Markup(
    '<tr{row_class}><td><a href="/package/{name}">{name}</a></td><td>{status}</td>'
    '<td class="mono">{nvr}</td><td>{commit}</td><td class="nowrap">{built}</td>'
    "<td>{failing}</td><td>{log}</td></tr>"
)
_HASH_LINK = Markup('<a class="hash" href="{url}">{text}</a>')
_HASH = Markup('<span class="hash">{text}</span>')
# The viewer (failing lines marked) first, the raw file beside it.
_LOG_LINK = Markup('<a href="/view/{log}">log</a> <a class="muted" href="/repos/{log}">raw</a>')
_CLASS = Markup(' class="{}"')


def _package_row(p: PackageView) -> Markup:
    short = p.last.commit_hash[:12]
    failing = ""
    if p.failing:
        failing = "never succeeded" if p.never else "" if p.days is None else f"{p.days} d"
    return _ROW.format(
        row_class=_CLASS.format("retry" if p.last.status == "RETRY" else "failed")
        if p.failing
        else "",
        name=p.name,
        status=p.last.status,
        nvr=p.nvr or "",
        commit=_HASH_LINK.format(url=p.last.url, text=short)
        if p.last.url
        else _HASH.format(text=short),
        built=p.last.built,
        failing=failing,
        log=_LOG_LINK.format(log=p.last.log) if p.last.log else "",
    )


class _RowCache:
    """Rendered rows by the view they show; only the rows of the last page are kept."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[PackageView, Markup] = {}

    def rows(self, views: Iterable[PackageView]) -> Markup:
        with self._lock:
            old = self._rows
        rows = {view: old.get(view) or _package_row(view) for view in views}
        with self._lock:
            self._rows = rows
        # Each row is Markup already: joined as it is (Markup.join would escape() each).
        return Markup("\n".join(rows.values()))  # noqa: S704


_ROWS = _RowCache()


@router.get("/", response_class=HTMLResponse)
def trunk_page(request: Request) -> HTMLResponse:
    ctx = app_context(request)
    config = ctx.config
    now = time.time()
    packages = package_list(config)
    with ctx.db.engine.connect() as connection:
        table = package_table(connection, packages, now)
        found_labels = labels(config, connection)
        days = builds_per_day(connection, now)
        workers = queue_state(connection)
    queued = queue(config)
    running = building_now(config)
    waiting = consistent_waits_for(
        table,
        packages,
        queued=[b.package for b in queued.builds],
        running=[b.package for b in running],
    )
    return page(
        request,
        "trunk.html",
        "trunk",
        f"Trunk: {config.project_name} {config.source_branch}",
        builder=builder_view(config),
        packages=packages,
        labels=found_labels,
        waiting=waiting,
        running=running,
        queued=queued,
        days=days,
        workers=workers,
        stalled_after=config.queue.stalled_after,
        busiest=max([1, *(d.total for d in days)]),
        table=table,
        package_rows=_ROWS.rows(table.values()),
    )


@router.get("/package/{name}", response_class=HTMLResponse)
def package_detail(request: Request, name: str) -> HTMLResponse:
    ctx = app_context(request)
    config = ctx.config
    packages = package_list(config)
    try:
        check_package_name(name)
    except InvalidName:
        found = None
    else:
        with ctx.db.engine.connect() as connection:
            found = package_page(connection, name, packages, time.time())
    return page(
        request,
        "package.html",
        "trunk",
        f"Package {name}" if found else "Unknown package",
        status=200 if found else 404,
        name=name,
        pkg=found,
        limit=PACKAGE_BUILDS,
        metadata_error=packages.error,
    )
