"""The report files' text: HTML from the bundled Jinja2 templates, and the CSV.

Rows and pages are rendered separately: a row is rendered once and kept until its data
changes (see tables.py), a page joins the rows it is given.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from time import time
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from conveyor.config import Config
from conveyor.reports.views import CommitView, PackageView, utc_time

# DLRN's status_report.csv columns, in its order, so scripts reading them by position keep
# working; conveyor appends the NVR, the first failure and the days the page shows.
STATUS_CSV_HEADER = (
    "Project",
    "Source Sha",
    "Dist Sha",
    "Extended Sha",
    "Component",
    "Status",
    "Timestamp",
    "Packages",
    "Pkg NVR",
    "First Failure Sha",
    "Days Since Last Success",
)
# Written next to the pages, which refer to them by relative URL: nothing from a CDN.


@dataclass(frozen=True)
class PageContext:
    """What every page's heading shows."""

    project_name: str
    reponame: str
    source_branch: str
    generated: str


def page_context(config: Config, now: float | None = None) -> PageContext:
    return PageContext(
        project_name=config.project_name,
        reponame=config.reponame,
        source_branch=config.source_branch,
        generated=utc_time(int(time() if now is None else now)),
    )


@cache
def _environment() -> Environment:
    # Autoescape: package names, URLs and hashes come from metadata and the database.
    return Environment(
        loader=PackageLoader("conveyor.reports", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


@cache
def _row_macros() -> Any:
    return _environment().get_template("_rows.html").module


def asset(name: str) -> bytes:
    return files("conveyor.reports").joinpath("templates", name).read_bytes()


def render_template(name: str, **values: object) -> str:
    """One bundled template, rendered by this environment (the CI vote pages, civotes.py)."""
    return _environment().get_template(name).render(**values)


# --- rows ----------------------------------------------------------------------------------


def _macro(name: str, view: object) -> Markup:
    row = getattr(_row_macros(), name)(view)
    # A macro of an autoescaping environment returns Markup: its values are escaped already.
    if not isinstance(row, Markup):
        raise TypeError(f"macro {name} returned {type(row).__name__}, not Markup")
    return row


def build_row(view: CommitView) -> Markup:
    return _macro("build_row", view)


def status_row(view: PackageView) -> Markup:
    return _macro("status_row", view)


def queue_row(view: CommitView) -> Markup:
    return _macro("queue_row", view)


def _cell(value: object) -> str:
    # DLRN's template prints Python's None literally.
    return "None" if value is None else str(value)


def _days(package: PackageView) -> str:
    if not package.failing:
        return ""
    if package.never:
        return "Never"
    return "" if package.days is None else str(package.days)


def status_csv_row(p: PackageView) -> str:
    first = p.first_failure
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(
        [
            p.name,
            p.last.commit_hash,
            _cell(p.distro_hash),
            _cell(p.extended_hash),
            _cell(p.last.component),
            p.last.status,
            _cell(p.dt_build),
            # DLRN joins the artifacts with "|" (its template: `replace(",", "|")`).
            "|".join(p.artifacts) if p.artifacts else "None",
            p.nvr or "",
            first.commit_hash if first else "",
            _days(p),
        ]
    )
    return out.getvalue()


# --- pages ---------------------------------------------------------------------------------


def _page(template: str, title: str, context: PageContext, rows: Iterable[Markup]) -> str:
    # The rows are Markup, rendered by this autoescaping environment: joined as they are
    # (Markup.join would run escape() on each of a thousand rows only to return it as is).
    body = Markup("\n".join(rows))  # noqa: S704
    return _environment().get_template(template).render(title=title, rows=body, **vars(context))


def report_html(context: PageContext, rows: Iterable[Markup]) -> str:
    return _page("report.html", f"{context.project_name} Packaging by conveyor", context, rows)


def status_report_html(context: PageContext, rows: Iterable[Markup]) -> str:
    return _page("status_report.html", f"{context.project_name} package status", context, rows)


def queue_html(context: PageContext, rows: Iterable[Markup]) -> str:
    return _page("queue.html", "Pending commits for the current run", context, rows)


def status_report_csv(rows: Iterable[str]) -> str:
    return ",".join(STATUS_CSV_HEADER) + "\n" + "".join(rows)
