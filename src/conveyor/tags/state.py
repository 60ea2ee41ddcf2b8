"""The applied state of every tag, as versions in the database (`tag_versions`): each change
is a new immutable version (who, when, why, the actions), the newest is the tag's content."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from conveyor.domain.tags import TagAction
from conveyor.store.models import TagVersion

__all__ = ["AppliedTag", "history", "newest_versions", "record_version", "version_of"]


@dataclass(frozen=True)
class AppliedTag:
    tag: str
    version: int
    content: Mapping[str, str]  # package name -> NVR
    registered: frozenset[str]
    created: int
    author: str
    reason: str
    forced: bool
    actions: tuple[TagAction, ...]

    @classmethod
    def of(cls, row: TagVersion) -> AppliedTag:
        return cls(
            row.tag,
            row.version,
            json.loads(row.content),
            frozenset(json.loads(row.registered)),
            row.created,
            row.author,
            row.reason,
            row.forced,
            tuple(TagAction.from_json(a) for a in json.loads(row.actions)),
        )

    def summary(self) -> dict[str, object]:
        """The line of `tags list` and `GET /api/tags`."""
        return {
            "tag": self.tag,
            "version": self.version,
            "builds": len(self.content),
            "created": self.created,
            "author": self.author,
        }

    def to_json(self) -> dict[str, object]:
        return {
            "tag": self.tag,
            "version": self.version,
            "created": self.created,
            "author": self.author,
            "reason": self.reason,
            "forced": self.forced,
            "builds": dict(sorted(self.content.items())),
            "actions": [a.to_json() for a in self.actions],
        }


def newest_versions(session: Session) -> dict[str, AppliedTag]:
    """Every tag's newest version."""
    newest = (
        select(TagVersion.tag, func.max(TagVersion.version).label("version"))
        .group_by(TagVersion.tag)
        .subquery()
    )
    rows = session.scalars(
        select(TagVersion).join(
            newest, (TagVersion.tag == newest.c.tag) & (TagVersion.version == newest.c.version)
        )
    )
    return {row.tag: AppliedTag.of(row) for row in rows}


def history(session: Session, tag: str) -> list[AppliedTag]:
    rows = session.scalars(
        select(TagVersion).where(TagVersion.tag == tag).order_by(TagVersion.version)
    )
    return [AppliedTag.of(row) for row in rows]


def version_of(session: Session, tag: str, version: int) -> AppliedTag | None:
    row = session.scalar(
        select(TagVersion).where(TagVersion.tag == tag, TagVersion.version == version)
    )
    return AppliedTag.of(row) if row is not None else None


def record_version(
    session: Session,
    tag: str,
    content: Mapping[str, str],
    registered: Iterable[str],
    actions: Iterable[TagAction],
    author: str,
    reason: str,
    forced: bool = False,
) -> AppliedTag:
    """Adds the tag's next version (in the caller's transaction: the unique (tag, version)
    index makes a concurrent writer fail instead of both taking one number)."""
    last = session.scalar(select(func.max(TagVersion.version)).where(TagVersion.tag == tag))
    row = TagVersion(
        tag=tag,
        version=(last or 0) + 1,
        created=int(time.time()),
        author=author,
        reason=reason,
        forced=forced,
        content=json.dumps(dict(sorted(content.items()))),
        registered=json.dumps(sorted(set(registered))),
        actions=json.dumps([a.to_json() for a in actions]),
    )
    session.add(row)
    session.flush()
    return AppliedTag.of(row)
