"""The build listener that fills the outbox: decides inside the build's transaction, so a
notification exists exactly when its build does; sending happens later (delivery.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from conveyor.config import NotificationsConfig
from conveyor.domain.forge import commit_url
from conveyor.domain.nvr import nvr_from_artifacts
from conveyor.domain.paths import repo_relpath
from conveyor.domain.status import CommitStatus
from conveyor.notify.channels import EMAIL, WEBHOOK
from conveyor.notify.events import EventKind, Payload, decide_event, nvr_from_log_header
from conveyor.notify.excerpt import read_excerpt, read_first_line
from conveyor.notify.mail import valid_recipient
from conveyor.store.models import Commit, Notification, PackageStatus, Project

if TYPE_CHECKING:
    from conveyor.config import Config

LOG_NAME = "rpmbuild.log"


class TargetInfo(Protocol):
    """What a message needs to know of a build target (trunk's BuildTarget has it)."""

    @property
    def name(self) -> str: ...
    @property
    def project(self) -> str: ...
    @property
    def upstream(self) -> str: ...
    @property
    def distgit(self) -> str: ...
    @property
    def source_branch(self) -> str: ...
    @property
    def maintainers(self) -> tuple[str, ...]: ...


def _streak_announced(session: Session, package: str, first_failure_id: int) -> bool:
    query = (
        select(Notification.id)
        .where(
            Notification.project_name == package,
            Notification.kind == EventKind.FTBFS.value,
            Notification.commit_id >= first_failure_id,
        )
        .limit(1)
    )
    return session.scalar(query) is not None


def _project(session: Session, package: str) -> Project | None:
    return session.scalar(select(Project).where(Project.project_name == package))


class NotificationListener:
    """A BuildListener (trunk/publishing.py) writing `notifications` rows for failures and
    fixes, and DLRN's `projects.last_email`."""

    def __init__(
        self,
        config: Config,
        settings: NotificationsConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings or config.notifications
        self.baseurl = config.baseurl.rstrip("/")
        self.repos_dir: Path = config.repos_dir
        self.clock = clock

    def _channels(self, target: TargetInfo) -> list[str]:
        channels = []
        if self.settings.email_enabled and any(valid_recipient(m) for m in target.maintainers):
            channels.append(EMAIL)
        if self.settings.webhook_enabled:
            channels.append(WEBHOOK)
        return channels

    def recorded(
        self,
        session: Session,
        commit: Commit,
        target: TargetInfo,
        before: PackageStatus | None,
    ) -> None:
        channels = self._channels(target)
        if not channels:
            return  # nobody to tell: leave last_email alone, as DLRN does without smtpserver
        now = int(self.clock())
        status = CommitStatus(commit.status)
        first_failure = before.first_failure_id if before is not None else None
        # Each query runs only when its answer can matter.
        project = _project(session, commit.project_name) if status is CommitStatus.FAILED else None
        announced = (
            status is CommitStatus.SUCCESS
            and first_failure is not None
            and _streak_announced(session, commit.project_name, first_failure)
        )
        kind = decide_event(
            status,
            was_failing=first_failure is not None,
            streak_announced=announced,
            last_email=project.last_email if project is not None else None,
            now=now,
            quiet_seconds=self.settings.quiet_seconds,
        )
        if kind is None:
            return
        payload = self._payload(session, kind, commit, target, first_failure)
        body = payload.model_dump_json()
        for channel in channels:
            session.add(
                Notification(
                    kind=kind.value,
                    channel=channel,
                    project_name=commit.project_name,
                    commit_id=commit.id,
                    payload=body,
                    created=now,
                    attempts=0,
                    next_attempt=now,
                    sent=None,
                    last_error=None,
                )
            )
        if kind is EventKind.FTBFS:
            if project is None:
                project = Project(project_name=commit.project_name)
                session.add(project)
            project.last_email = now

    def published(self, commit: Commit, target: TargetInfo) -> None:
        """Nothing: sending waits for the end of the cycle, so a slow mail server never
        holds up publishing."""

    def _payload(
        self,
        session: Session,
        kind: EventKind,
        commit: Commit,
        target: TargetInfo,
        first_failure: int | None,
    ) -> Payload:
        relpath = repo_relpath(
            commit.commit_hash, commit.distro_hash, commit.extended_hash, commit.component
        )
        log = self.repos_dir.joinpath(*relpath.parts, LOG_NAME)
        nvr = nvr_from_artifacts(commit.artifact_list) or nvr_from_log_header(read_first_line(log))
        since = session.get(Commit, first_failure) if first_failure is not None else None
        return Payload(
            event=kind,
            package=commit.project_name,
            project=target.project,
            component=commit.component,
            branch=commit.commit_branch or target.source_branch,
            status=commit.status,
            commit_hash=commit.commit_hash,
            distro_hash=commit.distro_hash,
            extended_hash=commit.extended_hash,
            upstream=target.upstream,
            commit_url=commit_url(target.upstream, commit.commit_hash),
            distgit=target.distgit,
            distro_commit_url=commit_url(target.distgit, commit.distro_hash)
            if commit.distro_hash
            else None,
            nvr=nvr,
            dt_build=commit.dt_build,
            notes=commit.notes,
            log_url=f"{self.baseurl}/{relpath}/{LOG_NAME}",
            repo_url=f"{self.baseurl}/{relpath}/" if kind is EventKind.FIXED else None,
            excerpt=read_excerpt(log) if kind is EventKind.FTBFS else "",
            failing_since=since.commit_hash if since is not None else None,
            maintainers=tuple(m for m in target.maintainers if valid_recipient(m)),
        )
