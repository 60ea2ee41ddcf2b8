"""Builds on `conveyor worker` processes through a real PostgreSQL: a scheduler and three
workers, one killed with SIGKILL in mid-build; cut and forged uploads; leftovers of a killed
scheduler; a server restarted under load."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from tests.postgres_server import PostgresServer, postgres  # noqa: F401 (fixture)
from tests.support import Trunk, build_target, cli, fresh_trunk

from conveyor.api import create_app
from conveyor.assembly.workers import RemoteExecutor, remote_executor
from conveyor.config import load_config
from conveyor.domain.builds import BuildJob, Mirrors
from conveyor.queue.jobs import BUILD_TASK, job_arguments, queue_app, store_upload
from conveyor.store.database import Database

QUEUE = "\n[queue]\nenabled = true\nheartbeat = 0.5\nstalled_after = 2\n"


def scheduler(trunk: Trunk, url: str) -> None:
    text_ = trunk.config_path.read_text()
    trunk.config_path.write_text(f'database = "{url}"\n' + text_ + QUEUE)


def worker_config(trunk: Trunk, folder: Path) -> Path:
    """A worker's conveyor.toml: the builder's, with a data directory of its own (nothing
    is shared with the scheduler but the database)."""
    folder.mkdir(parents=True)
    config = folder / "conveyor.toml"
    config.write_text(
        trunk.config_path.read_text().replace('datadir = "data"', f'datadir = "{folder}/data"')
    )
    return config


@contextmanager
def workers(trunk: Trunk, root: Path, count: int) -> Iterator[list[tuple[subprocess.Popen, Path]]]:
    started = []
    for n in range(count):
        folder = root / f"worker{n}"
        config = worker_config(trunk, folder)
        log = (folder / "log").open("w")
        process = subprocess.Popen(
            [sys.executable, "-m", "conveyor", "worker", "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append((process, folder))
    try:
        yield started
    finally:
        for process, _ in started:
            if process.poll() is None:
                process.terminate()
        for process, _ in started:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


def server_rows(url: str, query: str) -> list[tuple]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(query))]
    finally:
        engine.dispose()


def building(folder: Path) -> bool:
    builds = folder / "data" / "builds"
    return builds.is_dir() and any((d / "SOURCES").is_dir() for d in builds.iterdir())


def test_three_workers_one_killed_mid_build_every_commit_built_and_published_once(
    tmp_path: Path,
    postgres: PostgresServer,  # noqa: F811
) -> None:
    trunk = fresh_trunk(tmp_path / "dist")
    url = postgres.new_database()
    scheduler(trunk, url)
    with workers(trunk, tmp_path, 3) as started:
        killed: list[int] = []

        def kill_one_mid_build() -> None:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not killed:
                for process, folder in started:
                    if building(folder):
                        os.kill(process.pid, signal.SIGKILL)
                        killed.append(process.pid)
                        return
                time.sleep(0.01)

        killer = threading.Thread(target=kill_one_mid_build)
        killer.start()
        code, output = trunk.run()
        killer.join()
        code_workers, listing = cli("workers", "--config", str(trunk.config_path), "--json")
        with TestClient(create_app(load_config(trunk.config_path))) as client:
            metrics = client.get("/metrics").text
            dashboard = client.get("/").text
    assert killed, "no worker was caught building"
    assert code == 1, output  # example-broken fails on purpose
    builds = server_rows(url, "select project_name, commit_hash, status from commits")
    assert len(builds) == 8 == len({(p, c) for p, c, _ in builds})  # each commit once
    assert sorted(s for _, _, s in builds).count("SUCCESS") == 7
    for project, commit_hash, status in builds:
        if status == "SUCCESS":
            (repo,) = trunk.repos.glob(f"{commit_hash[:2]}/{commit_hash[2:4]}/{commit_hash}_*")
            assert (repo / "delorean.repo").is_file(), project
    # The killed worker's build was queued again and taken by another worker.
    attempts = server_rows(url, "select max(attempts) from procrastinate_jobs")
    assert attempts[0][0] >= 1
    assert server_rows(url, "select count(*) from build_uploads") == [(0,)]
    assert code_workers == 0, listing
    document = json.loads(listing)
    builders = [w for w in document["workers"] if w["queues"] == ["builds"]]
    assert len(builders) >= 2 and document["queued"] == {"builds": 0, "promotions": 0}
    assert 'conveyor_queue_jobs{queue="builds"} 0.0' in metrics
    beating = re.search(r'^conveyor_workers{queue="builds"} ([0-9.]+)$', metrics, re.MULTILINE)
    assert beating and beating[1] in ("2.0", "3.0"), metrics
    # The dashboard shows the same: the queue's depth and every worker with its heartbeat.
    assert 'id="queue-depth">Waiting for a worker: builds 0, promotions 0.' in dashboard
    assert dashboard.count("s ago") >= len(document["workers"])
    assert 'id="workers-table"' in dashboard


def test_workers_and_the_scheduler_survive_a_postgresql_restart(
    tmp_path: Path,
    postgres: PostgresServer,  # noqa: F811
) -> None:
    trunk = fresh_trunk(tmp_path / "dist")
    url = postgres.new_database()
    scheduler(trunk, url)
    with workers(trunk, tmp_path, 2) as started:

        def restart_when_building() -> None:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if any(building(folder) for _, folder in started):
                    postgres.stop("immediate")
                    postgres.restart()
                    return
                time.sleep(0.01)

        restarter = threading.Thread(target=restart_when_building)
        restarter.start()
        code, output = trunk.run()
        restarter.join()
        # Both workers reconnected: none stopped with the connection it lost.
        logs = [(folder / "log").read_text() for _, folder in started]
        assert [process.poll() for process, _ in started] == [None, None], logs
    assert code == 1, output
    builds = server_rows(url, "select project_name, commit_hash, status from commits")
    assert len(builds) == 8 == len({(p, c) for p, c, _ in builds})


def _job(trunk: Trunk, name: str = "python-examplelib") -> BuildJob:
    return BuildJob(
        target=build_target(name),
        mirrors=Mirrors.under(trunk.root / "data", name),
        commit_hash="ab" * 20,
        dt_commit=1,
        commit_branch="master",
        distro_hash="cd" * 20,
        dt_distro=1,
    )


def test_a_cut_or_forged_upload_is_refused_and_recorded_as_a_failed_build(
    tmp_path: Path,
    postgres: PostgresServer,  # noqa: F811
) -> None:
    trunk = fresh_trunk(tmp_path / "dist")
    url = postgres.new_database()
    scheduler(trunk, url)
    config = load_config(trunk.config_path)
    db = Database(url)
    try:
        # A worker whose file vanishes while it uploads writes nothing at all.
        rpm = tmp_path / "python-examplelib-1.0-1.el9.noarch.rpm"
        rpm.write_bytes(b"x" * 1000)
        with pytest.raises(FileNotFoundError):
            store_upload(db, 7, [rpm, tmp_path / "gone.rpm"], {})
        assert server_rows(url, "select count(*) from build_uploads") == [(0,)]

        # A truncated RPM, uploaded with a digest of what arrived: the RPM check refuses it.
        log = tmp_path / "rpmbuild.log"
        log.write_text("built\n")
        record = {
            "success": True,
            "notes": "OK",
            "dt_build": 1,
            "version": {"version": "1.0", "release": "1.el9", "upstream_version": "1.0"},
            "rpms": [rpm.name],
            "logs": [],
            "files": [rpm.name, log.name],
        }
        store_upload(db, 8, [rpm, log], record)
        executor = RemoteExecutor(config, db, queue_app(url))
        result = executor._receive(_job(trunk), 8)
        assert not result.outcome.success
        assert "upload was refused" in result.outcome.notes
        assert "not an RPM package" in result.outcome.notes

        # A file name that would leave the build's folder.
        store_upload(db, 9, [log], {**record, "rpms": [], "files": []})
        with create_engine(url).begin() as connection:
            connection.execute(
                text(
                    "update build_uploads set name = '../x' "
                    "where job_id = 9 and name = 'rpmbuild.log'"
                )
            )
        result = executor._receive(_job(trunk), 9)
        assert "refused" in result.outcome.notes
        assert not (trunk.root / "data" / "builds" / "x").exists()
    finally:
        db.close()


def test_jobs_a_killed_scheduler_left_are_withdrawn_even_for_a_removed_package(
    tmp_path: Path,
    postgres: PostgresServer,  # noqa: F811
) -> None:
    trunk = fresh_trunk(tmp_path / "dist")
    url = postgres.new_database()
    scheduler(trunk, url)
    config = load_config(trunk.config_path)
    db = Database(url)

    async def leave_a_job() -> None:
        async with remote_executor(config, db) as executor:
            await executor.app.configure_task(BUILD_TASK, queue="builds").defer_async(
                **job_arguments(_job(trunk, "python-removed"))
            )

    try:
        # remote_executor withdraws on exit what it queued; a killed one cannot: put back
        # the job as a killed scheduler leaves it.
        asyncio.run(leave_a_job())
        with create_engine(url).begin() as connection:
            connection.execute(text("update procrastinate_jobs set status = 'todo'"))
    finally:
        db.close()
    # No worker yet: the cycle waits, and says why; the worker started then builds it all.
    cycle = subprocess.Popen(
        [sys.executable, "-m", "conveyor", "run", "--config", str(trunk.config_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert cycle.stdout is not None
    said = ""
    while "no worker is beating" not in said:
        line = cycle.stdout.readline()
        assert line, said
        said += line
    with workers(trunk, tmp_path, 1):
        output = said + cycle.communicate(timeout=120)[0]
    assert cycle.returncode == 1, output
    assert server_rows(
        url,
        "select status from procrastinate_jobs where args->'target'->>'name' = 'python-removed'",
    ) == [("cancelled",)]
    assert server_rows(
        url, "select count(*) from commits where project_name = 'python-removed'"
    ) == [(0,)]


def test_workers_need_postgresql(tmp_path: Path) -> None:
    trunk = fresh_trunk(tmp_path / "dist")
    code, output = cli("worker", "--config", str(trunk.config_path))
    assert code == 2
    assert "PostgreSQL" in output
    trunk.config_path.write_text(trunk.config_path.read_text() + "\n[queue]\nenabled = true\n")
    code, output = trunk.run()
    assert code == 2
    assert "[queue] enabled needs a PostgreSQL database" in output
