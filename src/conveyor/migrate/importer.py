"""`import-dlrn`: a DLRN builder's history and repositories become conveyor's.

Two passes over one consistent read of DLRN's database. The first converts and checks every
row, checks the `repos/` tree and conveyor's database, and counts; the import is refused if
anything cannot be stored as it is. The second writes every row in one transaction of
conveyor's database, ids unchanged: votes, promotions and API consumers refer to commits by
id, and those references must stay true. A dry run stops after the first pass.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, inspect, select, text
from sqlalchemy.engine.url import URL
from sqlalchemy.exc import SQLAlchemyError

from conveyor.config import Config
from conveyor.domain.names import InvalidName
from conveyor.domain.paths import repo_relpath
from conveyor.domain.status import CommitStatus
from conveyor.migrate.convert import IssueKind, convert_row
from conveyor.migrate.layout import Build, ReposCheck, check_location, check_tree
from conveyor.migrate.source import (
    DLRN_TABLES,
    DlrnDatabase,
    DlrnSnapshot,
    MigrationError,
    display_url,
    parse_url,
    primary_key,
    read_only_engine,
    reason,
    sqlite_path,
    target_table,
)
from conveyor.publish.locks import builder_lock
from conveyor.store.database import Database, DatabaseError
from conveyor.store.models import FLAG_PURGED, Base
from conveyor.store.package_status import rebuild_package_status

log = logging.getLogger(__name__)

# Users that votes or promotions name but that DLRN's users table lacks (dlrn-user delete on
# SQLite keeps their votes) are kept for the record with this password: it is no crypt hash,
# so no password can match it, as "!" in /etc/shadow.
LOCKED_PASSWORD = "!"  # noqa: S105 (a marker, not a secret)
# Tables whose ids conveyor's database hands out from a sequence (PostgreSQL).
_SEQUENCED = ("projects", "commits", "civotes", "civotes_agg", "promotions")
_EXAMPLES = 5

# (what is being done, rows done, rows in all): drives a progress bar on a terminal.
ProgressCallback = Callable[[str, int, int], None]


@dataclass(frozen=True)
class TableCount:
    name: str
    found: int  # rows in DLRN's table
    imported: int  # rows written (in a dry run: that would be written)


@dataclass
class MigrationReport:
    source: str  # DLRN's database URL, password hidden
    target: str  # conveyor's database URL, password hidden
    repos: Path
    dry_run: bool
    revision: str | None = None  # DLRN's Alembic revision, if its migrations were run
    tables: list[TableCount] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    repos_check: ReposCheck | None = None
    written: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors


class MigrationRefused(MigrationError):
    """Problems found before writing anything; the report lists every one of them."""

    def __init__(self, report: MigrationReport) -> None:
        super().__init__("; ".join(report.errors))
        self.report = report


class _Tally:
    """Problems of single rows, counted per kind with a few ids as examples: a database of
    500 000 commits with one bad column must give one line, not 500 000."""

    def __init__(self) -> None:
        self._items: dict[tuple[bool, str], tuple[int, list[str]]] = {}

    def add(self, error: bool, what: str, row_id: object) -> None:
        count, ids = self._items.get((error, what), (0, []))
        if len(ids) < _EXAMPLES:
            ids.append(str(row_id))
        self._items[(error, what)] = (count + 1, ids)

    def lines(self, error: bool) -> Iterator[str]:
        for (is_error, what), (count, ids) in self._items.items():
            if is_error == error:
                more = ", …" if count > len(ids) else ""
                yield f"{what}: {count} row(s) (e.g. {', '.join(ids)}{more})"


@dataclass
class _Plan:
    """What the first pass learnt, and what the second pass needs."""

    found: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, set[Any]] = field(default_factory=dict)  # table -> keys not imported
    users: set[str] = field(default_factory=set)
    locked_users: dict[str, int] = field(default_factory=dict)  # username -> references
    commit_ids: set[int] = field(default_factory=set)
    project_names: dict[str, int] = field(default_factory=dict)  # name -> id kept
    last_email: dict[int, int | None] = field(default_factory=dict)  # kept id -> newest
    builds: list[Build] = field(default_factory=list)  # successful, not purged
    newest: dict[str, Build] = field(default_factory=dict)  # newest success per package
    components: set[str] = field(default_factory=set)
    promotion_names: set[str] = field(default_factory=set)
    tally: _Tally = field(default_factory=_Tally)
    strict_lengths: bool = True

    def imported(self, name: str) -> int:
        extra = len(self.locked_users) if name == "users" else 0
        return self.found.get(name, 0) - len(self.skipped.get(name, ())) + extra


def _convert(plan: _Plan, name: str, raw: dict[str, Any]) -> dict[str, Any]:
    row, issues = convert_row(target_table(name), raw)
    row_id = raw.get(primary_key(name))
    for issue in issues:
        what = f"{name}.{issue.column}: {issue.kind} ({issue.detail})"
        if issue.kind is IssueKind.TOO_LONG:
            # SQLite ignores declared lengths (and so did DLRN's); PostgreSQL refuses.
            plan.tally.add(plan.strict_lengths, what, row_id)
        else:
            plan.tally.add(issue.kind in (IssueKind.INVALID, IssueKind.NULL), what, row_id)
    return row


def _filenames(artifacts: str | None) -> tuple[str, ...]:
    return tuple(PurePosixPath(a).name for a in (artifacts or "").split(",") if a)


def _scan_commit(plan: _Plan, row: dict[str, Any]) -> None:
    plan.commit_ids.add(row["id"])
    if row["component"]:
        plan.components.add(row["component"])
    flags = row["flags"] if isinstance(row["flags"], int) else 0
    if flags & ~FLAG_PURGED:
        # conveyor gives other bits a meaning (FLAG_RECHECKED): DLRN 0.26.1 sets only 0x2.
        plan.tally.add(
            False, f"commits.flags: bits other than DLRN's purged (0x2) in {flags}", row["id"]
        )
    if row["status"] is not None and row["status"] not in set(CommitStatus):
        plan.tally.add(False, f"commits.status: unknown status {row['status']!r}", row["id"])
    if row["status"] != CommitStatus.SUCCESS or row["type"] != "rpm":
        return
    try:
        relpath = repo_relpath(
            row["commit_hash"], row["distro_hash"], row["extended_hash"], row["component"]
        )
    except (InvalidName, TypeError) as exc:
        plan.tally.add(False, f"commits: no repository path ({exc})", row["id"])
        return
    build = Build(row["id"], row["project_name"], relpath, _filenames(row["artifacts"]))
    if not flags & FLAG_PURGED:
        plan.builds.append(build)
    # conveyor's package_status takes the newest success, purged or not: so does this check.
    known = plan.newest.get(build.project_name)
    if known is None or known.id < build.id:
        plan.newest[build.project_name] = build


def _scan_row(plan: _Plan, name: str, row: dict[str, Any]) -> None:
    skipped = plan.skipped.setdefault(name, set())
    if name == "users":
        plan.users.add(row["username"])
    elif name == "projects":
        kept = plan.project_names.get(row["project_name"])
        if kept is None:
            plan.project_names[row["project_name"]] = row["id"]
            plan.last_email[row["id"]] = row["last_email"]
        else:
            # DLRN looks projects up by name and never meant duplicates (a race between two
            # runs makes them); conveyor's name is unique. Keep the first, newest e-mail time.
            skipped.add(row["id"])
            emails = [e for e in (plan.last_email[kept], row["last_email"]) if e is not None]
            plan.last_email[kept] = max(emails) if emails else None
            plan.tally.add(
                False,
                f"projects: duplicate of {row['project_name']!r} merged into id {kept}",
                row["id"],
            )
    elif name == "commits":
        _scan_commit(plan, row)
    if name in ("civotes", "promotions") and row["commit_id"] not in plan.commit_ids:
        # `dlrn --recheck` deletes a commit row and SQLite keeps what referred to it; the
        # DLRN API cannot show such rows either (it looks the commit up for each).
        skipped.add(row["id"])
        plan.tally.add(
            False, f"{name}: refers to a commit that does not exist: not imported", row["id"]
        )
        return
    if name in ("civotes", "civotes_agg", "promotions"):
        user = row["user"]
        if user is not None and user not in plan.users:
            plan.locked_users[user] = plan.locked_users.get(user, 0) + 1
    if name == "promotions":
        plan.promotion_names.add(row["promotion_name"])


def _scan(snapshot: DlrnSnapshot, plan: _Plan, progress: ProgressCallback | None) -> None:
    for name in DLRN_TABLES:
        total = plan.found[name] = snapshot.count(name)
        done = 0
        for batch in snapshot.rows(name):
            for raw in batch:
                _scan_row(plan, name, _convert(plan, name, raw))
            done += len(batch)
            if progress:
                progress(f"checking {name}", done, total)
        log.info("checked %d row(s) of DLRN's %s", done, name)


def _report_plan(plan: _Plan, config: Config, report: MigrationReport) -> None:
    report.errors += plan.tally.lines(error=True)
    report.warnings += plan.tally.lines(error=False)
    for user, references in sorted(plan.locked_users.items()):
        report.warnings.append(
            f"user {user!r} ({references} vote(s)/promotion(s)) is not in DLRN's users table "
            "(deleted with dlrn-user delete?): kept with a password no login can match"
        )
    if plan.components and not config.use_components:
        report.warnings.append(
            f"DLRN's builds have components ({', '.join(sorted(plan.components))}) but "
            "conveyor.toml has use_components = false: set it to true before the next run"
        )
    elif config.use_components and not plan.components and plan.commit_ids:
        report.warnings.append(
            "conveyor.toml has use_components = true but no DLRN build has a component"
        )
    report.tables = [TableCount(n, plan.found[n], plan.imported(n)) for n in DLRN_TABLES]


# -- conveyor's database ------------------------------------------------------------------


def same_database(a: URL, b: URL) -> bool:
    path_a, path_b = sqlite_path(a), sqlite_path(b)
    if path_a is not None and path_b is not None:
        return path_a.resolve() == path_b.resolve()
    fields_a = (a.get_backend_name(), a.host, a.port, a.database)
    return (
        path_a is None
        and path_b is None
        and fields_a == (b.get_backend_name(), b.host, b.port, b.database)
    )


def _reader(url: URL) -> Engine | None:
    """An engine that only reads conveyor's database; None when it does not exist yet."""
    if url.get_backend_name() != "sqlite":
        return read_only_engine(url, None)
    path = sqlite_path(url)
    return read_only_engine(url, path) if path is not None and path.exists() else None


