"""The buildsys tags page's read side: the applied tags with their build counts, and a tag's
history, without reading every version's content.

A version's content (`tag_versions.content`, a JSON object of up to thousands of builds) is
what the tag service reads when it changes a tag (conveyor.tags.state). The pages list many
versions: they read the small columns, and a version's build count once (versions never
change, so the count is kept per database row).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import func, select

from conveyor.domain.tags import TagAction, stage_order
from conveyor.store.database import Database
from conveyor.store.models import TagVersion

__all__ = ["TagSummary", "VersionEntry", "applied_tags", "tag_versions"]

ACTIONS_SHOWN = 20  # of one version; the rest are counted


@dataclass(frozen=True, slots=True)
class TagSummary:
    """A tag's newest version, as the list of tags shows it."""

    tag: str
    version: int
    builds: int
    created: int
    author: str
    reason: str
    forced: bool


@dataclass(frozen=True, slots=True)
class VersionEntry:
    """One version of a tag's history: who made it, when, why, and what it changed."""

    version: int
    created: int
    author: str
    reason: str
    forced: bool
    actions: tuple[TagAction, ...]  # the first ACTIONS_SHOWN
    counts: dict[str, int]  # actions by kind, all of them

    @property
    def more(self) -> int:
        return sum(self.counts.values()) - len(self.actions)


_counts: dict[tuple[str, int, str, int], int] = {}
_counts_lock = threading.Lock()


def _build_counts(db: Database, rows: list[tuple[int, str, int]]) -> dict[int, int]:
    """The number of builds of each version row (id, tag, version), read once per row."""
    keys = {row_id: (db.url, row_id, tag, version) for row_id, tag, version in rows}
    with _counts_lock:
        known = {row_id: _counts[key] for row_id, key in keys.items() if key in _counts}
    missing = [row_id for row_id in keys if row_id not in known]
    if missing:
        with db.reader() as session:
            found = session.execute(
                select(TagVersion.id, TagVersion.content).where(TagVersion.id.in_(missing))
            ).all()
        read = {row_id: len(json.loads(content)) for row_id, content in found}
        with _counts_lock:
            for row_id, count in read.items():
                _counts[keys[row_id]] = count
        known |= read
    return known


def applied_tags(db: Database) -> list[TagSummary]:
    """Every applied tag's newest version: a family's tags in CBS's order."""
    newest = (
        select(TagVersion.tag, func.max(TagVersion.version).label("version"))
        .group_by(TagVersion.tag)
        .subquery()
    )
    query = (
        select(
            TagVersion.id,
            TagVersion.tag,
            TagVersion.version,
            TagVersion.created,
            TagVersion.author,
            TagVersion.reason,
            TagVersion.forced,
        )
        .join(newest, (TagVersion.tag == newest.c.tag) & (TagVersion.version == newest.c.version))
        .order_by(TagVersion.tag)
    )
    with db.reader() as session:
        rows = sorted(session.execute(query).all(), key=lambda r: stage_order(r.tag))
    counts = _build_counts(db, [(r.id, r.tag, r.version) for r in rows])
    return [
        TagSummary(r.tag, r.version, counts.get(r.id, 0), r.created, r.author, r.reason, r.forced)
        for r in rows
    ]


def tag_versions(db: Database, tag: str, limit: int = 100) -> list[VersionEntry]:
    """The newest `limit` versions of `tag`, newest first."""
    query = (
        select(
            TagVersion.version,
            TagVersion.created,
            TagVersion.author,
            TagVersion.reason,
            TagVersion.forced,
            TagVersion.actions,
        )
        .where(TagVersion.tag == tag)
        .order_by(TagVersion.version.desc())
        .limit(limit)
    )
    with db.reader() as session:
        rows = session.execute(query).all()
    entries = []
    for version, created, author, reason, forced, actions in rows:
        items = json.loads(actions)
        counts = Counter(str(item.get("action", "")) for item in items)
        shown = tuple(TagAction.from_json(item) for item in items[:ACTIONS_SHOWN])
        entries.append(
            VersionEntry(version, created, author, reason, bool(forced), shown, dict(counts))
        )
    return entries
