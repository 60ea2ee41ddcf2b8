"""How `conveyor serve` meets the network: the published tree under /repos/, the headers every
answer carries, the API's documentation pages without a CDN, and a deadline for request heads.
"""

from __future__ import annotations

import asyncio
import os
import posixpath
import stat
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path, PurePath, PurePosixPath
from typing import Any
from urllib.parse import quote

import anyio
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import URL, MutableHeaders
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from conveyor.reports.views import utc_time

# What a trunk publishes as text (logs, commit.yaml, .repo files, versions.csv, .md5): shown
# by a browser instead of downloaded, and never sniffed into something else.
_PLAIN_TEXT = frozenset({".log", ".yaml", ".yml", ".repo", ".csv", ".md5", ".txt", ".spec"})
# DLRN's marker of an installed build (`installed`) has no suffix.
_PLAIN_TEXT_NAMES = frozenset({"installed"})
PLAIN_TEXT_TYPE = "text/plain; charset=utf-8"

DOCS_ASSETS_URL = "/static/docs"
# The documentation pages load nothing from elsewhere: ReDoc's bundle would fetch a logo from
# its CDN on every visit. Their own inline start-up script and styles are allowed.
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; frame-ancestors 'none'"
)
_DOCS_ASSETS = files("fastapi_offline") / "static"


class RepoFiles(StaticFiles):
    """The published tree. Links are followed only while they stay inside it: RPM links
    between hash directories and label links resolve within repos/, anything else (a link to
    /etc, to the database) answers 404.

    A folder without an index.html answers an HTML listing (`listing`): folders first, then
    files, with their sizes and times; a link is listed with where it points (a label with its
    repository), and only when it stays inside the tree, as it is served."""

    def __init__(self, directory: str | os.PathLike[str], section: str = "repos") -> None:
        # follow_symlink=False is Starlette's check of the *resolved* path against the
        # resolved directory; True would only compare the path as written.
        super().__init__(directory=directory, html=True, follow_symlink=False)
        self.section = section  # which entry of the dashboard's navigation a listing is under

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        if is_plain_text(PurePath(full_path).name):
            response.headers["content-type"] = PLAIN_TEXT_TYPE
        return response

    async def get_response(self, path: str, scope: Scope) -> Response:
        if scope["method"] in ("GET", "HEAD"):
            try:
                full_path, found = await anyio.to_thread.run_sync(self.lookup_path, path)
            except (OSError, ValueError):
                found = None  # Starlette's own answer below says which error it is
            if found is not None and stat.S_ISDIR(found.st_mode):
                _, index_stat = await anyio.to_thread.run_sync(
                    self.lookup_path, str(Path(path, "index.html"))
                )
                if index_stat is None:
                    if not scope["path"].endswith("/"):
                        url = URL(scope=scope)
                        return RedirectResponse(url=url.replace(path=url.path + "/"))
                    return await anyio.to_thread.run_sync(self.listing, full_path, path, scope)
        return await super().get_response(path, scope)

    def listing(self, full_path: str, path: str, scope: Scope) -> Response:
        """The HTML listing of the folder `full_path` (resolved; `path` as requested). A page
        without a query string is kept with the folder's entries (see `_ListingCache`)."""
        from conveyor.web.render import page  # the dashboard's look; imported when first used

        root = os.path.realpath(str(self.directory))
        prefix = str(scope.get("root_path", "")).rstrip("/")
        relative = "" if path in ("", ".") else PurePosixPath(path).as_posix().strip("/")
        listing = _LISTINGS.get(root, full_path)
        url = (self.section, prefix, relative)
        kept = None if scope.get("query_string") else listing.pages.get(url)
        if kept is not None:
            body, policy = kept
            return HTMLResponse(body, headers={"Content-Security-Policy": policy})
        entries = listing.entries
        title = f"{prefix}/{relative}/" if relative else f"{prefix}/"
        response = page(
            Request(scope),
            "listing.html",
            _SECTIONS.get(prefix, self.section),
            title,
            root=prefix,
            base=f"{prefix}/{quote(relative)}/" if relative else f"{prefix}/",
            crumbs=_crumbs(prefix, relative),
            entries=entries[:MAX_LISTED],
            hidden=max(0, len(entries) - MAX_LISTED),
            viewer=prefix == REPOS_URL,  # the log viewer shows files of repos/ only
            view_base=f"{quote(relative)}/" if relative else "",
            relative=relative,
            repository=(Path(full_path) / "versions.csv").is_file(),
        )
        if not scope.get("query_string"):
            policy = response.headers["Content-Security-Policy"]
            listing.pages[url] = (bytes(response.body), policy)
        return response


