"""The dashboard's trunk pages, read side: the builder's labels, what `consistent` waits for,
builds per day, the queue and what is building now, the package table, one package's builds
and the search box.

No query here follows the history's length: labels are the links in `repos/` (a few hundred
entries) and one lookup of their hashes; the package table reads `package_status` (one row per
package) and the commits it points at by primary key; builds per day is one range of the
`dt_build` index; a package's builds walk `(project_name, id)` backwards with a LIMIT; a hash
prefix is a range of the `(commit_hash, ...)` index. The queue is read from `queue.html`, which
the reports listener of the process running the cycle keeps current (this process does not
run it), and what is building now from the builds' work folders.

The package list (upstreams, maintainers) comes from the metadata, loaded once per process and
again only when one of its files changes (a `stat` of each file per request). The package
table's lines and the current NVRs are kept between requests too, each read again only when
`package_status` points at other builds (build rows never change); the counts of the days
before today are kept a few minutes.
"""

from __future__ import annotations

import os
import re
import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, select

from conveyor.config import Config
from conveyor.domain.forge import commit_url
from conveyor.domain.labels import (
    COMPONENT_DIR,
    CONSISTENT,
    CURRENT,
    PREVIOUS_PREFIX,
    QUEUE_HTML,
    REPORT_FILES,
    is_shard,
)
from conveyor.domain.names import InvalidName, check_label, check_package_name
from conveyor.domain.nvr import nvr_from_artifacts
from conveyor.domain.paths import hash_dir_name, repo_relpath
from conveyor.domain.status import CommitStatus
from conveyor.domain.urls import is_http_url
from conveyor.metadata import MetadataError, load_database, packages_for_release
from conveyor.notify.events import nvr_from_log_header
from conveyor.publish.logs import read_first_line
from conveyor.reports.queries import (
    REPOSITORY_COLUMNS,
    Standing,
    StatusKey,
    standings,
    status_keys,
)
from conveyor.reports.views import PackageView, package_view, shown_days
from conveyor.store.models import FLAG_PURGED, FLAG_RECHECKED, Commit

DAY = 86_400
BUILD_DAYS = 14  # builds per day: today and the 13 days before
PACKAGE_BUILDS = 50  # a package page's newest builds
SEARCH_LIMIT = 50  # results of each kind
QUEUE_SHOWN = 200  # queue rows shown; the count is of them all
MIN_HASH_PREFIX = 4
_QUEUE_MAX_BYTES = 16 * 1024 * 1024  # a queue of 50,000 jobs; a bigger file is not read
# The work folders of the builds under way: `<package>-<commit[:12]>-<start in ms>`
# (trunk/buildjob.py); a cycle removes what a killed run left there.
BUILDS_DIR = "builds"
_ROW_CLASSES: dict[str, str] = {CommitStatus.FAILED: "failed", CommitStatus.RETRY: "retry"}
_WORK_FOLDER = re.compile(r"^(?P<name>.+)-(?P<hash>[0-9a-f]{12})-(?P<ms>[0-9]{10,16})$")
_HEX_PREFIX = re.compile(r"^[0-9a-f]{4,64}$")
# After a metadata load failed, the next attempt waits this long (the page still answers).
_METADATA_RETRY_SECONDS = 10.0


# --- the package list (metadata) -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PackageInfo:
    """What the metadata says about a package that the pages show."""

    name: str
    upstream: str | None
    maintainers: tuple[str, ...]
    component: str | None
    under_review: bool

    @property
    def upstream_link(self) -> str | None:
        """The upstream URL when it can be a link (http or https)."""
        return self.upstream if self.upstream and is_http_url(self.upstream) else None


@dataclass(frozen=True)
class PackageList:
    """The configured release's packages by name; `error` says why it is empty when the
    metadata cannot be read (the pages show the database's packages without it)."""

    packages: Mapping[str, PackageInfo] = field(default_factory=dict)
    error: str | None = None

    def upstream(self, name: str) -> str | None:
        info = self.packages.get(name)
        return info.upstream if info else None

    def maintainers(self, name: str) -> tuple[str, ...]:
        info = self.packages.get(name)
        return info.maintainers if info else ()


