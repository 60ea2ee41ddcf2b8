"""Credentials on reads, when `[api] read_auth` (and `repos_auth`) ask for them: a private
trunk answers nothing to anonymous callers. DLRN's API has no such switch (its clients'
`force_auth` only sends credentials anyway), so CI jobs that already send them keep working.

A middleware, not a route dependency, so that it also covers the mounted repositories, the
vote pages, /metrics and the OpenAPI document."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from conveyor.api.context import authenticate
from conveyor.api.errors import UNAUTHORIZED, ApiError, Unauthorized
from conveyor.config import ApiConfig

_READS = frozenset({"GET", "HEAD"})
# The served repository trees: the trunk's and the tag store's, both read by dnf clients.
_TREES = ("/repos", "/tags")
# Dashboard pages that show the trees' content (a log, a diff): private when either is.
_TREE_PAGES = ("/view", "/diff")


def unauthorized_response() -> Response:
    """DLRN's answer to missing or wrong credentials."""
    return PlainTextResponse(
        UNAUTHORIZED,
        status_code=401,
        headers={"WWW-Authenticate": 'Basic realm="Authentication Required"'},
    )


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in prefixes)


def _guarded(settings: ApiConfig, path: str) -> bool:
    if _under(path, _TREES):
        return settings.repos_auth
    if _under(path, _TREE_PAGES):
        return settings.repos_auth or settings.read_auth
    return settings.read_auth


def install_read_guard(app: FastAPI, settings: ApiConfig) -> None:
    """Ask for credentials on the reads `settings` protect; nothing is installed when none."""
    if not (settings.read_auth or settings.repos_auth):
        return

    @app.middleware("http")
    async def read_guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.method in _READS and _guarded(settings, request.url.path):
            try:
                await authenticate(request, None)
            except Unauthorized:
                return unauthorized_response()
            except ApiError as exc:  # too many checks under way (503)
                return JSONResponse({"message": exc.message}, status_code=exc.status)
        return await call_next(request)