REPOS_URL = "/repos"
# The dashboard's navigation entry of a listing, by where its tree is mounted (/tags/ is the
# tag store's: conveyor.api.tags.tag_files).
_SECTIONS = {REPOS_URL: "repos", "/tags": "buildsys"}
# A folder listing shows at most this many entries (a hash directory links every package's
# newest RPMs: 3,000 entries for 1,000 packages).
MAX_LISTED = 20_000


@dataclass(slots=True)
class ListedEntry:
    """One entry of a folder listing, with what its row shows worked out once (a listing is
    kept, and a repository's has a row for every package's RPMs)."""

    name: str
    is_dir: bool
    size: int | None  # None for a folder
    mtime: int
    target: str | None  # a link's destination below the served folder, else None
    text: bool  # shown as text by the browser (and by the log viewer)
    href: str = ""  # the name, quoted, with a slash for a folder
    shown_size: str = ""
    shown_mtime: str = ""
    target_dir: str | None = None  # where a link leads: its folder, quoted for an href
    target_shown: str = ""

    def __post_init__(self) -> None:
        self.href = quote(self.name) + ("/" if self.is_dir else "")
        self.shown_size = "" if self.size is None else human_size(self.size)
        self.shown_mtime = utc_time(self.mtime)
        if self.target:
            # A link to a folder (a label) shows its path; a link to a file (an RPM of
            # another build) the folder it is in, by name.
            folder = self.target if self.is_dir else posixpath.dirname(self.target)
            if folder:
                self.target_dir = quote(folder)
                self.target_shown = folder if self.is_dir else posixpath.basename(folder)


def human_size(size: int) -> str:
    """`532 B`, `4.2 KiB`, `17.0 MiB`."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _inside(root: str, real: str) -> bool:
    return real == root or real.startswith(root + os.sep)


_PROC_FD = "/proc/self/fd"
_HAS_PROC_FD = Path(_PROC_FD).is_dir()


def resolved(path: str) -> tuple[str, os.stat_result]:
    """Where `path` leads, links followed, and what is there; OSError when nowhere.

    The kernel resolves the path once (an O_PATH descriptor, named by /proc): Python's
    `os.path.realpath` looks at every component in turn, five times slower on the links of a
    repository, which lists one for every package's RPMs."""
    if not _HAS_PROC_FD:
        real = os.path.realpath(path, strict=True)
        return real, os.stat(real)  # noqa: PTH116 (no Path objects: thousands of entries)
    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        return os.readlink(f"{_PROC_FD}/{fd}"), os.fstat(fd)  # noqa: PTH115 (as above)
    finally:
        os.close(fd)


def _scan(root: str, folder: str) -> list[ListedEntry]:
    listed = []
    try:
        scanned = list(os.scandir(folder))
    except OSError:
        return []
    for entry in scanned:
        if entry.name.startswith("."):
            continue
        target = None
        try:
            if entry.is_symlink():
                real, info = resolved(entry.path)
                if not _inside(root, real):
                    continue
                target = real[len(root) + 1 :]  # inside: root, a separator, the rest
            else:
                info = entry.stat()
        except (OSError, ValueError):
            continue
        is_dir = stat.S_ISDIR(info.st_mode)
        if not is_dir and not stat.S_ISREG(info.st_mode):
            continue  # a socket, a fifo: nothing to serve
        listed.append(
            ListedEntry(
                name=entry.name,
                is_dir=is_dir,
                size=None if is_dir else info.st_size,
                mtime=int(info.st_mtime),
                target=target,
                text=not is_dir and is_plain_text(entry.name),
            )
        )
    listed.sort(key=lambda e: (not e.is_dir, e.name))
    return listed


@dataclass
class Listing:
    """A folder's entries, and its pages as rendered (by URL) while the entries stay."""

    entries: list[ListedEntry]
    pages: dict[tuple[str, ...], tuple[bytes, str]] = field(default_factory=dict)


