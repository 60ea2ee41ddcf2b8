"""The dashboard's routes on `conveyor serve`'s application, and its bundled assets."""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.responses import Response

from conveyor.web.pages import (
    bisect,
    browse,
    buildsys,
    constraints,
    diff,
    ftbfs,
    promotions,
    releases,
    search,
    trunk,
)
from conveyor.web.render import STATIC_URL, not_found

__all__ = ["register"]

_PAGES = (trunk, ftbfs, promotions, buildsys, releases, constraints, diff, bisect, search, browse)
# What machines read: a miss there keeps its JSON (or plain) answer, as DLRN's clients expect.
_MACHINE_PATHS = ("/api/", "/repos/", "/tags/", "/metrics", "/static/", "/openapi.json", "/docs")


async def _page_not_found(request: Request, exc: Exception) -> Response:
    """A path no page has: the dashboard's 404 page, with its navigation."""
    assert isinstance(exc, HTTPException)
    if exc.status_code != 404 or request.url.path.startswith(_MACHINE_PATHS):
        return await http_exception_handler(request, exc)
    return not_found(request, "", f"No page at {request.url.path}.", "/", "The dashboard")


def register(app: FastAPI) -> None:
    """Adds every page's routes, the assets at /static/web/ and the 404 page."""
    for module in _PAGES:
        app.include_router(module.router)
    app.add_exception_handler(HTTPException, _page_not_found)
    app.mount(STATIC_URL, StaticFiles(directory=str(files("conveyor.web") / "static")), "web")
