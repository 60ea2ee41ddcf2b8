"""`conveyor serve --processes 2` on a real PostgreSQL: votes from 50 clients spread over both
processes are each stored once, a promotion two processes race for happens once, and a
killed process is replaced."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from tests.postgres_server import PostgresServer, postgres  # noqa: F401 (fixture)
from tests.test_api_concurrency import (
    TARGET,
    LightClient,
    _free_port,
    add_vote,
    make_commit,
    promoting_builder,
    vote_body,
)

from conveyor.store.database import Database

CLIENTS, PER_CLIENT, COMMITS = 50, 20, 20


def server_rows(url: str, query: str) -> list[tuple]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(query))]
    finally:
        engine.dispose()


def children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in found]


@pytest.fixture
def served(
    tmp_path: Path,
    postgres: PostgresServer,  # noqa: F811
) -> Iterator[tuple[str, str, Path, subprocess.Popen]]:
    url = postgres.new_database()
    config, data = promoting_builder(tmp_path, url)
    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "conveyor", "serve", "--config", str(config)),
                *("--port", str(port), "--processes", "2"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while len(children(process.pid)) < 2 or not _healthy(base):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield base, url, data, process
    finally:
        process.terminate()
        process.wait(timeout=60)


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/api/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_votes_over_two_processes_are_stored_once_and_promote_once(served) -> None:
    base, url, data, _ = served
    db = Database(url)
    commits = [make_commit(db, data, n) for n in range(1, COMMITS + 1)]
    db.close()
    barrier = threading.Barrier(CLIENTS)

    def client(number: int) -> list[str]:
        problems = []
        with LightClient(base) as http:
            barrier.wait()
            for seq in range(PER_CLIENT):
                commit = commits[(number * PER_CLIENT + seq) % COMMITS]
                job = f"job-{number}-{seq}"
                status, answer = http.post(
                    "/api/report_result", vote_body(commit, job, f"http://ci/{job}")
                )
                if status != 201:
                    problems.append(f"{status} {answer[:200]!r}")
        return problems

    with ThreadPoolExecutor(CLIENTS) as pool:
        problems = [p for found in pool.map(client, range(CLIENTS)) for p in found]
    assert problems == []
    stored = server_rows(url, "select ci_name from civotes")
    assert len(stored) == CLIENTS * PER_CLIENT == len(set(stored))

    # A consistent candidate that passed its criteria, then two votes at once on connections
    # of their own (the kernel spreads them over the processes): both processes evaluate
    # after the vote and want to promote; it happens once.
    newest = commits[-1]
    db = Database(url)
    for job in ("consistent", "job-a", "job-b"):
        add_vote(db, newest, job)
    db.close()
    racers = threading.Barrier(2)

    def racer(job: str) -> int:
        with LightClient(base) as http:
            racers.wait()
            status, _ = http.post("/api/report_result", vote_body(newest, job, "http://ci/y"))
            return status

    with ThreadPoolExecutor(2) as pool:
        assert list(pool.map(racer, ("job-a", "job-b"))) == [201, 201]
    deadline = time.monotonic() + 30
    while not server_rows(url, f"select id from promotions where promotion_name = '{TARGET}'"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(1)  # the other process's evaluation, if any, has had its chance
    assert len(server_rows(url, "select id from promotions")) == 1


def test_a_killed_server_process_is_replaced(served) -> None:
    base, _, _, process = served
    first = children(process.pid)
    os.kill(first[0], signal.SIGKILL)
    deadline = time.monotonic() + 60
    while True:
        now = children(process.pid)
        if len(now) == 2 and first[0] not in now and _healthy(base):
            break
        assert time.monotonic() < deadline
        time.sleep(0.1)
    for _ in range(10):  # both processes answer
        assert httpx.get(f"{base}/api/health", timeout=5).status_code == 200
