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


_held = threading.local()  # publish locks this thread holds: nesting must not self-deadlock


@contextmanager
def publish_lock(config: Config, timeout: float = 600.0) -> Iterator[None]:
    """Serializes publishing across processes (DLRN's remote.lck): a remote import waits for
    the cycle's publish under way, and the other way round. Unlike the builder lock, a
    running `--loop` never holds it between publishes. Reentrant within a thread."""
    config.datadir.mkdir(parents=True, exist_ok=True)
    path = config.datadir / PUBLISH_LOCK_NAME
    held: set[Path] = getattr(_held, "paths", set())
    _held.paths = held
    if path in held:
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise BuilderBusy(
                        f"publishing in {config.datadir} stayed busy for {timeout:.0f} s"
                    ) from None
                time.sleep(0.05)
        held.add(path)
        try:
            yield
        finally:
            held.discard(path)
    finally:
        os.close(fd)


@contextmanager
def builder_lock(config: Config) -> Iterator[None]:
    """Held for a whole cycle (or a whole `--loop`); the kernel drops it if the process dies,
    so a killed run never leaves a stale lock behind."""
    config.datadir.mkdir(parents=True, exist_ok=True)
    path = config.datadir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise BuilderBusy(
                f"another conveyor process (pid {holder}) is running this builder "
                f"({config.datadir})"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
