"""One trunk cycle: detect → build (parallel) → publish (serialized) → report."""

from __future__ import annotations

import asyncio
import ctypes
import json
import logging
import shutil
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

from conveyor.builders.driver import BuildDriver
from conveyor.config import Config, ConfigError
from conveyor.domain.builds import BuildJob, BuildResult, BuildTarget
from conveyor.domain.status import EXIT_FAILED, EXIT_OK, EXIT_RETRY, CommitStatus
from conveyor.metadata import MetadataError
from conveyor.metadata.targets import TargetError, load_targets, select_targets
from conveyor.notify.delivery import DeliveryReport
from conveyor.publish.files import write_atomic
from conveyor.publish.locks import builder_lock
from conveyor.publish.repostore import PublishError
from conveyor.store.database import Database, DatabaseError
from conveyor.trunk.buildjob import execute_build
from conveyor.trunk.components import ready_publisher
from conveyor.trunk.detect import Skipped, detect_changes
from conveyor.trunk.publishing import BuildListener, Published, Publisher
from conveyor.trunk.scheduling import plan_cycle, rebuild_jobs, success_versions

log = logging.getLogger(__name__)

# What an unattended loop reports and outlives: someone is editing the configuration or metadata.
LOOP_SURVIVABLE = (ConfigError, MetadataError, TargetError, DatabaseError)


class CycleObserver(Protocol):
    """What a terminal (or a log) is told while a cycle runs."""

    def detected(self, jobs: Sequence[BuildJob], skipped: Sequence[Skipped]) -> None: ...
    def build_started(self, job: BuildJob) -> None: ...
    def build_finished(self, result: BuildResult, published: Published) -> None: ...


class CycleListener(Protocol):
    """Told, once the jobs are known, what the cycle will build (the reports' queue.html)."""

    def cycle_started(self, targets: Sequence[BuildTarget], jobs: Sequence[BuildJob]) -> None:
        """`targets`: the whole package list, not only the selected packages."""


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


class BuildExecutor(Protocol):
    """Where a cycle's builds run: threads of this process, or workers on other machines."""

    async def build(self, job: BuildJob) -> BuildResult: ...


class _LocalExecutor:
    def __init__(self, config: Config, driver: BuildDriver) -> None:
        self.config = config
        self.driver = driver

    async def build(self, job: BuildJob) -> BuildResult:
        return await asyncio.to_thread(execute_build, job, self.config, self.driver)


@asynccontextmanager
async def _local(config: Config, driver: BuildDriver) -> AsyncIterator[BuildExecutor]:
    yield _LocalExecutor(config, driver)


