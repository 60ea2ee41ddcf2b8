"""A `datadir` or `database` that cannot be used is one line on standard error naming the option
and the file, before anything is written; `conveyor init` makes what a builder needs."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conveyor.assembly.storage import check_storage
from conveyor.cli.main import app
from conveyor.config import ConfigError, load_config
from conveyor.publish.locks import LOCK_NAME
from conveyor.store.database import Database, DatabaseError

# Commands that open the builder, with arguments that get them past their own parsing.
BUILDER_COMMANDS: list[list[str]] = [
    ["run"],
    ["status"],
    ["recheck", "some-package"],
    ["fsck"],
    ["purge", "--older-than", "3"],
    ["promote", "--once"],
    ["serve", "--port", "1"],
    ["import", "http://127.0.0.1:1/repos/ab/cd/x/"],
    ["import-dlrn", "--database", "sqlite://", "--repos", "/nonexistent/repos"],
    ["user", "create", "--username", "ci", "--password", "long-enough-secret"],
    ["user", "delete", "--username", "ci", "--force"],
]

# A PostgreSQL driver this venv surely lacks (psycopg is SQLAlchemy's default).
MISSING_PG = next(
    (name for name in ("psycopg", "pg8000") if importlib.util.find_spec(name) is None), None
)


def tree(root: Path) -> set[Path]:
    return set(root.rglob("*"))


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "conveyor.toml"
    path.write_text(text)
    return path


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def assert_one_line_error(code: int, stdout: str, stderr: str, config: Path, key: str) -> str:
    assert code == 2, stdout + stderr
    assert "Traceback" not in stdout + stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"error: {config}: option '{key}': "), lines[0]
    return lines[0]


# --- each bad input: named, and nothing on disk -----------------------------------------------


def _datadir_is_a_file(tmp_path: Path) -> tuple[str, str, list[Path]]:
    (tmp_path / "plain").write_text("")
    data = tmp_path / "plain"
    return f'datadir = "{data}"\n', "is not a directory", [data / LOCK_NAME]


def _datadir_under_a_file(tmp_path: Path) -> tuple[str, str, list[Path]]:
    (tmp_path / "plain").write_text("")
    data = tmp_path / "plain" / "deep" / "data"
    return f'datadir = "{data}"\n', "plain is not a directory", [data]


def _datadir_under_proc(tmp_path: Path) -> tuple[str, str, list[Path]]:
    if not Path("/proc/self").is_dir():
        pytest.skip("no /proc here")
    data = Path("/proc/conveyor-test/data")
    return f'datadir = "{data}"\n', "cannot create /proc/conveyor-test/data", [data.parent]


def _postgresql_without_driver(tmp_path: Path) -> tuple[str, str, list[Path]]:
    if MISSING_PG is None:
        pytest.skip("every PostgreSQL driver tried is installed")
    data = tmp_path / "data"
    url = f"postgresql+{MISSING_PG}://conveyor:s3cret@db.example.org/conveyor"
    text = f'datadir = "{data}"\ndatabase = "{url}"\n'
    return text, f"No module named '{MISSING_PG}'", [data]


def _sqlite_in_missing_directory(tmp_path: Path) -> tuple[str, str, list[Path]]:
    data, missing = tmp_path / "data", tmp_path / "missing" / "dir"
    text = f'datadir = "{data}"\ndatabase = "sqlite:///{missing / "x.sqlite"}"\n'
    return text, f"directory {missing} does not exist", [data, missing.parent]


CASES: dict[str, tuple[str, Callable[[Path], tuple[str, str, list[Path]]]]] = {
    "datadir-is-a-file": ("datadir", _datadir_is_a_file),
    "datadir-under-a-file": ("datadir", _datadir_under_a_file),
    "datadir-under-proc": ("datadir", _datadir_under_proc),
    "postgresql-without-driver": ("database", _postgresql_without_driver),
    "sqlite-in-missing-directory": ("database", _sqlite_in_missing_directory),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("command", [["run"], ["status"], ["fsck"]], ids=lambda c: c[0])
def test_bad_storage_is_one_line_and_writes_nothing(
    tmp_path: Path, case: str, command: list[str]
) -> None:
    key, make = CASES[case]
    text, message, absent = make(tmp_path)
    config = write_config(tmp_path, text)
    before = tree(tmp_path)
    line = assert_one_line_error(*invoke(*command, "--config", str(config)), config, key)
    assert message in line
    assert "s3cret" not in line  # a database URL's password is never shown
    assert tree(tmp_path) == before
    for path in absent:
        assert not path.exists(), path


def test_missing_sqlite_directory_suggests_init(tmp_path: Path) -> None:
    text, _, _ = _sqlite_in_missing_directory(tmp_path)
    config = write_config(tmp_path, text)
    line = assert_one_line_error(*invoke("fsck", "--config", str(config)), config, "database")
    assert "create it, or run 'conveyor init'" in line


@pytest.mark.parametrize("command", BUILDER_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_every_builder_command_refuses_the_same_way(tmp_path: Path, command: list[str]) -> None:
    text, _, _ = _datadir_is_a_file(tmp_path)
    config = write_config(tmp_path, text)
    before = tree(tmp_path)
    line = assert_one_line_error(*invoke(*command, "--config", str(config)), config, "datadir")
    assert line.endswith(f"{tmp_path / 'plain'} is not a directory")
    assert tree(tmp_path) == before


def test_a_real_process_prints_one_line_on_stderr(tmp_path: Path) -> None:
    text, _, absent = _sqlite_in_missing_directory(tmp_path)
    config = write_config(tmp_path, text)
    done = subprocess.run(
        [sys.executable, "-m", "conveyor", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert f"{config}: option 'database': directory" in done.stderr
    for path in absent:
        assert not path.exists()


def test_metadata_commands_do_not_check_storage(tmp_path: Path) -> None:
    # `lint` reads metadata only: a broken datadir is not its business.
    (tmp_path / "plain").write_text("")
    (tmp_path / "rdo.yml").write_text("packages: []\n")
    config = write_config(
        tmp_path, f'datadir = "{tmp_path / "plain"}"\n[metadata]\npath = "{tmp_path}"\n'
    )
    code, stdout, stderr = invoke("lint", "--config", str(config))
    assert code == 0, stdout + stderr


# --- what stays allowed -------------------------------------------------------------------------


def test_a_fresh_datadir_is_made_on_first_use(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = write_config(tmp_path, f'datadir = "{data}"\n')
    code, stdout, stderr = invoke("fsck", "--config", str(config))
    assert code == 0, stdout + stderr
    assert (data / "commits.sqlite").is_file()


def test_a_datadir_whose_parent_is_missing_is_for_init(tmp_path: Path) -> None:
    data = tmp_path / "typo" / "data"
    config = write_config(tmp_path, f'datadir = "{data}"\n')
    line = assert_one_line_error(*invoke("run", "--config", str(config)), config, "datadir")
    assert f"directory {data.parent} does not exist; create it, or run 'conveyor init'" in line
    assert not data.parent.exists()
    code, stdout, stderr = invoke("init", "--config", str(config))
    assert code == 0, stdout + stderr
    assert (data / "repos").is_dir() and (data / "commits.sqlite").is_file()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_in_memory_databases_still_work(tmp_path: Path, url: str) -> None:
    config = write_config(tmp_path, f'datadir = "{tmp_path / "data"}"\ndatabase = "{url}"\n')
    code, stdout, stderr = invoke("fsck", "--config", str(config))
    assert code == 0, stdout + stderr
    Database(url).close()


def test_an_explicit_database_in_the_datadir_is_the_default_case(tmp_path: Path) -> None:
    data = tmp_path / "data"
    url = f"sqlite:///{data / 'builder.sqlite'}"
    config = write_config(tmp_path, f'datadir = "{data}"\ndatabase = "{url}"\n')
    code, stdout, stderr = invoke("fsck", "--config", str(config))
    assert code == 0, stdout + stderr
    assert (data / "builder.sqlite").is_file()


# --- conveyor init ------------------------------------------------------------------------------


def test_init_makes_everything_and_is_idempotent(tmp_path: Path) -> None:
    data, dbdir = tmp_path / "data", tmp_path / "db" / "sub"
    url = f"sqlite:///{dbdir / 'x.sqlite'}"
    config = write_config(tmp_path, f'datadir = "{data}"\ndatabase = "{url}"\n')

    # Before init, the explicit database's directory is missing: refused.
    code, _, stderr = invoke("fsck", "--config", str(config))
    assert code == 2 and "conveyor init" in stderr

    code, stdout, stderr = invoke("init", "--config", str(config))
    assert code == 0, stdout + stderr
    for directory in (data, data / "repos", dbdir.parent, dbdir):
        assert directory.is_dir()
        assert f"created directory {directory}\n" in stderr
    assert f"created database {dbdir / 'x.sqlite'}" in stderr
    assert (dbdir / "x.sqlite").is_file()

    before = tree(tmp_path)
    code, stdout, stderr = invoke("init", "--config", str(config))
    assert code == 0, stdout + stderr
    assert "created" not in stderr
    assert f"database {dbdir / 'x.sqlite'} is up to date" in stderr
    assert tree(tmp_path) == before

    code, stdout, stderr = invoke("fsck", "--config", str(config))
    assert code == 0, stdout + stderr


def test_init_with_the_default_database(tmp_path: Path) -> None:
    config = write_config(tmp_path, 'datadir = "data"\n')
    code, stdout, stderr = invoke("init", "--config", str(config))
    assert code == 0, stdout + stderr
    assert (tmp_path / "data" / "repos").is_dir()
    assert (tmp_path / "data" / "commits.sqlite").is_file()


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('datadir = "{tmp}/plain/data"\n', "datadir"),
        ('datadir = "{tmp}/data"\ndatabase = "sqlite:///{tmp}/plain/x.sqlite"\n', "database"),
    ],
)
def test_init_refuses_and_leaves_nothing(tmp_path: Path, text: str, key: str) -> None:
    (tmp_path / "plain").write_text("")
    config = write_config(tmp_path, text.format(tmp=tmp_path))
    before = tree(tmp_path)
    line = assert_one_line_error(*invoke("init", "--config", str(config)), config, key)
    assert f"{tmp_path / 'plain'} is not a directory" in line
    assert tree(tmp_path) == before


# --- the same rules below the CLI ---------------------------------------------------------------


def test_database_never_creates_a_missing_tree(tmp_path: Path) -> None:
    missing = tmp_path / "missing" / "dir"
    with pytest.raises(DatabaseError, match="does not exist"):
        Database(f"sqlite:///{missing / 'x.sqlite'}")
    assert not missing.parent.exists()


@pytest.mark.skipif(MISSING_PG is None, reason="every PostgreSQL driver tried is installed")
def test_database_reports_a_missing_driver(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match=r"driver .* is not installed"):
        Database(f"postgresql+{MISSING_PG}://u:p@db.example.org/conveyor")


def test_check_storage_names_the_file(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, 'datadir = "x"\ndatabase = "nosuch://h/db"\n'))
    with pytest.raises(ConfigError, match=r"conveyor\.toml: option 'database': unknown"):
        check_storage(config, tmp_path / "conveyor.toml")
    assert not (tmp_path / "x").exists()
