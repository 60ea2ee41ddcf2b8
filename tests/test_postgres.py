"""A builder on PostgreSQL (a real server, started by the suite): cycles, the move from SQLite
with `conveyor import-db`, and the locks that keep two schedulers off one database."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from tests.postgres_server import PostgresServer, postgres  # noqa: F401 (fixture)
from tests.support import (
    Trunk,
    built_example,
    cli,
    default_first_cycle,
    example,
    fresh_trunk,
    rows,
)
from tests.test_api_concurrency import add_vote

from conveyor.api.auth import create_user
from conveyor.config import load_config
from conveyor.publish.locks import builder_lock
from conveyor.store.database import Database
from conveyor.store.models import Commit

BUILDS = "select project_name, commit_hash, distro_hash, status, artifacts from commits order by id"


def on_database(trunk: Trunk, url: str) -> None:
    """Point the builder's conveyor.toml at `url`."""
    trunk.config_path.write_text(f'database = "{url}"\n' + trunk.config_path.read_text())


def server_rows(url: str, query: str) -> list[tuple]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(query))]
    finally:
        engine.dispose()


def test_a_cycle_on_postgresql_builds_and_records_what_sqlite_does(
    tmp_path: Path,
    postgres: PostgresServer,  # noqa: F811
) -> None:
    reference = built_example("default", default_first_cycle).shared()
    trunk = fresh_trunk(tmp_path / "dist")
    url = postgres.new_database()
    on_database(trunk, url)
    code, output = trunk.run()
    assert code == 1, output  # example-broken fails on purpose, as on SQLite
    assert not trunk.db.exists()  # no SQLite database beside it
    built = server_rows(url, BUILDS)
    # Packages build side by side: ids follow the order they finished in.
    assert sorted(row[:4] for row in built) == sorted(row[:4] for row in rows(reference.db, BUILDS))
    code, output = cli("status", "--config", str(trunk.config_path))
    assert code == 0, output
    assert "example-broken" in output
    # The repositories are the same as the SQLite builder's.
    for project, commit_hash, distro_hash, status, _ in built:
        if status == "SUCCESS":
            assert (trunk.hash_dir(commit_hash, distro_hash) / "delorean.repo").is_file(), project


def test_import_db_moves_a_builder_from_sqlite_to_postgresql(
    postgres: PostgresServer,  # noqa: F811
) -> None:
    with built_example("default", default_first_cycle).changed() as trunk:
        db = Database(f"sqlite:///{trunk.db}")
        create_user(db, "ci", "ci-secret", ["admin"])
        db.close()
        before = rows(trunk.db, BUILDS)
        url = postgres.new_database()
        on_database(trunk, url)

        code, output = cli("import-db", "--config", str(trunk.config_path), "--dry-run")
        assert code == 0, output
        assert "nothing was written" in output
        assert server_rows(url, "select count(*) from commits") == [(0,)]

        code, output = cli("import-db", "--config", str(trunk.config_path))
        assert code == 0, output
        assert re.search(r"copied \d+ row\(s\) from sqlite:///\S+commits\.sqlite", output), output
        assert server_rows(url, BUILDS) == before
        assert server_rows(url, "select username from users") == [("ci",)]

        # The builder goes on from there: a new commit is built with the next id.
        last_id = server_rows(url, "select max(id) from commits")[0][0]
        commit = example.add_upstream_commit(trunk.root, "examplelib", "A change")
        code, output = trunk.run()
        assert code == 0, output  # only the new commit is built
        newest = server_rows(url, "select id, commit_hash, status from commits order by id")
        assert (last_id + 1, commit, "SUCCESS") in newest

        # ...and promotes it once CI passed it: criteria, engine and labels on PostgreSQL.
        criteria = trunk.root / "promotions.yaml"
        criteria.write_text(
            "promotions:\n  ci-testing:\n    candidate_label: current\n"
            "    criteria: [tempest-full]\n"
        )
        db = Database(url)
        with db.transaction() as session:
            built = session.get_one(Commit, last_id + 1)
        add_vote(db, built, "tempest-full")
        db.close()
        promote = ("promote", "--once", "--criteria", str(criteria))
        code, output = cli(*promote, "--config", str(trunk.config_path))
        assert code == 0 and "promoted" in output, output
        assert server_rows(url, "select promotion_name, commit_id from promotions") == [
            ("ci-testing", last_id + 1)
        ]
        (hash_dir,) = trunk.repos.glob(f"{commit[:2]}/{commit[2:4]}/{commit}_*")
        assert (trunk.repos / "ci-testing").resolve() == hash_dir.resolve()

        # Once copied, a second copy is refused and changes nothing.
        count = server_rows(url, "select count(*) from commits")
        code, output = cli("import-db", "--config", str(trunk.config_path))
        assert code == 2
        assert "already holds rows" in output
        assert server_rows(url, "select count(*) from commits") == count