@dataclass
class CycleReport:
    published: list[tuple[BuildResult, Published]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    # Builds the repository tree refused to take (e.g. a link where a shard folder belongs):
    # nothing of them was written; the other builds of the cycle went on.
    refused: list[tuple[BuildResult, str]] = field(default_factory=list)
    notifications: DeliveryReport = field(default_factory=DeliveryReport)

    @property
    def exit_code(self) -> int:
        # Unlike DLRN, a later retry never hides an earlier failure.
        statuses = {p.status for _, p in self.published}
        if CommitStatus.FAILED in statuses or self.refused:
            return EXIT_FAILED
        if CommitStatus.RETRY in statuses:
            return EXIT_RETRY
        return EXIT_OK


@dataclass(frozen=True)
class CycleParts:
    """A cycle's collaborators, assembled once from the configuration by the composition root
    (`conveyor.assembly.Builder`), so that a cycle, an import and the API's import publish
    with the same listeners."""

    driver: BuildDriver
    # Told about every build (notifications, reports, aggregates), for the package list given.
    listeners: Callable[[Sequence[BuildTarget]], Sequence[BuildListener]]
    cycle_listeners: Sequence[CycleListener] = ()
    # After every cycle: delivers this cycle's notifications and earlier undelivered ones.
    after_cycle: Callable[[Database], DeliveryReport] | None = None
    # Builds elsewhere (conveyor.assembly.workers); None: in this process, with `driver`.
    executor: Callable[[], AbstractAsyncContextManager[BuildExecutor]] | None = None


@dataclass(frozen=True)
class CycleOptions:
    only: Sequence[str] = ()
    head_only: bool = False
    # Set (by SIGTERM) to stop starting builds; the ones running finish and are published.
    stop: threading.Event = field(default_factory=threading.Event)
    listeners: Sequence[BuildListener] = ()  # besides the assembled ones (tests, tools)


async def _run(
    config: Config,
    db: Database,
    all_targets: Sequence[BuildTarget],
    selected: Sequence[BuildTarget],
    options: CycleOptions,
    observer: CycleObserver,
    parts: CycleParts,
) -> CycleReport:
    listeners = [*parts.listeners(all_targets), *options.listeners]
    publisher = ready_publisher(config, db, all_targets, listeners)
    # Work folders of builds a killed run left behind; nothing in them was published.
    shutil.rmtree(config.datadir / "builds", ignore_errors=True)
    jobs, skipped = await detect_changes(config, db, selected, options.head_only)
    observer.detected(jobs, skipped)
    for listener in parts.cycle_listeners:
        listener.cycle_started(all_targets, jobs)
    report = CycleReport(skipped=skipped)
    executing = parts.executor() if parts.executor else _local(config, parts.driver)
    async with executing as executor:
        await _build_all(
            config,
            db,
            all_targets,
            selected,
            options,
            observer,
            publisher,
            executor,
            jobs,
            skipped,
            report,
        )
    return report


async def _build_all(
    config: Config,
    db: Database,
    all_targets: Sequence[BuildTarget],
    selected: Sequence[BuildTarget],
    options: CycleOptions,
    observer: CycleObserver,
    publisher: Publisher,
    executor: BuildExecutor,
    jobs: Sequence[BuildJob],
    skipped: Sequence[Skipped],
    report: CycleReport,
) -> None:
    workers = asyncio.Semaphore(config.workers)
    publishing = asyncio.Lock()

    async def package_chain(chain: list[BuildJob]) -> None:
        # A package's commits build in order; packages build side by side.
        for job in chain:
            async with workers:
                if options.stop.is_set():
                    return
                observer.build_started(job)
                result = await executor.build(job)
            try:
                async with publishing:
                    published = await asyncio.to_thread(publisher.publish, result)
            except PublishError as exc:
                log.error("%s %s not published: %s", job.target.name, job.commit_hash[:12], exc)
                report.refused.append((result, str(exc)))
                return  # its later commits would build on a tree that refuses them too
            finally:
                shutil.rmtree(result.workdir, ignore_errors=True)
            report.published.append((result, published))
            observer.build_finished(result, published)

    async def build_layer(layer: Sequence[BuildJob]) -> None:
        per_package: dict[str, list[BuildJob]] = defaultdict(list)
        for job in layer:
            per_package[job.target.name].append(job)
        await asyncio.gather(*(package_chain(chain) for chain in per_package.values()))

    ordered, plan = await plan_cycle(config, db, all_targets, jobs)
    names = [t.name for t in selected]
    before = success_versions(db, names) if plan and config.rebuild_reverse_deps else {}
    # A failed layer does not stop the next one, as in DLRN: its packages may not need it.
    for layer in ordered:
        await build_layer(layer)
    if plan is not None and config.rebuild_reverse_deps:
        after = {
            result.job.target.name: result.version.version
            for result, published in report.published
            if published.status is CommitStatus.SUCCESS and result.version is not None
        }
        skipped_names = {s.target.name for s in skipped}
        candidates = {t.name: t for t in selected if t.name not in skipped_names}
        built = {job.target.name for job in jobs}
        for layer in rebuild_jobs(config, db, plan, before, after, candidates, built):
            await build_layer(layer)


def _one_cycle(
    config: Config,
    db: Database,
    all_targets: Sequence[BuildTarget],
    options: CycleOptions,
    observer: CycleObserver,
    parts: CycleParts,
) -> CycleReport:
    selected = select_targets(all_targets, options.only)
    report = asyncio.run(_run(config, db, all_targets, selected, options, observer, parts))
    if parts.after_cycle is not None:
        report.notifications = parts.after_cycle(db)
    return report


def run_cycle(
    config: Config,
    parts: CycleParts,
    options: CycleOptions | None = None,
    observer: CycleObserver | None = None,
) -> CycleReport:
    """One cycle, holding the builder lock (BuilderBusy when another process has it). The
    composition root (`conveyor.assembly.run_cycle`) assembles `parts` from `config`."""
    options = options or CycleOptions()
    # Metadata first: bad metadata must be refused before anything is written.
    targets = load_targets(config)
    select_targets(targets, options.only)
    with builder_lock(config):
        db = Database(config.database_url)
        started = time.time()
        try:
            report = _one_cycle(config, db, targets, options, observer or LoggingObserver(), parts)
        finally:
            db.close()
        _record_cycle(config, started, report)
        return report


LAST_CYCLE_FILE = "last-cycle.json"


@dataclass(frozen=True)
class LastCycle:
    """The newest finished cycle, as `<datadir>/last-cycle.json` holds it (for /metrics)."""

    started: float
    ended: float
    builds: int
    exit_code: int


def _record_cycle(config: Config, started: float, report: CycleReport) -> None:
    record = {
        "started": started,
        "ended": time.time(),
        "builds": len(report.published),
        "exit_code": report.exit_code,
    }
    try:
        write_atomic(config.datadir / LAST_CYCLE_FILE, json.dumps(record))
    except OSError as exc:  # a sign of life lost, never a cycle's failure
        log.warning("cannot record the cycle in %s: %s", config.datadir, exc)


def last_cycle(config: Config) -> LastCycle | None:
    """The newest finished cycle of the builder, or None (never ran, or unreadable)."""
    try:
        data = json.loads((config.datadir / LAST_CYCLE_FILE).read_text(encoding="utf-8"))
        return LastCycle(
            float(data["started"]),
            float(data["ended"]),
            int(data["builds"]),
            int(data["exit_code"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


_M_ARENA_MAX = -8  # glibc's mallopt parameter number


def _steady_memory() -> Callable[[], None]:
    """For a process that runs for weeks: glibc gives each thread its own malloc arena, and the
    short-lived threads of builds and git calls leave them fragmented, so memory creeps up
    cycle after cycle (bench/soak.py). Two arenas, trimmed after every cycle, keep it flat.
    Returns the per-cycle trim; both are no-ops where the C library is not glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_ARENA_MAX, 2)
    except (OSError, AttributeError):
        return lambda: None
    return lambda: libc.malloc_trim(0) and None


def run_loop(
    load: Callable[[], Config],
    interval: float,
    assemble: Callable[[Config], CycleParts],
    options: CycleOptions,
    observer: CycleObserver | None = None,
    on_cycle: Callable[[CycleReport], None] | None = None,
) -> None:
    """Cycle until `options.stop` is set. Configuration and metadata are read again before
    every cycle, so an edited rdoinfo is picked up without a restart; a cycle refused for bad
    configuration or metadata is logged and tried again at the next interval. The database
    stays open between cycles (a new engine per cycle would grow SQLAlchemy's caches)."""
    trim = _steady_memory()
    db: Database | None = None
    try:
        with builder_lock(load()):
            while not options.stop.is_set():
                try:
                    config = load()
                    targets = load_targets(config)
                    if db is None or db.url != config.database_url:
                        if db is not None:
                            db.close()
                        db = Database(config.database_url)
                    report = _one_cycle(
                        config,
                        db,
                        targets,
                        options,
                        observer or LoggingObserver(),
                        assemble(config),
                    )
                except LOOP_SURVIVABLE as exc:
                    log.error("cycle skipped: %s", exc)
                else:
                    if on_cycle is not None:
                        on_cycle(report)
                trim()
                options.stop.wait(interval)
    finally:
        if db is not None:
            db.close()
