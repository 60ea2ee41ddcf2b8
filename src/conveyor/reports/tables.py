"""The report tables, kept between builds: a row is rendered when its data changes, so an
update after one build renders a row or two, not a thousand.

Which rows changed is read from the database every time (`status_keys`, one small table),
never assumed from the build that triggered the update: another process (a remote import, a
recheck) may have written in between, and a restarted process starts from empty tables and
renders everything once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from markupsafe import Markup
from sqlalchemy import Connection

from conveyor.reports import render
from conveyor.reports.queries import (
    BuildRecord,
    Standing,
    StatusKey,
    builds_by_id,
    recent_build_ids,
    standings,
    status_keys,
)
from conveyor.reports.views import commit_view, package_view, shown_days


@dataclass(frozen=True, slots=True)
class _BuildRow:
    record: BuildRecord
    upstream: str | None
    html: Markup


class BuildTable:
    """report.html's rows. A commits row never changes once written (a recheck or a purge
    only sets flags), so a row is read and rendered once, and kept while it is among the
    newest."""

    def __init__(self) -> None:
        self._rows: dict[int, _BuildRow] = {}

    def rows(self, connection: Connection, upstreams: Mapping[str, str]) -> list[Markup]:
        ids = recent_build_ids(connection)
        fetched = builds_by_id(connection, [i for i in ids if i not in self._rows])
        kept: dict[int, _BuildRow] = {}
        for build_id in ids:
            old = self._rows.get(build_id)
            record = old.record if old else fetched.get(build_id)
            if record is None:
                continue  # deleted between the two queries
            upstream = upstreams.get(record.project)
            if old is None or old.upstream != upstream:
                html = render.build_row(commit_view(record, upstream))
                old = _BuildRow(record, upstream, html)
            kept[build_id] = old
        self._rows = kept
        return [row.html for row in kept.values()]


@dataclass(frozen=True, slots=True)
class _Line:
    standing: Standing
    upstream: str | None
    days: int | None  # changes with the date, not only with builds
    html: Markup
    csv: str


class StatusTable:
    """status_report.html's and status_report.csv's rows, one per listed package."""

    def __init__(self) -> None:
        self._lines: dict[str, _Line] = {}

    def rows(
        self, connection: Connection, upstreams: Mapping[str, str], now: float
    ) -> tuple[list[Markup], list[str]]:
        """HTML and CSV rows of the packages in `upstreams` (the package list) that have a
        build, by name: DLRN lists the package list's packages, so a package removed from
        the metadata leaves the report while its rows stay in the database."""
        keys = status_keys(connection)
        listed = [name for name in sorted(upstreams) if name in keys]
        stale = {name for name in listed if self._key(name) != keys[name]}
        fetched = standings(connection, stale) if stale else {}
        lines: dict[str, _Line] = {}
        for name in listed:
            old = self._lines.get(name)
            standing = fetched.get(name) if name in stale else (old.standing if old else None)
            if standing is None:
                continue  # its package_status row went away between the two queries
            upstream, days = upstreams[name], shown_days(standing, now)
            if old is None or (old.standing, old.upstream, old.days) != (standing, upstream, days):
                view = package_view(name, standing, upstream, now)
                old = _Line(
                    standing, upstream, days, render.status_row(view), render.status_csv_row(view)
                )
            lines[name] = old
        self._lines = lines
        return [line.html for line in lines.values()], [line.csv for line in lines.values()]

    def _key(self, name: str) -> StatusKey | None:
        line = self._lines.get(name)
        return line.standing.key if line else None
