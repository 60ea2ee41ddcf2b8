"""The trunk builder in operation: transient failures, rechecks, the builder lock and the
continuous mode, on the example distribution with real rpmbuild."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from tests.support import (
    Trunk,
    built_example,
    default_first_cycle,
    example,
    example_git,
    fresh_trunk,
)
from typer.testing import CliRunner

from conveyor.assembly.builder import run_cycle
from conveyor.cli.main import app
from conveyor.config import BuildDriverName
from conveyor.publish.locks import PUBLISH_LOCK_NAME, BuilderBusy, builder_lock, publish_lock
from conveyor.trunk.cycle import CycleOptions

pytestmark = pytest.mark.slow
PLUGIN = "python-exampleplugin"


@pytest.fixture
def trunk(tmp_path) -> Trunk:
    return fresh_trunk(tmp_path / "dist")


@pytest.fixture
def built_trunk() -> Iterator[Trunk]:
    """The example after its first cycle (example-broken failed), built once for the run."""
    with built_example("default", default_first_cycle).changed() as trunk:
        yield trunk


def break_build(trunk: Trunk, package: str, shell: str) -> None:
    distgit = trunk.dist.distgits[trunk.dist.projects[package]]
    spec = distgit / f"{package}.spec"
    spec.write_text(spec.read_text().replace("%build\n", f"%build\n{shell}\n", 1))
    example_git(distgit, "commit", "-qam", "break the build")


def statuses(trunk: Trunk, package: str) -> list[str]:
    with sqlite3.connect(trunk.db) as conn:
        return [
            r[0]
            for r in conn.execute(
                "select status from commits where project_name = ? order by id", (package,)
            )
        ]


def only(package: str) -> CycleOptions:
    return CycleOptions(only=[package])


def test_transient_failure_is_retried_then_failed(trunk):
    break_build(trunk, PLUGIN, 'echo "Curl error (6): Could not resolve host: mirror"; exit 1')
    config = trunk.config(maxretries=2)
    assert run_cycle(config, only(PLUGIN)).exit_code == 2
    assert run_cycle(config, only(PLUGIN)).exit_code == 2
    assert run_cycle(config, only(PLUGIN)).exit_code == 1
    assert statuses(trunk, PLUGIN) == ["RETRY", "RETRY", "FAILED"]
    assert run_cycle(config, only(PLUGIN)).published == []  # FAILED is final


def test_retry_patterns_are_configurable_and_logs_may_be_anything(trunk):
    # 12 MB of binary noise first: the log is neither small nor UTF-8.
    break_build(
        trunk,
        PLUGIN,
        "head -c 12000000 /dev/urandom; echo; echo 'runner lost: flaky farm'; exit 1",
    )
    config = trunk.config(retry_patterns=("flaky farm",))
    assert run_cycle(config, only(PLUGIN)).exit_code == 2
    assert statuses(trunk, PLUGIN) == ["RETRY"]
    plain = trunk.config(retry_patterns=())
    assert run_cycle(plain, only(PLUGIN)).exit_code == 1


def test_recheck_rebuilds_a_failure_and_refuses_a_success(built_trunk):
    trunk = built_trunk  # after its first cycle
    runner = CliRunner()
    conf = str(trunk.config_path)
    broken = trunk.dist.failing_package
    result = runner.invoke(app, ["recheck", broken, "--config", conf])
    assert result.exit_code == 0, result.output
    assert "will be built again" in result.output
    trunk.run("--package", broken)
    assert statuses(trunk, broken) == ["FAILED", "FAILED"]

    result = runner.invoke(app, ["recheck", PLUGIN, "--config", conf])
    assert result.exit_code == 2 and "succeeded; use --force" in result.output
    result = runner.invoke(app, ["recheck", PLUGIN, "--force", "--config", conf])
    assert result.exit_code == 2 and "allow_force_rechecks" in result.output
    result = runner.invoke(app, ["recheck", "no-such-package", "--config", conf])
    assert result.exit_code == 2 and "unknown package" in result.output


def test_a_second_process_says_the_builder_is_busy_and_exits(trunk):
    with builder_lock(trunk.config()):
        code, output = trunk.run()
    assert code == 3
    assert f"pid {os.getpid()}" in output and "is running this builder" in output
    assert not Path(trunk.db).exists() or not statuses(trunk, PLUGIN)


def wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


def count(trunk: Trunk, query: str) -> int:
    if not trunk.db.exists():
        return 0
    try:
        with sqlite3.connect(trunk.db) as conn:
            return conn.execute(query).fetchone()[0]
    except sqlite3.OperationalError:
        return 0  # the schema is being created


def test_continuous_mode_follows_changes_reloads_metadata_and_stops_on_sigterm(
    built_trunk, tmp_path
):
    trunk = built_trunk  # every package built once already: the loop follows what comes next
    log = tmp_path / "loop.log"
    with log.open("w") as out:
        loop = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "conveyor",
                "run",
                "--loop",
                "--interval",
                "0.5",
                "--config",
                str(trunk.config_path),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},  # the log is read while it runs
        )
    try:
        assert count(trunk, "select count(*) from commits") == len(trunk.dist.packages)
        new_commit = example.add_upstream_commit(trunk.root, "examplelib", "while looping")
        wait_for(
            lambda: (
                count(trunk, f"select count(*) from commits where commit_hash = '{new_commit}'")
                == 1
            )
        )

        # Broken metadata: the loop says so and keeps going.
        good = trunk.dist.metadata.read_text()
        trunk.dist.metadata.write_text("packages: [\n")
        wait_for(lambda: log.read_text().count("cycle skipped") >= 2)  # and tried again
        assert loop.poll() is None
        # A package with builds removed from the metadata: no longer followed.
        metadata = yaml.safe_load(good)
        metadata["packages"] = [p for p in metadata["packages"] if p["project"] != "examplecli"]
        trunk.dist.metadata.write_text(yaml.safe_dump(metadata))
        example_git(trunk.dist.upstreams["examplecli"], "commit", "-q", "--allow-empty", "-m", "x")
        example.add_upstream_commit(trunk.root, "examplelib", "after the edit")
        wait_for(
            lambda: (
                count(
                    trunk, "select count(*) from commits where project_name = 'python-examplelib'"
                )
                == 3
            )
        )
        assert count(trunk, "select count(*) from commits where project_name = 'examplecli'") == 1

        loop.send_signal(signal.SIGTERM)
        loop.wait(timeout=60)
    finally:
        if loop.poll() is None:
            loop.kill()
            loop.wait()
    output = log.read_text()
    assert loop.returncode == 0, output
    assert "cycle skipped" in output and "rdo.yml" in output
    assert not list(trunk.repos.glob("??/??/.staging-*"))
    assert not (trunk.repos / ".publishing").exists()
    assert trunk.run()[0] in (0, 1)  # the lock was released


def test_publishing_waits_for_another_process_then_gives_up(trunk):
    config = trunk.config()
    config.datadir.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('held', flush=True)\ntime.sleep(1.5)\n",
            str(config.datadir / PUBLISH_LOCK_NAME),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with (
            pytest.raises(BuilderBusy, match=r"publishing .* stayed busy"),
            publish_lock(config, 0.3),
        ):
            pass
        started = time.monotonic()
        with publish_lock(config, 30), publish_lock(config, 0.1):  # waits, then nests
            assert time.monotonic() - started > 0.5
    finally:
        holder.kill()
        holder.wait()


def test_a_retry_or_a_recheck_that_succeeds_is_published(trunk, tmp_path):
    mirror_up = tmp_path / "mirror-up"
    break_build(trunk, PLUGIN, f'test -e {mirror_up} || {{ echo "Connection timed out"; exit 1; }}')
    # These specs look at a file of the host on purpose (the "network" coming back): only the
    # bare host driver shows it to them; a sandboxed build never sees the host's /tmp.
    config = trunk.config(build_driver=BuildDriverName.RPMBUILD)
    assert run_cycle(config, only(PLUGIN)).exit_code == 2
    mirror_up.touch()
    assert run_cycle(config, only(PLUGIN)).exit_code == 0
    assert statuses(trunk, PLUGIN) == ["RETRY", "SUCCESS"]
    _, commit, distro, *_ = trunk.newest(PLUGIN)
    assert (trunk.hash_dir(commit, distro) / "repodata").is_dir()

    flaky = tmp_path / "flaky-fixed"
    lib = "python-examplelib"
    break_build(trunk, lib, f"test -e {flaky} || exit 1")
    assert run_cycle(config, only(lib)).exit_code == 1
    flaky.touch()
    assert (
        CliRunner().invoke(app, ["recheck", lib, "--config", str(trunk.config_path)]).exit_code == 0
    )
    assert run_cycle(config, only(lib)).exit_code == 0
    assert statuses(trunk, lib) == ["FAILED", "SUCCESS"]
    _, commit, distro, *_ = trunk.newest(lib)
    assert (trunk.hash_dir(commit, distro) / "repodata").is_dir()


def test_a_label_move_cut_short_leaves_nothing_after_the_next_run(trunk):
    trunk.run("--package", PLUGIN)
    leftover = trunk.repos / ".current.tmp4242"
    leftover.symlink_to("nowhere")
    trunk.run("--package", PLUGIN)
    assert not leftover.is_symlink()
