"""What every request handler shares: one per process (one Database, one credential cache)."""

from __future__ import annotations

import json
import time
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


@dataclass
class ApiContext:
    config: Config
    db: Database
    auth: Authenticator
    store: RepoStore


def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


def remote_addr(request: Request) -> str | None:
    return request.client.host if request.client else None


def authenticate(request: Request, role: Role | None) -> Identity:
    """HTTP Basic against `users`; 401 without valid credentials, 403 without the role.
    An authenticated caller is kept on the request so that every outcome is audited."""
    credentials = parse_basic(request.headers.get("authorization"))
    if credentials is None:
        raise Unauthorized
    identity = context(request).auth.check(*credentials)
    if identity is None:
        raise Unauthorized
    request.state.identity = identity
    if role is not None and not identity.may(role):
        raise ApiError(f"User {identity.username} does not have the {role.value} role", 403)
    return identity


def audit_row(
    request: Request, identity: Identity | None, status: int, details: dict[str, Any]
) -> Audit:
    return Audit(
        timestamp=int(time.time()),
        user=identity.username if identity else None,
        action=request.url.path.removeprefix("/api/"),
        remote_addr=remote_addr(request),
        status=status,
        details=json.dumps(details, sort_keys=True, default=str)[:65536],
    )


def audit(
    session: Session,
    request: Request,
    identity: Identity,
    status: int,
    details: dict[str, Any],
) -> None:
    """Record a successful write, in the write's own transaction."""
    session.add(audit_row(request, identity, status, details))
    request.state.audited = True


def audit_failure(request: Request, status: int, message: str) -> None:
    """Record a refused write by an authenticated caller, in a transaction of its own."""
    identity: Identity | None = getattr(request.state, "identity", None)
    if identity is None or getattr(request.state, "audited", False):
        return
    with context(request).db.transaction() as session:
        session.add(audit_row(request, identity, status, {"error": message}))