_Signature = tuple[tuple[str, int, int, int], ...]


def _signature(files: Iterable[Path]) -> _Signature | None:
    try:
        stats = [(str(f), f.stat()) for f in files]
    except OSError:
        return None
    return tuple((name, s.st_mtime_ns, s.st_size, s.st_ino) for name, s in stats)


class _MetadataCache:
    """One process's package list, loaded again only when a metadata file changed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[str, str | None] | None = None
        self._files: tuple[Path, ...] = ()
        self._signature: _Signature | None = None
        self._list = PackageList()
        self._failed_at = 0.0

    def get(self, config: Config) -> PackageList:
        key = (str(config.metadata.path), config.metadata.release)
        with self._lock:
            if key == self._key:
                if self._list.error is not None:
                    if time.monotonic() - self._failed_at < _METADATA_RETRY_SECONDS:
                        return self._list
                elif _signature(self._files) == self._signature:
                    return self._list
            self._key = key
            self._load(config)
            return self._list

    def _load(self, config: Config) -> None:
        try:
            database = load_database(Path(config.metadata.path))
            packages = packages_for_release(database, config.metadata.release)
        except (MetadataError, OSError) as exc:
            self._files, self._signature = (), None
            self._list = PackageList(error=str(exc))
            self._failed_at = time.monotonic()
            return
        self._files = database.files
        self._signature = _signature(database.files)
        self._list = PackageList(
            {
                p.name: PackageInfo(
                    name=p.name,
                    upstream=p.upstream_url,
                    maintainers=p.maintainers,
                    component=p.component,
                    under_review=p.under_review,
                )
                for p in packages
            }
        )


_METADATA = _MetadataCache()


def package_list(config: Config) -> PackageList:
    """The configured release's packages (cached; reloaded when a metadata file changes)."""
    return _METADATA.get(config)


# --- the builder and its labels ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BuilderView:
    project_name: str
    reponame: str
    source_branch: str
    baseurl: str
    baseurl_link: bool  # shown as a link: only an http(s) URL is


def builder_view(config: Config) -> BuilderView:
    return BuilderView(
        project_name=config.project_name,
        reponame=config.reponame,
        source_branch=config.source_branch,
        baseurl=config.baseurl,
        baseurl_link=is_http_url(config.baseurl),
    )


@dataclass(frozen=True, slots=True)
class LabelView:
    """A label in `repos/`: a link to a build's repository, or an aggregate's folder when
    components are on (then `aggregate_hash` says which aggregate it serves)."""

    name: str
    kind: str  # "builder" (current, consistent), "promotion" or "previous"
    moved: float | None  # when the link was last moved (its own mtime)
    path: str | None = None  # the repository it points at, below repos/
    commit_hash: str | None = None
    distro_hash: str | None = None
    package: str | None = None
    built: int | None = None
    aggregate_hash: str | None = None

    @property
    def href(self) -> str:
        return f"/repos/{self.name}/"

    @property
    def repo_href(self) -> str | None:
        return f"/repos/{self.path}/" if self.path else None

    @property
    def diff_href(self) -> str | None:
        if self.name == CURRENT:
            return None
        return f"/diff?from={self.name}&to={CURRENT}"

    @property
    def short_hash(self) -> str:
        """`shown_hash` cut as people quote it: 12 digits of the commit, 8 of the distgit."""
        if self.aggregate_hash:
            return self.aggregate_hash[:12]
        if self.commit_hash:
            return f"{self.commit_hash[:12]}_{(self.distro_hash or '')[:8]}"
        return ""

    @property
    def shown_hash(self) -> str:
        if self.aggregate_hash:
            return self.aggregate_hash
        if self.commit_hash:
            return f"{self.commit_hash}_{(self.distro_hash or '')[:8]}"
        return ""


