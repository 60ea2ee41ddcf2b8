"""The FTBFS page and its feed, read side: the packages failing now, and the failures and
fixes of the newest builds.

Failing packages come from `package_status` (one row per package) and the builds it points at,
by primary key. The feed's events are found walking `commits` backwards by primary key in
batches: each build is compared with the package's previous build (RETRY rows and rows set
aside by `conveyor recheck` do not count), and the walk stops once the newest `limit` events
are known. A package whose previous build lies further back than the walk went is asked for it
with one seek of the `(project_name, id)` index.
"""

from __future__ import annotations

import re
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, bindparam, func, select

from conveyor.config import Config
from conveyor.domain.names import InvalidName
from conveyor.domain.paths import repo_relpath
from conveyor.domain.status import CommitStatus
from conveyor.publish.logs import read_tail
from conveyor.reports.dashboard import PackageList
from conveyor.reports.queries import BuildRecord, builds_by_id, standings
from conveyor.reports.views import CommitView, commit_view, days_since, shown_days
from conveyor.store.models import FLAG_RECHECKED, Commit, PackageStatus

FEED_EVENTS = 100
EXCERPT_LINES = 40
EXCERPT_BYTES = 16 * 1024
_MAX_LINE = 400
# Lines shown highlighted: rpmbuild's `error:` lines (compilers' `file.c:3: error:` too) and
# its verdict, as conveyor.publish.logs picks the excerpt's window.
_FAILURE_LINE = re.compile(r"(?:^|[\s:])error:|Bad exit status")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_FIRST_BATCH = 500
_MAX_BATCH = 8_000
# The walk reads at most this many rows; the packages still unresolved are then asked for
# their previous build one by one (one index seek each).
_SCAN_LIMIT = 100_000
NOTES_LOG = "notes.log"


@dataclass(frozen=True, slots=True)
class ExcerptLine:
    text: str
    hit: bool  # a failure line: shown highlighted


def excerpt_lines(text: str, size: int = EXCERPT_LINES) -> tuple[ExcerptLine, ...]:
    """The last `size` lines of a failure's notes, control characters replaced and long
    lines cut, failure lines marked."""
    lines = text.rstrip("\n").splitlines()[-size:]
    shown = []
    for line in lines:
        clean = _CONTROL.sub("\ufffd", line)
        if len(clean) > _MAX_LINE:
            clean = clean[:_MAX_LINE] + " [...]"
        shown.append(ExcerptLine(clean, bool(_FAILURE_LINE.search(clean))))
    return tuple(shown)


@dataclass(frozen=True, slots=True)
class Failure:
    """A package whose newest build failed."""

    package: str
    last: CommitView  # the failing build
    first: CommitView | None  # the first failure since the last success
    first_built: int | None
    days: int | None  # since the last success; None with `never`
    never: bool  # no success at all
    failing_days: int | None  # since the first failure
    maintainers: tuple[str, ...]
    excerpt: tuple[ExcerptLine, ...]
    review: str | None = None  # nothing records a review or issue for a failure yet

    @property
    def summary(self) -> str:
        """The excerpt's first failure line (its first line when none looks like one)."""
        hits = [line.text for line in self.excerpt if line.hit]
        return hits[0] if hits else (self.excerpt[0].text if self.excerpt else "")

    @property
    def repo_href(self) -> str | None:
        return f"/repos/{self.last.repo}/" if self.last.repo else None

    @property
    def log_href(self) -> str | None:
        return f"/repos/{self.last.log}" if self.last.log else None

    @property
    def viewer_href(self) -> str | None:
        return f"/view/{self.last.log}" if self.last.log else None


_FAILING = select(PackageStatus.project_name).where(
    PackageStatus.last_status == CommitStatus.FAILED
)


def _notes_log(config: Config, repo: str | None) -> str:
    if repo is None:
        return ""
    data = read_tail(config.repos_dir / Path(repo) / NOTES_LOG, EXCERPT_BYTES)
    return data.decode("utf-8", errors="replace")


def failing_packages(
    connection: Connection, config: Config, packages: PackageList, now: float
) -> list[Failure]:
    """Every package whose newest build FAILED, the longest failing first."""
    names = list(connection.scalars(_FAILING))
    if not names:
        return []
    failures = []
    for name, standing in standings(connection, names).items():
        upstream = packages.upstream(name)
        last = commit_view(standing.last, upstream)
        first_record = standing.first_failure
        first = commit_view(first_record, upstream) if first_record else None
        notes = (standing.notes or "")[-EXCERPT_BYTES:]
        if not notes.strip():
            notes = _notes_log(config, last.repo)
        first_built = first_record.dt_build if first_record else standing.last.dt_build
        failures.append(
            Failure(
                package=name,
                last=last,
                first=first,
                first_built=first_built,
                days=shown_days(standing, now),
                never=not standing.has_success,
                failing_days=days_since(now, first_built) if first_built else None,
                maintainers=packages.maintainers(name),
                excerpt=excerpt_lines(notes),
            )
        )
    return sorted(failures, key=lambda f: (f.first_built or 0, f.package))


