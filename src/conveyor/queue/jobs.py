"""The build queue on PostgreSQL: procrastinate's app, the job's arguments, and the files a
worker hands to the scheduler through the database (no shared filesystem).

A job carries its whole build target (URLs and branches), so a worker needs no metadata of
its own, only git access to the sources and a build driver."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import procrastinate
from procrastinate.manager import JobManager
from sqlalchemy import Connection, delete, text

from conveyor.domain.builds import BuildJob, BuildTarget, Mirrors
from conveyor.store.database import Database, parse_url
from conveyor.store.models import BuildUpload

BUILD_TASK = "conveyor.build"
BUILD_QUEUE = "builds"
# Promotion evaluations, taken by the `conveyor serve` processes (they need the repos tree).
PROMOTE_TASK = "conveyor.promote"
RECOVER_TASK = "conveyor.promote.recover"
PROMOTE_QUEUE = "promotions"
# One evaluation waits at a time: it reads every vote recorded before it starts, so a vote
# that finds one waiting needs no other (procrastinate's queueing lock covers `todo` jobs).
PROMOTE_LOCK = "conveyor.promote"
RESULT_FILE = "result.json"
# Told the job id when a worker's upload commits: the scheduler need not wait for its look.
UPLOADS_CHANNEL = "conveyor_uploads"
# What a file a worker uploads may be called: it becomes a file name on the scheduler.
_SAFE_NAME = re.compile(r"[A-Za-z0-9_+~^][A-Za-z0-9._+~^-]{0,254}")


class UploadError(Exception):
    """An upload that is missing, incomplete or not what it says it is."""


def conninfo(url: str) -> str:
    """libpq's form of a SQLAlchemy PostgreSQL URL (procrastinate speaks psycopg directly)."""
    parsed = parse_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


# Who a worker is: procrastinate knows workers by number only. A row goes with its worker's
# (a pruned or stopped worker takes its row with it).
_WORKER_NAMES = """
CREATE TABLE IF NOT EXISTS conveyor_queue_workers (
    worker_id bigint PRIMARY KEY REFERENCES procrastinate_workers (id) ON DELETE CASCADE,
    name text NOT NULL,
    queues text[] NOT NULL
)"""


class NamedJobManager(JobManager):
    """procrastinate's job manager, which also records the name and queues of the worker it
    registers (`conveyor workers` tells a build worker from a server's promotion worker)."""

    def __init__(
        self, connector: procrastinate.PsycopgConnector, name: str, queues: Sequence[str]
    ) -> None:
        super().__init__(connector)
        self.worker_name = name
        self.queues = list(queues)

    async def register_worker(self) -> int:
        worker_id = await super().register_worker()
        await self.connector.execute_query_async(
            "INSERT INTO conveyor_queue_workers (worker_id, name, queues) "
            "VALUES (%(id)s, %(name)s, %(queues)s)",
            id=worker_id,
            name=self.worker_name,
            queues=self.queues,
        )
        return worker_id


def queue_app(url: str, worker: tuple[str, Sequence[str]] | None = None) -> procrastinate.App:
    """The queue's app; `worker` (name, queues) when it runs a worker."""
    # procrastinate's pool checks a connection before use: a restarted database costs a
    # reconnection, not a failed defer.
    connector = procrastinate.PsycopgConnector(conninfo=conninfo(url), min_size=1, max_size=4)
    app = procrastinate.App(connector=connector)
    if worker is not None:
        app.job_manager = NamedJobManager(connector, *worker)
    return app


async def ensure_schema(app: procrastinate.App) -> None:
    """procrastinate's tables and conveyor's worker names, created once per database (under
    a lock: two processes may start together)."""
    connector = app.connector
    await connector.execute_query_async("SELECT pg_advisory_lock(1668247158, 100)")
    try:
        found = await connector.execute_query_one_async(
            "SELECT to_regclass('procrastinate_jobs') IS NOT NULL AS present"
        )
        if not found["present"]:
            await app.schema_manager.apply_schema_async()
        await connector.execute_query_async(_WORKER_NAMES)
    finally:
        await connector.execute_query_async("SELECT pg_advisory_unlock(1668247158, 100)")


def job_arguments(job: BuildJob) -> dict[str, Any]:
    """The job's JSON arguments: everything but the scheduler's own mirror paths."""
    arguments = asdict(job)
    del arguments["mirrors"]
    arguments["target"]["maintainers"] = list(job.target.maintainers)
    return arguments


def job_from_arguments(arguments: dict[str, Any], datadir: Path) -> BuildJob:
    """The job as a worker builds it, with the worker's own mirrors under `datadir`."""
    fields = dict(arguments)
    target = dict(fields.pop("target"))
    target["maintainers"] = tuple(target["maintainers"])
    build_target = BuildTarget(**target)
    return BuildJob(
        target=build_target, mirrors=Mirrors.under(datadir, build_target.name), **fields
    )


