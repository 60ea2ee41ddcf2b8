"""queue.html: the commits this cycle detected that are not built yet.

DLRN computes it by asking the database, for every commit of the run, whether a non-RETRY
row exists. conveyor knows the answer without asking: the cycle's jobs, minus those whose
build was recorded since. A RETRY stays in the queue, as in DLRN: it is built again later.
"""

from __future__ import annotations

from collections.abc import Iterable

from markupsafe import Markup

from conveyor.config import Config
from conveyor.domain.builds import BuildJob
from conveyor.domain.forge import commit_url
from conveyor.domain.labels import QUEUE_HTML
from conveyor.domain.status import CommitStatus
from conveyor.publish import files
from conveyor.reports import render
from conveyor.reports.views import CommitView, utc_time
from conveyor.store.models import Commit

_Key = tuple[str, str, str | None]


def _view(job: BuildJob) -> CommitView:
    return CommitView(
        project=job.target.name,
        commit_hash=job.commit_hash,
        url=commit_url(job.target.upstream, job.commit_hash),
        repo=None,
        component=job.target.component,
        status="",
        built="",
        committed=utc_time(job.dt_commit),
    )


class PendingBuilds:
    """The cycle's jobs not recorded yet, newest commit first; each row rendered once, as a
    first cycle over a large distribution queues a job for every package."""

    def __init__(self, jobs: Iterable[BuildJob] = ()) -> None:
        ordered = sorted(jobs, key=lambda j: j.dt_commit, reverse=True)
        self._rows: dict[_Key, Markup] = {
            (j.target.name, j.commit_hash, j.distro_hash): render.queue_row(_view(j))
            for j in ordered
        }

    def recorded(self, commit: Commit) -> None:
        if commit.status != CommitStatus.RETRY:
            self._rows.pop((commit.project_name, commit.commit_hash, commit.distro_hash), None)

    def rows(self) -> list[Markup]:
        return list(self._rows.values())


def write_queue(
    config: Config, pending: Iterable[BuildJob], context: render.PageContext | None = None
) -> None:
    """Write `repos/queue.html` listing `pending` (the cycle's jobs not built yet)."""
    context = context or render.page_context(config)
    rows = PendingBuilds(pending).rows()
    files.write_atomic(config.repos_dir / QUEUE_HTML, render.queue_html(context, rows))