def rows_present(connection: Connection) -> dict[str, int]:
    tables = set(inspect(connection).get_table_names())
    counts = {}
    for table in Base.metadata.sorted_tables:
        if table.name in tables:
            count = connection.execute(select(func.count()).select_from(table)).scalar() or 0
            if count:
                counts[table.name] = count
    return counts


def not_empty(url: URL, counts: dict[str, int], command: str = "import-dlrn") -> str:
    held = ", ".join(f"{name}: {count}" for name, count in counts.items())
    return (
        f"conveyor's database {display_url(url)} already holds rows ({held}); {command} "
        "only fills a new, empty database, so that every id stays the source's"
    )


def _check_target(url: URL, report: MigrationReport) -> None:
    engine = _reader(url)
    if engine is None:
        return
    try:
        with engine.connect() as connection:
            counts = rows_present(connection)
    except SQLAlchemyError as exc:
        report.errors.append(f"cannot read conveyor's database {display_url(url)}: {reason(exc)}")
        return
    finally:
        engine.dispose()
    if counts:
        report.errors.append(not_empty(url, counts))


def advance_sequences(connection: Connection, tables: tuple[str, ...] = _SEQUENCED) -> None:
    """Rows were inserted with their ids, which PostgreSQL's sequences do not notice: the next
    build would be given id 1. SQLite and MySQL continue after the largest id by themselves."""
    if connection.dialect.name != "postgresql":
        return
    for name in tables:
        # `name` is a table of conveyor's own schema, never input.
        connection.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "  # noqa: S608
                f"coalesce(max(id), 0) + 1, false) FROM {name}"
            )
        )


