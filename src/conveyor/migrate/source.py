"""Reading a DLRN database: any SQLAlchemy URL, never written to, columns matched by name.

DLRN's schema moved through 17 Alembic revisions, and many of its databases were made by
`create_all` without Alembic at all, so no version stamp says which columns exist. The reader
therefore trusts reflection: each of conveyor's columns is taken from the DLRN column of the
same name (or of its older name), a column DLRN did not have yet reads as NULL, and anything
conveyor does not know is reported, not guessed at.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, Table, create_engine, func, select, type_coerce
from sqlalchemy.engine.url import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.types import NullType

from conveyor.store.models import Base


class MigrationError(Exception):
    """The import cannot start or cannot be completed; the message says why."""


# DLRN's tables in an order that satisfies the foreign keys (users and commits are referenced).
DLRN_TABLES = ("users", "projects", "commits", "civotes", "civotes_agg", "promotions")
# Tables DLRN keeps that hold nothing to import: Alembic's stamp (reported as the revision).
_DLRN_HOUSEKEEPING = frozenset({"alembic_version"})
# Columns renamed by DLRN's own migrations: conveyor name -> the older DLRN name.
_OLD_NAMES = {("commits", "artifacts"): "rpms"}  # revision 2d503b5034b7
# Without these a row means nothing; a table lacking one is not DLRN's.
_ESSENTIAL = {
    "users": ("username", "password"),
    "projects": ("id", "project_name"),
    "commits": ("id", "project_name", "commit_hash", "status"),
    "civotes": ("id", "commit_id"),
    "civotes_agg": ("id", "ref_hash"),
    "promotions": ("id", "commit_id", "promotion_name", "timestamp"),
}
BATCH_ROWS = 5000


def reason(exc: SQLAlchemyError) -> str:
    """The driver's own message when there is one (SQLAlchemy's wrapper adds a long URL)."""
    return str(getattr(exc, "orig", None) or exc)


def target_table(name: str) -> Table:
    return Base.metadata.tables[name]


def primary_key(name: str) -> str:
    return "username" if name == "users" else "id"


def display_url(url: str | URL) -> str:
    """The URL as it may be printed: a password never reaches a terminal or a log."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except ArgumentError:
        return "(invalid URL)"
    return parsed.render_as_string(hide_password=True)


