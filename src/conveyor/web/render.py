"""Rendering of the dashboard's pages: one Jinja2 environment over the bundled templates,
autoescaped, with the navigation every page shares."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cache
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from conveyor.reports.views import utc_time

__all__ = ["NAV", "NavItem", "age", "not_found", "page"]

# Where the bundled CSS and JavaScript are served (`web.app.register`).
STATIC_URL = "/static/web"
# Pages load scripts and styles from the server itself, never inline: the policy says so.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'"
)


@dataclass(frozen=True)
class NavItem:
    key: str
    label: str
    href: str


NAV = (
    NavItem("trunk", "Trunk", "/"),
    NavItem("ftbfs", "FTBFS", "/ftbfs"),
    NavItem("promotions", "Promotions", "/promotions"),
    NavItem("buildsys", "Tags", "/buildsys"),
    NavItem("releases", "Releases", "/releases"),
    NavItem("constraints", "Constraints", "/constraints"),
    NavItem("diff", "Diff", "/diff"),
    NavItem("bisect", "Bisections", "/bisections"),
    NavItem("repos", "Repositories", "/repos/"),
)


def age(epoch: int | float | None, now: float | None = None) -> str:
    """How long ago `epoch` was, as a person reads it: `42 s`, `7 min`, `5 h`, `3 d`."""
    if not epoch:
        return "-"
    seconds = max(0, int((time.time() if now is None else now) - epoch))
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


@cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("conveyor.web", "templates"),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(nav=NAV, static=STATIC_URL)
    env.filters.update(utc=utc_time, age=age)
    return env


def page(
    request: Request, template: str, current: str, title: str, status: int = 200, **values: Any
) -> HTMLResponse:
    """`template` rendered with the navigation (`current` is highlighted) and `values`."""
    html = (
        _environment()
        .get_template(template)
        .render(
            current=current,
            title=title,
            query=request.query_params.get("q", ""),
            **values,
        )
    )
    response = HTMLResponse(html, status_code=status)
    response.headers["Content-Security-Policy"] = PAGE_POLICY
    return response


def not_found(
    request: Request, current: str, message: str, back_href: str = "", back_label: str = ""
) -> HTMLResponse:
    """The 404 page: what was not found, in the dashboard's layout, with a way back."""
    return page(
        request,
        "not_found.html",
        current,
        "Not found",
        404,
        message=message,
        back_href=back_href,
        back_label=back_label,
    )