def _write(
    snapshot: DlrnSnapshot, plan: _Plan, connection: Connection, progress: ProgressCallback | None
) -> None:
    counts = rows_present(connection)
    if counts:  # written since the first pass looked
        raise MigrationError(not_empty(connection.engine.url, counts))
    for name in DLRN_TABLES:
        table = target_table(name)
        skipped = plan.skipped.get(name, set())
        total = plan.imported(name)
        done = 0
        if name == "users" and plan.locked_users:
            locked = [{"username": u, "password": LOCKED_PASSWORD} for u in plan.locked_users]
            connection.execute(insert(table), locked)
            done += len(locked)
        for batch in snapshot.rows(name):
            rows = []
            for raw in batch:
                row, _ = convert_row(table, raw)
                if row[primary_key(name)] in skipped:
                    continue
                if name == "projects":
                    row["last_email"] = plan.last_email[row["id"]]
                rows.append(row)
            if rows:
                connection.execute(insert(table), rows)
            done += len(rows)
            if progress:
                progress(f"importing {name}", done, total)
        log.info("imported %d row(s) into %s", done, name)
    advance_sequences(connection)
    # conveyor's per-package summary, derived from the history as a migration does.
    rebuild_package_status(connection)


@contextmanager
def _transaction(config: Config) -> Iterator[Connection]:
    try:
        db = Database(config.database_url)
    except DatabaseError as exc:
        raise MigrationError(str(exc)) from None
    try:
        with db.transaction() as session:
            yield session.connection()
    except SQLAlchemyError as exc:
        raise MigrationError(
            f"writing conveyor's database failed, nothing was imported: {reason(exc)}"
        ) from None
    finally:
        db.close()