def _label_kind(name: str) -> str:
    if name in (CURRENT, CONSISTENT):
        return "builder"
    return "previous" if name.startswith(PREVIOUS_PREFIX) else "promotion"


def _label_order(label: LabelView) -> tuple[int, str]:
    rank = {CURRENT: 0, CONSISTENT: 1}.get(label.name)
    if rank is None:
        rank = 3 if label.kind == "previous" else 2
    return rank, label.name


def _hash_dir_of(target: str) -> tuple[str, str] | None:
    """(relpath below repos/, hash directory name) of a label link's target
    (`xx/yy/<commit>_<distro>`, or `component/<c>/xx/yy/...` for a component's label)."""
    parts = [p for p in target.split("/") if p not in ("", ".")]
    if len(parts) < 3 or ".." in parts or target.startswith("/"):
        return None
    shard1, shard2, name = parts[-3], parts[-2], parts[-1]
    if not (is_shard(shard1) and is_shard(shard2) and name.startswith(shard1 + shard2)):
        return None
    return "/".join(parts), name


def _moved(path: Path) -> float | None:
    try:
        return path.lstat().st_mtime
    except OSError:
        return None


def _aggregate_hash(folder: Path, reponame: str) -> str | None:
    try:
        text = (folder / f"{reponame}.repo.md5").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    value = text.strip()
    return value if re.fullmatch(r"[0-9a-f]{7,64}", value) else None


def labels(config: Config, connection: Connection) -> list[LabelView]:
    """Every label in `repos/`: current and consistent first, then the promotions and their
    `previous-` labels, each with what it points at and when it moved."""
    repos = config.repos_dir
    found: list[tuple[str, str, str, float | None]] = []  # name, relpath, dir name, moved
    aggregates: list[LabelView] = []
    try:
        entries = list(os.scandir(repos))
    except OSError:
        return []
    for entry in entries:
        name = entry.name
        if is_shard(name) or name == COMPONENT_DIR or name in REPORT_FILES:
            continue
        try:
            check_label(name)
        except InvalidName:
            continue
        path = Path(entry.path)
        if entry.is_symlink():
            try:
                target = str(path.readlink())
            except OSError:
                continue
            located = _hash_dir_of(target)
            if located is not None:
                found.append((name, *located, _moved(path)))
        elif entry.is_dir(follow_symlinks=False):
            aggregate = _aggregate_hash(path, config.reponame)
            if aggregate is not None:
                md5 = path / f"{config.reponame}.repo.md5"
                aggregates.append(
                    LabelView(name, _label_kind(name), _moved(md5), aggregate_hash=aggregate)
                )
    builds = _builds_of_dirs(connection, {dirname for _, _, dirname, _ in found})
    views = aggregates + [
        _label_view(name, relpath, moved, builds.get(dirname))
        for name, relpath, dirname, moved in found
    ]
    return sorted(views, key=_label_order)


@dataclass(frozen=True, slots=True)
class _Build:
    package: str
    commit_hash: str
    distro_hash: str | None
    built: int | None


def _label_view(name: str, relpath: str, moved: float | None, build: _Build | None) -> LabelView:
    commit_hash, _, rest = relpath.rsplit("/", 1)[-1].partition("_")
    return LabelView(
        name=name,
        kind=_label_kind(name),
        moved=moved,
        path=relpath,
        commit_hash=build.commit_hash if build else commit_hash,
        distro_hash=build.distro_hash if build else rest.partition("_")[0] or None,
        package=build.package if build else None,
        built=build.built if build else None,
    )


