"""Which builds are worth a message, and what the message says. Pure: no disk, no database.

The rules:
- **ftbfs**: a build FAILED and the package had no failure message in the last `quiet`
  seconds (`projects.last_email`, DLRN's column and DLRN's 24 h). The window is per package
  and spans failure streaks: a package that breaks, is fixed and breaks again within the
  window gets one failure message, as DLRN's maintainers are used to.
- **fixed**: a build SUCCEEDED, the package had failed since its previous success (RETRYs in
  between do not matter), and that failure streak was announced by an ftbfs message. A streak
  nobody was told about ends silently: "fixed" about an unannounced failure is noise.
- **RETRY** never notifies: the build will be tried again by itself.

Both channels (mail and webhook) receive the same events.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from conveyor.domain.status import CommitStatus

PAYLOAD_VERSION = 1


class EventKind(StrEnum):
    FTBFS = "ftbfs"
    FIXED = "fixed"


def decide_event(
    status: CommitStatus,
    *,
    was_failing: bool,
    streak_announced: bool,
    last_email: int | None,
    now: int,
    quiet_seconds: int,
) -> EventKind | None:
    """The event a just-recorded build raises, if any.

    was_failing: the package had a FAILED build since its last success (before this one).
    streak_announced: an ftbfs message was written for that failure streak.
    last_email: when the package's last ftbfs message was written (None: never).
    """
    if status is CommitStatus.FAILED:
        if last_email is None or now - last_email >= quiet_seconds or now < last_email:
            # (A last_email in the future means a clock that jumped back: don't stay silent.)
            return EventKind.FTBFS
        return None
    if status is CommitStatus.SUCCESS and was_failing and streak_announced:
        return EventKind.FIXED
    return None


class Payload(BaseModel):
    """What every channel is told; the webhook's JSON body is exactly this."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = PAYLOAD_VERSION
    event: EventKind
    package: str
    project: str
    component: str | None
    branch: str
    status: str
    commit_hash: str
    distro_hash: str | None
    extended_hash: str | None
    upstream: str
    commit_url: str | None  # None: the forge is unknown; show the hash
    distgit: str
    distro_commit_url: str | None
    nvr: str | None
    dt_build: int | None
    notes: str | None
    log_url: str
    repo_url: str | None  # the published repository, for a success
    excerpt: str  # the failing part of the log, for a failure
    failing_since: str | None  # commit hash of the streak's first failure, for "fixed"
    maintainers: tuple[str, ...]

    @property
    def commit_ref(self) -> str:
        return self.commit_url or self.commit_hash

    @property
    def subject(self) -> str:
        """In DLRN's words (`[dlrn] <project> master package build failed`)."""
        what = "failed" if self.event is EventKind.FTBFS else "fixed"
        return f"[conveyor] {self.package} {self.branch} package build {what}"

    def to_json(self) -> bytes:
        # Canonical bytes: the webhook signs exactly what it sends.
        return self.model_dump_json().encode("utf-8")

    @classmethod
    def from_json(cls, data: str | bytes) -> Payload:
        return cls.model_validate_json(data)


def nvr_from_log_header(first_line: str) -> str | None:
    """The NVR that conveyor's build step writes as the log's first line
    (`conveyor: building <nvr> from <hash>`), known even when no RPM was made."""
    prefix = "conveyor: building "
    if not first_line.startswith(prefix):
        return None
    nvr, sep, _ = first_line[len(prefix) :].partition(" from ")
    if not sep or not nvr.strip():
        return None
    return nvr.strip()
