"""After a build: record it, publish its hash directory, move `current` and `consistent`.

Runs one build at a time. The row is written in the same transaction that publishes the
directory, so the database and the tree agree whatever point a crash stops at: a directory
renamed into place before the commit is removed by the next run's recovery. Everything this
step reads about the other packages comes from `package_status`, so its cost follows the
number of packages, never the length of the history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

from sqlalchemy import inspect
from sqlalchemy.orm import Session

from conveyor.config import Config
from conveyor.domain.builds import BuildResult, BuildTarget
from conveyor.domain.consistency import is_consistent
from conveyor.domain.failures import classify_failure, compile_patterns
from conveyor.domain.labels import CONSISTENT, CURRENT
from conveyor.domain.nvr import nvr_from_artifacts
from conveyor.domain.paths import commit_relpath, component_base
from conveyor.domain.status import CommitStatus
from conveyor.publish import formats
from conveyor.publish.locks import publish_lock
from conveyor.publish.logs import read_tail
from conveyor.publish.repostore import HashDirContent, LinkedBuild, RepoStore
from conveyor.store.database import Database
from conveyor.store.models import CIVote, Commit, PackageStatus
from conveyor.store.package_status import record_build
from conveyor.store.queries import (
    Standing,
    newest_consistent,
    retries_of,
    standing,
    successes_with_hash,
)

# A log is scanned for transient causes up to this size; past it, only its tail is read.
_LOG_SCAN_BYTES = 8 * 1024 * 1024


def _columns(commit: Commit) -> dict[str, object]:
    return {attr.key: getattr(commit, attr.key) for attr in inspect(Commit).column_attrs}


def _log_lines(log: Path) -> list[str]:
    """The log's last lines, whatever its size or encoding (a build may print anything)."""
    return read_tail(log, _LOG_SCAN_BYTES).decode("utf-8", errors="replace").splitlines()


class BuildListener(Protocol):
    """Told about every recorded build: notifications and reports hang off this."""

    def recorded(
        self, session: Session, commit: Commit, target: BuildTarget, before: PackageStatus | None
    ) -> None:
        """Inside the build's transaction: whatever is written here commits with it."""

    def published(self, commit: Commit, target: BuildTarget) -> None:
        """After the transaction committed and the labels moved."""


@dataclass(frozen=True)
class Published:
    commit_id: int
    status: CommitStatus
    relpath: PurePosixPath
    consistent: bool


