"""/diff?from=A&to=B: what changed from one repository to another (conveyor.reports.diff, the
service `conveyor diff` prints too). Without both, the form alone; a name that cannot be a
repository answers 400, one that names none 404, both with the form and the navigation."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from conveyor.api.context import app_context
from conveyor.domain.labels import CONSISTENT, CURRENT
from conveyor.domain.names import InvalidName, check_package_name
from conveyor.reports.diff import (
    SKIPPED,
    UNKNOWN,
    DiffError,
    RepoDiff,
    diff_repositories,
    label_suggestions,
)
from conveyor.web.render import page

router = APIRouter(include_in_schema=False)

# The page waits at most this long for `git log` of the changed packages; the CLI twice that.
PAGE_GIT_BUDGET = 1.0
_MAX_INPUT = 512


def _valid_names(names: Iterable[str]) -> frozenset[str]:
    """The package names a link may be built from (versions.csv is a file, not a rule)."""
    valid = set()
    for name in names:
        try:
            valid.add(check_package_name(name))
        except InvalidName:
            continue
    return frozenset(valid)


def _compute(request: Request, old: str, new: str) -> RepoDiff:
    config = app_context(request).config
    return diff_repositories(
        config.repos_dir, config.datadir, old, new, commits=True, budget=PAGE_GIT_BUDGET
    )


@router.get("/diff", response_class=HTMLResponse)
async def diff_page(request: Request) -> HTMLResponse:
    config = app_context(request).config
    old = request.query_params.get("from", "").strip()[:_MAX_INPUT]
    new = request.query_params.get("to", "").strip()[:_MAX_INPUT]
    suggestions = await run_in_threadpool(label_suggestions, config.repos_dir)
    values: dict[str, Any] = {
        "old": old,
        "new": new,
        "suggestions": suggestions,
        "default_old": CONSISTENT if CONSISTENT in suggestions else "",
        "default_new": CURRENT,
        "result": None,
        "error": None,
        "linkable": frozenset(),
    }
    if not old and not new:
        return page(request, "diff.html", "diff", "Diff of two repositories", **values)
    if not old or not new:
        missing = "from" if not old else "to"
        values["error"] = f"Give both repositories: `{missing}` is empty."
        return page(request, "diff.html", "diff", "Diff of two repositories", 400, **values)
    try:
        result = await run_in_threadpool(_compute, request, old, new)
    except DiffError as exc:
        values["error"] = str(exc)
        return page(request, "diff.html", "diff", "Diff of two repositories", exc.status, **values)
    key = (old, new, result.old.relpath, result.new.relpath, tuple(suggestions))
    final = all(c.commits_state not in (SKIPPED, UNKNOWN) for c in result.changed)
    if final and "q" not in request.query_params:
        kept = _PAGES.get(key)
        if kept is not None:
            return HTMLResponse(kept[0], headers={"Content-Security-Policy": kept[1]})
    values["result"] = result
    values["linkable"] = _valid_names(result.old.packages.keys() | result.new.packages.keys())
    title = f"Diff {old} → {new}"
    response = page(request, "diff.html", "diff", title, **values)
    if final and "q" not in request.query_params:
        _PAGES.put(key, (bytes(response.body), response.headers["Content-Security-Policy"]))
    return response


class _PageCache:
    """Rendered diffs of two repositories (by the names given and the folders they resolved
    to: a repository never changes), once every commit lookup has its final answer."""

    def __init__(self, size: int = 32) -> None:
        self._pages: OrderedDict[tuple[Any, ...], tuple[bytes, str]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> tuple[bytes, str] | None:
        with self._lock:
            found = self._pages.get(key)
            if found is not None:
                self._pages.move_to_end(key)
            return found

    def put(self, key: tuple[Any, ...], value: tuple[bytes, str]) -> None:
        with self._lock:
            self._pages[key] = value
            while len(self._pages) > self._size:
                self._pages.popitem(last=False)


_PAGES = _PageCache()
