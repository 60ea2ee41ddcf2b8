"""What every request handler shares: one per process (one Database, one credential cache),
and the configuration, which `conveyor serve` follows as conveyor.toml changes."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from conveyor.api.auth import Authenticator, Identity, Role, parse_basic
from conveyor.api.errors import ApiError, Unauthorized
from conveyor.assembly.promotions import PromotionRequests
from conveyor.config import Config, ConfigError, load_config
from conveyor.publish.repostore import RepoStore
from conveyor.store.database import Database
from conveyor.store.models import Audit
from conveyor.store.statements import INSERT_AUDIT
from conveyor.votes.writer import VoteWriter

log = logging.getLogger(__name__)

RESTART_SETTINGS = ("datadir", "database", "api.read_auth", "api.repos_auth", "api.head_timeout")
"""The settings of conveyor.toml a running `conveyor serve` cannot change: the open database,
the served trees (/repos, /tags), the credential guard on reads and the OpenAPI document that
describes it, and the server's read deadline are set up at start. Every other setting counts
from the first request after the file changed; the listen address (--host, --port) is an
option of the command, not a setting of the file."""

RESTART_HEADER = "X-Conveyor-Restart-Needed"
"""On every response while conveyor.toml holds a change of `RESTART_SETTINGS`: their names."""

CHECK_SECONDS = 1.0
"""How often, at most, a request looks at conveyor.toml's stat (the file is read only when its
stat changed)."""

_FileKey = tuple[int, int, int] | None


def _file_key(path: Path) -> _FileKey:
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)


def _setting(config: Config, name: str) -> Any:
    value: Any = config
    for part in name.split("."):
        value = getattr(value, part)
    return value


def _with_settings(config: Config, source: Config, names: tuple[str, ...]) -> Config:
    """`config` with the settings `names` (`key` or `section.key`) taken from `source`."""
    top: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {}
    for name in names:
        section, _, key = name.rpartition(".")
        if section:
            sections.setdefault(section, {})[key] = _setting(source, name)
        else:
            top[name] = _setting(source, name)
    for section, values in sections.items():
        top[section] = getattr(config, section).model_copy(update=values)
    return config.model_copy(update=top)


def changed_settings(old: Config, new: Config) -> list[str]:
    """The top-level settings (a table counts as one: `notifications`) that differ."""
    return [name for name in type(old).model_fields if getattr(old, name) != getattr(new, name)]


class ConfigWatcher:
    """conveyor.toml as a running server follows it. `check()`, called before requests, reads
    the file again when its stat changed (at most every `interval` seconds): the settings that
    can change live take their new values; a change of `RESTART_SETTINGS` is logged as a
    warning, listed in `restart_needed` (and `RESTART_HEADER`), and those settings keep the
    values the server started with. A file that no longer loads is logged as an error and
    changes nothing. The promotion criteria file is followed by the promotion service itself
    (conveyor.promote.status.configured_criteria reads it again when it changes)."""

    def __init__(self, path: Path, config: Config, interval: float = CHECK_SECONDS) -> None:
        self.path = path
        self.started = config
        self.config = config
        self.interval = interval
        self.restart_needed: tuple[str, ...] = ()
        self._key = _file_key(path)
        self._checked = time.monotonic()

    def check(self) -> Config | None:
        """The configuration now in effect if the file changed into a loadable one; None when
        nothing changed."""
        now = time.monotonic()
        if now - self._checked < self.interval:
            return None
        self._checked = now
        key = _file_key(self.path)
        if key == self._key:
            return None
        self._key = key
        try:
            loaded = load_config(self.path)
        except ConfigError as exc:
            log.error("%s; serving with the configuration in effect until it is fixed", exc)
            return None
        needed = tuple(
            name
            for name in RESTART_SETTINGS
            if _setting(loaded, name) != _setting(self.started, name)
        )
        if needed and needed != self.restart_needed:
            log.warning(
                "%s changed %s: restart conveyor serve for %s to take effect; until then it "
                "serves with the values it started with",
                self.path,
                ", ".join(needed),
                "it" if len(needed) == 1 else "them",
            )
        elif self.restart_needed and not needed:
            log.warning("%s: no setting waits for a restart any more", self.path)
        self.restart_needed = needed
        effective = _with_settings(loaded, self.started, RESTART_SETTINGS)
        changed = changed_settings(self.config, effective)
        if changed:
            log.info("%s reloaded: %s now in effect", self.path, ", ".join(changed))
        self.config = effective
        return effective


@dataclass
class ApiContext:
    config: Config
    db: Database
    auth: Authenticator
    store: RepoStore
    votes: VoteWriter
    watcher: ConfigWatcher | None = None  # set by `conveyor serve`: conveyor.toml is followed
    # On PostgreSQL, while the server runs: evaluations after votes are jobs
    promotions: PromotionRequests | None = None

    def follow_config(self) -> tuple[str, ...]:
        """Take the configuration file's changes (see ConfigWatcher); the settings that wait
        for a restart."""
        if self.watcher is None:
            return ()
        changed = self.watcher.check()
        if changed is not None:
            self.config = changed
        return self.watcher.restart_needed


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


def _requires(role: Role | None) -> Any:
    """The dependency of an endpoint that needs credentials (and `role`, when given)."""

    async def dependency(request: Request) -> Identity:
        return await authenticate(request, role)

    return Depends(dependency)


# What endpoints declare: the request's context, and who may call them.
Ctx = Annotated[ApiContext, Depends(context)]
AnyUser = Annotated[Identity, _requires(None)]
Voter = Annotated[Identity, _requires(Role.VOTER)]
Promoter = Annotated[Identity, _requires(Role.PROMOTER)]
Admin = Annotated[Identity, _requires(Role.ADMIN)]


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
