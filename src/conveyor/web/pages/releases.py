"""Releases: the readiness of each series for its GA, as `conveyor release-status --config`
says it (per package: the newest upstream release of the series, the pin, the declared and
the applied buildsys NVRs, and the next step), with the timeline of its `release-ga` runs.

The series are `[dashboard] series` and the builder's `[metadata] release`; the upstream
release data comes from the openstack/releases checkout `[dashboard] releases`. Loading a
series (rdoinfo, the series' deliverables) takes seconds: the result is kept while those
files and the applied tags stay as they were (reports.filecache).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select

from conveyor.api.context import app_context
from conveyor.assembly.releases import with_applied_tags
from conveyor.assembly.timeline import StepRecord, timeline_of
from conveyor.config import Config
from conveyor.metadata.errors import MetadataError
from conveyor.reports.filecache import StampedCache, stamps_of, tree_stamps
from conveyor.store.database import Database
from conveyor.store.models import TagVersion
from conveyor.tags.service import rdoinfo_folder
from conveyor.uc.errors import UCError
from conveyor.uc.releases import (
    NEEDS_ACTION,
    StatusRow,
    load_series_status,
    series_release_status,
    state_counts,
)
from conveyor.web.render import not_found, page

router = APIRouter(include_in_schema=False)

# Files are stated again at most this often: a change shows within these seconds.
RECHECK_SECONDS = 2.0
_ROW_CLASSES = {"to-build": "missing", "pin-older": "missing", "pin-newer": "failed"}


@dataclass(frozen=True)
class Readiness:
    """One series' release status, or why it cannot be read."""

    series: str
    about: Mapping[str, Any] = field(default_factory=dict)
    rows: list[StatusRow] = field(default_factory=list)
    unpackaged: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def counts(self) -> dict[str, int]:
        return state_counts(self.rows)

    @property
    def todo(self) -> dict[str, int]:
        """Packages per next step, the steps left before GA ("done" and none excluded)."""
        counts = Counter(r.todo for r in self.rows if r.todo and r.todo != "done")
        return dict(sorted(counts.items()))

    @property
    def done(self) -> int:
        return sum(1 for r in self.rows if r.todo == "done")

    @property
    def needs_action(self) -> int:
        return sum(1 for r in self.rows if r.state in NEEDS_ACTION)


@dataclass(frozen=True)
class Run:
    """One `release-ga` run of a series: its steps in order."""

    number: int
    steps: list[StepRecord]

    @property
    def state(self) -> str:
        return self.steps[-1].state if self.steps else ""

    @property
    def started(self) -> int:
        return self.steps[0].started if self.steps else 0


def row_class(row: StatusRow) -> str:
    return _ROW_CLASSES.get(row.state, "")


def _runs(steps: list[StepRecord]) -> list[Run]:
    """The runs, newest first."""
    by_run: dict[int, list[StepRecord]] = {}
    for step in steps:
        by_run.setdefault(step.run, []).append(step)
    return [Run(number, by_run[number]) for number in sorted(by_run, reverse=True)]


def _series_of(config: Config, releases: Path | None) -> list[str]:
    """The configured series, then the builder's release when openstack/releases knows it
    (a master builder's `master` is no series)."""
    names = list(config.dashboard.series)
    own = config.metadata.release
    if own and own not in names and (releases is None or own in _known_series(releases)):
        names.append(own)
    return names


_series_names: StampedCache[frozenset[str]] = StampedCache(size=4, recheck=RECHECK_SECONDS)


def _known_series(releases: Path) -> frozenset[str]:
    path = releases / "data" / "series_status.yaml"

    def names() -> frozenset[str]:
        try:
            return frozenset(str(s["name"]) for s in load_series_status(releases))
        except UCError:
            return frozenset()

    return _series_names.get(str(path), lambda: stamps_of([path]), names)


def _applied_key(db: Database) -> int:
    """Changes with every applied tag version: the newest version row."""
    with db.reader() as session:
        return int(session.scalar(select(func.max(TagVersion.id))) or 0)


_readiness: StampedCache[Readiness] = StampedCache(size=32, recheck=RECHECK_SECONDS)


def _inputs_key(config: Config, releases: Path, series: str) -> Hashable:
    return (
        stamps_of([releases / "data" / "series_status.yaml"]),
        tree_stamps(releases / "deliverables" / series),
        tree_stamps(rdoinfo_folder(config)),
    )


def readiness(config: Config, db: Database, releases: Path, series: str) -> Readiness:
    """`series`' release status with the builder's applied tags and next steps: kept while
    its inputs (and the applied tags) stay as they were."""

    def compute() -> Readiness:
        try:
            found = series_release_status(releases, config.metadata.path, series)
            rows = with_applied_tags(config, series, found)
        except (UCError, MetadataError) as exc:
            return Readiness(series, error=str(exc))
        return Readiness(series, found.about, rows, found.unpackaged)

    # The builder's release is in the name: serve follows a change of it without a restart.
    name = (
        config.database_url,
        str(releases),
        str(config.metadata.path),
        config.metadata.release,
        series,
    )
    return _readiness.get(
        name,
        lambda: (_inputs_key(config, releases, series), _applied_key(db)),
        compute,
    )


@router.get("/releases", response_class=HTMLResponse)
def releases_page(request: Request) -> HTMLResponse:
    ctx = app_context(request)
    releases = ctx.config.dashboard.releases
    names = _series_of(ctx.config, releases)
    series = [
        {
            "name": name,
            "readiness": readiness(ctx.config, ctx.db, releases, name) if releases else None,
            "runs": _runs(timeline_of(ctx.db, name)),
        }
        for name in names
    ]
    return page(
        request,
        "releases.html",
        "releases",
        "Releases",
        series=series,
        releases=releases,
        own=ctx.config.metadata.release,
    )


@router.get("/releases/{series}", response_class=HTMLResponse)
def series_page(request: Request, series: str) -> HTMLResponse:
    ctx = app_context(request)
    releases = ctx.config.dashboard.releases
    if series not in _series_of(ctx.config, releases):
        return not_found(
            request,
            "releases",
            f"{series} is not a series this dashboard shows "
            "([dashboard] series, [metadata] release).",
            "/releases",
            "All series",
        )
    found = readiness(ctx.config, ctx.db, releases, series) if releases else None
    return page(
        request,
        "releases_series.html",
        "releases",
        f"Release {series}",
        series=series,
        readiness=found,
        runs=_runs(timeline_of(ctx.db, series)),
        row_class=row_class,
    )