def _digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def store_upload(db: Database, job_id: int, files: Sequence[Path], record: dict[str, Any]) -> None:
    """A job's files and result record, in one transaction, replacing what an earlier
    attempt of the same job left."""
    rows = []
    for path in files:
        content = path.read_bytes()
        rows.append(
            BuildUpload(job_id=job_id, name=path.name, sha256=_digest(content), content=content)
        )
    encoded = json.dumps(record, sort_keys=True).encode()
    rows.append(
        BuildUpload(job_id=job_id, name=RESULT_FILE, sha256=_digest(encoded), content=encoded)
    )
    with db.transaction() as session:
        session.execute(delete(BuildUpload).where(BuildUpload.job_id == job_id))
        session.add_all(rows)
        if session.get_bind().dialect.name == "postgresql":
            # Delivered when the transaction commits, never for a cut upload.
            session.execute(
                text("SELECT pg_notify(:channel, :job)"),
                {"channel": UPLOADS_CHANNEL, "job": str(job_id)},
            )


def take_upload(db: Database, job_id: int, into: Path) -> tuple[dict[str, Any], dict[str, Path]]:
    """The result record of `job_id` and its files written into `into` (name -> path), each
    checked against its digest. The rows are taken: read and deleted in one statement."""
    with db.transaction() as session:
        uploads = session.execute(
            delete(BuildUpload)
            .where(BuildUpload.job_id == job_id)
            .returning(BuildUpload.name, BuildUpload.sha256, BuildUpload.content)
        ).all()
    by_name = {upload.name: upload for upload in uploads}
    for upload in uploads:
        if not _SAFE_NAME.fullmatch(upload.name) or upload.name in (".", ".."):
            raise UploadError(f"job {job_id}: a file named {upload.name!r} is refused")
        if _digest(upload.content) != upload.sha256:
            raise UploadError(f"job {job_id}: {upload.name} does not match its digest")
    if RESULT_FILE not in by_name:
        raise UploadError(f"job {job_id}: the worker uploaded no result")
    record = json.loads(by_name.pop(RESULT_FILE).content)
    into.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, upload in by_name.items():
        path = into / name
        path.write_bytes(upload.content)
        paths[name] = path
    missing = set(record.get("files", [])) - set(paths)
    if missing:
        raise UploadError(f"job {job_id}: files missing from the upload: {sorted(missing)}")
    return record, paths


def discard_uploads(db: Database, job_ids: Iterable[int]) -> None:
    ids = list(job_ids)
    if ids:
        with db.transaction() as session:
            session.execute(delete(BuildUpload).where(BuildUpload.job_id.in_(ids)))


def discard_orphan_uploads(db: Database) -> None:
    """Uploads of jobs nobody waits for any more (a scheduler stopped or killed meanwhile)."""
    with db.transaction() as session:
        session.execute(
            text(
                "DELETE FROM build_uploads WHERE job_id NOT IN "
                "(SELECT id FROM procrastinate_jobs WHERE status IN ('todo', 'doing'))"
            )
        )


@dataclass(frozen=True)
class WorkerState:
    worker_id: int
    heartbeat_age: float  # seconds since its last heartbeat
    jobs: tuple[dict[str, Any], ...]  # {job, package, commit, attempts} of its builds
    name: str | None = None  # None: a worker of an older conveyor, which said nothing
    queues: tuple[str, ...] = ()  # empty: unknown

    def serves(self, queue: str) -> bool:
        return not self.queues or queue in self.queues


@dataclass(frozen=True)
class QueueState:
    workers: tuple[WorkerState, ...]
    depth: dict[str, int]  # queue -> jobs waiting for a worker

    def serving(self, queue: str) -> tuple[WorkerState, ...]:
        return tuple(w for w in self.workers if w.serves(queue))


def queue_state(connection: Connection) -> QueueState:
    """The workers (build workers and the servers' promotion workers), their builds and the
    queues, as the database has them now (none on SQLite, or before the first worker,
    server or queued cycle)."""
    if (
        connection.dialect.name != "postgresql"
        or not connection.execute(text("SELECT to_regclass('conveyor_queue_workers')")).scalar()
    ):
        return QueueState((), {})
    workers = connection.execute(
        text(
            "SELECT w.id, extract(epoch FROM now() - w.last_heartbeat) AS age, n.name, n.queues "
            "FROM procrastinate_workers w LEFT JOIN conveyor_queue_workers n "
            "ON n.worker_id = w.id ORDER BY w.id"
        )
    ).all()
    doing = connection.execute(
        text(
            "SELECT id, worker_id, args, attempts FROM procrastinate_jobs "
            "WHERE status = 'doing' AND queue_name = :queue ORDER BY id"
        ),
        {"queue": BUILD_QUEUE},
    ).all()
    depth = connection.execute(
        text(
            "SELECT queue_name, count(*) FROM procrastinate_jobs WHERE status = 'todo' "
            "GROUP BY queue_name"
        )
    ).all()
    by_worker: dict[int, list[dict[str, Any]]] = {}
    for job_id, worker_id, arguments, attempts in doing:
        by_worker.setdefault(worker_id, []).append(
            {
                "job": job_id,
                "package": arguments["target"]["name"],
                "commit": arguments["commit_hash"],
                "attempts": attempts,
            }
        )
    return QueueState(
        tuple(
            WorkerState(
                worker_id,
                float(age),
                tuple(by_worker.get(worker_id, ())),
                name,
                tuple(queues or ()),
            )
            for worker_id, age, name, queues in workers
        ),
        {BUILD_QUEUE: 0, PROMOTE_QUEUE: 0} | {name: count for name, count in depth},
    )
