"""Builds on worker processes, on any machine that reaches the builder's PostgreSQL.

The scheduler (`conveyor run` with `[queue] enabled`) queues each build as a procrastinate
job and waits for it; a worker (`conveyor worker`) takes it, updates its own mirrors, builds
with its configured driver and uploads the RPMs, the logs and a result record into the
database in one transaction. The scheduler checks every file (digest, RPM header and payload,
one source RPM) and publishes as it publishes its own builds: publishing stays in one place,
serialized by the publish lock.

A worker that dies is noticed by its missing heartbeats: the scheduler queues its builds
again. A worker that fails for a reason of its own (git unreachable, disk full) retries with
backoff, and after `[queue] attempts` the build is recorded as failed with the reason.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import socket
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import procrastinate
import psycopg
from procrastinate.jobs import Status

from conveyor.builders.registry import build_repos, driver_for
from conveyor.config import Config
from conveyor.domain.builds import BuildJob, BuildOutcome, BuildResult
from conveyor.domain.version import BuildVersion
from conveyor.queue.jobs import (
    BUILD_QUEUE,
    BUILD_TASK,
    UPLOADS_CHANNEL,
    UploadError,
    conninfo,
    discard_orphan_uploads,
    discard_uploads,
    ensure_schema,
    job_arguments,
    job_from_arguments,
    queue_app,
    store_upload,
    take_upload,
)
from conveyor.remote.errors import ArtifactError
from conveyor.remote.rpmcheck import check_build
from conveyor.sources import git
from conveyor.store.database import Database, DatabaseError
from conveyor.trunk.buildjob import execute_build

log = logging.getLogger(__name__)
_T = TypeVar("_T")

# Seconds between looks at the jobs under way (one query for all of them): the uploads'
# notifications hand builds back at once; the look finds failed or cancelled jobs.
_POLL = 0.25
_RECONNECT = 2.0
_START_TRIES = 30  # a worker started while the database restarts waits for it
_ALONE_EVERY = 60.0  # seconds between warnings that builds wait and no worker beats
_FINAL = {Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.ABORTED}


LOST_DATABASE = (procrastinate.exceptions.ConnectorException, OSError)


async def _patiently(call: Callable[[], Awaitable[_T]], tries: int = 30) -> _T:
    """`call`, tried again while the database is away (a restart takes seconds)."""
    for _ in range(tries - 1):
        try:
            return await call()
        except LOST_DATABASE as exc:
            log.warning("lost the database (%s): trying again in %.0f s", exc, _RECONNECT)
            await asyncio.sleep(_RECONNECT)
    return await call()


def _retry_strategy(config: Config) -> procrastinate.RetryStrategy:
    return procrastinate.RetryStrategy(max_attempts=config.queue.attempts - 1, exponential_wait=2)


# --- the scheduler's side ----------------------------------------------------------------------


@dataclass
class _Waiting:
    job: BuildJob
    done: asyncio.Future[Status]


class RemoteExecutor:
    """A cycle's builds, queued for workers (conveyor.trunk.cycle.BuildExecutor)."""

    def __init__(self, config: Config, db: Database, app: procrastinate.App) -> None:
        self.config = config
        self.db = db
        self.app = app
        self._waiting: dict[int, _Waiting] = {}

    async def build(self, job: BuildJob) -> BuildResult:
        deferrer = self.app.configure_task(
            BUILD_TASK, queue=BUILD_QUEUE, retry=_retry_strategy(self.config)
        )
        job_id = await _patiently(lambda: deferrer.defer_async(**job_arguments(job)))
        waiting = _Waiting(job, asyncio.get_running_loop().create_future())
        self._waiting[job_id] = waiting
        try:
            status = await waiting.done
        finally:
            del self._waiting[job_id]
        if status is Status.SUCCEEDED:
            return await asyncio.to_thread(self._receive, job, job_id)
        await asyncio.to_thread(discard_uploads, self.db, [job_id])
        return self._failed(job, f"no worker could build it (the job {status.value})")

    def _workdir(self, job: BuildJob) -> Path:
        name = f"{job.target.name}-{job.commit_hash[:12]}-{int(time.time() * 1000)}"
        return self.config.datadir / "builds" / name

    def _failed(self, job: BuildJob, notes: str) -> BuildResult:
        workdir = self._workdir(job)
        workdir.mkdir(parents=True)
        build_log = workdir / "rpmbuild.log"
        build_log.write_text(f"conveyor: {notes}\n", encoding="utf-8")
        return BuildResult(
            job, int(time.time()), BuildOutcome(False, (), notes), None, workdir, build_log
        )

    def _receive(self, job: BuildJob, job_id: int) -> BuildResult:
        workdir = self._workdir(job)
        try:
            record, files = take_upload(self.db, job_id, workdir / "output")
            rpms = tuple(files[name] for name in record["rpms"])
            if record["success"]:
                check_build([(path, f"worker upload {path.name}") for path in rpms])
        except (UploadError, ArtifactError, KeyError, TypeError, ValueError) as exc:
            shutil.rmtree(workdir, ignore_errors=True)
            return self._failed(job, f"the worker's upload was refused: {exc}")
        version = BuildVersion(**record["version"]) if record["version"] else None
        outcome = BuildOutcome(
            record["success"], rpms, record["notes"], tuple(files[n] for n in record["logs"])
        )
        return BuildResult(
            job,
            record["dt_build"],
            outcome,
            version,
            workdir,
            files["rpmbuild.log"],
            extra_logs=outcome.logs,
        )

    async def watch(self) -> None:
        """One loop for every job under way: finished ones are handed back, and those of a
        worker whose heartbeats stopped are queued again."""
        last_stall_check = time.monotonic()
        told_alone = 0.0
        while True:
            await asyncio.sleep(_POLL)
            if not self._waiting:
                continue
            try:
                await self._hand_back_finished()
                if time.monotonic() - last_stall_check >= self.config.queue.heartbeat / 2:
                    last_stall_check = time.monotonic()
                    alive = await self._requeue_stalled()
                    if alive or time.monotonic() - told_alone < _ALONE_EVERY:
                        continue
                    told_alone = time.monotonic()
                    # Builds wait for a worker rather than fail: one may be starting.
                    log.warning(
                        "%d build(s) queued and no worker is beating: start `conveyor "
                        "worker` (see `conveyor workers`)",
                        len(self._waiting),
                    )
            except LOST_DATABASE as exc:
                # Nothing is lost: the jobs' states wait in the database for the next look.
                log.warning("lost the database (%s): looking again in %.0f s", exc, _RECONNECT)
                await asyncio.sleep(_RECONNECT)

    async def listen(self) -> None:
        """Hands a build back as soon as its upload commits (the worker's NOTIFY)."""
        while True:
            try:
                connection = await psycopg.AsyncConnection.connect(
                    conninfo(self.config.database_url), autocommit=True
                )
                async with connection:
                    await connection.execute(f"LISTEN {UPLOADS_CHANNEL}")
                    async for notice in connection.notifies():
                        waiting = self._waiting.get(int(notice.payload))
                        if waiting is not None and not waiting.done.done():
                            waiting.done.set_result(Status.SUCCEEDED)
            except (psycopg.Error, OSError, ValueError) as exc:
                log.warning("lost the uploads' notifications (%s): the look goes on", exc)
                await asyncio.sleep(_RECONNECT)

    async def _hand_back_finished(self) -> None:
        rows = await self.app.connector.execute_query_all_async(
            "SELECT id, status FROM procrastinate_jobs WHERE id = ANY(%(ids)s)",
            ids=list(self._waiting),
        )
        for row in rows:
            status = Status(row["status"])
            waiting = self._waiting.get(row["id"])
            if status in _FINAL and waiting is not None and not waiting.done.done():
                waiting.done.set_result(status)

    async def _requeue_stalled(self) -> int:
        """Queues again the builds of silent workers; returns how many workers beat."""
        stalled = await self.app.job_manager.get_stalled_jobs(
            queue=BUILD_QUEUE, seconds_since_heartbeat=self.config.queue.stalled_after
        )
        for job in stalled:
            if job.id in self._waiting:
                log.warning("worker of job %s stopped beating: queued again", job.id)
                await self.app.job_manager.retry_job(job)
        await self.app.job_manager.prune_stalled_workers(self.config.queue.stalled_after)
        found = await self.app.connector.execute_query_one_async(
            "SELECT count(*) AS alive FROM procrastinate_workers w "
            "LEFT JOIN conveyor_queue_workers n ON n.worker_id = w.id "
            "WHERE n.queues IS NULL OR %(queue)s = ANY(n.queues)",
            queue=BUILD_QUEUE,
        )
        return int(found["alive"])

    async def cancel_queued(self) -> None:
        """Jobs not yet taken are withdrawn (a stopped cycle, or one a killed scheduler
        left); the next cycle detects their commits again."""
        await self.app.connector.execute_query_async(
            "UPDATE procrastinate_jobs SET status = 'cancelled' "
            "WHERE queue_name = %(queue)s AND status = 'todo'",
            queue=BUILD_QUEUE,
        )


