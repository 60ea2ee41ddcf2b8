"""How `conveyor serve` meets the network: the published tree under /repos/, the headers every
answer carries, the API's documentation pages without a CDN, and a deadline for request heads.
"""

from __future__ import annotations

import asyncio
import os
from importlib.resources import files
from pathlib import PurePath
from typing import Any

import h11
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

# What a trunk publishes as text (logs, commit.yaml, .repo files, versions.csv, .md5): shown
# by a browser instead of downloaded, and never sniffed into something else.
_PLAIN_TEXT = frozenset({".log", ".yaml", ".yml", ".repo", ".csv", ".md5", ".txt", ".spec"})
PLAIN_TEXT_TYPE = "text/plain; charset=utf-8"

DOCS_ASSETS_URL = "/static/docs"
# The documentation pages load nothing from elsewhere: ReDoc's bundle would fetch a logo from
# its CDN on every visit. Their own inline start-up script and styles are allowed.
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; frame-ancestors 'none'"
)
_DOCS_ASSETS = files("fastapi_offline") / "static"


class RepoFiles(StaticFiles):
    """The published tree. Links are followed only while they stay inside it: RPM links
    between hash directories and label links resolve within repos/, anything else (a link to
    /etc, to the database) answers 404."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        # follow_symlink=False is Starlette's check of the *resolved* path against the
        # resolved directory; True would only compare the path as written.
        super().__init__(directory=directory, html=True, follow_symlink=False)

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        if PurePath(full_path).suffix.lower() in _PLAIN_TEXT:
            response.headers["content-type"] = PLAIN_TEXT_TYPE
        return response


class SecurityHeaders:
    """Headers on every answer: no type sniffing (a log or a vote's notes are never run as a
    script) and no framing (the pages cannot be overlaid by another site)."""

    _HEADERS = (
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Content-Security-Policy", "frame-ancestors 'none'"),
    )

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self._HEADERS:
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, with_headers)


def _confined(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = DOCS_POLICY
    return page


def add_docs_pages(app: FastAPI) -> None:
    """/docs (Swagger UI) and /redoc, with their scripts served from the installed package:
    many trunks run where no CDN is reachable, and the pages were blank there."""
    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=str(_DOCS_ASSETS)), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return _confined(
            get_swagger_ui_html(
                openapi_url=openapi_url,
                title=f"{app.title} - API",
                swagger_js_url=f"{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
                swagger_css_url=f"{DOCS_ASSETS_URL}/swagger-ui.css",
                swagger_favicon_url=f"{DOCS_ASSETS_URL}/favicon.png",
            )
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return _confined(
            get_redoc_html(
                openapi_url=openapi_url,
                title=f"{app.title} - API",
                redoc_js_url=f"{DOCS_ASSETS_URL}/redoc.standalone.js",
                redoc_favicon_url=f"{DOCS_ASSETS_URL}/favicon.png",
                with_google_fonts=False,
            )
        )


class HeadDeadlineProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a deadline for each request's head.

    uvicorn times out idle keep-alive connections only, and any byte received resets that
    timer: a client that opens connections and sends its headers a byte at a time holds a
    connection forever, and a few hundred such clients exhaust the server. Here the request
    line and headers must be complete within `head_timeout` seconds of the connection (or of
    the previous response), or the connection is closed.
    """

    head_timeout = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline: asyncio.TimerHandle | None = None

    def _arm_head_deadline(self) -> None:
        self._cancel_head_deadline()
        self._head_deadline = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _cancel_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._cancel_head_deadline()  # the head is complete: the request is the app's

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_deadline()
        super().connection_lost(exc)


def head_deadline_protocol(seconds: float) -> type[HeadDeadlineProtocol]:
    """The protocol class for uvicorn's `http=`, with its deadline."""
    return type("HeadDeadline", (HeadDeadlineProtocol,), {"head_timeout": seconds})
