"""What a report row shows, derived from database records without I/O: links, days, NVR."""

from __future__ import annotations

from dataclasses import dataclass
from time import gmtime, strftime

from conveyor.domain.forge import commit_url
from conveyor.domain.names import InvalidName
from conveyor.domain.nvr import nvr_from_artifacts
from conveyor.domain.paths import repo_relpath
from conveyor.domain.status import CommitStatus
from conveyor.reports.queries import BuildRecord, Standing

_DAY = 86400
# A failure's note is shown as the status cell's tooltip, cut to this length.
_NOTE_CHARS = 300
# DLRN marks failed rows "failure" (its stylesheet colours them); RETRY gets its own colour.
_ROW_CLASSES = {CommitStatus.FAILED.value: "failure", CommitStatus.RETRY.value: "retry"}
# Sorting key of the days column: "Never" is the longest time.
_NEVER_KEY = 10**9


def utc_time(epoch: int | None) -> str:
    """DLRN's format for build and commit times (UTC)."""
    return "" if epoch is None else strftime("%Y-%m-%d %H:%M:%S", gmtime(epoch))


def days_since(now: float, epoch: int) -> int:
    """Whole days elapsed, rounded down, as DLRN's `(now - then).days` counts them."""
    return int((now - epoch) // _DAY)


@dataclass(frozen=True, slots=True)
class CommitView:
    project: str
    commit_hash: str
    url: str | None  # the commit on its forge; None: show the bare hash
    repo: str | None  # the hash directory, relative to repos/
    component: str | None
    status: str
    built: str
    committed: str

    @property
    def log(self) -> str | None:
        return f"{self.repo}/rpmbuild.log" if self.repo else None

    @property
    def row_class(self) -> str:
        return _ROW_CLASSES.get(self.status, "")


def commit_view(record: BuildRecord, upstream: str | None) -> CommitView:
    try:
        repo: str | None = str(
            repo_relpath(
                record.commit_hash, record.distro_hash, record.extended_hash, record.component
            )
        )
    except InvalidName:
        repo = None  # a row no directory can exist for: shown without a link
    return CommitView(
        project=record.project,
        commit_hash=record.commit_hash,
        url=commit_url(upstream, record.commit_hash),
        repo=repo,
        component=record.component,
        status=record.status,
        built=utc_time(record.dt_build),
        committed=utc_time(record.dt_commit),
    )


@dataclass(frozen=True, slots=True)
class PackageView:
    name: str
    last: CommitView
    distro_hash: str | None
    extended_hash: str | None
    dt_build: int | None
    artifacts: tuple[str, ...]
    nvr: str | None
    failing: bool  # the first failure and the days are shown only when not SUCCESS
    note: str  # why the last build failed ("" when it did not)
    first_failure: CommitView | None
    days: int | None  # since the last success; None with `never` or an undated success
    never: bool  # no success at all

    @property
    def sort_days(self) -> int:
        if not self.failing:
            return -1
        return _NEVER_KEY if self.never else (self.days or 0)


def shown_days(standing: Standing, now: float) -> int | None:
    """The days since the last success the status report shows for a package, if any."""
    if standing.last.status == CommitStatus.SUCCESS or standing.last_success_dt is None:
        return None
    return days_since(now, standing.last_success_dt)


def package_view(name: str, standing: Standing, upstream: str | None, now: float) -> PackageView:
    last = standing.last
    artifacts = tuple(a for a in (standing.artifacts or "").split(",") if a)
    failing = last.status != CommitStatus.SUCCESS
    first = standing.first_failure
    return PackageView(
        name=name,
        last=commit_view(last, upstream),
        distro_hash=last.distro_hash,
        extended_hash=last.extended_hash,
        dt_build=last.dt_build,
        artifacts=artifacts,
        nvr=nvr_from_artifacts(artifacts),
        failing=failing,
        note=(standing.notes or "")[:_NOTE_CHARS] if failing else "",
        first_failure=commit_view(first, upstream) if failing and first else None,
        days=shown_days(standing, now),
        never=not standing.has_success,
    )
