"""CLI parity (issue 14, part 8): `status --json`, `promote --explain --json`, `--version`,
`-v`/`-q`, and the completion of package names, as a user sees them: the JSON documents,
the exit codes, the help text, the candidates a shell offers."""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from tests.support import (
    Trunk,
    built_example,
    default_first_cycle,
    example,
    fresh_trunk,
    rows,
)
from typer.testing import CliRunner

from conveyor.assembly.builder import run_cycle
from conveyor.cli import common, main
from conveyor.store.database import Database
from conveyor.store.models import CIVote
from conveyor.trunk.cycle import CycleOptions

needs_rpmbuild = pytest.mark.skipif(
    shutil.which("rpmbuild") is None, reason="rpmbuild is not installed"
)
CONVEYOR = Path(sys.executable).with_name("conveyor")
PACKAGES = [
    "example-broken",
    "examplecli",
    "openstack-exampledashboard",
    "openstack-exampleservice",
    "python-example-config",
    "python-exampleclient",
    "python-examplelib",
    "python-exampleplugin",
]
PACKAGE_KEYS = {
    "package_name",
    "status",
    "commit_hash",
    "distro_hash",
    "extended_hash",
    "component",
    "dt_build",
    "nvr",
    "repo_hash",
    "repo_url",
    "notes",
}


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(main.app, list(args), env=env, prog_name="conveyor")


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The metadata parse cache in the test's folder, and conveyor's log level as it was."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    logger = logging.getLogger(common.LOGGER)
    root = logging.getLogger()
    levels = logger.level, root.level
    yield
    logger.setLevel(levels[0])
    root.setLevel(levels[1])


@pytest.fixture
def built() -> Iterator[Trunk]:
    """The example after its first cycle (example-broken failed), for a test that changes it."""
    with built_example("default", default_first_cycle).changed() as trunk:
        yield trunk


# --- --version --------------------------------------------------------------------------------


def test_version_is_the_installed_distributions() -> None:
    expected = f"conveyor {importlib.metadata.version('conveyor')}\n"
    result = invoke("--version")
    assert result.exit_code == 0 and result.output == expected
    # Also before a command's name, and with the verbosity flags before it.
    assert invoke("-v", "--version").output == expected