def _builds_of_dirs(connection: Connection, dirnames: Iterable[str]) -> dict[str, _Build]:
    """The successful builds whose hash directories are `dirnames`, by directory name: one
    lookup of their commit hashes in the hashes index."""
    hashes = {name.partition("_")[0] for name in dirnames}
    hashes = {h for h in hashes if _HEX_PREFIX.match(h)}
    if not hashes:
        return {}
    query = select(
        Commit.project_name,
        Commit.commit_hash,
        Commit.distro_hash,
        Commit.extended_hash,
        Commit.dt_build,
    ).where(Commit.commit_hash.in_(sorted(hashes)), Commit.status == CommitStatus.SUCCESS)
    wanted = set(dirnames)
    found: dict[str, _Build] = {}
    for package, commit_hash, distro_hash, extended_hash, built in connection.execute(query):
        try:
            name = hash_dir_name(commit_hash, distro_hash, extended_hash)
        except InvalidName:
            continue
        if name in wanted:
            found[name] = _Build(package, commit_hash, distro_hash, built)
    return found


# --- builds per day ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BuildDay:
    day: int  # epoch of the day's midnight, UTC
    success: int
    failed: int
    retry: int

    @property
    def total(self) -> int:
        return self.success + self.failed + self.retry


class _PastDays:
    """The counts of the days before today, per database, kept a few minutes: they change
    only when a build of an earlier day is imported. Today's are counted at every request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: weakref.WeakKeyDictionary[
            Engine, tuple[int, float, dict[int, dict[str, int]]]
        ] = weakref.WeakKeyDictionary()

    def get(self, connection: Connection, start: int, end: int) -> dict[int, dict[str, int]]:
        with self._lock:
            cached = self._counts.get(connection.engine)
        if cached is not None and cached[0] == start and time.monotonic() - cached[1] < _PAST_TTL:
            return cached[2]
        counts = _count_days(connection, start, end)
        with self._lock:
            self._counts[connection.engine] = (start, time.monotonic(), counts)
        return counts


_PAST_TTL = 300.0
_PAST = _PastDays()


def _count_days(connection: Connection, start: int, end: int | None) -> dict[int, dict[str, int]]:
    """Builds by day (from `start`, in days) and status, built from `start` to `end`."""
    day = ((Commit.dt_build - start) // DAY).label("day")
    query = (
        select(day, Commit.status, func.count())
        .where(Commit.dt_build >= start, Commit.type == "rpm")
        .group_by(day, Commit.status)
    )
    if end is not None:
        query = query.where(Commit.dt_build < end)
    counts: dict[int, dict[str, int]] = {}
    for index, status, count in connection.execute(query):
        if index is not None:
            counts.setdefault(int(index), {})[status] = count
    return counts


def builds_per_day(connection: Connection, now: float, days: int = BUILD_DAYS) -> list[BuildDay]:
    """Builds of each of the last `days` days (UTC), newest first: ranges of the `dt_build`
    index grouped by the database, the days before today kept a few minutes."""
    today = int(now) - int(now) % DAY
    start = today - (days - 1) * DAY
    counts = dict(_PAST.get(connection, start, today)) if days > 1 else {}
    counts[days - 1] = _count_days(connection, today, None).get(0, {})
    result = []
    for index in reversed(range(days)):
        by_status = counts.get(index, {})
        result.append(
            BuildDay(
                day=start + index * DAY,
                success=by_status.get(CommitStatus.SUCCESS, 0),
                failed=by_status.get(CommitStatus.FAILED, 0),
                retry=by_status.get(CommitStatus.RETRY, 0),
            )
        )
    return result


# --- the queue and the builds under way ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueuedBuild:
    committed: str
    package: str
    commit_hash: str
    url: str | None  # the commit on its forge, when queue.html links one (http(s) only)

    @property
    def linked(self) -> bool:
        """The package has a page (its name is valid)."""
        try:
            check_package_name(self.package)
        except InvalidName:
            return False
        return True


@dataclass(frozen=True, slots=True)
class Queue:
    """queue.html's rows (the cycle's builds not recorded yet) and when it was written;
    `written` is None when there is no queue.html (no cycle ran with reports here)."""

    builds: tuple[QueuedBuild, ...] = ()
    written: float | None = None

    def shown(self, limit: int = QUEUE_SHOWN) -> tuple[QueuedBuild, ...]:
        return self.builds[:limit]


class _QueueParser(HTMLParser):
    """The rows of queue.html's table body (reports/templates/queue.html and _rows.html:
    commit time, package, commit hash with an optional link to its forge)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[tuple[list[str], str | None]] = []
        self._in_body = False
        self._cells: list[str] | None = None
        self._href: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tbody":
            self._in_body = True
        elif self._in_body and tag == "tr":
            self._cells, self._href = [], None
        elif self._cells is not None and tag == "td":
            self._cell = []
        elif self._cell is not None and tag == "a" and self._href is None:
            self._href = dict(attrs).get("href")

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._in_body = False
        elif tag == "td" and self._cells is not None and self._cell is not None:
            self._cells.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._cells is not None:
            self.rows.append((self._cells, self._href))
            self._cells = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _parse_queue(text: str) -> tuple[QueuedBuild, ...]:
    parser = _QueueParser()
    parser.feed(text)
    parser.close()
    builds = []
    for cells, href in parser.rows:
        if len(cells) < 3:
            continue
        url = href if href and is_http_url(href) else None
        builds.append(QueuedBuild(cells[0], cells[1], cells[2], url))
    return tuple(builds)


