"""The composition root: one builder assembled from conveyor.toml.

Every way a build reaches the tree (a trunk cycle, `conveyor import`, `/api/remote/import`,
and the builds of workers) publishes with the same collaborators, wired here and nowhere else:
the database, the repository tree, the build driver, and the listeners that send
notifications, rewrite the reports and keep the components' aggregates in step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

from conveyor.builders.buildrepos import BuildRepos, deps_file_name
from conveyor.builders.registry import build_repos, driver_for
from conveyor.config import Config
from conveyor.domain.builds import BuildTarget
from conveyor.notify.delivery import DeliveryReport, deliver_pending
from conveyor.notify.listener import NotificationListener
from conveyor.publish.files import write_if_changed
from conveyor.publish.repostore import RepoStore
from conveyor.remote import importer
from conveyor.remote.fetch import Limits, Progress
from conveyor.reports import ReportsListener
from conveyor.store.database import Database
from conveyor.trunk import cycle
from conveyor.trunk.components import with_aggregate_listener
from conveyor.trunk.publishing import BuildListener


class Builder:
    """A builder's collaborators. The database opens on first use, so that a command refused
    for its input (or a busy builder) has opened nothing."""

    def __init__(self, config: Config, db: Database | None = None) -> None:
        self.config = config
        self._db = db
        self._owns_db = db is None
        self.store = RepoStore.of(config)
        # The reports at the top of repos/: updated after every build, queue.html per cycle.
        self.reports = ReportsListener(config, db)

    @property
    def db(self) -> Database:
        if self._db is None:
            self._db = Database(self.config.database_url)
        return self._db

    def listeners(self, targets: Sequence[BuildTarget]) -> list[BuildListener]:
        """Told about every build, local or imported: notifications are decided in the
        build's own transaction, then the reports and the aggregates follow."""
        told: list[BuildListener] = [NotificationListener(self.config), self.reports]
        return with_aggregate_listener(self.config, targets, told)

    def deliver_notifications(self, db: Database | None = None) -> DeliveryReport:
        """Sends what is due; a mail server that is down costs a timeout, never an error."""
        return deliver_pending(self.config, db or self.db)

    def cycle_parts(self) -> cycle.CycleParts:
        repos = build_repos(self.config)
        self.publish_deps(repos)
        executor = None
        if self.config.queue.enabled:
            from conveyor.assembly.workers import remote_executor

            executor = partial(remote_executor, self.config, self.db)
        return cycle.CycleParts(
            driver=driver_for(self.config, repos),
            listeners=self.listeners,
            cycle_listeners=[self.reports],
            after_cycle=self.deliver_notifications,
            executor=executor,
        )

    def publish_deps(self, repos: BuildRepos) -> None:
        """`deps_url`'s .repo file beside the repositories, where DLRN's consumers fetch it
        (`<baseurl>/delorean-deps.repo`): installing from `delorean.repo` needs it too."""
        path = self.config.repos_dir / deps_file_name(self.config.reponame)
        if repos.deps_text:
            write_if_changed(path, repos.deps_text.encode())
        else:
            path.unlink(missing_ok=True)

    def import_commit(
        self, url: str, limits: Limits | None = None, progress: Progress | None = None
    ) -> importer.ImportReport:
        """`conveyor import` and `/api/remote/import`: a build from another builder, published
        and announced as a local one."""
        report = importer.import_commit(self.config, url, self.listeners, limits, progress)
        if report.published is not None:
            self.deliver_notifications()
        return report

    def close(self) -> None:
        self.reports.close()
        if self._owns_db and self._db is not None:
            self._db.close()
            self._db = None


def run_cycle(
    config: Config,
    options: cycle.CycleOptions | None = None,
    observer: cycle.CycleObserver | None = None,
) -> cycle.CycleReport:
    """One trunk cycle of the builder `config` describes (BuilderBusy when another process
    runs it)."""
    builder = Builder(config)
    try:
        return cycle.run_cycle(config, builder.cycle_parts(), options, observer)
    finally:
        builder.close()


def run_loop(
    load: Callable[[], Config],
    interval: float,
    options: cycle.CycleOptions,
    observer: cycle.CycleObserver | None = None,
    on_cycle: Callable[[cycle.CycleReport], None] | None = None,
) -> None:
    """`conveyor run --loop`: the builder is assembled again whenever the configuration read
    before a cycle differs from the previous one."""
    assembled: list[Builder] = []

    def assemble(config: Config) -> cycle.CycleParts:
        if assembled and assembled[0].config != config:
            assembled.pop().close()
        if not assembled:
            assembled.append(Builder(config))
        return assembled[0].cycle_parts()

    try:
        cycle.run_loop(load, interval, assemble, options, observer, on_cycle)
    finally:
        for builder in assembled:
            builder.close()


def import_commit(
    config: Config, url: str, limits: Limits | None = None, progress: Progress | None = None
) -> importer.ImportReport:
    """`Builder.import_commit` for one import."""
    builder = Builder(config)
    try:
        return builder.import_commit(url, limits, progress)
    finally:
        builder.close()