@asynccontextmanager
async def remote_executor(config: Config, db: Database) -> AsyncIterator[RemoteExecutor]:
    app = queue_app(config.database_url)
    async with app.open_async():
        await ensure_schema(app)
        executor = RemoteExecutor(config, db, app)
        await executor.cancel_queued()
        await asyncio.to_thread(discard_orphan_uploads, db)
        watchers = [asyncio.create_task(executor.watch()), asyncio.create_task(executor.listen())]
        try:
            yield executor
        finally:
            for watcher in watchers:
                watcher.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
            await executor.cancel_queued()


# --- the worker's side -------------------------------------------------------------------------


async def _update_mirrors(job: BuildJob, config: Config) -> None:
    for mirror, url, commit in (
        (job.mirrors.upstream, job.target.upstream, job.commit_hash),
        (job.mirrors.distgit, job.target.distgit, job.distro_hash),
    ):
        try:
            git.run_git(["cat-file", "-e", f"{commit}^{{commit}}"], mirror, config.git_timeout)
        except git.GitError:
            await git.refresh_mirror(mirror, url, config.git_timeout)


def _record(result: BuildResult) -> dict[str, Any]:
    version = result.version
    return {
        "success": result.outcome.success,
        "notes": result.outcome.notes,
        "dt_build": result.dt_build,
        "version": None
        if version is None
        else {
            "version": version.version,
            "release": version.release,
            "upstream_version": version.upstream_version,
        },
        "rpms": [path.name for path in result.outcome.rpms],
        "logs": [path.name for path in result.extra_logs],
        "files": [p.name for p in (*result.outcome.rpms, *result.extra_logs, result.log)],
        "worker": f"{socket.gethostname()} pid {os.getpid()}",
    }


