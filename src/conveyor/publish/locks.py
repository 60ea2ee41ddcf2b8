"""One cycle of a builder at a time: a second process says who holds the builder and exits.

On SQLite the builder is its data directory, and the locks are files in it. On PostgreSQL the
builder is its database, which schedulers on several machines may share without sharing a
data directory: there the locks are also the database's own (session advisory locks), held
on a connection of their own and dropped by the server when that connection goes."""

from __future__ import annotations

import fcntl
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, text

from conveyor.config import Config
from conveyor.store.database import is_postgresql, parse_url

LOCK_NAME = ".conveyor.lock"
PUBLISH_LOCK_NAME = ".publish.lock"


class BuilderBusy(Exception):
    pass


@contextmanager
def file_lock(path: Path, timeout: float = 0.0) -> Iterator[tuple[int, bool]]:
    """An exclusive lock on `path`, waiting up to `timeout` seconds for it; yields the open
    descriptor and whether the lock was had. The kernel drops the lock with the descriptor, so
    a killed process never leaves a stale lock behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                locked = True
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    locked = False
                    break
                time.sleep(0.05)
        yield fd, locked
    finally:
        os.close(fd)


# pg_advisory_lock's two-key form: conveyor's space (b"conv"), then which lock.
_LOCK_SPACE = 0x636F6E76
_BUILDER_KEY, _PUBLISH_KEY = 1, 2
_engines: dict[str, Engine] = {}
_engines_guard = threading.Lock()


def _lock_engine(url: str) -> Engine:
    """One small pool per database for the lock connections: a publish takes its lock in
    well under a millisecond instead of opening a connection each time."""
    with _engines_guard:
        engine = _engines.get(url)
        if engine is None:
            engine = create_engine(
                parse_url(url), pool_size=2, max_overflow=8, pool_pre_ping=True
            ).execution_options(isolation_level="AUTOCOMMIT")
            _engines[url] = engine
        return engine


def _holder(connection: Connection, key: int) -> str:
    found = connection.execute(
        text(
            "SELECT a.application_name, a.client_hostname, host(a.client_addr) "
            "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :space "
            "AND l.objid = :key AND l.database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())"
        ),
        {"space": _LOCK_SPACE, "key": key},
    ).first()
    if found is None:
        return "unknown"
    name, hostname, address = found
    return name or hostname or address or "unknown"


@contextmanager
def database_lock(url: str, key: int, timeout: float) -> Iterator[tuple[bool, str]]:
    """A PostgreSQL advisory lock of the database at `url`, waited for up to `timeout`
    seconds; yields whether it was had and, when not, who holds it."""
    engine = _lock_engine(url)
    with engine.connect() as connection:
        # The holder's name, for the message of whoever finds the lock taken.
        me = f"conveyor {socket.gethostname()} pid {os.getpid()}"[:63]
        connection.execute(text("SELECT set_config('application_name', :me, false)"), {"me": me})
        deadline = time.monotonic() + timeout
        args = {"space": _LOCK_SPACE, "key": key}
        while True:
            taken = connection.execute(
                text("SELECT pg_try_advisory_lock(:space, :key)"), args
            ).scalar()
            if taken or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        if not taken:
            yield False, _holder(connection, key)
            return
        try:
            yield True, ""
        finally:
            try:
                connection.execute(text("SELECT pg_advisory_unlock(:space, :key)"), args)
            except Exception:
                # The connection is gone, and the server dropped the lock with it.
                connection.invalidate()


_held = threading.local()  # publish locks this thread holds: nesting must not self-deadlock


@contextmanager
def publish_lock(config: Config, timeout: float = 600.0) -> Iterator[None]:
    """Serializes publishing across processes (DLRN's remote.lck): a remote import waits for
    the cycle's publish under way, and the other way round. Unlike the builder lock, a
    running `--loop` never holds it between publishes. Reentrant within a thread."""
    path = config.datadir / PUBLISH_LOCK_NAME
    held: set[Path] = getattr(_held, "paths", set())
    _held.paths = held
    if path in held:
        yield
        return
    with file_lock(path, timeout) as (_, locked):
        if not locked:
            raise BuilderBusy(f"publishing in {config.datadir} stayed busy for {timeout:.0f} s")
        held.add(path)
        try:
            if is_postgresql(config.database_url):
                with database_lock(config.database_url, _PUBLISH_KEY, timeout) as (had, who):
                    if not had:
                        raise BuilderBusy(
                            f"publishing of this builder's database stayed busy for "
                            f"{timeout:.0f} s (held by {who})"
                        )
                    yield
            else:
                yield
        finally:
            held.discard(path)


@contextmanager
def builder_lock(config: Config) -> Iterator[None]:
    """Held for a whole cycle (or a whole `--loop`)."""
    with file_lock(config.datadir / LOCK_NAME) as (fd, locked):
        if not locked:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise BuilderBusy(
                f"another conveyor process (pid {holder}) is running this builder "
                f"({config.datadir})"
            )
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        if not is_postgresql(config.database_url):
            yield
            return
        with database_lock(config.database_url, _BUILDER_KEY, 0.0) as (had, who):
            if not had:
                raise BuilderBusy(
                    f"another conveyor scheduler ({who}) is running this builder's database"
                )
            yield
