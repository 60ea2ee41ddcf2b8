"""What every request handler shares: one per process (one Database, one credential cache)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from sqlalchemy.orm import Session

from conveyor.api.auth import Authenticator, Identity, Role, parse_basic
from conveyor.api.errors import ApiError, Unauthorized
from conveyor.config import Config
from conveyor.publish.repostore import RepoStore
from conveyor.store.database import Database
from conveyor.store.models import Audit
from conveyor.store.statements import INSERT_AUDIT
from conveyor.votes.writer import VoteWriter


@dataclass
class ApiContext:
    config: Config
    db: Database
    auth: Authenticator
    store: RepoStore
    votes: VoteWriter


def app_context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


async def context(request: Request) -> ApiContext:
    """The dependency (async: FastAPI runs a plain function's dependency on a thread)."""
    return app_context(request)


def remote_addr(request: Request) -> str | None:
    return request.client.host if request.client else None


# Password checks run on threads of their own, never on the server's pool: a burst of wrong
# passwords (argon2, a tenth of a second each, a few at a time) once held all 40 pool threads
# waiting, and every other request, downloads from /repos/ included, waited behind them.
_VERIFIERS = ThreadPoolExecutor(max_workers=max(2, min(4, os.cpu_count() or 2)))
# Checks waiting beyond this are refused at once (503): the queue is never longer than a few
# seconds of work, so a flood costs the flooder, not the other callers.
MAX_WAITING_CHECKS = 64
_waiting = 0


async def _verified(auth: Authenticator, username: str, password: str) -> Identity | None:
    global _waiting
    if _waiting >= MAX_WAITING_CHECKS:
        raise ApiError("Too many password checks under way; try again in a few seconds", 503)
    _waiting += 1  # only the event loop's thread changes it
    try:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_VERIFIERS, auth.check, username, password)
    finally:
        _waiting -= 1


async def authenticate(request: Request, role: Role | None) -> Identity:
    """HTTP Basic against `users`; 401 without valid credentials, 403 without the role.
    An authenticated caller is kept on the request so that every outcome is audited.
    Credentials checked recently are answered from the cache without leaving the event loop;
    only a real password verification (argon2, a tenth of a second) goes to a thread."""
    credentials = parse_basic(request.headers.get("authorization"))
    if credentials is None:
        raise Unauthorized
    auth = app_context(request).auth
    identity = auth.remembered(*credentials)
    if identity is None:
        identity = await _verified(auth, *credentials)
    if identity is None:
        raise Unauthorized
    request.state.identity = identity
    if role is not None and not identity.may(role):
        raise ApiError(f"User {identity.username} does not have the {role.value} role", 403)
    return identity


def audit_action(request: Request) -> str:
    """The endpoint as its route names it (`tags/{tag}/report_result`): a path holding a
    200-character tag name would not fit the column, and the values are in the details."""
    route = request.scope.get("route")
    path = getattr(route, "path", None) or request.url.path
    return str(path).removeprefix("/api/")[:64]


def audit_values(
    request: Request, identity: Identity | None, status: int, details: dict[str, Any]
) -> dict[str, Any]:
    return {
        "timestamp": int(time.time()),
        "user": identity.username if identity else None,
        "action": audit_action(request),
        "remote_addr": remote_addr(request),
        "status": status,
        "details": json.dumps(details, sort_keys=True, default=str)[:65536],
    }


def audit(
    session: Session,
    request: Request,
    identity: Identity,
    status: int,
    details: dict[str, Any],
) -> None:
    """Record a successful write, in the write's own transaction."""
    session.connection().execute(INSERT_AUDIT, [audit_values(request, identity, status, details)])
    request.state.audited = True


def audit_failure(request: Request, status: int, message: str) -> None:
    """Record a refused write by an authenticated caller, in a transaction of its own."""
    identity: Identity | None = getattr(request.state, "identity", None)
    if identity is None or getattr(request.state, "audited", False):
        return
    with app_context(request).db.transaction() as session:
        session.add(Audit(**audit_values(request, identity, status, {"error": message})))
