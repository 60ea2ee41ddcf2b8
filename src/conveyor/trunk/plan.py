"""`conveyor run --dry-run`: what the next cycle would build, and with which versions, without
building, recording or publishing anything.

The plan is the cycle's own detect step followed by the build's own version computation
(`trunk.versions.source_version`), so a planned version is the version the build gets; only
the date in Release is the planning time instead of the build's start.

Mirrors: when no other process runs the builder, the plan holds the builder lock and refreshes
the mirrors exactly as a cycle's detect step does (one `ls-remote` each, a fetch only when
something changed), so it answers for upstream as it is now. When a builder is running (a
`--loop` holds the lock for its lifetime), the plan fetches nothing and reads the mirrors as
that builder last fetched them, rather than racing its fetches. Either way no database row,
build folder or repository is written; with no database yet, an empty one is used in memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime

from conveyor.config import Config
from conveyor.domain.builds import BuildJob
from conveyor.metadata.targets import load_targets, select_targets
from conveyor.publish.locks import BuilderBusy, builder_lock
from conveyor.sources.git import GitError
from conveyor.store.database import Database, parse_url, sqlite_file
from conveyor.trunk.detect import Skipped, detect_changes
from conveyor.trunk.versions import source_version

log = logging.getLogger(__name__)

PLAN_KEYS = ("package", "commit_hash", "distro_hash", "version", "release", "upstream_version")


@dataclass(frozen=True)
class PlannedBuild:
    """One build the next cycle would make. `version`, `release` and `upstream_version` are
    None when the version cannot be computed (`problem` says why; the build would fail its
    preparation with the same message)."""

    package: str
    commit_hash: str
    distro_hash: str
    version: str | None
    release: str | None
    upstream_version: str | None
    problem: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {key: getattr(self, key) for key in PLAN_KEYS}


@dataclass
class DryRun:
    builds: list[PlannedBuild] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    refreshed: bool = True  # False: a running builder held the lock; mirrors read as they were


def _plan_job(job: BuildJob, config: Config, now: datetime) -> PlannedBuild:
    try:
        planned = source_version(job, config, now).version
    except (GitError, ValueError) as exc:
        return PlannedBuild(
            job.target.name, job.commit_hash, job.distro_hash, None, None, None, str(exc)
        )
    return PlannedBuild(
        job.target.name,
        job.commit_hash,
        job.distro_hash,
        planned.version,
        planned.release,
        planned.upstream_version,
    )


def _database(config: Config) -> Database:
    """The builder's database; an empty one in memory when it does not exist yet, so that a
    dry run on a new builder creates no file (every package is then a first build)."""
    path = sqlite_file(parse_url(config.database_url))
    if path is not None and not path.exists():
        return Database("sqlite://")
    return Database(config.database_url)


def dry_run(config: Config, only: Sequence[str] = (), head_only: bool = False) -> DryRun:
    """What the next cycle would build, per package oldest first (packages by name)."""
    targets = load_targets(config)
    selected = select_targets(targets, only)
    with ExitStack() as stack:
        try:
            stack.enter_context(builder_lock(config))
            refresh = True
        except BuilderBusy:
            refresh = False
            log.info("builder busy: planning from the mirrors as last fetched")
        db = _database(config)
        stack.callback(db.close)
        jobs, skipped = asyncio.run(detect_changes(config, db, selected, head_only, refresh))
        now = datetime.now(UTC).replace(microsecond=0)
        builds = [_plan_job(job, config, now) for job in jobs]
    return DryRun(builds, skipped, refresh)
