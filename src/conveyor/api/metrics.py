"""Prometheus /metrics: DLRN's metric names, and the trunk's state for Grafana.

Everything is computed when scraped, from indexed queries and a few files, so a scrape costs
the same on a long history as on a new trunk. The one query that reads the whole history,
the build counts by status (DLRN runs four COUNT(*) on every scrape), is run on the first
scrape of the process and once an hour; the scrapes in between add the builds recorded since.

DLRN's metrics, unchanged (label `baseurl`):

- `dlrn_builds_succeeded_total`, `dlrn_builds_failed_total`, `dlrn_builds_retry_total`,
  `dlrn_builds_total` (counters): builds recorded by status, and in all.
- `dlrn_request_processing_seconds` (summary): time spent answering requests.

conveyor's (gauges unless said otherwise):

- `conveyor_builds_total{status}` (counter): builds recorded, by status (SUCCESS, FAILED,
  RETRY), from the same cached count.
- `conveyor_build_duration_seconds` (histogram): build durations, from a build's start
  (`dt_build`) to its publication (its hash directory's `commit.yaml`, written when the build
  is published). It starts with the newest 500 builds when `conveyor serve` starts, and each
  scrape adds the builds recorded since (a range of the primary key). Builds without a
  directory (purged) and durations over a day (an imported build's start is its builder's
  clock) are left out. Buckets 10 s to 4 h.
- `conveyor_queue_length`: the cycle's builds not recorded yet (`repos/queue.html`, which the
  process running the cycle rewrites at its start and after every build).
- `conveyor_builds_running`: builds under way (their work folders under `<datadir>/builds/`).
- `conveyor_queue_updated_timestamp_seconds`: when the cycle last wrote queue.html.
- `conveyor_last_build_timestamp_seconds`: when the newest recorded build started.
- `conveyor_packages{status}`: packages by the status of their newest build (`package_status`:
  every package built at least once, also one since removed from the metadata).
- `conveyor_packages_failing`: packages whose newest build is not a success.
- `conveyor_consistent_lag_seconds`: how much older `consistent`'s build is than `current`'s
  (0 when they point at the same repository; absent without both labels).
- `conveyor_consistent_lag_builds`: successful builds newer than `consistent`'s (counted up to
  100,000).
- `conveyor_label_age_seconds{label,kind}`: since each label of `repos/` moved (its link's
  mtime); `kind` is builder (current, consistent), promotion or previous.
- `conveyor_label_build_age_seconds{label,kind}`: the age of the build each label points at.
- `conveyor_notifications_pending`: the notification outbox's messages not delivered yet;
  `conveyor_notifications_retrying`: those of them that failed at least once;
  `conveyor_notifications_oldest_pending_age_seconds`: the oldest one's age (0 when none).
- `conveyor_tag_versions_forced_total{tag}` (counter): closure failures: buildsys tag versions
  applied past a failed dependency-closure gate (`tags apply --force`). The gate's refusals are
  not recorded anywhere (the refused change is simply not applied), so they cannot be counted.
- `conveyor_tag_forced{tag}`: 1 when a tag's newest version was forced past the gate.
- `conveyor_queue_jobs{queue}`, `conveyor_workers{queue}`, `conveyor_workers_silent`,
  `conveyor_worker_builds`: on PostgreSQL, the jobs waiting per queue (`builds`,
  `promotions`), the workers beating per queue they serve (build workers, the servers'
  promotion workers) and those whose heartbeats stopped, the builds under way.
- `conveyor_metrics_scrape_seconds`: what computing these metrics took.
- `conveyor_metrics_errors`: parts of this scrape that could not be read (the database
  unreachable, say); their metrics are missing from the answer.

- `conveyor_last_cycle_timestamp_seconds`, `conveyor_last_cycle_duration_seconds`,
  `conveyor_last_cycle_builds`, `conveyor_last_cycle_exit_code`: the newest finished trunk
  cycle (`<datadir>/last-cycle.json`, which each cycle writes when it ends); missing before
  the first one.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Summary, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from sqlalchemy import Connection, Select, bindparam, func, select
from sqlalchemy.exc import SQLAlchemyError

from conveyor.config import Config
from conveyor.domain.labels import CONSISTENT, CURRENT
from conveyor.domain.names import InvalidName
from conveyor.domain.paths import repo_relpath
from conveyor.domain.status import CommitStatus
from conveyor.queue.jobs import queue_state
from conveyor.reports import dashboard
from conveyor.store.database import Database
from conveyor.store.models import (
    FLAG_PURGED,
    Commit,
    Notification,
    PackageStatus,
    TagVersion,
)
from conveyor.trunk.cycle import last_cycle

log = logging.getLogger(__name__)

RECOUNT_SECONDS = 3600.0  # the builds by status are counted in full this often
DURATION_BUILDS = 500  # the duration histogram starts with the newest builds
NEW_BUILDS_PER_SCRAPE = 5_000  # then adds those recorded since, this many at most a scrape
DURATION_BUCKETS = (10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 14400.0)
_MAX_DURATION = 86_400  # longer: an imported build, or a clock that jumped
LAG_BUILDS_CAP = 100_000
_PUBLISHED_FILE = "commit.yaml"


_BY_STATUS = select(Commit.status, func.count(Commit.id)).group_by(Commit.status)
_NEWEST_ID = select(func.max(Commit.id))
_BY_STATUS_AFTER = (
    select(Commit.status, func.count(Commit.id))
    .where(Commit.id > bindparam("after"))
    .group_by(Commit.status)
)


class BuildCounts(Collector):
    """Builds by status. A build's row is written once and never changes status nor goes
    away (purge flags it), so the full count (half a second on 500,000 commits) is made
    when the process first scrapes, and again every `RECOUNT_SECONDS`; in between, each
    scrape adds the rows after the newest id counted (a range of the primary key)."""

    def __init__(self, config: Config, db: Database) -> None:
        self.config, self.db = config, db
        self._lock = threading.Lock()
        self._base: tuple[float, int, dict[str, int]] | None = None  # when, up to id, counts

    def counts(self) -> dict[str, int]:
        with self._lock, self.db.reader() as session:
            now = time.monotonic()
            if self._base is None or now - self._base[0] > RECOUNT_SECONDS:
                counts = {str(s): int(n) for s, n in session.execute(_BY_STATUS)}
                newest = session.execute(_NEWEST_ID).scalar() or 0
                self._base = (now, newest, counts)
                return dict(counts)
            _when, newest, base = self._base
            counts = dict(base)
            for status, count in session.execute(_BY_STATUS_AFTER, {"after": newest}):
                counts[str(status)] = counts.get(str(status), 0) + int(count)
            return counts

    def collect(self) -> Iterator[Metric]:
        counts = self.counts()
        labels = [self.config.baseurl]
        for name, status, help_text in (
            ("dlrn_builds_succeeded", "SUCCESS", "Total number of successful builds"),
            ("dlrn_builds_failed", "FAILED", "Total number of failed builds"),
            ("dlrn_builds_retry", "RETRY", "Total number of builds in retry state"),
        ):
            family = CounterMetricFamily(name, help_text, labels=["baseurl"])
            family.add_metric(labels, counts.get(status, 0))
            yield family
        total = CounterMetricFamily("dlrn_builds", "Total number of builds", labels=["baseurl"])
        total.add_metric(labels, sum(counts.values()))
        yield total
        by_status = CounterMetricFamily(
            "conveyor_builds", "Builds recorded, by status", labels=["status"]
        )
        for status in CommitStatus:
            by_status.add_metric([status.value], counts.get(status.value, 0))
        for status, count in sorted(counts.items()):
            if status not in CommitStatus.__members__:
                by_status.add_metric([status], count)
        yield by_status


# id, commit hash, distro hash, extended hash, component, dt_build, flags
_BuildRow = tuple[int, str, str | None, str | None, str | None, int | None, int]
_BUILD_COLUMNS = (
    Commit.id,
    Commit.commit_hash,
    Commit.distro_hash,
    Commit.extended_hash,
    Commit.component,
    Commit.dt_build,
    Commit.flags,
)
_NEWEST_BUILDS = select(*_BUILD_COLUMNS).order_by(Commit.id.desc()).limit(DURATION_BUILDS)
_BUILDS_AFTER = (
    select(*_BUILD_COLUMNS)
    .where(Commit.id > bindparam("after"))
    .order_by(Commit.id)
    .limit(NEW_BUILDS_PER_SCRAPE)
)


class BuildDurations:
    """A histogram of build durations, fed at each scrape with the builds recorded since the
    previous one (a range of the primary key), starting with the newest `DURATION_BUILDS`
    when the process starts: its counts only grow, as Prometheus expects of a histogram."""

    def __init__(self, repos_dir: Path) -> None:
        self.repos_dir = repos_dir
        self._lock = threading.Lock()
        self._last_id: int | None = None
        self._counts = [0] * (len(DURATION_BUCKETS) + 1)  # per bucket, +Inf last
        self._sum = 0.0

    def update(self, connection: Connection) -> None:
        with self._lock:
            if self._last_id is None:
                rows = list(connection.execute(_NEWEST_BUILDS))[::-1]
            else:
                rows = list(connection.execute(_BUILDS_AFTER, {"after": self._last_id}))
            for (
                commit_id,
                commit_hash,
                distro_hash,
                extended_hash,
                component,
                started,
                flags,
            ) in rows:
                duration = self._measure(
                    (commit_id, commit_hash, distro_hash, extended_hash, component, started, flags)
                )
                if duration is not None:
                    self._observe(duration)
                self._last_id = commit_id
            if self._last_id is None:
                self._last_id = 0

    def _observe(self, duration: float) -> None:
        self._sum += duration
        index = bisect.bisect_left(DURATION_BUCKETS, duration)
        self._counts[index] += 1

    def _measure(self, build: _BuildRow) -> float | None:
        _id, commit_hash, distro_hash, extended_hash, component, started, flags = build
        if started is None or flags & FLAG_PURGED:
            return None
        try:
            relpath = repo_relpath(commit_hash, distro_hash, extended_hash, component)
            published = (self.repos_dir / relpath / _PUBLISHED_FILE).stat().st_mtime
        except (InvalidName, OSError):
            return None
        duration = published - started
        return duration if 0 <= duration <= _MAX_DURATION else None

    def metric(self) -> HistogramMetricFamily:
        with self._lock:
            buckets = []
            total = 0
            bounds = [str(bound) for bound in DURATION_BUCKETS] + ["+Inf"]
            for bound, count in zip(bounds, self._counts, strict=True):
                total += count
                buckets.append((bound, float(total)))
            return HistogramMetricFamily(
                "conveyor_build_duration_seconds",
                "Build durations, from a build's start to its publication",
                buckets=buckets,
                sum_value=self._sum,
            )


def _gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text, value=value)


_LAST_BUILD = select(func.max(Commit.dt_build))
_PACKAGES = select(PackageStatus.last_status, func.count()).group_by(PackageStatus.last_status)
_PENDING = select(
    func.count(),
    func.count(Notification.id).filter(Notification.attempts > 0),
    func.min(Notification.created),
).where(Notification.sent.is_(None))
_FORCED = (
    select(TagVersion.tag, func.count()).where(TagVersion.forced.is_(True)).group_by(TagVersion.tag)
)


def _newest_tags() -> Select[str, bool]:
    newest = (
        select(TagVersion.tag, func.max(TagVersion.version).label("version"))
        .group_by(TagVersion.tag)
        .subquery()
    )
    return select(TagVersion.tag, TagVersion.forced).join(
        newest, (TagVersion.tag == newest.c.tag) & (TagVersion.version == newest.c.version)
    )


_NEWEST_TAGS = _newest_tags()


class TrunkState(Collector):
    """The trunk's state, computed at each scrape."""

    def __init__(
        self, config: Config, db: Database, clock: Callable[[], float] = time.time
    ) -> None:
        self.config, self.db, self.clock = config, db, clock
        self._durations = BuildDurations(config.repos_dir)

    def collect(self) -> Iterator[Metric]:
        start = time.perf_counter()
        errors = 0
        yield from self._files()
        parts: tuple[Callable[[Connection], list[Metric]], ...] = (
            self._builds,
            self._packages,
            self._labels,
            self._notifications,
            self._tags,
            self._workers,
        )
        try:
            with self.db.engine.connect() as connection:
                for part in parts:
                    try:
                        yield from part(connection)
                    except SQLAlchemyError:
                        log.exception("metrics: %s not read", part.__name__)
                        errors += 1
        except SQLAlchemyError:
            log.exception("metrics: the database is not reachable")
            errors += len(parts)
        yield _gauge(
            "conveyor_metrics_errors", "Parts of this scrape that could not be read", errors
        )
        yield _gauge(
            "conveyor_metrics_scrape_seconds",
            "Time spent computing the trunk's metrics",
            time.perf_counter() - start,
        )

    def _files(self) -> list[Metric]:
        queue = dashboard.queue(self.config)
        running = dashboard.building_now(self.config)
        found: list[Metric] = [
            _gauge(
                "conveyor_queue_length", "Builds of the cycle not recorded yet", len(queue.builds)
            ),
            _gauge("conveyor_builds_running", "Builds under way", len(running)),
        ]
        if queue.written is not None:
            found.append(
                _gauge(
                    "conveyor_queue_updated_timestamp_seconds",
                    "When the cycle last wrote its queue",
                    queue.written,
                )
            )
        cycle = last_cycle(self.config)
        if cycle is not None:
            found += [
                _gauge(
                    "conveyor_last_cycle_timestamp_seconds",
                    "When the newest trunk cycle ended",
                    cycle.ended,
                ),
                _gauge(
                    "conveyor_last_cycle_duration_seconds",
                    "How long the newest trunk cycle took",
                    cycle.ended - cycle.started,
                ),
                _gauge(
                    "conveyor_last_cycle_builds", "Builds of the newest trunk cycle", cycle.builds
                ),
                _gauge(
                    "conveyor_last_cycle_exit_code",
                    "The newest trunk cycle's exit code (0 all built, 1 a failure, 2 retries)",
                    cycle.exit_code,
                ),
            ]
        return found

    def _builds(self, connection: Connection) -> list[Metric]:
        self._durations.update(connection)
        found: list[Metric] = [self._durations.metric()]
        last = connection.execute(_LAST_BUILD).scalar()
        if last is not None:
            found.append(
                _gauge(
                    "conveyor_last_build_timestamp_seconds",
                    "When the newest recorded build started",
                    last,
                )
            )
        return found

    def _packages(self, connection: Connection) -> list[Metric]:
        counts = {str(status): int(n) for status, n in connection.execute(_PACKAGES)}
        family = GaugeMetricFamily(
            "conveyor_packages", "Packages by the status of their newest build", labels=["status"]
        )
        for status in CommitStatus:
            family.add_metric([status.value], counts.get(status.value, 0))
        failing = sum(n for s, n in counts.items() if s != CommitStatus.SUCCESS)
        return [
            family,
            _gauge(
                "conveyor_packages_failing",
                "Packages whose newest build is not a success",
                failing,
            ),
        ]

    def _labels(self, connection: Connection) -> list[Metric]:
        now = self.clock()
        views = dashboard.labels(self.config, connection)
        moved = GaugeMetricFamily(
            "conveyor_label_age_seconds", "Seconds since each label moved", labels=["label", "kind"]
        )
        built = GaugeMetricFamily(
            "conveyor_label_build_age_seconds",
            "Age of the build each label points at",
            labels=["label", "kind"],
        )
        by_name = {}
        for view in views:
            by_name[view.name] = view
            if view.moved is not None:
                moved.add_metric([view.name, view.kind], max(0.0, now - view.moved))
            if view.built is not None:
                built.add_metric([view.name, view.kind], max(0.0, now - view.built))
        found: list[Metric] = [moved, built]
        current, consistent = by_name.get(CURRENT), by_name.get(CONSISTENT)
        if current and consistent and current.built is not None and consistent.built is not None:
            same = current.path is not None and current.path == consistent.path
            found.append(
                _gauge(
                    "conveyor_consistent_lag_seconds",
                    "How much older consistent's build is than current's",
                    0 if same else max(0, current.built - consistent.built),
                )
            )
            newer = (
                select(Commit.id)
                .where(
                    Commit.dt_build > consistent.built,
                    Commit.status == CommitStatus.SUCCESS,
                )
                .limit(LAG_BUILDS_CAP)
                .subquery()
            )
            count = (
                0 if same else connection.execute(select(func.count()).select_from(newer)).scalar()
            )
            found.append(
                _gauge(
                    "conveyor_consistent_lag_builds",
                    "Successful builds newer than consistent's",
                    count or 0,
                )
            )
        return found

    def _notifications(self, connection: Connection) -> list[Metric]:
        pending, retrying, oldest = connection.execute(_PENDING).one()
        return [
            _gauge("conveyor_notifications_pending", "Notifications not delivered yet", pending),
            _gauge(
                "conveyor_notifications_retrying",
                "Notifications not delivered yet that failed at least once",
                retrying,
            ),
            _gauge(
                "conveyor_notifications_oldest_pending_age_seconds",
                "Age of the oldest notification not delivered yet",
                0 if oldest is None else max(0.0, self.clock() - oldest),
            ),
        ]

    def _tags(self, connection: Connection) -> list[Metric]:
        forced = CounterMetricFamily(
            "conveyor_tag_versions_forced",
            "Tag versions applied past a failed closure gate",
            labels=["tag"],
        )
        for tag, count in connection.execute(_FORCED):
            forced.add_metric([tag], count)
        newest = GaugeMetricFamily(
            "conveyor_tag_forced",
            "Whether a tag's newest version was forced past the closure gate",
            labels=["tag"],
        )
        for tag, was_forced in connection.execute(_NEWEST_TAGS):
            newest.add_metric([tag], 1.0 if was_forced else 0.0)
        return [forced, newest]

    def _workers(self, connection: Connection) -> list[Metric]:
        state = queue_state(connection)
        if not state.workers and not state.depth:
            return []  # SQLite, or no worker ever: nothing to say
        stalled_after = self.config.queue.stalled_after
        waiting = GaugeMetricFamily(
            "conveyor_queue_jobs", "Jobs waiting for a worker, by queue", labels=["queue"]
        )
        alive = GaugeMetricFamily(
            "conveyor_workers",
            "Workers whose heartbeat is recent, by the queue they serve (builds: "
            "`conveyor worker`; promotions: the `conveyor serve` processes)",
            labels=["queue"],
        )
        for name, count in sorted(state.depth.items()):
            waiting.add_metric([name], count)
            alive.add_metric(
                [name], sum(w.heartbeat_age <= stalled_after for w in state.serving(name))
            )
        return [
            waiting,
            alive,
            _gauge(
                "conveyor_workers_silent",
                "Workers registered whose heartbeats stopped (their jobs are taken again)",
                sum(w.heartbeat_age > stalled_after for w in state.workers),
            ),
            _gauge(
                "conveyor_worker_builds",
                "Builds under way on workers",
                sum(len(w.jobs) for w in state.workers),
            ),
        ]


class Metrics:
    def __init__(self, config: Config, db: Database) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(BuildCounts(config, db))
        self.registry.register(TrunkState(config, db))
        self.request_seconds = Summary(
            "dlrn_request_processing_seconds",
            "Time spent processing request",
            registry=self.registry,
        )

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