class _QueueCache:
    """queue.html parsed once per version of the file."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[str, int, int, int] | None = None
        self._queue = Queue()

    def get(self, path: Path) -> Queue:
        try:
            stat = path.stat()
        except OSError:
            return Queue()
        key = (str(path), stat.st_mtime_ns, stat.st_size, stat.st_ino)
        with self._lock:
            if key != self._key:
                builds: tuple[QueuedBuild, ...] = ()
                if stat.st_size <= _QUEUE_MAX_BYTES:
                    try:
                        builds = _parse_queue(path.read_text(encoding="utf-8", errors="replace"))
                    except OSError:
                        return Queue()
                self._key, self._queue = key, Queue(builds, stat.st_mtime)
            return self._queue


_QUEUE = _QueueCache()


def queue(config: Config) -> Queue:
    """The queue the process running the cycle wrote last (`repos/queue.html`)."""
    return _QUEUE.get(config.repos_dir / QUEUE_HTML)


@dataclass(frozen=True, slots=True)
class RunningBuild:
    package: str
    commit_prefix: str  # the commit hash's first 12 characters
    started: float
    nvr: str | None  # from the build log's first line, once the sources are prepared
    output: float | None  # when the build log last changed


def building_now(config: Config) -> list[RunningBuild]:
    """The builds under way: the work folders of `<datadir>/builds/`, oldest first."""
    try:
        entries = list(os.scandir(config.datadir / BUILDS_DIR))
    except OSError:
        return []
    running = []
    for entry in entries:
        match = _WORK_FOLDER.match(entry.name)
        if match is None or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            name = check_package_name(match["name"])
        except InvalidName:
            continue
        log = Path(entry.path) / "rpmbuild.log"
        running.append(
            RunningBuild(
                package=name,
                commit_prefix=match["hash"],
                started=int(match["ms"]) / 1000,
                nvr=nvr_from_log_header(read_first_line(log)),
                output=_moved(log),
            )
        )
    return sorted(running, key=lambda b: b.started)


# --- the package table and what consistent waits for ---------------------------------------


@dataclass(frozen=True, slots=True)
class _TableLine:
    standing: Standing
    upstream: str | None
    days: int | None  # changes with the date, not only with builds
    view: PackageView


class _PackageTables:
    """Each database's package table, kept between requests: a package's line is read and
    made again only when its `package_status` row points at other builds (its build rows never
    change: a recheck or a purge only sets flags, which the table does not show), its
    upstream changed or a day passed; `status_keys` says which, from one small table. Making
    a thousand lines takes ten times longer than that query (links, forge URLs, NVRs)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tables: weakref.WeakKeyDictionary[Engine, dict[str, _TableLine]] = (
            weakref.WeakKeyDictionary()
        )

    def get(
        self, connection: Connection, packages: PackageList, now: float
    ) -> dict[str, PackageView]:
        keys = status_keys(connection)
        with self._lock:
            old = self._tables.get(connection.engine, {})
        stale = [n for n, key in keys.items() if n not in old or old[n].standing.key != key]
        fetched = standings(connection, stale) if stale else {}
        lines: dict[str, _TableLine] = {}
        for name in sorted(keys):
            line = old.get(name)
            standing = fetched.get(name) if name in fetched else line.standing if line else None
            if standing is None:
                continue  # its package_status row went away between the two queries
            upstream, days = packages.upstream(name), shown_days(standing, now)
            if line is None or (line.standing, line.upstream, line.days) != (
                standing,
                upstream,
                days,
            ):
                view = package_view(name, standing, upstream, now)
                line = _TableLine(standing, upstream, days, view)
            lines[name] = line
        with self._lock:
            self._tables[connection.engine] = lines
        return {name: line.view for name, line in lines.items()}


