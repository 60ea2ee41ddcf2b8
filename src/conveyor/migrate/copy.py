"""`import-db`: a conveyor builder's database copied to another engine (SQLite to PostgreSQL).

The builder keeps its data directory; only where its state lives changes. Every table of
conveyor's schema is copied row for row, ids kept (votes, promotions, API consumers and the
published `commit.yaml` files refer to builds by id), in one transaction of the target that
also checks the counts before it commits: the copy is whole or absent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, Integer, func, insert, select, text
from sqlalchemy.engine.url import URL
from sqlalchemy.exc import SQLAlchemyError

from conveyor.config import Config
from conveyor.migrate.importer import (
    ProgressCallback,
    TableCount,
    advance_sequences,
    not_empty,
    rows_present,
    same_database,
)
from conveyor.migrate.source import (
    MigrationError,
    display_url,
    parse_url,
    read_only_engine,
    reason,
    sqlite_path,
)
from conveyor.publish.locks import builder_lock
from conveyor.store.database import HEAD_REVISION, Database, DatabaseError
from conveyor.store.models import Base

log = logging.getLogger(__name__)

_BATCH = 5_000
_COMMAND = "import-db"


@dataclass
class CopyReport:
    source: str  # URLs as they may be printed (no password)
    target: str
    dry_run: bool
    tables: list[TableCount] = field(default_factory=list)
    written: bool = False

    @property
    def rows(self) -> int:
        return sum(table.imported for table in self.tables)


def default_source(config: Config) -> str:
    """The database the builder used before `database` named another one."""
    return f"sqlite:///{config.datadir / 'commits.sqlite'}"


def _open_source(url: URL) -> Engine:
    path = sqlite_path(url)
    if url.get_backend_name() == "sqlite":
        if path is None:
            raise MigrationError("an in-memory SQLite database holds no builder to copy")
        if not path.is_file():
            raise MigrationError(f"the source database {path} does not exist (or is not a file)")
    return read_only_engine(url, path)


def _sequenced_tables() -> tuple[str, ...]:
    """Tables whose id the database hands out (and must continue after the copied ones)."""
    names = []
    for table in Base.metadata.sorted_tables:
        key = list(table.primary_key.columns)
        if len(key) == 1 and isinstance(key[0].type, Integer) and key[0].autoincrement:
            names.append(table.name)
    return tuple(names)


def _source_counts(connection: Connection, url: URL) -> dict[str, int]:
    try:
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError:
        raise MigrationError(
            f"{display_url(url)} is not a conveyor database (it has no schema revision)"
        ) from None
    if revision != HEAD_REVISION:
        raise MigrationError(
            f"{display_url(url)} has conveyor's schema {revision}, this conveyor writes "
            f"{HEAD_REVISION}: run any command of this conveyor on it once (e.g. `conveyor "
            "status`) to bring it up to date, then copy it"
        )
    return {
        table.name: connection.execute(select(func.count()).select_from(table)).scalar() or 0
        for table in Base.metadata.sorted_tables
    }


def _copy(
    source: Connection,
    target: Connection,
    counts: dict[str, int],
    progress: ProgressCallback | None,
) -> None:
    present = rows_present(target)
    if present:
        raise MigrationError(not_empty(target.engine.url, present, _COMMAND))
    for table in Base.metadata.sorted_tables:
        done = 0
        key = list(table.primary_key.columns)
        rows = source.execution_options(yield_per=_BATCH).execute(select(table).order_by(*key))
        for batch in rows.mappings().partitions():
            target.execute(insert(table), [dict(row) for row in batch])
            done += len(batch)
            if progress:
                progress(f"copying {table.name}", done, counts[table.name])
        log.info("copied %d row(s) of %s", done, table.name)
    advance_sequences(target, _sequenced_tables())
    copied = rows_present(target)
    wrong = {
        name: (n, copied.get(name, 0)) for name, n in counts.items() if copied.get(name, 0) != n
    }
    if wrong:  # never seen; the check costs one count per table
        raise MigrationError(f"the copy's row counts differ from the source's: {wrong}")


def import_db(
    config: Config,
    source_url: str,
    *,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
) -> CopyReport:
    """Copy the conveyor database at `source_url` into the builder's (config.database_url),
    which must be empty. Raises MigrationError with nothing written, and BuilderBusy when a
    cycle holds this builder."""
    source = parse_url(source_url, "source database")
    target = parse_url(config.database_url, "conveyor database")
    report = CopyReport(display_url(source), display_url(target), dry_run)
    if same_database(source, target):
        raise MigrationError(
            f"the source and the builder's database are the same ({report.source}): set "
            "database in conveyor.toml to the new one"
        )
    engine = _open_source(source)
    try:
        with engine.connect() as reader:
            try:
                if source.get_backend_name() == "sqlite":
                    # One read transaction: counts and rows from the same state of the file.
                    reader.exec_driver_sql("BEGIN")
                counts = _source_counts(reader, source)
            except SQLAlchemyError as exc:
                raise MigrationError(f"cannot read {report.source}: {reason(exc)}") from None
            report.tables = [TableCount(name, n, n) for name, n in counts.items()]
            try:
                db = Database(config.database_url)
            except DatabaseError as exc:
                raise MigrationError(str(exc)) from None
            try:
                if dry_run:
                    with db.reader() as session:
                        present = rows_present(session.connection())
                    if present:
                        raise MigrationError(not_empty(target, present, _COMMAND))
                    return report
                with builder_lock(config), db.transaction() as session:
                    _copy(reader, session.connection(), counts, progress)
            except SQLAlchemyError as exc:
                raise MigrationError(
                    f"writing {report.target} failed, nothing was copied: {reason(exc)}"
                ) from None
            finally:
                db.close()
    finally:
        engine.dispose()
    report.written = True
    return report