# --- the feed: failures and fixes ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Transition:
    """A build whose status differs from its package's previous build: a failure (SUCCESS,
    or nothing, then FAILED) or a fix (FAILED then SUCCESS)."""

    build: BuildRecord
    previous: BuildRecord | None

    @property
    def fixed(self) -> bool:
        return self.build.status == CommitStatus.SUCCESS

    @property
    def repo(self) -> str | None:
        b = self.build
        try:
            return str(repo_relpath(b.commit_hash, b.distro_hash, b.extended_hash, b.component))
        except InvalidName:
            return None


_COUNTED = (
    Commit.type == "rpm",
    Commit.status != CommitStatus.RETRY,
    Commit.flags.op("&")(FLAG_RECHECKED) == 0,
)
# The walk reads three columns as plain tuples: making a record of every row walked cost
# more than reading it. The events' builds are read in full afterwards, by primary key.
_WALK = (
    select(Commit.id, Commit.project_name, Commit.status)
    .where(Commit.id < bindparam("before"), *_COUNTED)
    .order_by(Commit.id.desc())
    .limit(bindparam("limit"))
)
_PREVIOUS = (
    select(Commit.id, Commit.status)
    .where(Commit.project_name == bindparam("name"), Commit.id < bindparam("before"), *_COUNTED)
    .order_by(Commit.id.desc())
    .limit(1)
)


def _is_event(status: str, previous: str | None) -> bool:
    """Whether a build of `status` after one of `previous` (None: the package's first build)
    is a failure or a fix."""
    if status == CommitStatus.FAILED:
        return previous is None or previous == CommitStatus.SUCCESS
    if status == CommitStatus.SUCCESS:
        return previous == CommitStatus.FAILED
    return False


class _FeedCache:
    """Each database's newest events, kept while no build was recorded since (the newest
    commit id is one seek of the primary key) and for at most a minute (a recheck or a
    purge changes flags without a new row)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: weakref.WeakKeyDictionary[
            Engine, tuple[int | None, int, float, list[Transition]]
        ] = weakref.WeakKeyDictionary()

    def get(self, connection: Connection, limit: int) -> list[Transition]:
        newest = connection.scalar(_NEWEST)
        with self._lock:
            cached = self._events.get(connection.engine)
        if (
            cached is not None
            and cached[:2] == (newest, limit)
            and time.monotonic() - cached[2] < _FEED_TTL
        ):
            return cached[3]
        events = transitions(connection, limit)
        with self._lock:
            self._events[connection.engine] = (newest, limit, time.monotonic(), events)
        return events


_FEED_TTL = 60.0
_NEWEST = select(func.max(Commit.id))
_FEED = _FeedCache()


def feed_events(connection: Connection, limit: int = FEED_EVENTS) -> list[Transition]:
    """`transitions`, answered from memory while no build was recorded since."""
    return _FEED.get(connection, limit)


def transitions(
    connection: Connection,
    limit: int = FEED_EVENTS,
    batch: int = _FIRST_BATCH,
    scan_limit: int = _SCAN_LIMIT,
) -> list[Transition]:
    """The newest `limit` failures and fixes, newest first. The walk reads `batch` rows,
    then twice as many each time, up to `_MAX_BATCH`."""
    events: list[tuple[int, int | None]] = []  # (build id, previous build id)
    # Each package's oldest build seen so far (id, status): its previous one is not known yet.
    pending: dict[str, tuple[int, str]] = {}
    before = 2**62
    scanned = 0
    exhausted = False
    while True:
        rows = connection.execute(_WALK, {"before": before, "limit": batch}).all()
        for build_id, project, status in rows:
            newer = pending.get(project)
            if newer is not None and _is_event(newer[1], status):
                events.append((newer[0], build_id))
            pending[project] = (build_id, status)
        scanned += len(rows)
        if len(rows) < batch:
            exhausted = True
            break
        before = rows[-1][0]
        batch = min(batch * 2, _MAX_BATCH)
        # Events still unknown can only be at a pending build: once the newest `limit` known
        # events are all newer than every pending build, they are the answer.
        if len(events) >= limit:
            threshold = sorted(build for build, _ in events)[-limit]
            if all(build < threshold for build, _ in pending.values()):
                break
        if scanned >= scan_limit:
            break
    if exhausted:
        events += [(b, None) for b, status in pending.values() if _is_event(status, None)]
    else:
        events += _resolve(connection, pending, events, limit)
    events.sort(reverse=True)
    del events[limit:]
    ids = {build for build, _ in events} | {p for _, p in events if p is not None}
    records = builds_by_id(connection, ids)
    return [
        Transition(records[build], records.get(previous) if previous is not None else None)
        for build, previous in events
        if build in records
    ]


def _resolve(
    connection: Connection,
    pending: Mapping[str, tuple[int, str]],
    events: Sequence[tuple[int, int | None]],
    limit: int,
) -> list[tuple[int, int | None]]:
    """The events at the pending builds that could still be among the newest `limit`: each
    one's previous build, found by one seek of the `(project_name, id)` index."""
    threshold = sorted(build for build, _ in events)[-limit] if len(events) >= limit else 0
    found: list[tuple[int, int | None]] = []
    for project, (build, status) in pending.items():
        if build < threshold or status not in (CommitStatus.FAILED, CommitStatus.SUCCESS):
            continue
        row = connection.execute(_PREVIOUS, {"name": project, "before": build}).first()
        if _is_event(status, row.status if row is not None else None):
            found.append((build, row.id if row is not None else None))
    return found