class Publisher:
    def __init__(
        self,
        config: Config,
        db: Database,
        targets: Sequence[BuildTarget],
        listeners: Sequence[BuildListener] = (),
    ) -> None:
        self.config = config
        self.db = db
        self.store = RepoStore.of(config)
        self.targets = {t.name: t for t in targets}
        self.listeners = listeners
        self.transient = compile_patterns(config.retry_patterns)

    def _peers(self, target: BuildTarget) -> list[BuildTarget]:
        """The packages sharing a repository with `target`: same component when components
        are on; packages under review are built but never linked into anyone else's."""
        return [
            t
            for t in self.targets.values()
            if t.name == target.name or (not t.under_review and t.component == target.component)
        ]

    @staticmethod
    def _versions_rows(
        peers: Sequence[BuildTarget], standing: Standing
    ) -> list[formats.VersionsRow]:
        rows = []
        for target in sorted(peers, key=lambda t: t.name):
            last = standing.last_build(target.name)
            shown = standing.last_success(target.name) or last
            if shown is None or last is None:
                continue
            rows.append(
                formats.VersionsRow(
                    project=target.name,
                    source_repo=target.upstream,
                    source_sha=shown.commit_hash,
                    dist_repo=target.distgit,
                    dist_sha=shown.distro_hash,
                    status=last.status,
                    last_success=shown.dt_build,
                    component=shown.component,
                    extended_sha=shown.extended_hash,
                    nvr=nvr_from_artifacts(shown.artifact_list),
                )
            )
        return rows

    def _status_of(self, session: Session, result: BuildResult) -> CommitStatus:
        if result.final_status is not None:
            return result.final_status
        if result.outcome.success:
            return CommitStatus.SUCCESS
        job = result.job
        retries = retries_of(session, job.target.name, job.commit_hash, job.distro_hash)
        return classify_failure(
            _log_lines(result.log), self.transient, retries, self.config.maxretries
        )

    def _new_row(self, result: BuildResult, status: CommitStatus) -> Commit:
        job = result.job
        return Commit(
            type="rpm",
            dt_commit=job.dt_commit,
            dt_distro=job.dt_distro,
            dt_build=result.dt_build,
            project_name=job.target.name,
            repo_dir=str(job.mirrors.upstream),
            distgit_dir=str(job.mirrors.distgit),
            commit_hash=job.commit_hash,
            distro_hash=job.distro_hash,
            extended_hash=job.extended_hash,
            dt_extended=job.dt_extended,
            commit_branch=job.commit_branch,
            status=status,
            component=job.target.component,
            notes=result.outcome.notes,
            flags=0,
        )

    def _publish_success(
        self, session: Session, commit: Commit, result: BuildResult, relpath: PurePosixPath
    ) -> bool:
        """Writes the repository; returns whether it is consistent."""
        target = result.job.target
        commit.artifacts = ",".join(f"repos/{relpath / rpm.name}" for rpm in result.outcome.rpms)
        peers = self._peers(target)
        known = standing(session, [t.name for t in peers])
        linked = []
        for peer in peers:
            success = known.last_success(peer.name)
            if peer.name != target.name and success is not None:
                filenames = tuple(PurePosixPath(a).name for a in success.artifact_list)
                linked.append(LinkedBuild(commit_relpath(success), filenames))
        newest = {name: status.last_status for name, status in known.statuses.items()}
        consistent = is_consistent(target, peers, newest)
        url = self.config.url_of(relpath)
        files = {
            f"{self.config.reponame}.repo": formats.repo_file(
                self.config.reponame, target.name, commit.commit_hash, url, commit.component
            ),
            "versions.csv": formats.versions_csv(self._versions_rows(peers, known)),
            "installed": formats.installed_marker(
                target.name, commit.commit_hash, commit.distro_hash
            ),
            "commit.yaml": formats.commit_yaml(_columns(commit)),
        }
        self.store.publish_success(
            relpath,
            result.outcome.rpms,
            linked,
            HashDirContent(files, result.log, result.extra_logs),
        )
        if consistent:
            session.add(
                CIVote(
                    commit_id=commit.id,
                    ci_name=CONSISTENT,
                    ci_vote=True,
                    ci_in_progress=False,
                    timestamp=result.dt_build,
                    notes="",
                    component=commit.component,
                )
            )
        return consistent

    def publish(self, result: BuildResult) -> Published:
        with publish_lock(self.config):
            return self._publish(result)

    def _publish(self, result: BuildResult) -> Published:
        target = result.job.target
        consistent = False
        with self.db.transaction() as session:
            status = self._status_of(session, result)
            commit = self._new_row(result, status)
            session.add(commit)
            session.flush()  # assigns the id that commit.yaml records
            before = record_build(session, commit)
            session.flush()
            relpath = commit_relpath(commit)
            if status is CommitStatus.SUCCESS:
                consistent = self._publish_success(session, commit, result, relpath)
            else:
                files = {
                    "notes.log": (result.outcome.notes or "") + "\n",
                    "commit.yaml": formats.commit_yaml(_columns(commit)),
                }
                self.store.publish_failure(
                    relpath, HashDirContent(files, result.log, result.extra_logs)
                )
            for listener in self.listeners:
                listener.recorded(session, commit, target, before)
        if status is CommitStatus.SUCCESS and not target.under_review:
            base = component_base(commit.component)
            self.store.move_label(CURRENT, relpath, base)
            if consistent:
                self.store.move_label(CONSISTENT, relpath, base)
        for listener in self.listeners:
            listener.published(commit, target)
        return Published(commit.id, status, relpath, consistent)

    def recover(self) -> None:
        """Undo an interrupted publish and put labels back where the database says."""

        def published(relpath: PurePosixPath) -> bool:
            with self.db.reader() as session:
                rows = successes_with_hash(session, relpath.name.split("_", 1)[0])
                return any(commit_relpath(c) == relpath for c in rows)

        with publish_lock(self.config):
            self.store.recover(published)
        visible = [t.name for t in self.targets.values() if not t.under_review]
        with self.db.reader() as session:
            known = standing(session, visible)
            successes = [c for name in visible if (c := known.last_success(name))]
            for component in {t.component for t in self.targets.values()}:
                base = component_base(component)
                in_component = [c for c in successes if c.component == component]
                if in_component:
                    latest = max(in_component, key=lambda c: c.id)
                    self.store.move_label(CURRENT, commit_relpath(latest), base)
                last_consistent = newest_consistent(session, component)
                if last_consistent is not None:
                    self.store.move_label(CONSISTENT, commit_relpath(last_consistent), base)