def parse_url(url: str, what: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError as exc:
        raise MigrationError(f"invalid {what} URL {url!r}: {exc}") from None


def sqlite_path(url: URL) -> Path | None:
    """The file of a SQLite URL (None for other databases and for in-memory SQLite)."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(str(url.database))


def read_only_engine(url: URL, path: Path | None) -> Engine:
    """An engine that cannot write: a SQLite file (`path`, known to exist) is opened with
    mode=ro, so not even a journal can be written; other servers are read by the caller's
    own discipline. A missing driver is a MigrationError naming it."""
    if path is not None:
        uri = f"{path.resolve().as_uri()}?mode=ro"
        return create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True))
    try:
        return create_engine(url)
    except (NoSuchModuleError, ImportError) as exc:
        raise MigrationError(
            f"cannot open {display_url(url)}: no database driver for {url.drivername!r} "
            f"is installed ({exc})"
        ) from None


def _engine(url: URL) -> Engine:
    if url.get_backend_name() != "sqlite":
        return read_only_engine(url, None)
    path = sqlite_path(url)
    if path is None:
        raise MigrationError(f"{display_url(url)}: an in-memory SQLite database holds no DLRN data")
    # Connecting would create a missing file: check first.
    if not path.is_file():
        raise MigrationError(f"DLRN database {path} does not exist (or is not a file)")
    return read_only_engine(url, path)


@dataclass(frozen=True)
class TableMapping:
    """Where each of conveyor's columns of one table comes from in DLRN's table."""

    name: str
    source: Table
    columns: Mapping[str, str | None]  # conveyor column -> DLRN column (None: DLRN lacks it)


@dataclass(frozen=True)
class Schema:
    tables: Mapping[str, TableMapping]  # DLRN's tables present in this database
    revision: str | None  # DLRN's Alembic revision, when its migrations were run
    warnings: tuple[str, ...]


def _map_table(name: str, source: Table, warnings: list[str]) -> TableMapping:
    present = set(source.columns.keys())
    columns: dict[str, str | None] = {}
    for column in [c.key for c in target_table(name).columns]:
        old = _OLD_NAMES.get((name, column))
        if column in present:
            columns[column] = column
        elif old is not None and old in present:
            columns[column] = old
        else:
            columns[column] = None
    missing_essential = [c for c in _ESSENTIAL[name] if columns.get(c) is None]
    if missing_essential:
        raise MigrationError(
            f"table {name!r} has no column {', '.join(missing_essential)}: "
            "this is not a DLRN database"
        )
    absent = [
        c
        for c, source_column in columns.items()
        if source_column is None and (name, c) not in CONVEYOR_ONLY_COLUMNS
    ]
    if absent:
        warnings.append(
            f"{name}: column(s) {', '.join(absent)} absent (an older DLRN): imported as NULL"
        )
    unknown = sorted(present - {c for c in columns.values() if c is not None})
    if unknown:
        warnings.append(f"{name}: column(s) {', '.join(unknown)} are not DLRN's: not imported")
    return TableMapping(name, source, columns)


# Columns conveyor added to DLRN's tables: no DLRN has them, so their absence is no news.
CONVEYOR_ONLY_COLUMNS = frozenset({("users", "roles")})


def _schema(connection: Connection, display: str) -> Schema:
    metadata = MetaData()
    metadata.reflect(bind=connection)
    found = metadata.tables
    if "commits" not in found:
        names = ", ".join(sorted(found)) or "none"
        raise MigrationError(
            f"{display} is not a DLRN database: it has no 'commits' table (tables: {names})"
        )
    warnings: list[str] = []
    tables: dict[str, TableMapping] = {}
    for name in DLRN_TABLES:
        if name in found:
            tables[name] = _map_table(name, found[name], warnings)
        else:
            warnings.append(f"{name}: table absent (an older DLRN): nothing to import")
    for name in sorted(set(found) - set(DLRN_TABLES) - _DLRN_HOUSEKEEPING):
        warnings.append(f"table {name!r} is not DLRN's: not imported")
    revision = None
    if "alembic_version" in found:
        revision = connection.execute(select(found["alembic_version"].c.version_num)).scalar()
    return Schema(tables, revision, tuple(warnings))


class DlrnSnapshot:
    """DLRN's tables as one consistent read: every query runs in the same transaction."""

    def __init__(self, connection: Connection, schema: Schema, display: str) -> None:
        self.connection = connection
        self.schema = schema
        self.display = display

    def _failed(self, exc: SQLAlchemyError) -> MigrationError:
        return MigrationError(f"cannot read DLRN database {self.display}: {reason(exc)}")

    def count(self, name: str) -> int:
        mapping = self.schema.tables.get(name)
        if mapping is None:
            return 0
        try:
            return int(
                self.connection.execute(select(func.count()).select_from(mapping.source)).scalar()
                or 0
            )
        except SQLAlchemyError as exc:
            raise self._failed(exc) from None

    def rows(self, name: str) -> Iterator[list[dict[str, Any]]]:
        """The table's rows in batches, keyed by conveyor's column names, values as stored.

        Values are read without SQLAlchemy's type processing: DLRN's SQLite files hold
        whatever its YAML loaders wrote, and converting is conveyor's job (convert.py), where
        a bad value is reported instead of silently becoming True or 0.
        """
        mapping = self.schema.tables.get(name)
        if mapping is None:
            return
        selected = [
            type_coerce(mapping.source.c[source], NullType()).label(column)
            for column, source in mapping.columns.items()
            if source is not None
        ]
        absent = [column for column, source in mapping.columns.items() if source is None]
        # Ordered by key: the copy is deterministic and ids are inserted in ascending order.
        query = select(*selected).order_by(mapping.source.c[primary_key(name)])
        try:
            result = self.connection.execution_options(stream_results=True).execute(query)
            for batch in result.mappings().partitions(BATCH_ROWS):
                rows = []
                for row in batch:
                    values = dict(row)
                    for column in absent:
                        values[column] = None
                    rows.append(values)
                yield rows
        except SQLAlchemyError as exc:
            raise self._failed(exc) from None


class DlrnDatabase:
    def __init__(self, url: str) -> None:
        self.url = parse_url(url, "DLRN database")
        self.display = display_url(self.url)
        self.engine = _engine(self.url)

    @contextmanager
    def snapshot(self) -> Iterator[DlrnSnapshot]:
        """A read transaction held while the import runs: DLRN must be stopped, but if a cron
        job was forgotten, the import still sees one consistent state."""
        try:
            connection = self.engine.connect()
        except SQLAlchemyError as exc:
            raise MigrationError(
                f"cannot open DLRN database {self.display}: {reason(exc)}"
            ) from None
        try:
            try:
                transaction = connection.begin()
                schema = _schema(connection, self.display)
            except SQLAlchemyError as exc:
                raise MigrationError(
                    f"cannot read DLRN database {self.display}: {reason(exc)}"
                ) from None
            yield DlrnSnapshot(connection, schema, self.display)
            transaction.rollback()  # nothing was written; ending a read-only transaction
        finally:
            connection.close()

    def close(self) -> None:
        self.engine.dispose()