class _ListingCache:
    """Folder listings kept while the folder stays as it was (its inode and mtime: an entry
    added, removed or renamed over changes them) and at most `ttl` seconds: a published
    repository never changes, and a file changed in place shows within the minute."""

    def __init__(self, size: int = 64, ttl: float = 60.0) -> None:
        self._found: OrderedDict[str, tuple[tuple[int, int], float, Listing]] = OrderedDict()
        self._size, self._ttl = size, ttl
        self._lock = threading.Lock()

    def get(self, root: str, folder: str) -> Listing:
        try:
            info = Path(folder).stat()
        except OSError:
            return Listing([])
        key = (info.st_ino, info.st_mtime_ns)
        now = time.monotonic()
        with self._lock:
            cached = self._found.get(folder)
            if cached is not None and cached[0] == key and now - cached[1] < self._ttl:
                self._found.move_to_end(folder)
                return cached[2]
        listing = Listing(_scan(root, folder))
        with self._lock:
            self._found[folder] = (key, now, listing)
            self._found.move_to_end(folder)
            while len(self._found) > self._size:
                self._found.popitem(last=False)
        return listing


_LISTINGS = _ListingCache()


def list_folder(root: str, folder: str) -> list[ListedEntry]:
    """The entries of `folder` (resolved, inside `root`, the resolved served directory):
    folders first, then files, by name. Hidden entries (`.publish.lock`, a publish's staging
    folder) and links that leave the tree or lead nowhere are not listed."""
    return _LISTINGS.get(root, folder).entries


def _crumbs(prefix: str, relative: str) -> list[tuple[str, str]]:
    """(name, href) from the served folder's root down to `relative`."""
    crumbs = [(prefix.strip("/") or "/", f"{prefix}/")]
    href = prefix
    for part in relative.split("/") if relative else []:
        href += "/" + quote(part)
        crumbs.append((part, href + "/"))
    return crumbs


def is_plain_text(name: str) -> bool:
    """Whether a published file is text a browser shows (logs, .repo, .yaml, .csv, .spec...)."""
    stem, dot, suffix = name.rpartition(".")
    return (bool(stem) and bool(dot) and f".{suffix.lower()}" in _PLAIN_TEXT) or (
        name in _PLAIN_TEXT_NAMES
    )


class SecurityHeaders:
    """Headers on every answer: no type sniffing (a log or a vote's notes are never run as a
    script) and no framing (the pages cannot be overlaid by another site)."""

    _HEADERS = (
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Content-Security-Policy", "frame-ancestors 'none'"),
    )

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self._HEADERS:
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, with_headers)


def _confined(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = DOCS_POLICY
    return page


def add_docs_pages(app: FastAPI) -> None:
    """/docs (Swagger UI) and /redoc, with their scripts served from the installed package:
    many trunks run where no CDN is reachable, and the pages were blank there."""
    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=str(_DOCS_ASSETS)), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return _confined(
            get_swagger_ui_html(
                openapi_url=openapi_url,
                title=f"{app.title} - API",
                swagger_js_url=f"{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
                swagger_css_url=f"{DOCS_ASSETS_URL}/swagger-ui.css",
                swagger_favicon_url=f"{DOCS_ASSETS_URL}/favicon.png",
            )
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return _confined(
            get_redoc_html(
                openapi_url=openapi_url,
                title=f"{app.title} - API",
                redoc_js_url=f"{DOCS_ASSETS_URL}/redoc.standalone.js",
                redoc_favicon_url=f"{DOCS_ASSETS_URL}/favicon.png",
                with_google_fonts=False,
            )
        )


class HeadDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol (httptools, the C parser) with a deadline for each
    request's head.

    uvicorn times out idle keep-alive connections only, and any byte received resets that
    timer: a client that opens connections and sends its headers a byte at a time holds a
    connection forever, and a few hundred such clients exhaust the server. Here the request
    line and headers must be complete within `head_timeout` seconds of the connection (or of
    the previous response), or the connection is closed. httptools rather than h11: h11
    parses in Python, and was a fifth of a vote's CPU time (bench/scale.py).
    """

    head_timeout = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline: asyncio.TimerHandle | None = None

    def _arm_head_deadline(self) -> None:
        self._cancel_head_deadline()
        self._head_deadline = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _cancel_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_timed_out(self) -> None:
        # Armed only while a head is awaited: its firing means the head never completed.
        self._head_deadline = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def on_headers_complete(self) -> None:
        self._cancel_head_deadline()  # the head is complete: the request is the app's
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_deadline()
        super().connection_lost(exc)


def head_deadline_protocol(seconds: float) -> type[HeadDeadlineProtocol]:
    """The protocol class for uvicorn's `http=`, with its deadline."""
    return type("HeadDeadline", (HeadDeadlineProtocol,), {"head_timeout": seconds})
