"""Results computed from files, kept while the files stay as they were.

The dashboard's release and upper-constraints pages read inputs that are slow to load (an
rdoinfo database, a series' deliverables, repository metadata) and rarely change. A
`StampedCache` keeps a result with the stamps (modification time, size, inode) of the files
it came from: a request stats them (a millisecond for a few hundred files) and computes
again only when one changed. What is not a file (a URL) is kept for a time-to-live instead.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

__all__ = ["StampedCache", "Stamps", "stamps_of", "tree_stamps"]

T = TypeVar("T")

# One file's stamp: None when it is missing (appearing later is a change too).
Stamp = tuple[int, int, int] | None
Stamps = tuple[tuple[str, Stamp], ...]


def _stamp(path: Path) -> Stamp:
    try:
        info = path.stat()  # follows links: a label moved to another repository is a change
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)


def stamps_of(paths: Iterable[Path]) -> Stamps:
    """The stamps of `paths`, in their order."""
    return tuple((str(path), _stamp(path)) for path in paths)


def tree_stamps(root: Path, suffixes: tuple[str, ...] = (".yml", ".yaml")) -> Stamps:
    """The stamps of every file under `root` ending with one of `suffixes` (dot folders such
    as .git skipped), and of each folder: a file added or removed changes its folder."""
    found: list[tuple[str, Stamp]] = []
    pending = [str(root)]
    while pending:
        folder = pending.pop()
        try:
            entries = list(os.scandir(folder))
            info = Path(folder).stat()
        except OSError:
            found.append((folder, None))
            continue
        found.append((folder, (info.st_mtime_ns, info.st_size, info.st_ino)))
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                pending.append(entry.path)
            elif entry.name.endswith(suffixes):
                try:
                    item = entry.stat()
                except OSError:
                    continue
                found.append((entry.path, (item.st_mtime_ns, item.st_size, item.st_ino)))
    return tuple(sorted(found))


@dataclass
class _Entry(Generic[T]):
    key: Hashable  # the inputs' stamps (and anything else the result depends on)
    made: float  # monotonic time it was computed
    checked: float  # monotonic time its key was last found unchanged
    value: T


class StampedCache(Generic[T]):
    """At most `size` results, by name. A result is computed again when the key of its
    inputs (`key()`, their stamps) differs from the one it was computed with, or after `ttl`
    seconds when `ttl` is given; the key is asked at most every `recheck` seconds. One
    computation at a time per name."""

    def __init__(self, size: int = 16, ttl: float | None = None, recheck: float = 0.0) -> None:
        self.size, self.ttl, self.recheck = size, ttl, recheck
        self._entries: OrderedDict[Hashable, _Entry[T]] = OrderedDict()
        self._locks: dict[Hashable, threading.Lock] = {}
        self._guard = threading.Lock()

    def _known(
        self, name: Hashable, key: Callable[[], Hashable]
    ) -> tuple[bool, T | None, Hashable]:
        """(fresh, value, key): the key is None when it was not asked (checked recently)."""
        now = time.monotonic()
        with self._guard:
            entry = self._entries.get(name)
        if entry is None or (self.ttl is not None and now - entry.made > self.ttl):
            return False, None, None
        if now - entry.checked < self.recheck:
            return True, entry.value, None
        current = key()
        if current != entry.key:
            return False, None, current
        entry.checked = now
        return True, entry.value, current

    def get(self, name: Hashable, key: Callable[[], Hashable], compute: Callable[[], T]) -> T:
        """The result for `name`, computed by `compute` unless known for the inputs' `key`.
        While one caller computes a new result, the others get the previous one (when there
        is one) instead of waiting."""
        fresh, value, _ = self._known(name, key)
        if fresh:
            with self._guard:
                if name in self._entries:
                    self._entries.move_to_end(name)
            return value  # type: ignore[return-value]
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
            stale = self._entries.get(name)
        if stale is None:
            lock.acquire()
        elif not lock.acquire(blocking=False):
            return stale.value  # another caller is computing the new one
        try:
            fresh, value, current = self._known(name, key)
            if fresh:
                return value  # type: ignore[return-value]
            current = key() if current is None else current
            value = compute()
            now = time.monotonic()
            with self._guard:
                self._entries[name] = _Entry(current, now, now, value)
                self._entries.move_to_end(name)
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
            return value
        finally:
            lock.release()

    def clear(self) -> None:
        with self._guard:
            self._entries.clear()
