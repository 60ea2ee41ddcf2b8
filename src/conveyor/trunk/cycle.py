"""One trunk cycle: detect → build (parallel) → publish (serialized) → report."""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from conveyor.build.driver import BuildDriver
from conveyor.build.rpmbuild import RpmbuildDriver
from conveyor.config import BuildDriverName, Config
from conveyor.domain.status import EXIT_FAILED, EXIT_OK, EXIT_RETRY, CommitStatus
from conveyor.store.database import Database
from conveyor.trunk.buildjob import BuildResult, execute_build
from conveyor.trunk.detect import BuildJob, Skipped, detect_changes
from conveyor.trunk.publishing import Published, Publisher
from conveyor.trunk.targets import BuildTarget, load_targets, select_targets

log = logging.getLogger(__name__)


class CycleObserver(Protocol):
    """What a terminal (or a log) is told while a cycle runs."""

    def detected(self, jobs: Sequence[BuildJob], skipped: Sequence[Skipped]) -> None: ...
    def build_started(self, job: BuildJob) -> None: ...
    def build_finished(self, result: BuildResult, published: Published) -> None: ...


class LoggingObserver:
    def detected(self, jobs: Sequence[BuildJob], skipped: Sequence[Skipped]) -> None:
        log.info("detected %d build(s), %d package(s) skipped", len(jobs), len(skipped))

    def build_started(self, job: BuildJob) -> None:
        log.info("building %s %s", job.target.name, job.commit_hash[:12])

    def build_finished(self, result: BuildResult, published: Published) -> None:
        log.info(
            "%s %s: %s (%s)",
            result.job.target.name,
            result.job.commit_hash[:12],
            published.status,
            published.relpath,
        )


@dataclass
class CycleReport:
    published: list[tuple[BuildResult, Published]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        # Unlike DLRN, a later retry never hides an earlier failure.
        statuses = {p.status for _, p in self.published}
        if CommitStatus.FAILED in statuses:
            return EXIT_FAILED
        if CommitStatus.RETRY in statuses:
            return EXIT_RETRY
        return EXIT_OK


def build_driver(config: Config) -> BuildDriver:
    match config.build_driver:
        case BuildDriverName.RPMBUILD:
            return RpmbuildDriver()


async def _run(
    config: Config,
    db: Database,
    all_targets: Sequence[BuildTarget],
    selected: Sequence[BuildTarget],
    head_only: bool,
    observer: CycleObserver,
) -> CycleReport:
    publisher = Publisher(config, db, all_targets)
    publisher.recover()
    # Work folders of builds a killed run left behind; nothing in them was published.
    shutil.rmtree(config.datadir / "builds", ignore_errors=True)
    jobs, skipped = await detect_changes(config, db, selected, head_only)
    observer.detected(jobs, skipped)
    report = CycleReport(skipped=skipped)
    driver = build_driver(config)
    workers = asyncio.Semaphore(config.workers)
    publishing = asyncio.Lock()
    per_package: dict[str, list[BuildJob]] = defaultdict(list)
    for job in jobs:
        per_package[job.target.name].append(job)

    async def package_chain(chain: list[BuildJob]) -> None:
        # A package's commits build in order; packages build side by side.
        for job in chain:
            async with workers:
                observer.build_started(job)
                result = await asyncio.to_thread(execute_build, job, config, driver)
            try:
                async with publishing:
                    published = await asyncio.to_thread(publisher.publish, result)
            finally:
                shutil.rmtree(result.workdir, ignore_errors=True)
            report.published.append((result, published))
            observer.build_finished(result, published)

    await asyncio.gather(*(package_chain(chain) for chain in per_package.values()))
    return report


def run_cycle(
    config: Config,
    only: Sequence[str] = (),
    head_only: bool = False,
    observer: CycleObserver | None = None,
) -> CycleReport:
    # Metadata first: bad metadata must be refused before anything is written.
    all_targets = load_targets(config)
    selected = select_targets(all_targets, only)
    db = Database(config.database_url)
    try:
        return asyncio.run(
            _run(config, db, all_targets, selected, head_only, observer or LoggingObserver())
        )
    finally:
        db.close()