_TABLES = _PackageTables()


def package_table(
    connection: Connection, packages: PackageList, now: float
) -> dict[str, PackageView]:
    """Every package with a build, by name: its last build, NVR, first failure and days since
    its last success (the status report's facts: `package_status` and the builds it points
    at, by primary key), from lines kept between requests."""
    return _TABLES.get(connection, packages, now)


@dataclass(frozen=True, slots=True)
class Waiting:
    """A package `consistent` waits for, and why."""

    package: str
    reason: str  # the newest build's status, "never built", "queued" or "building"
    view: PackageView | None  # its last build, when it has one


WAITING_SHOWN = 50  # packages with a build queued or under way named on the page


@dataclass(frozen=True)
class WaitingList:
    """What `consistent` waits for: `blocking`, the packages whose newest build is not a
    success or that were never built (all of them), and `pending`, those with a build queued
    or under way (a first cycle queues every package: the first `WAITING_SHOWN` are kept,
    `pending_count` counts them all)."""

    blocking: list[Waiting]
    pending: list[Waiting]
    pending_count: int

    def __len__(self) -> int:
        return len(self.blocking) + self.pending_count


def consistent_waits_for(
    table: Mapping[str, PackageView],
    packages: PackageList,
    queued: Iterable[str] = (),
    running: Iterable[str] = (),
    shown: int = WAITING_SHOWN,
) -> WaitingList:
    """The packages whose newest build is not a success (consistent moves only when every
    package sharing the repository succeeded: domain.consistency.is_consistent), packages of
    the metadata never built, and those with a build queued or under way. Packages under
    review never hold consistent back."""
    review = {name for name, info in packages.packages.items() if info.under_review}
    names = set(packages.packages) | set(table)
    blocking: dict[str, Waiting] = {}
    for name in sorted(names - review):
        view = table.get(name)
        if view is None:
            blocking[name] = Waiting(name, "never built", None)
        elif view.last.status != CommitStatus.SUCCESS:
            blocking[name] = Waiting(name, view.last.status, view)
    pending: dict[str, Waiting] = {}
    for reason, names_ in (("building", running), ("queued", queued)):
        for name in names_:
            if name not in blocking and name not in pending and name not in review:
                pending[name] = Waiting(name, reason, table.get(name))
    ordered = sorted(pending.values(), key=lambda w: (w.reason != "building", w.package))
    return WaitingList(list(blocking.values()), ordered[:shown], len(ordered))


# --- one package ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BuildView:
    id: int
    commit_hash: str
    commit_url: str | None
    distro_hash: str | None
    status: str
    committed: int | None
    built: int | None
    nvr: str | None
    repo: str | None  # the hash directory below repos/; None when purged or not a valid path
    purged: bool
    rechecked: bool
    note: str  # the first line of a failure's notes

    @property
    def repo_href(self) -> str | None:
        return f"/repos/{self.repo}/" if self.repo else None

    @property
    def log_href(self) -> str | None:
        return f"/repos/{self.repo}/rpmbuild.log" if self.repo else None

    @property
    def viewer_href(self) -> str | None:
        return f"/view/{self.repo}/rpmbuild.log" if self.repo else None

    @property
    def row_class(self) -> str:
        return _ROW_CLASSES.get(self.status, "")


