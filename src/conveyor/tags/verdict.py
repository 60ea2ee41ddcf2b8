"""A tag version's dependency closure: `dnf repoclosure` on the version's own repository, with
the configured lookaside repositories (BaseOS, AppStream...) counted as available. What
`GET /api/tags/{tag}/closure` answers and the dashboard's tag page shows.

A version's repository never changes, so its verdict changes only with the lookasides:
`cached_version_closure` keeps verdicts while the lookasides' metadata stays as it was.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from conveyor.closure import (
    ClosureError,
    LoadedRepo,
    Unresolved,
    check_closure,
    default_cache,
    load_repository,
    new_pool,
    prepare,
)
from conveyor.config import Config
from conveyor.tags.service import store_of

__all__ = [
    "LookasideUnavailable",
    "VersionUnreadable",
    "cached_version_closure",
    "version_closure",
]


class VersionUnreadable(Exception):
    """The version's repository cannot be read: the tag store is damaged (or holds no
    repositories: the Koji backend)."""


class LookasideUnavailable(Exception):
    """A lookaside repository cannot be read: the verdict would be wrong without it."""


def _lookaside(pool: object, config: Config) -> list[LoadedRepo]:
    """The lookaside repositories, from the libsolv cache (BaseOS and AppStream are large,
    and change rarely)."""
    try:
        return [load_repository(pool, path, default_cache()) for path in config.tags.lookaside]
    except ClosureError as exc:
        raise LookasideUnavailable(f"lookaside repository unavailable: {exc}") from None


def version_closure(config: Config, tag: str, version: int) -> list[Unresolved]:
    """The packages of `tag`'s `version` whose Requires neither the version itself nor the
    lookasides provide (none: the version is closed). The version's repository is read from
    its XML, not cached: it is small, and each version would leave a cache file behind."""
    pool = new_pool()
    try:
        checked = load_repository(pool, store_of(config).version_dir(tag, version), None, tag)
    except ClosureError as exc:  # recorded, yet not published: the store is damaged
        raise VersionUnreadable(f"{tag} version {version}: repository unreadable: {exc}") from None
    others = _lookaside(pool, config)
    prepare(pool)
    return check_closure(pool, [checked], others)


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        info = (path / "repodata" / "repomd.xml").stat()
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size)


_MAX_KEPT = 256
_kept: OrderedDict[tuple[object, ...], list[Unresolved]] = OrderedDict()
_kept_lock = threading.Lock()


def cached_version_closure(config: Config, tag: str, version: int) -> list[Unresolved]:
    """`version_closure`, kept per version while the lookasides' repomd.xml stay as they
    were (errors are not kept: the next call tries again)."""
    lookaside = tuple((str(p), _stamp(p)) for p in config.tags.lookaside)
    key = (str(config.tags_dir), tag, version, lookaside)
    with _kept_lock:
        known = _kept.get(key)
        if known is not None:
            _kept.move_to_end(key)
            return known
    verdict = version_closure(config, tag, version)
    with _kept_lock:
        _kept[key] = verdict
        while len(_kept) > _MAX_KEPT:
            _kept.popitem(last=False)
    return verdict
