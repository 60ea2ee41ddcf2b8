"""Scale-out on PostgreSQL: build workers, the queue's overhead per build, votes over two
server processes. A real PostgreSQL (Debian's) runs in a temporary folder for the run.

1. Builds of the example distribution (8 packages, real rpmbuild in the bwrap sandbox) by
   1, 2 and 4 `conveyor worker` processes, against the same cycle built in-process
   (`workers` threads, SQLite): wall time of the cycle, builds per minute.
2. The queue's overhead per build: sleep-builds (a stub worker that sleeps, then uploads a
   result record and a log, as a worker does) through the scheduler's own executor. One
   at a time, the time beyond the sleep is the overhead (queueing, pick-up, upload, the
   scheduler's look and checks); then a simulated farm (stub workers as processes, 8 builds
   at a time) for the queue's throughput.
3. Votes: 50 clients (wrk, keep-alive connections) posting `POST /api/report_result` to
   `conveyor serve --processes 2` on PostgreSQL, beside `conveyor serve` on SQLite (one
   process, group commit) in the same run.

    python -m bench.scale [--sleep-builds 200] [--farm 2000] [--votes-seconds 15] [--no-docs]

Exit status: 0 if every goal was met (overhead <= 20 ms a build, >= 2,000 votes/s), 1 if one
was not, 2 if the benchmark could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from examples.distribution import generate
from tests.postgres_server import PostgresServer, running_server
from tests.support import build_target

from bench.common import machine, save_result, settle, update_docs_section, utc_now
from conveyor.api.auth import create_user
from conveyor.assembly.workers import remote_executor
from conveyor.config import Config
from conveyor.domain.builds import BuildJob, Mirrors
from conveyor.queue.jobs import queue_app
from conveyor.store.database import Database
from conveyor.store.models import Commit

OVERHEAD_GOAL_MS = 20.0
VOTES_GOAL = 2000.0
CLIENTS = 50


# --- 1. real builds by workers ----------------------------------------------------------------


def _cycle_seconds(root: Path, database: str | None, queue: bool) -> float:
    dist = generate(root / "dist")
    config = dist.config
    text = config.read_text()
    head = f'database = "{database}"\n' if database else ""
    tail = "\n[queue]\nenabled = true\nheartbeat = 1\nstalled_after = 5\n" if queue else ""
    config.write_text(head + text + tail)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "conveyor", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise RuntimeError(done.stdout + done.stderr)
    return elapsed


def _start_workers(root: Path, database: str, count: int) -> list[subprocess.Popen[bytes]]:
    started = []
    for n in range(count):
        folder = root / f"worker{n}"
        folder.mkdir(parents=True)
        config = folder / "conveyor.toml"
        config.write_text(f'datadir = "{folder}/data"\ndatabase = "{database}"\n')
        started.append(
            subprocess.Popen(
                [sys.executable, "-m", "conveyor", "worker", "--config", str(config)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    return started


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(60)


def real_builds(server: PostgresServer, work: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for threads in (1, 2, 4):
        root = work / f"local-{threads}"
        seconds = _cycle_seconds(root, None, False)
        results[f"local {threads}"] = seconds
    for count in (1, 2, 4):
        url = server.new_database()
        root = work / f"workers-{count}"
        workers = _start_workers(root, url, count)
        try:
            results[f"workers {count}"] = _cycle_seconds(root, url, True)
        finally:
            _stop(workers)
    return results


# --- 2. sleep-builds ------------------------------------------------------------------------------

# A stub worker: no build. After `sleep` seconds it uploads, as a worker does
# (conveyor.queue.jobs.store_upload), a failed result with a log; or, given a `pool` folder,
# a successful one with the RPMs found in pool/<package>/<commit hash>/ (bench.farm).
STUB_WORKER = """
import asyncio, sys, tempfile
from pathlib import Path
from conveyor.queue.jobs import BUILD_QUEUE, BUILD_TASK, queue_app, store_upload
from conveyor.store.database import Database

url, sleep = sys.argv[1], float(sys.argv[2])
pool = Path(sys.argv[3]) if len(sys.argv) > 3 else None
app = queue_app(url)
db = Database(url)
log = Path(tempfile.mkdtemp()) / "rpmbuild.log"
log.write_text("stub\\n")