def test_version_starts_without_the_command_modules() -> None:
    probe = (
        "import runpy, sys\n"
        "sys.argv = ['conveyor', '--version']\n"
        "try:\n"
        "    runpy.run_module('conveyor', run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "heavy = [m for m in ('conveyor.cli.trunk', 'conveyor.cli.metadata', 'conveyor.config',"
        " 'conveyor.store', 'sqlalchemy', 'pydantic', 'rich') if m in sys.modules]\n"
        "print('LOADED', heavy, file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"conveyor {importlib.metadata.version('conveyor')}\n"
    assert "LOADED []" in done.stderr
    # `python -m conveyor` itself.
    done = subprocess.run(
        [sys.executable, "-m", "conveyor", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.startswith("conveyor "), done.stderr


# --- verbosity ---------------------------------------------------------------------------------


def test_help_documents_the_top_level_options() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for option in ("--verbose", "-v", "--quiet", "-q", "--version", "-vv"):
        assert option in result.output, option
    assert "log errors only" in result.output
    # The commands say what their JSON holds, and serve what it follows.
    status = invoke("status", "--help").output
    assert "--json" in status and "distro_hash" in status and "repo_url" in status
    promote = invoke("promote", "--help").output
    assert "--json" in promote and "chosen_commit" in promote and "verdict" in promote
    serve = invoke("serve", "--help").output
    assert "X-Conveyor-Restart-Needed" in serve and "datadir" in serve


def test_verbose_and_quiet_together_are_refused() -> None:
    result = invoke("-v", "-q", "status")
    assert result.exit_code == 2
    assert "not both" in result.output


def test_the_command_is_found_after_the_verbosity_flags() -> None:
    assert main._invoked_command(["-vv", "--quiet", "info", "nova"]) == "info"
    assert main._invoked_command(["-v", "--help"]) is None
    assert main._asks_version(["-q", "--version"])
    assert not main._asks_version(["info", "--version"])


def test_levels_of_the_options() -> None:
    assert common.log_level(0, False) is None  # the default: main() decides by the terminal
    assert common.log_level(1, False) == logging.INFO
    assert common.log_level(2, False) == logging.DEBUG
    assert common.log_level(5, False) == logging.DEBUG
    assert common.log_level(0, True) == logging.ERROR


@needs_rpmbuild
@pytest.mark.slow
def test_verbosity_changes_the_log_lines_a_cycle_shows(built: Trunk) -> None:
    """A cycle with nothing new logs one info line, "detected 0 build(s)": on a terminal only
    with -v; off a terminal by default, and not with -q."""

    def cycle(*flags: str, terminal: bool) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "TTY_COMPATIBLE": "1" if terminal else "0"}
        env.pop("FORCE_COLOR", None)
        return subprocess.run(
            [str(CONVEYOR), *flags, "run", "--config", str(built.config_path)],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=False,
        )

    line = "INFO conveyor.trunk.cycle: detected 0 build(s)"
    on_terminal = cycle(terminal=True)
    assert line not in on_terminal.stderr
    verbose = cycle("-v", terminal=True)
    assert line in verbose.stderr
    assert verbose.returncode == on_terminal.returncode
    assert line in cycle(terminal=False).stderr
    quiet = cycle("-q", terminal=False)
    assert "INFO" not in quiet.stderr and "WARNING" not in quiet.stderr


# --- status --json -----------------------------------------------------------------------------


@needs_rpmbuild
@pytest.mark.slow
def test_status_json_has_dlrns_keys_and_matches_the_database() -> None:
    trunk = built_example("default", default_first_cycle).shared()
    result = invoke("status", "--json", "--config", str(trunk.config_path))
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert set(document) == {"packages", "labels", "aggregates"}
    assert [p["package_name"] for p in document["packages"]] == PACKAGES
    baseurl = trunk.config().baseurl
    for package in document["packages"]:
        assert set(package) == PACKAGE_KEYS
        status, commit_hash, distro_hash, _, notes, _ = trunk.newest(package["package_name"])
        assert package["notes"] == notes
        assert package["status"] == status
        assert package["commit_hash"] == commit_hash
        assert package["distro_hash"] == distro_hash
        assert package["repo_hash"] == f"{commit_hash}_{distro_hash[:8]}"
        assert package["extended_hash"] is None and package["component"] is None
        assert isinstance(package["dt_build"], int)
        # The hash directory (a failed build's too: it holds the logs), under baseurl.
        hash_dir = trunk.hash_dir(commit_hash, distro_hash)
        assert hash_dir.is_dir()
        assert package["repo_url"] == f"{baseurl}/{hash_dir.relative_to(trunk.repos)}"
    by_name = {p["package_name"]: p for p in document["packages"]}
    broken = by_name["example-broken"]
    assert broken["status"] == "FAILED" and broken["nvr"] is None
    assert "failing on purpose" in broken["notes"]
    lib = by_name["python-examplelib"]
    assert lib["status"] == "SUCCESS"
    assert lib["nvr"].startswith("python-examplelib-") and lib["nvr"].endswith(".el9")
    # Where the labels point: current is set, consistent is not (example-broken fails).
    assert document["labels"] == {
        "current": os.readlink(trunk.repos / "current"),
        "consistent": None,
    }
    assert document["aggregates"] == {}
    # The table says the same.
    table = invoke("status", "--config", str(trunk.config_path)).output
    assert f"current: {document['labels']['current']}" in table


def components_first_cycle(trunk: Trunk) -> None:
    """As tests/test_promote_trunk.py builds it (the same key shares the build)."""
    assert run_cycle(trunk.config(use_components=True), CycleOptions()).exit_code == 1


@needs_rpmbuild
@pytest.mark.slow
def test_status_json_with_components() -> None:
    with built_example("components", components_first_cycle).changed() as trunk:
        text = trunk.config_path.read_text()
        trunk.config_path.write_text(
            text.replace("workers = ", "use_components = true\nworkers = ")
        )
        result = invoke("status", "--json", "--config", str(trunk.config_path))
        assert result.exit_code == 0, result.output
        document = json.loads(result.stdout)
        components = sorted(p.name for p in (trunk.repos / "component").iterdir())
        assert components
        assert set(document["labels"]) == {
            f"component/{c}/{label}" for c in components for label in ("current", "consistent")
        }
        for component in components:
            link = trunk.repos / "component" / component / "current"
            assert document["labels"][f"component/{component}/current"] == os.readlink(link)
        # The aggregate hash each trunk-wide label serves: its .repo's md5.
        assert set(document["aggregates"]) == {"current", "consistent"}
        md5 = (trunk.repos / "current" / "delorean.repo.md5").read_text().strip()
        assert document["aggregates"]["current"] == md5
        by_name = {p["package_name"]: p for p in document["packages"]}
        assert by_name["python-exampleclient"]["component"] == "clients"
        assert "/component/clients/" in by_name["python-exampleclient"]["repo_url"]


def test_status_json_of_a_trunk_never_built(tmp_path: Path) -> None:
    trunk = fresh_trunk(tmp_path / "dist")
    result = invoke("status", "--json", "--config", str(trunk.config_path))
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert [p["package_name"] for p in document["packages"]] == PACKAGES
    for package in document["packages"]:
        assert package == {
            **dict.fromkeys(PACKAGE_KEYS),
            "package_name": package["package_name"],
            "status": "NO_BUILD",
        }
    assert document["labels"] == {"current": None, "consistent": None}


def test_status_json_bad_configuration_prints_no_json(tmp_path: Path) -> None:
    result = invoke("status", "--json", "--config", str(tmp_path / "missing.toml"))
    assert result.exit_code == 2
    assert "{" not in result.stdout
    assert "configuration file not found" in result.output


# --- promote --explain --json ------------------------------------------------------------------

CRITERIA = """\
promotions:
  ci-testing:
    candidate_label: consistent
    criteria: [unit, integration]
  current-passed-ci:
    candidate_label: ci-testing
    criteria: [tempest]
"""


def _vote(db: Database, commit_id: int, job: str, success: bool = True) -> None:
    with db.transaction() as session:
        session.add(
            CIVote(
                commit_id=commit_id,
                ci_name=job,
                ci_url=f"https://ci.example.org/{job}",
                ci_vote=success,
                ci_in_progress=False,
                timestamp=2_000_000_000,
                notes="",
            )
        )


@needs_rpmbuild
@pytest.mark.slow
def test_promote_explain_json(built: Trunk, tmp_path: Path) -> None:
    example.fix_broken_package(built.root)
    assert run_cycle(built.config(), CycleOptions()).exit_code == 0
    ((commit_id,),) = rows(built.db, "select commit_id from civotes where ci_name = 'consistent'")
    ((commit_hash, distro_hash),) = rows(
        built.db, "select commit_hash, distro_hash from commits where id = ?", commit_id
    )
    key = f"{commit_hash}_{distro_hash[:8]}"
    assert os.readlink(built.repos / "consistent").endswith(key)
    criteria = tmp_path / "promotions.yaml"
    criteria.write_text(CRITERIA)
    common_args = ("--criteria", str(criteria), "--config", str(built.config_path))
    db = Database(built.config().database_url)
    try:
        _vote(db, commit_id, "unit")
        _vote(db, commit_id, "integration", success=False)
        result = invoke("promote", "--once", "--dry-run", "--explain", "--json", *common_args)
        assert result.exit_code == 0, result.output
        first, second = json.loads(result.stdout)
        assert first == {
            "target": "ci-testing",
            "component": None,
            "candidate_label": "consistent",
            "criteria": ["unit", "integration"],
            "incumbent": None,
            "chosen": None,
            "error": None,
            "promoted": False,
            "dry_run": True,
            "lost_race": False,
            "chosen_commit": None,
            "candidates": [
                {
                    "key": key,
                    "verdict": "missing-jobs",
                    "passed": ["unit"],
                    "missing": ["integration"],
                    "alternatives_used": {},
                }
            ],
        }
        assert second["target"] == "current-passed-ci" and second["candidates"] == []

        _vote(db, commit_id, "integration")  # a re-vote overrides the failure
        result = invoke("promote", "--once", "--json", *common_args)
        assert result.exit_code == 0, result.output
        first, second = json.loads(result.stdout)
        assert first["promoted"] is True and first["dry_run"] is False
        assert first["chosen"] == key
        assert first["chosen_commit"] == {
            "commit_hash": commit_hash,
            "distro_hash": distro_hash,
            "extended_hash": None,
            "component": None,
        }
        assert first["candidates"][0]["verdict"] == "promote"
        assert first["candidates"][0]["passed"] == ["unit", "integration"]
        # The chained target sees the promotion at once; its job has not voted.
        assert second["candidates"][0]["key"] == key
        assert second["candidates"][0]["verdict"] == "missing-jobs"
        assert second["candidates"][0]["missing"] == ["tempest"]
        assert (built.repos / "ci-testing").resolve() == (built.repos / "consistent").resolve()

        result = invoke("promote", "--once", "--explain", "--json", *common_args)
        first, _ = json.loads(result.stdout)
        assert first["incumbent"] == key and first["promoted"] is False
        assert first["candidates"][0]["verdict"] == "incumbent"
        # The text form is still there without --json.
        text = invoke("promote", "--once", "--dry-run", "--explain", *common_args).output
        assert "ci-testing <- consistent" in text and "{" not in text
    finally:
        db.close()


def test_promote_json_bad_criteria_exits_2(tmp_path: Path) -> None:
    trunk = fresh_trunk(tmp_path / "dist")
    criteria = tmp_path / "promotions.yaml"
    criteria.write_text("promotions: [\n")
    result = invoke(
        "promote",
        "--once",
        "--json",
        "--criteria",
        str(criteria),
        "--config",
        str(trunk.config_path),
    )
    assert result.exit_code == 2 and "{" not in result.stdout and "[" not in result.stdout


# --- completion of package names ---------------------------------------------------------------


def test_completion_function_offers_the_builders_packages(tmp_path: Path) -> None:
    trunk = fresh_trunk(tmp_path / "dist")
    ctx: Any = SimpleNamespace(params={"config_file": trunk.config_path})
    assert common.complete_package(ctx, "") == PACKAGES
    assert common.complete_package(ctx, "python-example") == [
        "python-example-config",
        "python-exampleclient",
        "python-examplelib",
        "python-exampleplugin",
    ]
    assert common.complete_package(ctx, "openstack-examples") == ["openstack-exampleservice"]
    # Commands take a project name too: offered when no package name matches.
    assert common.complete_package(ctx, "examplel") == ["examplelib"]
    assert common.complete_package(ctx, "zzz") == []
    # Parsed once, then read from the cache.
    assert any((tmp_path / "cache" / "conveyor" / "metadata").rglob("*.pickle"))
    # A configuration or metadata that cannot be read offers nothing, and says nothing.
    missing: Any = SimpleNamespace(params={"config_file": tmp_path / "missing.toml"})
    assert common.complete_package(missing, "") == []
    (trunk.root / "rdoinfo" / "rdo.yml").write_text("packages: [\n")
    assert common.complete_package(ctx, "") == []


def _bash_complete(words: str, *, cwd: Path | None = None) -> list[str]:
    """What bash's completion script gets, in process (CliRunner) or from the installed
    command (with `cwd`)."""
    cword = str(len(words.split(" ")) - 1)
    env = {"_CONVEYOR_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": cword}
    if cwd is None:
        result = invoke(env=env)
        assert result.exit_code == 0, result.output
        return result.stdout.split()
    done = subprocess.run(
        [str(CONVEYOR)],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_shell_completion_of_package_names(tmp_path: Path) -> None:
    trunk = fresh_trunk(tmp_path / "dist")
    config = str(trunk.config_path)
    assert _bash_complete(f"conveyor run --config {config} -p python-examplel") == [
        "python-examplelib"
    ]
    assert _bash_complete(f"conveyor run --config {config} --package openstack-") == [
        "openstack-exampledashboard",
        "openstack-exampleservice",
    ]
    assert _bash_complete(f"conveyor recheck --config {config} example") == [
        "example-broken",
        "examplecli",
    ]
    # Without --config: the builder of ./conveyor.toml, through the installed command.
    assert _bash_complete("conveyor recheck python-exampleplu", cwd=trunk.root) == [
        "python-exampleplugin"
    ]
    assert _bash_complete("conveyor run -p ", cwd=trunk.root) == PACKAGES
    # Elsewhere, no configuration: nothing offered, no error in the command line.
    assert _bash_complete("conveyor recheck py", cwd=tmp_path) == []
    # Commands are still completed as before.
    assert "recheck" in _bash_complete("conveyor rech")


@needs_rpmbuild
@pytest.mark.slow
def test_status_shows_where_the_promotion_labels_point() -> None:
    with built_example("default", default_first_cycle).changed() as trunk:
        target = os.readlink(trunk.repos / "current")
        (trunk.repos / "current-passed-ci").symlink_to(target)
        with sqlite3.connect(trunk.db) as connection:
            connection.execute(
                "insert into promotions (commit_id, promotion_name, timestamp) "
                "values ((select max(id) from commits where status = 'SUCCESS'), ?, 1)",
                ("current-passed-ci",),
            )
        result = invoke("status", "--json", "--config", str(trunk.config_path))
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["labels"]["current-passed-ci"] == target
        table = invoke("status", "--config", str(trunk.config_path)).output
        assert f"current-passed-ci: {target}" in table
