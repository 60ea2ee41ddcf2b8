"""Opening the database: one engine per process, schema migrated by Alembic on open."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine.url import URL, make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest migration; checked against the scripts by the tests. Comparing it with the
# database's stamp is one query, so Alembic (0.2 s to import) loads only to migrate.
HEAD_REVISION = "0008"


class DatabaseError(Exception):
    """The database cannot be opened or migrated; `unreachable` when its server did not
    answer (it may be restarting: a daemon may wait for it)."""

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


def parse_url(url: str) -> URL:
    try:
        return make_url(url)
    except SQLAlchemyError as exc:
        raise DatabaseError(f"invalid database URL {url!r}: {exc}") from None


def _is_sqlite(parsed: URL) -> bool:
    return parsed.drivername.startswith("sqlite")


def is_postgresql(url: str) -> bool:
    return parse_url(url).get_backend_name() == "postgresql"


def sqlite_file(parsed: URL) -> Path | None:
    """The file of a file-backed SQLite database; None for an in-memory one, for a `file:` URI
    (SQLite resolves those itself) and for another engine."""
    if not _is_sqlite(parsed) or parsed.query.get("mode") == "memory":
        return None
    if parsed.database in (None, "", ":memory:") or parsed.query.get("uri"):
        return None
    return Path(parsed.database)


def check_driver(parsed: URL) -> None:
    """The URL's dialect is known and its DBAPI driver importable. Without this check a
    missing driver surfaces as a ModuleNotFoundError from deep inside create_engine."""
    try:
        parsed.get_dialect().import_dbapi()
    except ImportError as exc:
        # Only the driver's name: the URL itself may hold a password.
        raise DatabaseError(
            f"the database driver of {parsed.drivername!r} is not installed ({exc})"
        ) from None
    except SQLAlchemyError:
        raise DatabaseError(f"unknown database dialect {parsed.drivername!r}") from None


def check_sqlite_file(path: Path) -> None:
    """A SQLite database is created only in a directory that exists: a mistyped path must
    not leave a new, empty builder database behind."""
    if path.is_dir():
        raise DatabaseError(f"{path} is a directory, not a database file")
    if path.parent.exists() and not path.parent.is_dir():
        raise DatabaseError(f"{path.parent} is not a directory")
    if not path.parent.is_dir():
        raise DatabaseError(f"directory {path.parent} does not exist")


def _ensure_sqlite_directory(path: Path) -> None:
    """The directory of the default database is the builder's data directory, which a fresh
    builder creates on first use: that one level is created, when its own parent exists.
    Anything deeper is a mistake, refused here (and, with a message naming the option,
    by `conveyor.assembly.storage.check_storage` before any command writes)."""
    directory = path.parent
    if not directory.exists() and directory.parent.is_dir():
        try:
            directory.mkdir()
        except OSError as exc:
            raise DatabaseError(f"cannot create directory {directory}: {exc.strerror}") from None
    check_sqlite_file(path)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (the API, `conveyor status`) run while a cycle writes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


# The API runs its handlers on a pool of 40 threads. SQLAlchemy's default pool (5 kept, 10
# more at most) made a burst of votes queue for connections (a 500 once pool_timeout passes
# while the writes wait on each other) and reopen one every ~20 votes, each time with the
# pragmas and a schema parse. SQLite connections are cheap to keep: enough for the whole
# thread pool, with room for the after-vote evaluations.
_SQLITE_POOL: dict[str, Any] = {"pool_size": 40, "max_overflow": 20, "pool_timeout": 60}
# A PostgreSQL connection is a server process: fewer are kept, and each is checked before
# use, so a server restarted under load costs a reconnection, not an error.
_SERVER_POOL: dict[str, Any] = {
    "pool_size": 10,
    "max_overflow": 30,
    "pool_timeout": 60,
    "pool_pre_ping": True,
}


def _current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        try:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except SQLAlchemyError:
            return None  # a new database: no alembic_version table yet


def _upgrade(engine: Engine) -> None:
    if _current_revision(engine) == HEAD_REVISION:
        return
    from alembic import command
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        parsed = parse_url(url)
        check_driver(parsed)
        sqlite = _is_sqlite(parsed)
        path = sqlite_file(parsed)
        if path is not None:
            _ensure_sqlite_directory(path)
        in_memory = parsed.database in (None, "", ":memory:") or (
            parsed.query.get("mode") == "memory"
        )
        # An in-memory database keeps SQLAlchemy's pool (one connection per thread).
        pool = _SERVER_POOL if not sqlite else {} if in_memory else _SQLITE_POOL
        self.engine = create_engine(parsed, **pool)
        if sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            _upgrade(self.engine)
        except SQLAlchemyError as exc:
            raise DatabaseError(
                f"cannot open database {parsed!r}: {exc}",
                unreachable=isinstance(exc, OperationalError) and not sqlite,
            ) from None
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One state change: committed as a whole or not at all."""
        with self._sessions.begin() as session:
            yield session

    @contextmanager
    def reader(self) -> Iterator[Session]:
        with self._sessions() as session:
            yield session

    def close(self) -> None:
        self.engine.dispose()
