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
from sqlalchemy import Connection, delete, text

from conveyor.domain.builds import BuildJob, BuildTarget, Mirrors
from conveyor.store.database import Database, parse_url
from conveyor.store.models import BuildUpload

BUILD_TASK = "conveyor.build"
BUILD_QUEUE = "builds"
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


def queue_app(url: str) -> procrastinate.App:
    return procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=conninfo(url), min_size=1, max_size=4)
    )


async def ensure_schema(app: procrastinate.App) -> None:
    """procrastinate's tables, created once per database (under a lock: two processes may
    start together)."""
    connector = app.connector
    await connector.execute_query_async("SELECT pg_advisory_lock(1668247158, 100)")
    try:
        found = await connector.execute_query_one_async(
            "SELECT to_regclass('procrastinate_jobs') IS NOT NULL AS present"
        )
        if not found["present"]:
            await app.schema_manager.apply_schema_async()
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


@dataclass(frozen=True)
class QueueState:
    workers: tuple[WorkerState, ...]
    depth: dict[str, int]  # queue -> jobs waiting for a worker


def queue_state(connection: Connection) -> QueueState:
    """The workers, their builds and the queues, as the database has them now (none on
    SQLite, or before the first worker or queued cycle)."""
    if (
        connection.dialect.name != "postgresql"
        or not connection.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar()
    ):
        return QueueState((), {})
    workers = connection.execute(
        text(
            "SELECT id, extract(epoch FROM now() - last_heartbeat) AS age "
            "FROM procrastinate_workers ORDER BY id"
        )
    ).all()
    doing = connection.execute(
        text(
            "SELECT id, worker_id, args, attempts FROM procrastinate_jobs "
            "WHERE status = 'doing' ORDER BY id"
        )
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
            WorkerState(worker_id, float(age), tuple(by_worker.get(worker_id, ())))
            for worker_id, age in workers
        ),
        {BUILD_QUEUE: 0} | {name: count for name, count in depth},
    )
