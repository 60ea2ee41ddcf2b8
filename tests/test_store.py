"""The database: migrated on open, DLRN's tables with the indexes DLRN lacks."""

import sqlite3

import pytest
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from tests.postgres_server import database_url, postgres  # noqa: F401 (fixtures)

from conveyor.store.database import HEAD_REVISION, MIGRATIONS, Database, DatabaseError


def test_head_revision_constant_matches_the_migration_scripts():
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(cfg).get_current_head() == HEAD_REVISION


def test_new_database_has_dlrn_tables_indexes_and_wal(tmp_path):
    path = tmp_path / "sub" / "commits.sqlite"
    Database(f"sqlite:///{path}").close()
    Database(f"sqlite:///{path}").close()  # opening again is a no-op
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
        indexes = {r[0] for r in conn.execute("select name from sqlite_master where type='index'")}
        mode = conn.execute("pragma journal_mode").fetchone()[0]
        version = conn.execute("select version_num from alembic_version").fetchone()[0]
    assert {"commits", "projects", "civotes", "civotes_agg", "promotions", "users"} <= tables
    assert {
        "ix_commits_project_type_status_id",
        "ix_commits_hashes",
        "ix_civotes_commit_id",
    } <= indexes
    assert (mode, version) == ("wal", HEAD_REVISION)


def test_bad_database_url():
    with pytest.raises(DatabaseError, match="invalid database URL"):
        Database("not a url")


def test_models_and_migrations_agree(database_url):  # noqa: F811 (the fixture)
    """On both engines: the migrations make exactly the schema the models describe."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    from conveyor.store.models import Base

    Database(database_url).close()
    engine = create_engine(database_url)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    engine.dispose()