def test_import_db_refuses_bad_input_with_nothing_written(
    tmp_path: Path,
    postgres: PostgresServer,  # noqa: F811
) -> None:
    trunk = fresh_trunk(tmp_path / "dist")
    url = postgres.new_database()
    on_database(trunk, url)
    config = str(trunk.config_path)

    code, output = cli("import-db", "--config", config)  # the builder never ran on SQLite
    assert code == 2
    assert "commits.sqlite does not exist" in output

    not_conveyor = tmp_path / "other.sqlite"
    Database(f"sqlite:///{not_conveyor}").close()
    with create_engine(f"sqlite:///{not_conveyor}").begin() as connection:
        connection.execute(text("drop table alembic_version"))
    code, output = cli("import-db", "--config", config, "--from", f"sqlite:///{not_conveyor}")
    assert code == 2
    assert "not a conveyor database" in output

    older = tmp_path / "older.sqlite"
    Database(f"sqlite:///{older}").close()
    with create_engine(f"sqlite:///{older}").begin() as connection:
        connection.execute(text("update alembic_version set version_num = '0005'"))
    code, output = cli("import-db", "--config", config, "--from", f"sqlite:///{older}")
    assert code == 2
    assert "schema 0005" in output

    code, output = cli("import-db", "--config", config, "--from", url)
    assert code == 2
    assert "are the same" in output

    unreachable = f"postgresql+psycopg://postgres@/nowhere?host={tmp_path}"
    trunk.config_path.write_text(trunk.config_path.read_text().replace(url, unreachable))
    source = tmp_path / "source.sqlite"
    Database(f"sqlite:///{source}").close()
    code, output = cli("import-db", "--config", config, "--from", f"sqlite:///{source}")
    assert code == 2
    assert "cannot open database" in output
    # Refused before the target was opened: not even the schema was written.
    assert server_rows(url, "select count(*) from pg_tables where schemaname = 'public'") == [(0,)]


def test_a_second_scheduler_on_the_same_database_is_refused(
    tmp_path: Path,
    postgres: PostgresServer,  # noqa: F811
) -> None:
    """Two machines, two data directories, one database: the database's lock decides."""
    url = postgres.new_database()
    Database(url).close()
    first, second = fresh_trunk(tmp_path / "a"), fresh_trunk(tmp_path / "b")
    for trunk in (first, second):
        on_database(trunk, url)
    with builder_lock(load_config(first.config_path)):
        code, output = second.run()
    assert code == 3, output
    assert re.search(r"another conveyor scheduler \(conveyor \S+ pid \d+\)", output), output
    assert server_rows(url, "select count(*) from commits") == [(0,)]
    # Released, the database is the second's.
    code, output = second.run()
    assert code == 1, output
    assert server_rows(url, "select count(*) from commits") != [(0,)]


@pytest.mark.parametrize("stage", ["idle", "between cycles"])
def test_a_restarted_server_costs_a_reconnection_not_an_error(
    tmp_path: Path,
    postgres: PostgresServer,  # noqa: F811
    stage: str,
) -> None:
    trunk = fresh_trunk(tmp_path / "dist")
    url = postgres.new_database()
    on_database(trunk, url)
    config = load_config(trunk.config_path)
    db = Database(config.database_url)
    try:
        with db.reader() as session:
            assert session.execute(text("select 1")).scalar() == 1
        postgres.stop("fast" if stage == "idle" else "immediate")
        postgres.restart()
        with db.reader() as session:  # the pool's stale connection is replaced
            assert session.execute(text("select 1")).scalar() == 1
    finally:
        db.close()
    code, output = trunk.run()
    assert code == 1, output
