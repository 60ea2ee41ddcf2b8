"""`create_app(config)`: the FastAPI application `conveyor serve` runs: the DLRN API, the
published repositories under /repos/, the buildsys tags (/api/tags, their repositories under
/tags/), the CI vote pages and Prometheus /metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conveyor.api import bisect, dlrn, openapi, ops, pages, promotion, tags
from conveyor.api.auth import Authenticator
from conveyor.api.context import RESTART_HEADER, ApiContext, ConfigWatcher, audit_failure
from conveyor.api.errors import ApiError, Unauthorized
from conveyor.api.metrics import Metrics
from conveyor.api.readauth import install_read_guard, unauthorized_response
from conveyor.api.serving import RepoFiles, SecurityHeaders, add_docs_pages
from conveyor.assembly.builder import Builder
from conveyor.assembly.promotions import promotion_jobs
from conveyor.config import Config
from conveyor.store.database import Database, is_postgresql
from conveyor.votes.writer import VoteWriter
from conveyor.web import app as web

log = logging.getLogger(__name__)


class RequestTiming:
    """Prometheus' request time, as a plain ASGI middleware: Starlette's `@app.middleware`
    wraps every response in a stream and a task, a third of a vote's cost."""

    def __init__(self, app: ASGIApp, observe: Callable[[float], None]) -> None:
        self.app, self.observe = app, observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.observe(time.perf_counter() - start)


class FollowConfig:
    """conveyor.toml followed between requests (ApiContext.follow_config), as a plain ASGI
    middleware: a response gets `RESTART_HEADER` while a setting changed in the file waits for
    a restart; otherwise the request passes through untouched."""

    def __init__(self, app: ASGIApp, ctx: ApiContext) -> None:
        self.app, self.ctx = app, ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        needed = self.ctx.follow_config()
        if not needed:
            await self.app(scope, receive, send)
            return
        header = (RESTART_HEADER.lower().encode(), ", ".join(needed).encode())

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        await self.app(scope, receive, send_with_header)


def create_app(
    config: Config, db: Database | None = None, *, config_file: Path | None = None
) -> FastAPI:
    """One application, one Database (engine and pool) for the whole process, from the
    builder the composition root assembles (a given `db` stays the caller's to close). With
    `config_file` (the file `config` was read from), changes to the file count without a
    restart, but for the settings that need one (conveyor.api.context.RESTART_SETTINGS)."""
    builder = Builder(config, db)
    database = builder.db

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        ctx: ApiContext = app.state.ctx
        async with AsyncExitStack() as stack:
            if is_postgresql(config.database_url):
                ctx.promotions = await stack.enter_async_context(
                    promotion_jobs(lambda: ctx.config, database)
                )
            yield
            ctx.promotions = None
        await run_in_threadpool(votes.close)  # the votes acknowledged are all committed
        builder.close()

    votes = VoteWriter(database)
    app = FastAPI(
        title="conveyor",
        summary="DLRN-compatible trunk API",
        lifespan=lifespan,
        docs_url=None,  # served by add_docs_pages, without a CDN
        redoc_url=None,
    )
    app.state.ctx = ApiContext(
        config=config,
        db=database,
        auth=Authenticator(database),
        store=builder.store,
        votes=votes,
        watcher=ConfigWatcher(config_file, config) if config_file is not None else None,
    )
    metrics = Metrics(config, database)
    app.state.metrics = metrics

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        await run_in_threadpool(audit_failure, request, exc.status, exc.message)
        return JSONResponse({"message": exc.message}, status_code=exc.status)

    @app.exception_handler(Unauthorized)
    async def unauthorized(_request: Request, _exc: Unauthorized) -> Response:
        return unauthorized_response()

    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeout)
    async def database_away(_request: Request, exc: Exception) -> Response:
        # The database restarting or unreachable: a JSON error the client may retry (nothing
        # was written), not a 500 with a traceback for every request meanwhile.
        log.warning("database unavailable: %s", str(exc).splitlines()[0] if str(exc) else exc)
        return JSONResponse(
            {"message": "The database is unavailable; try again in a few seconds"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> Response:
        return JSONResponse({"message": f"Invalid request: {exc.errors()}"}, status_code=400)

    app.add_middleware(RequestTiming, observe=metrics.request_seconds.observe)
    install_read_guard(app, config.api)
    app.add_middleware(SecurityHeaders)  # even a 401 of the guard has them
    if config_file is not None:
        app.add_middleware(FollowConfig, ctx=app.state.ctx)  # the outermost
    app.include_router(dlrn.router)
    app.include_router(ops.router)
    app.include_router(pages.router)
    app.include_router(promotion.router)
    app.include_router(tags.router)
    app.include_router(bisect.router)
    add_docs_pages(app)
    web.register(app)
    _describe(app, protected_reads=config.api.read_auth)

    @app.get("/metrics", include_in_schema=False)
    def prometheus() -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    config.repos_dir.mkdir(parents=True, exist_ok=True)
    app.mount("/repos", RepoFiles(config.repos_dir), name="repos")
    config.tags_dir.mkdir(parents=True, exist_ok=True)  # empty until a tag is applied
    app.mount("/tags", tags.tag_files(config), name="tags")
    return app


def _describe(app: FastAPI, protected_reads: bool) -> None:
    """/openapi.json as FastAPI writes it, finished by conveyor.api.openapi (once)."""
    generate = app.openapi

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = openapi.finish(generate(), protected_reads)
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]