@app.task(name=BUILD_TASK, queue=BUILD_QUEUE, pass_context=True)
async def build(context, /, **arguments):
    await asyncio.sleep(sleep)
    rpms = []
    if pool is not None:
        found = pool / arguments["target"]["name"] / arguments["commit_hash"]
        rpms = sorted(found.glob("*.rpm"))
    record = {"success": bool(rpms), "notes": "OK" if rpms else "slept", "dt_build": 1_800_000_000,
              "version": None, "rpms": [r.name for r in rpms], "logs": [],
              "files": [*(r.name for r in rpms), "rpmbuild.log"]}
    await asyncio.to_thread(store_upload, db, context.job.id, [*rpms, log], record)

async def main():
    async with app.open_async():
        await app.run_worker_async(queues=[BUILD_QUEUE], concurrency=4,
                                   update_heartbeat_interval=1, stalled_worker_timeout=5)
asyncio.run(main())
"""


def _fake_job(n: int, datadir: Path) -> BuildJob:
    name = f"python-pkg{n}"
    return BuildJob(
        target=build_target(name),
        mirrors=Mirrors.under(datadir, name),
        commit_hash=f"{n:040x}",
        dt_commit=1,
        commit_branch="master",
        distro_hash=f"{n + 1:040x}",
        dt_distro=1,
    )


async def _through_queue(config: Config, db: Database, count: int, at_once: int) -> float:
    gate = asyncio.Semaphore(at_once)
    async with remote_executor(config, db) as executor:

        async def one(n: int) -> None:
            async with gate:
                result = await executor.build(_fake_job(n, config.datadir))
                assert result.outcome.notes == "slept", result.outcome.notes

        start = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(count)))
        return time.perf_counter() - start


def sleep_builds(server: PostgresServer, work: Path, count: int, farm: int) -> dict[str, Any]:
    url = server.new_database()
    config = Config(datadir=work / "scheduler", database=url, queue={"enabled": True})
    db = Database(url)
    asyncio.run(_prepare_queue(url))
    stubs = [subprocess.Popen([sys.executable, "-c", STUB_WORKER, url, "0"]) for _ in range(4)]
    try:
        time.sleep(2)  # the stubs register
        one_at_a_time = asyncio.run(_through_queue(config, db, count, 1))
        farm_seconds = asyncio.run(_through_queue(config, db, farm, 16))
    finally:
        _stop(stubs)
        db.close()
    return {
        "overhead_ms": one_at_a_time / count * 1000,
        "farm_builds": farm,
        "farm_seconds": farm_seconds,
        "farm_per_second": farm / farm_seconds,
    }


async def _prepare_queue(url: str) -> None:
    from conveyor.queue.jobs import ensure_schema

    app = queue_app(url)
    async with app.open_async():
        await ensure_schema(app)


# --- 3. votes ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _serve(root: Path, database: str | None, processes: int) -> tuple[subprocess.Popen[bytes], int]:
    root.mkdir(parents=True)
    config = root / "conveyor.toml"
    head = f'database = "{database}"\n' if database else ""
    config.write_text(head + f'datadir = "{root}/data"\n')
    db = Database(database or f"sqlite:///{root}/data/commits.sqlite")
    create_user(db, "ci", "ci-secret", ["voter"])
    with db.transaction() as session:
        session.add_all(
            Commit(
                project_name=f"pkg{n}",
                commit_hash=f"{n:040x}",
                distro_hash=f"{n + 1:040x}",
                status="SUCCESS",
                dt_build=1_700_000_000 + n,
                type="rpm",
            )
            for n in range(50)
        )
    db.close()
    port = _free_port()
    command = [sys.executable, "-m", "conveyor", "-q", "serve", "--config", str(config)]
    process = subprocess.Popen(
        [*command, "--port", str(port), "--processes", str(processes)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("conveyor serve did not start") from None
            time.sleep(0.2)
    time.sleep(1)  # every process is up
    return process, port


# wrk (C, one thread, 50 connections) rather than Python clients: 50 client threads in
# Python took most of a core from the 2 the servers had, and measured the client.
_VOTES_SCRIPT = """
local n = 0
request = function()
  n = n + 1
  local k = n %% 50
  local body = string.format('{"commit_hash":"%%040x","distro_hash":"%%040x",'
    .. '"job_id":"job-%%d","url":"http://ci.example.org/x","timestamp":1700000000,'
    .. '"success":true}', k, k + 1, n)
  return wrk.format("POST", "/api/report_result", {
    ["Authorization"] = "Basic %s", ["Content-Type"] = "application/json"}, body)
