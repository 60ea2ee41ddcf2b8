"""After a build: record it, publish its hash directory, move `current` and `consistent`.

Runs one build at a time. The row is written in the same transaction that publishes the
directory, so the database and the tree agree whatever point a crash stops at: a directory
renamed into place before the commit is removed by the next run's recovery.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from sqlalchemy import inspect

from conveyor.config import Config
from conveyor.domain.paths import repo_relpath
from conveyor.domain.status import CommitStatus
from conveyor.publish import formats
from conveyor.publish.repostore import HashDirContent, LinkedBuild, RepoStore
from conveyor.store.database import Database
from conveyor.store.models import CIVote, Commit
from conveyor.store.queries import (
    newest_commits,
    newest_consistent,
    newest_successes,
    successes_with_hash,
)
from conveyor.trunk.buildjob import BuildResult
from conveyor.trunk.targets import BuildTarget

CONSISTENT = "consistent"
CURRENT = "current"


def commit_relpath(commit: Commit) -> PurePosixPath:
    return repo_relpath(
        commit.commit_hash, commit.distro_hash, commit.extended_hash, commit.component
    )


def _component_base(component: str | None) -> PurePosixPath:
    return PurePosixPath("component", component) if component else PurePosixPath()


def _columns(commit: Commit) -> dict[str, object]:
    return {attr.key: getattr(commit, attr.key) for attr in inspect(Commit).column_attrs}


@dataclass(frozen=True)
class Published:
    commit_id: int
    status: CommitStatus
    relpath: PurePosixPath
    consistent: bool


class Publisher:
    def __init__(self, config: Config, db: Database, targets: Sequence[BuildTarget]) -> None:
        self.config = config
        self.db = db
        self.store = RepoStore(
            config.repos_dir, config.datadir / "cache" / "repodata", config.include_srpm_in_repo
        )
        self.targets = {t.name: t for t in targets}

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
        peers: Sequence[BuildTarget], successes: Mapping[str, Commit], newest: Mapping[str, Commit]
    ) -> list[formats.VersionsRow]:
        rows = []
        for target in sorted(peers, key=lambda t: t.name):
            last = newest.get(target.name)
            shown = successes.get(target.name) or last
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
                    nvr=formats.nvr_from_artifacts(shown.artifact_list),
                )
            )
        return rows

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
            commit_branch=job.commit_branch,
            status=status,
            component=job.target.component,
            notes=result.outcome.notes,
            flags=0,
        )

    def publish(self, result: BuildResult) -> Published:
        target = result.job.target
        status = CommitStatus.SUCCESS if result.outcome.success else CommitStatus.FAILED
        consistent = False
        with self.db.transaction() as session:
            commit = self._new_row(result, status)
            session.add(commit)
            session.flush()  # assigns the id that commit.yaml records
            relpath = commit_relpath(commit)
            files: dict[str, str] = {}
            if status is CommitStatus.SUCCESS:
                commit.artifacts = ",".join(
                    f"repos/{relpath / rpm.name}" for rpm in result.outcome.rpms
                )
                session.flush()
                peers = self._peers(target)
                names = [t.name for t in peers]
                successes = newest_successes(session, names)
                newest = newest_commits(session, names)
                linked = [
                    LinkedBuild(
                        commit_relpath(c), tuple(PurePosixPath(a).name for a in c.artifact_list)
                    )
                    for name, c in successes.items()
                    if name != target.name
                ]
                failures = sum(
                    1
                    for t in peers
                    if t.name not in newest or newest[t.name].status != CommitStatus.SUCCESS
                )
                consistent = failures == 0 and not target.under_review
                url = f"{self.config.baseurl.rstrip('/')}/{relpath}"
                files[f"{self.config.reponame}.repo"] = formats.repo_file(
                    self.config.reponame, target.name, commit.commit_hash, url, commit.component
                )
                files["versions.csv"] = formats.versions_csv(
                    self._versions_rows(peers, successes, newest)
                )
                files["installed"] = formats.installed_marker(
                    target.name, commit.commit_hash, commit.distro_hash
                )
                files["commit.yaml"] = formats.commit_yaml(_columns(commit))
                self.store.publish_success(
                    relpath, result.outcome.rpms, linked, HashDirContent(files, result.log)
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
            else:
                files["notes.log"] = (result.outcome.notes or "") + "\n"
                files["commit.yaml"] = formats.commit_yaml(_columns(commit))
                self.store.publish_failure(relpath, HashDirContent(files, result.log))
        if status is CommitStatus.SUCCESS and not target.under_review:
            base = _component_base(commit.component)
            self.store.move_label(CURRENT, relpath, base)
            if consistent:
                self.store.move_label(CONSISTENT, relpath, base)
        return Published(commit.id, status, relpath, consistent)

    def recover(self) -> None:
        """Undo an interrupted publish and put labels back where the database says."""

        def published(relpath: PurePosixPath) -> bool:
            with self.db.reader() as session:
                rows = successes_with_hash(session, relpath.name.split("_", 1)[0])
                return any(commit_relpath(c) == relpath for c in rows)

        self.store.recover(published)
        components = {t.component for t in self.targets.values()}
        with self.db.reader() as session:
            newest = newest_successes(
                session, [t.name for t in self.targets.values() if not t.under_review]
            )
            for component in components:
                in_component = [c for c in newest.values() if c.component == component]
                base = _component_base(component)
                if in_component:
                    latest = max(in_component, key=lambda c: c.id)
                    self.store.move_label(CURRENT, commit_relpath(latest), base)
                last_consistent = newest_consistent(session, component)
                if last_consistent is not None:
                    self.store.move_label(CONSISTENT, commit_relpath(last_consistent), base)