def _build_view(row: Any, upstream: str | None) -> BuildView:
    purged = bool(row.flags & FLAG_PURGED)
    try:
        repo: str | None = str(
            repo_relpath(row.commit_hash, row.distro_hash, row.extended_hash, row.component)
        )
    except InvalidName:
        repo = None
    artifacts = [a for a in (row.artifacts or "").split(",") if a]
    return BuildView(
        id=row.id,
        commit_hash=row.commit_hash,
        commit_url=commit_url(upstream, row.commit_hash),
        distro_hash=row.distro_hash,
        status=row.status,
        committed=row.dt_commit,
        built=row.dt_build,
        nvr=nvr_from_artifacts(artifacts),
        repo=None if purged else repo,
        purged=purged,
        rechecked=bool(row.flags & FLAG_RECHECKED),
        note=""
        if row.status == CommitStatus.SUCCESS
        else (row.notes or "").partition("\n")[0][:300],
    )


@dataclass(frozen=True, slots=True)
class PackagePage:
    name: str
    info: PackageInfo | None  # None: not in the metadata (any more)
    standing: PackageView | None  # None: never built
    builds: list[BuildView]


_BUILD_COLUMNS = (
    Commit.id,
    Commit.commit_hash,
    Commit.distro_hash,
    Commit.extended_hash,
    Commit.component,
    Commit.status,
    Commit.dt_commit,
    Commit.dt_build,
    Commit.artifacts,
    Commit.notes,
    Commit.flags,
)


def package_page(
    connection: Connection,
    name: str,
    packages: PackageList,
    now: float,
    limit: int = PACKAGE_BUILDS,
) -> PackagePage | None:
    """A package's standing and its newest `limit` builds; None for a package neither the
    metadata nor the database knows. InvalidName for a name that is no package name."""
    check_package_name(name)
    info = packages.packages.get(name)
    found: Mapping[str, Standing] = standings(connection, [name])
    query = (
        select(*_BUILD_COLUMNS)
        .where(Commit.project_name == name)
        .order_by(Commit.id.desc())
        .limit(limit)
    )
    upstream = packages.upstream(name)
    builds = [_build_view(row, upstream) for row in connection.execute(query)]
    if info is None and not builds and name not in found:
        return None
    standing = found.get(name)
    view = package_view(name, standing, packages.upstream(name), now) if standing else None
    return PackagePage(name, info, view, builds)


# --- search --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommitHit:
    package: str
    commit_hash: str
    distro_hash: str | None
    status: str
    built: int | None
    repo: str | None

    @property
    def repo_href(self) -> str | None:
        return f"/repos/{self.repo}/" if self.repo else None


@dataclass(frozen=True, slots=True)
class NvrHit:
    package: str
    nvr: str
    repo: str | None

    @property
    def repo_href(self) -> str | None:
        return f"/repos/{self.repo}/" if self.repo else None


@dataclass(frozen=True)
class SearchResults:
    query: str
    packages: list[str] = field(default_factory=list)
    commits: list[CommitHit] = field(default_factory=list)
    nvrs: list[NvrHit] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.packages or self.commits or self.nvrs or self.labels)


_NVRS_OF = select(
    Commit.id,
    Commit.project_name,
    Commit.commit_hash,
    Commit.distro_hash,
    Commit.extended_hash,
    Commit.component,
    Commit.artifacts,
).where(Commit.id.in_(bindparam("ids", expanding=True)))


