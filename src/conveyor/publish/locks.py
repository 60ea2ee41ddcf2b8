"""One cycle of a builder at a time: a second process says who holds the builder and exits."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from conveyor.config import Config

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
        yield
