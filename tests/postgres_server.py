"""A real PostgreSQL server for the tests: Debian's `postgresql` binaries, a cluster made by
initdb in a temporary directory, listening on a Unix socket only (no TCP port to collide
with), run as the `postgres` user when the suite runs as root (PostgreSQL refuses root).

One server per test session; every test gets a database of its own."""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

BINARIES = sorted(Path("/usr/lib/postgresql").glob("*/bin"))


class PostgresServer:
    def __init__(self, root: Path, user: str | None) -> None:
        self.root = root
        self.data = root / "data"
        self.socket_dir = root / "socket"
        self.user = user
        self.bin = BINARIES[-1]
        self._names = itertools.count(1)

    def _run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin / argv[0]), *argv[1:]],
            capture_output=True,
            text=True,
            check=False,
            user=self.user,
            timeout=120,
        )

    def start(self) -> None:
        done = self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"
        )
        assert done.returncode == 0, done.stderr
        self.restart()

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self) -> None:
        options = f"-k {self.socket_dir} -c listen_addresses='' -c max_connections=300 -c fsync=off"
        done = self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.root / "log"),
            "-o",
            options,
            "-w",
            "start",
        )
        assert done.returncode == 0, done.stderr + (self.root / "log").read_text()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.socket_dir}"

    def new_database(self) -> str:
        import psycopg

        name = f"conveyor_test_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(
            dbname="postgres", user="postgres", host=str(self.socket_dir), autocommit=True
        ) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _server_user() -> str | None:
    if os.getuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "nobody"
    return "postgres"


@contextmanager
def running_server() -> Iterator[PostgresServer]:
    """A server in a temporary folder, stopped and removed afterwards (also for bench/)."""
    if not BINARIES:
        raise RuntimeError("PostgreSQL is not installed (Debian package postgresql)")
    user = _server_user()
    # Not under pytest's tmp_path: its folders are private to root and the server runs as
    # postgres. A short path, too: a Unix socket's path has a 107-byte limit.
    root = Path(tempfile.mkdtemp(prefix="cv-pg-"))
    (root / "socket").mkdir()
    if user is not None:
        entry = pwd.getpwnam(user)
        for path in (root, root / "socket"):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    server = PostgresServer(root, user)
    try:
        server.start()
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """The session's server; a test that needs it is skipped on a machine without
    PostgreSQL (make test installs it)."""
    if not BINARIES:
        pytest.skip("PostgreSQL is not installed (Debian package postgresql)")
    with running_server() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The database of a test that runs on both engines."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'commits.sqlite'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.new_database()