class _CurrentNvrs:
    """Each package's last successful build's NVR, per database, kept between searches: a
    package's entry is read again only when `package_status` points at another success
    (builds rows never change), so a search reads one small table, not a thousand builds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._nvrs: weakref.WeakKeyDictionary[Engine, dict[str, tuple[int, NvrHit | None]]] = (
            weakref.WeakKeyDictionary()
        )

    def get(self, connection: Connection, keys: Mapping[str, StatusKey]) -> list[NvrHit]:
        """The NVRs of the successes `keys` (status_keys) points at."""
        successes = {name: success for name, (_, success, _) in keys.items() if success}
        with self._lock:
            old = self._nvrs.get(connection.engine, {})
        kept = {n: old[n] for n, success in successes.items() if n in old and old[n][0] == success}
        wanted = [success for n, success in successes.items() if n not in kept]
        for start in range(0, len(wanted), _NVR_CHUNK):
            chunk = wanted[start : start + _NVR_CHUNK]
            for row in connection.execute(_NVRS_OF, {"ids": chunk}):
                nvr = nvr_from_artifacts((row.artifacts or "").split(","))
                repo = _repo_or_none(
                    row.commit_hash, row.distro_hash, row.extended_hash, row.component
                )
                hit = NvrHit(row.project_name, nvr, repo) if nvr else None
                kept[row.project_name] = (row.id, hit)
        with self._lock:
            self._nvrs[connection.engine] = kept
        return [hit for _, hit in kept.values() if hit is not None]


_NVR_CHUNK = 500
_CURRENT_NVRS = _CurrentNvrs()


def _repo_or_none(
    commit_hash: str, distro_hash: str | None, extended: str | None, component: str | None
) -> str | None:
    try:
        return str(repo_relpath(commit_hash, distro_hash, extended, component))
    except InvalidName:
        return None


def commits_with_prefix(
    connection: Connection, prefix: str, limit: int = SEARCH_LIMIT
) -> list[CommitHit]:
    """Builds whose commit hash starts with `prefix` (at least 4 hex digits), newest first:
    a range of the hashes index (`commit_hash >= p AND commit_hash < p + "g"`: every hex digit
    sorts before "g")."""
    prefix = prefix.lower()
    if not _HEX_PREFIX.match(prefix):
        return []
    query = (
        select(*REPOSITORY_COLUMNS)
        .where(Commit.commit_hash >= prefix, Commit.commit_hash < prefix + "g")
        .limit(limit)
    )
    rows = sorted(connection.execute(query), key=lambda r: r.id, reverse=True)
    return [
        CommitHit(
            package=r.project_name,
            commit_hash=r.commit_hash,
            distro_hash=r.distro_hash,
            status=r.status,
            built=r.dt_build,
            repo=None
            if r.flags & FLAG_PURGED
            else _repo_or_none(r.commit_hash, r.distro_hash, r.extended_hash, r.component),
        )
        for r in rows
    ]


def search(
    connection: Connection,
    config: Config,
    packages: PackageList,
    text: str,
    limit: int = SEARCH_LIMIT,
) -> SearchResults:
    """Packages whose name contains `text`, builds whose commit hash starts with it, current
    NVRs (each package's last successful build) containing it, and labels whose name contains
    it; case-insensitive, `limit` of each."""
    needle = text.strip().lower()
    if not needle:
        return SearchResults(text)
    keys = status_keys(connection)
    names = set(packages.packages) | set(keys)
    matched = sorted(n for n in names if needle in n.lower())[:limit]
    nvrs = sorted(
        (hit for hit in _CURRENT_NVRS.get(connection, keys) if needle in hit.nvr.lower()),
        key=lambda hit: hit.nvr,
    )
    found_labels = sorted(
        label.name for label in labels(config, connection) if needle in label.name.lower()
    )
    return SearchResults(
        query=text,
        packages=matched,
        commits=commits_with_prefix(connection, needle, limit)
        if len(needle) >= MIN_HASH_PREFIX
        else [],
        nvrs=nvrs[:limit],
        labels=found_labels[:limit],
    )