end
"""


def _votes_per_second(port: int, seconds: int, script: Path) -> float:
    """Sustained votes/s from `CLIENTS` keep-alive connections over `seconds`."""
    token = base64.b64encode(b"ci:ci-secret").decode()
    script.write_text(_VOTES_SCRIPT % token)
    run = subprocess.run(
        ["wrk", "-t1", f"-c{CLIENTS}", f"-d{seconds}s", "-s", str(script),
         f"http://127.0.0.1:{port}"],
        capture_output=True, text=True, check=True, timeout=seconds + 60,
    )  # fmt: skip
    if "Non-2xx" in run.stdout or "Socket errors" in run.stdout:
        raise RuntimeError(f"votes not all answered 201:\n{run.stdout}")
    rate = next(line for line in run.stdout.splitlines() if line.startswith("Requests/sec:"))
    return float(rate.split()[1])


def votes(server: PostgresServer, work: Path, seconds: int) -> dict[str, float]:
    results = {}
    for label, database, processes in (
        ("SQLite, 1 process", None, 1),
        ("PostgreSQL, 1 process", server.new_database(), 1),
        ("PostgreSQL, 2 processes", server.new_database(), 2),
    ):
        process, port = _serve(work / label.replace(" ", "").replace(",", "-"), database, processes)
        try:
            script = work / "votes.lua"
            _votes_per_second(port, 3, script)  # warm-up: connections, argon2 cache
            results[label] = _votes_per_second(port, seconds, script)
        finally:
            process.terminate()
            process.wait(60)
    return results


# --- report -----------------------------------------------------------------------------------


def _report(builds: dict[str, Any], queue: dict[str, Any], voting: dict[str, float]) -> str:
    lines = [
        f"Measured {utc_now()} on {machine()} (`python -m bench.scale`), PostgreSQL 15 from "
        "Debian in a temporary folder (fsync off, Unix socket).",
        "",
        "| builds of the example distribution (8, real rpmbuild) | cycle | builds/min |",
        "| --- | --- | --- |",
    ]
    for label, seconds in builds.items():
        how = "in-process, `workers` = " if label.startswith("local") else "`conveyor worker` x "
        lines.append(f"| {how}{label.split()[1]} | {seconds:.1f} s | {8 / seconds * 60:.0f} |")
    lines += [
        "",
        f"Queue overhead per build (sleep-builds of 0 s, one at a time, through the "
        f"scheduler's executor: queueing, pick-up, upload, the scheduler's look and checks): "
        f"**{queue['overhead_ms']:.1f} ms** (goal <= {OVERHEAD_GOAL_MS:.0f} ms). Simulated "
        f"farm, 4 stub worker processes, 16 builds at a time: {queue['farm_builds']:,} "
        f"builds in {queue['farm_seconds']:.1f} s, {queue['farm_per_second']:.0f} builds/s "
        "through the queue (publishing not included).",
        "",
        f"| sustained votes, {CLIENTS} clients | votes/s |",
        "| --- | --- |",
    ]
    for label, rate in voting.items():
        lines.append(f"| {label} | {rate:,.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale")
    parser.add_argument("--sleep-builds", type=int, default=200)
    parser.add_argument("--farm", type=int, default=2000)
    parser.add_argument("--votes-seconds", type=int, default=15)
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args(argv)
    settle()
    try:
        with running_server() as server, tempfile.TemporaryDirectory() as scratch:
            work = Path(scratch)
            voting = votes(server, work / "votes", args.votes_seconds)
            queue = sleep_builds(server, work / "queue", args.sleep_builds, args.farm)
            builds = real_builds(server, work / "builds")
    except (RuntimeError, OSError) as exc:
        print(f"scale: could not run: {exc}", file=sys.stderr)
        return 2
    report = _report(builds, queue, voting)
    print(report)
    save_result("scale", {"builds": builds, "queue": queue, "votes": voting})
    if not args.no_docs:
        update_docs_section("Scale-out: workers, queue, votes on PostgreSQL", report)
    met = (
        queue["overhead_ms"] <= OVERHEAD_GOAL_MS and voting["PostgreSQL, 2 processes"] >= VOTES_GOAL
    )
    return 0 if met else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
