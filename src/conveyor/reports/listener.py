"""Keeping the reports current: rewritten after every build from a few indexed queries and
the rows that changed (tables.py); the cost never follows the history's length."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from conveyor.config import Config
from conveyor.domain.builds import BuildJob, BuildTarget
from conveyor.domain.labels import (
    QUEUE_HTML,
    REPORT_ASSETS,
    REPORT_HTML,
    STATUS_REPORT_CSV,
    STATUS_REPORT_HTML,
)
from conveyor.metadata import MetadataError
from conveyor.metadata.targets import TargetError, load_targets
from conveyor.publish import files
from conveyor.reports import render
from conveyor.reports.queue import PendingBuilds
from conveyor.reports.tables import BuildTable, StatusTable
from conveyor.store.database import Database
from conveyor.store.models import Commit, PackageStatus

log = logging.getLogger(__name__)


class ReportsListener:
    """A `BuildListener` writing DLRN's report files at the top of `repos/`.

    `cycle_started` (called by the cycle once the jobs are known) sets the package list and
    the queue; without it the package list is read from the metadata on first use and
    queue.html is left alone. The reports are read back from the database each time, so a
    restarted process writes the same files.
    """

    def __init__(
        self,
        config: Config,
        db: Database | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._db = db
        self._owns_db = db is None
        self._clock = clock
        self._upstreams: dict[str, str] | None = None  # the package list: name -> upstream
        self._pending: PendingBuilds | None = None
        self._assets_checked = False
        self._builds = BuildTable()
        self._statuses = StatusTable()

    # --- the cycle's hooks ---------------------------------------------------------------

    def cycle_started(self, targets: Sequence[BuildTarget], jobs: Sequence[BuildJob]) -> None:
        """A new cycle: its package list and its queue. Writes every report, so a package
        removed from the metadata leaves them even when nothing is built."""
        self._upstreams = {t.name: t.upstream for t in targets}
        self._pending = PendingBuilds(jobs)
        self._update_logged()

    def recorded(
        self, session: Session, commit: Commit, target: BuildTarget, before: PackageStatus | None
    ) -> None:
        """Nothing inside the build's transaction: the reports are read after it commits."""

    def published(self, commit: Commit, target: BuildTarget) -> None:
        if self._upstreams is not None:
            self._upstreams[target.name] = target.upstream
        if self._pending is not None:
            self._pending.recorded(commit)
        self._update_logged()

    # --- writing ---------------------------------------------------------------------------

    def update(self) -> None:
        """Write every report from the database's current state."""
        now = self._clock()
        context = render.page_context(self.config, now)
        upstreams = self._package_list()
        with self._database().engine.connect() as connection:
            builds = self._builds.rows(connection, upstreams)
            statuses, csv_rows = self._statuses.rows(connection, upstreams, now)
        repos = self.config.repos_dir
        self._write_assets()
        files.write_atomic(repos / REPORT_HTML, render.report_html(context, builds))
        files.write_atomic(repos / STATUS_REPORT_HTML, render.status_report_html(context, statuses))
        files.write_atomic(repos / STATUS_REPORT_CSV, render.status_report_csv(csv_rows))
        if self._pending is not None:
            queue = render.queue_html(context, self._pending.rows())
            files.write_atomic(repos / QUEUE_HTML, queue)

    def close(self) -> None:
        if self._owns_db and self._db is not None:
            self._db.close()
            self._db = None

    def _update_logged(self) -> None:
        # The build is committed and published whatever happens here: a report that cannot
        # be written (disk full, database busy, metadata being edited) is logged, and the
        # next build writes it.
        try:
            self.update()
        except (OSError, SQLAlchemyError, MetadataError, TargetError):
            log.exception("reports not updated")

    def _package_list(self) -> dict[str, str]:
        if self._upstreams is None:
            self._upstreams = {t.name: t.upstream for t in load_targets(self.config)}
        return self._upstreams

    def _database(self) -> Database:
        if self._db is None:
            self._db = Database(self.config.database_url)
        return self._db

    def _write_assets(self) -> None:
        if not self._assets_checked:
            for name in REPORT_ASSETS:
                files.write_if_changed(self.config.repos_dir / name, render.asset(name))
            self._assets_checked = True
