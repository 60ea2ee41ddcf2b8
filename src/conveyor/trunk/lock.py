"""One cycle of a builder at a time: a second process says who holds the builder and exits."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from conveyor.config import Config

LOCK_NAME = ".conveyor.lock"


class BuilderBusy(Exception):
    pass


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
