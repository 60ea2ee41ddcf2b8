"""The value types every service that makes, imports or shows builds shares: what is built
(`BuildTarget`), one build to make (`BuildJob`), what a build driver answers (`BuildOutcome`)
and what a finished build carries to publishing (`BuildResult`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from conveyor.domain.status import CommitStatus
from conveyor.domain.version import BuildVersion


@dataclass(frozen=True)
class BuildTarget:
    """A package of the metadata as a builder builds it: branches resolved, component set."""

    name: str
    project: str
    upstream: str
    distgit: str
    source_branch: str
    distro_branch: str
    distgit_path: str | None
    component: str | None
    maintainers: tuple[str, ...]
    under_review: bool

    @property
    def tarball_base(self) -> str:
        """The tarball's name stem: the upstream repository's name, as an sdist is named."""
        return self.upstream.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")


@dataclass(frozen=True)
class Mirrors:
    """A package's bare git mirrors of its upstream and its distgit."""

    upstream: Path
    distgit: Path

    @classmethod
    def under(cls, datadir: Path, package: str) -> Mirrors:
        base = datadir / "sources" / package
        return cls(base / "upstream.git", base / "distgit.git")


@dataclass(frozen=True)
class BuildJob:
    target: BuildTarget
    mirrors: Mirrors
    commit_hash: str
    dt_commit: int
    commit_branch: str
    distro_hash: str
    dt_distro: int
    # Set for a rebuild against a new version of a dependency: its identity beside the hashes.
    extended_hash: str | None = None
    dt_extended: int | None = None
    # A release build's Release (`1`): the commit is a release tag and the version is its own,
    # not the trunk's `0.<date>.<hash>` (conveyor.assembly.releases).
    release: str | None = None


@dataclass(frozen=True)
class BuildOutcome:
    """A build driver's answer."""

    success: bool
    rpms: tuple[Path, ...]
    notes: str  # "OK", or why the build failed (commits.notes)
    logs: tuple[Path, ...] = ()  # the driver's own logs (mock's), published beside rpmbuild.log


@dataclass(frozen=True)
class BuildResult:
    job: BuildJob
    dt_build: int
    outcome: BuildOutcome
    version: BuildVersion | None
    workdir: Path  # removed by the caller once the result is published
    log: Path
    # An imported build keeps the status its builder gave it (no retry classification here).
    final_status: CommitStatus | None = None
    extra_logs: tuple[Path, ...] = ()  # other logs published beside rpmbuild.log
