"""Prometheus /metrics with DLRN's metric names; build counts from one grouped, cached query
(DLRN runs four COUNT(*) on every scrape)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Summary, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from conveyor.config import Config
from conveyor.store.database import Database
from conveyor.store.models import Commit

CACHE_SECONDS = 30.0


class BuildCounts(Collector):
    def __init__(self, config: Config, db: Database) -> None:
        self.config, self.db = config, db
        self._lock = threading.Lock()
        self._cached: tuple[float, dict[str, int]] | None = None

    def counts(self) -> dict[str, int]:
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] > CACHE_SECONDS:
                query = select(Commit.status, func.count(Commit.id)).group_by(Commit.status)
                with self.db.reader() as session:
                    counts = {str(s): int(n) for s, n in session.execute(query)}
                self._cached = (now, counts)
            return self._cached[1]

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


class Metrics:
    def __init__(self, config: Config, db: Database) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(BuildCounts(config, db))
        self.request_seconds = Summary(
            "dlrn_request_processing_seconds",
            "Time spent processing request",
            registry=self.registry,
        )

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
