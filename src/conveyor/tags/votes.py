"""CI votes on a buildsys tag version's repository, as on trunk repositories: each job's
result (`tag_votes`) on one immutable version, so the GA workflow can ask whether a
`-testing` or `-release` version passed its jobs (`conveyor.domain.promotion.check_jobs`
judges the `Vote`s given here). A vote names a version, never a tag name alone: a tag moves,
what a job tested does not.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from conveyor.domain.promotion import Vote
from conveyor.store.models import TagVersion, TagVote
from conveyor.tags.state import version_of

__all__ = [
    "TagVoteError",
    "TagVoteRecord",
    "record_tag_vote",
    "resolve_version",
    "tag_vote_records",
    "tag_votes",
    "votes_json",
]


class TagVoteError(Exception):
    """The tag has no such version (or no version at all); the message says which. Nothing
    was recorded."""


@dataclass(frozen=True)
class TagVoteRecord:
    """One recorded vote; `id` orders votes of the same second (the later row wins)."""

    id: int
    tag: str
    version: int
    job_id: str
    success: bool
    url: str
    notes: str
    timestamp: int
    user: str

    @classmethod
    def of(cls, row: TagVote) -> TagVoteRecord:
        return cls(
            row.id,
            row.tag,
            row.version,
            row.job_id,
            row.success,
            row.url,
            row.notes,
            row.timestamp,
            row.user,
        )

    def vote(self) -> Vote:
        """The vote as the promotion rules read it (a tag vote is never in progress)."""
        return Vote(self.job_id, self.success, False, self.timestamp, self.id)

    def to_json(self) -> dict[str, object]:
        """DLRN's vote keys (repo_status), with the tag and version instead of the hashes."""
        return {
            "tag": self.tag,
            "version": self.version,
            "job_id": self.job_id,
            "success": self.success,
            "url": self.url,
            "notes": self.notes,
            "timestamp": self.timestamp,
            "user": self.user,
        }


def resolve_version(session: Session, tag: str, version: int | None = None) -> int:
    """`version` when `tag` has it, or the tag's newest version when `version` is None;
    TagVoteError saying what is missing otherwise."""
    if version is None:
        newest = session.scalar(select(func.max(TagVersion.version)).where(TagVersion.tag == tag))
        if newest is None:
            raise TagVoteError(f"{tag}: no such tag")
        return newest
    if version_of(session, tag, version) is None:
        raise TagVoteError(f"{tag}: no version {version}")
    return version


def record_tag_vote(
    session: Session,
    tag: str,
    version: int,
    job_id: str,
    success: bool,
    url: str,
    notes: str,
    timestamp: int,
    user: str,
) -> TagVoteRecord:
    """Adds the vote of `job_id` on `tag`'s `version`, in the caller's transaction;
    TagVoteError, and nothing added, when the tag has no such version."""
    resolve_version(session, tag, version)
    row = TagVote(
        tag=tag,
        version=version,
        job_id=job_id,
        success=success,
        url=url,
        notes=notes,
        timestamp=timestamp,
        user=user,
    )
    session.add(row)
    session.flush()
    return TagVoteRecord.of(row)


def tag_vote_records(session: Session, tag: str, version: int) -> list[TagVoteRecord]:
    """The votes on `tag`'s `version`, in the order they were recorded."""
    rows = session.scalars(
        select(TagVote).where(TagVote.tag == tag, TagVote.version == version).order_by(TagVote.id)
    )
    return [TagVoteRecord.of(row) for row in rows]


def tag_votes(session: Session, tag: str, version: int) -> list[Vote]:
    """The votes on `tag`'s `version`, for `check_jobs` and the other promotion rules."""
    return [record.vote() for record in tag_vote_records(session, tag, version)]


def votes_json(session: Session, tag: str, version: int) -> list[dict[str, object]]:
    """The votes on `tag`'s `version` as `GET /api/tags/{tag}/votes` lists them."""
    return [record.to_json() for record in tag_vote_records(session, tag, version)]