def worker_app(config: Config, name: str) -> procrastinate.App:
    """The worker's queue app with the build task, which builds with this machine's driver
    into this machine's data directory."""
    app = queue_app(config.database_url, worker=(name, [BUILD_QUEUE]))
    driver = driver_for(config, build_repos(config))
    db = Database(config.database_url)

    @app.task(name=BUILD_TASK, queue=BUILD_QUEUE, pass_context=True)
    async def build(context: procrastinate.JobContext, /, **arguments: Any) -> None:
        job_id = context.job.id
        assert job_id is not None
        job = job_from_arguments(arguments, config.datadir)
        last_try = context.job.attempts + 1 >= config.queue.attempts
        log.info(
            "building %s %s (job %s, attempt %d)",
            job.target.name,
            job.commit_hash[:12],
            job_id,
            context.job.attempts + 1,
        )
        try:
            await _update_mirrors(job, config)
        except git.GitError as exc:
            if not last_try:
                raise  # retried with backoff, maybe by another worker
            result = _failed_here(job, config, f"the worker could not fetch the sources: {exc}")
        else:
            result = await asyncio.to_thread(execute_build, job, config, driver)
        try:
            files = [*result.outcome.rpms, *result.extra_logs, result.log]
            await asyncio.to_thread(store_upload, db, job_id, files, _record(result))
            log.info(
                "%s %s: %s, uploaded", job.target.name, job.commit_hash[:12], result.outcome.notes
            )
        finally:
            shutil.rmtree(result.workdir, ignore_errors=True)

    return app


def _failed_here(job: BuildJob, config: Config, notes: str) -> BuildResult:
    workdir = config.datadir / "builds" / f"{job.target.name}-{job.commit_hash[:12]}-failed"
    workdir.mkdir(parents=True, exist_ok=True)
    build_log = workdir / "rpmbuild.log"
    build_log.write_text(f"conveyor: {notes}\n{traceback.format_exc()}", encoding="utf-8")
    return BuildResult(
        job, int(time.time()), BuildOutcome(False, (), notes), None, workdir, build_log
    )


def worker_name(name: str | None = None) -> str:
    return name or f"{socket.gethostname()}-{os.getpid()}"


async def keep_working(
    app: procrastinate.App,
    config: Config,
    queues: list[str],
    concurrency: int,
    name: str,
    **options: Any,
) -> None:
    """procrastinate's worker on `queues` until cancelled (cancelling lets the jobs under way
    finish). A lost database (restarted, unreachable) costs a reconnection, whether it
    raised or made procrastinate stop its worker (it does when its listener's connection
    fails): the jobs this worker had are taken again once its heartbeats are missed."""
    while True:
        try:
            async with app.open_async():
                await ensure_schema(app)
                await app.run_worker_async(
                    queues=queues,
                    concurrency=concurrency,
                    name=name,
                    update_heartbeat_interval=config.queue.heartbeat,
                    stalled_worker_timeout=config.queue.stalled_after,
                    install_signal_handlers=False,  # stopping is cancelling this coroutine
                    **options,
                )
            log.warning(
                "the %s worker stopped (its database connection failed): starting again in %.0f s",
                ", ".join(queues),
                _RECONNECT,
            )
        except LOST_DATABASE as exc:
            log.warning("lost the database (%s): connecting again in %.0f s", exc, _RECONNECT)
        await asyncio.sleep(_RECONNECT)


async def run_worker(config: Config, concurrency: int, name: str | None) -> None:
    """Takes builds until SIGINT or SIGTERM (the builds under way finish first; a second
    signal stops them). A database that does not answer at start (restarting) is waited
    for, a minute at most."""
    for _ in range(_START_TRIES - 1):
        try:
            app = worker_app(config, worker_name(name))
            break
        except DatabaseError as exc:
            if not exc.unreachable:
                raise
            log.warning("%s: trying again in %.0f s", exc, _RECONNECT)
            await asyncio.sleep(_RECONNECT)
    else:
        app = worker_app(config, worker_name(name))
    # procrastinate logs every job with its whole arguments: conveyor's own lines say enough.
    logging.getLogger("procrastinate").setLevel(logging.WARNING)
    working = asyncio.ensure_future(
        keep_working(
            app, config, [BUILD_QUEUE], concurrency, worker_name(name), delete_jobs="never"
        )
    )
    loop = asyncio.get_running_loop()
    for received in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(received, working.cancel)
    try:
        await working
    except asyncio.CancelledError:
        log.info("worker stopped")