def import_dlrn(
    config: Config,
    dlrn_url: str,
    repos: Path,
    *,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
) -> MigrationReport:
    """Import DLRN's database at `dlrn_url` into conveyor's (config.database_url), and adopt
    DLRN's `repos` folder, which must be conveyor's `<datadir>/repos`.

    Returns the report. A dry run writes nothing, whatever it finds (report.errors says what
    would refuse the import). Otherwise problems raise MigrationRefused, with nothing
    written, and BuilderBusy is raised if a conveyor cycle holds this builder.
    """
    target = parse_url(config.database_url, "conveyor database")
    source = DlrnDatabase(dlrn_url)
    report = MigrationReport(source.display, display_url(target), repos, dry_run)
    try:
        if same_database(source.url, target):
            raise MigrationError(
                f"DLRN's database and conveyor's are the same ({source.display}): conveyor "
                "copies DLRN's rows into a database of its own (with the indexes DLRN lacks); "
                "set database in conveyor.toml to a new one"
            )
        with source.snapshot() as snapshot:
            report.revision = snapshot.schema.revision
            report.warnings += snapshot.schema.warnings
            plan = _Plan(strict_lengths=target.get_backend_name() != "sqlite")
            _scan(snapshot, plan, progress)
            _report_plan(plan, config, report)
            location = check_location(repos, config)
            if location is not None:
                report.errors.append(location)
            else:
                report.repos_check = check_tree(
                    repos, config, plan.builds, plan.newest, plan.promotion_names, plan.components
                )
                report.warnings += report.repos_check.warnings
            _check_target(target, report)
            if dry_run:
                return report
            if report.errors:
                raise MigrationRefused(report)
            with builder_lock(config), _transaction(config) as connection:
                _write(snapshot, plan, connection, progress)
            report.written = True
            return report
    finally:
        source.close()
