"""What the reports read; no query's cost depends on the history's length.

`recent_build_ids` walks the primary key backwards and stops after `limit` rows;
`builds_by_id` then reads only the rows a report has not seen yet. `status_keys` reads
`package_status` alone (one small row per package, kept current by every build), so a report
can tell which packages changed; `standings` looks up, by primary key, the commits those rows
point at. Core rows, not ORM objects, and statements built once: building ORM identities or
statements for a thousand rows would cost more than running the queries.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Label, RowMapping, Select, bindparam, select
from sqlalchemy.orm import aliased

from conveyor.domain.status import CommitStatus
from conveyor.store.models import FLAG_RECHECKED, Commit, PackageStatus

RECENT_BUILDS = 300  # DLRN's report.html length

# Which package_status row a package has: its ids change with every recorded build.
StatusKey = tuple[int, int | None, int | None]  # last commit, last success, first failure
# Past this many names, reading every package is cheaper than a long IN list (and stays
# under SQLite's bound-parameter limit).
_MAX_NAMES = 200


@dataclass(frozen=True, slots=True)
class BuildRecord:
    """One commits row, the columns a report shows."""

    id: int
    project: str
    commit_hash: str
    distro_hash: str | None
    extended_hash: str | None
    component: str | None
    status: str
    dt_commit: int | None
    dt_build: int | None


@dataclass(frozen=True, slots=True)
class Standing:
    """One package's line of the status report."""

    key: StatusKey  # the package_status row these facts were read from
    last: BuildRecord
    artifacts: str | None  # of the last build
    notes: str | None  # of the last build: why it failed
    first_failure: BuildRecord | None  # the first failure after the last success
    has_success: bool
    last_success_dt: int | None


_FIELDS = (
    ("id", "id"),
    ("project", "project_name"),
    ("commit_hash", "commit_hash"),
    ("distro_hash", "distro_hash"),
    ("extended_hash", "extended_hash"),
    ("component", "component"),
    ("status", "status"),
    ("dt_commit", "dt_commit"),
    ("dt_build", "dt_build"),
)


def _labelled(table: type[Commit], prefix: str) -> list[Label[Any]]:
    return [getattr(table, column).label(prefix + field) for field, column in _FIELDS]


def _record(row: RowMapping, prefix: str) -> BuildRecord:
    return BuildRecord(**{field: row[prefix + field] for field, _ in _FIELDS})


_RECENT = (
    select(Commit.id)
    .where(
        Commit.type == "rpm",
        Commit.status != CommitStatus.RETRY,
        Commit.flags.op("&")(FLAG_RECHECKED) == 0,
    )
    .order_by(Commit.id.desc())
    .limit(bindparam("limit"))
)
_BY_ID = select(*_labelled(Commit, "")).where(Commit.id.in_(bindparam("ids", expanding=True)))
_KEYS = select(
    PackageStatus.project_name,
    PackageStatus.last_commit_id,
    PackageStatus.last_success_id,
    PackageStatus.first_failure_id,
)


def _standings_query() -> Select[Any]:
    last, failure, success = aliased(Commit), aliased(Commit), aliased(Commit)
    return (
        select(
            *_labelled(last, "last_"),
            last.artifacts.label("artifacts"),
            last.notes.label("notes"),
            *_labelled(failure, "failure_"),
            PackageStatus.last_success_id.label("summary_success"),
            PackageStatus.first_failure_id.label("summary_failure"),
            success.dt_build.label("success_dt"),
        )
        .select_from(PackageStatus)
        .join(last, last.id == PackageStatus.last_commit_id)
        .outerjoin(failure, failure.id == PackageStatus.first_failure_id)
        .outerjoin(success, success.id == PackageStatus.last_success_id)
    )


_STANDINGS = _standings_query()
_STANDINGS_OF = _STANDINGS.where(PackageStatus.project_name.in_(bindparam("names", expanding=True)))


def recent_build_ids(connection: Connection, limit: int = RECENT_BUILDS) -> list[int]:
    """The ids of the newest `limit` builds, newest first, as DLRN's report.html lists them:
    no RETRY rows, and no rows `conveyor recheck` set aside (DLRN deletes those)."""
    return list(connection.scalars(_RECENT, {"limit": limit}))


def builds_by_id(connection: Connection, ids: Collection[int]) -> dict[int, BuildRecord]:
    if not ids:
        return {}
    records = {}
    wanted = list(ids)
    for start in range(0, len(wanted), _MAX_NAMES):
        chunk = wanted[start : start + _MAX_NAMES]
        for row in connection.execute(_BY_ID, {"ids": chunk}).mappings():
            records[row["id"]] = _record(row, "")
    return records


def status_keys(connection: Connection) -> dict[str, StatusKey]:
    """Every package that has a build: which builds its summary points at."""
    return {
        name: (last, success, failure) for name, last, success, failure in connection.execute(_KEYS)
    }


def standings(connection: Connection, names: Collection[str] | None = None) -> dict[str, Standing]:
    """The status report's facts about the packages `names` (None: every package), by name."""
    if names is not None and len(names) <= _MAX_NAMES:
        rows = connection.execute(_STANDINGS_OF, {"names": list(names)})
    else:
        rows = connection.execute(_STANDINGS)
    wanted = None if names is None else set(names)
    result = {}
    for row in rows.mappings():
        if wanted is not None and row["last_project"] not in wanted:
            continue
        result[row["last_project"]] = Standing(
            key=(row["last_id"], row["summary_success"], row["summary_failure"]),
            last=_record(row, "last_"),
            artifacts=row["artifacts"],
            notes=row["notes"],
            first_failure=_record(row, "failure_") if row["failure_commit_hash"] else None,
            has_success=row["summary_success"] is not None,
            last_success_dt=row["success_dt"],
        )
    return result


# A repository's row as the dashboard's pages show it (one build: package, hashes, state).
REPOSITORY_COLUMNS = (
    Commit.id,
    Commit.project_name,
    Commit.commit_hash,
    Commit.distro_hash,
    Commit.extended_hash,
    Commit.component,
    Commit.status,
    Commit.dt_build,
    Commit.flags,
)
