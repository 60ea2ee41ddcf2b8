"""Promotion evaluations as procrastinate jobs, on PostgreSQL.

A vote that can change a decision defers an evaluation before its answer (so an answered
vote is never left unevaluated, even if its server process dies next); one evaluation waits
at a time (a queueing lock), so a burst of votes costs one or two evaluations, not one each.
Every `conveyor serve` process runs a promotion worker: evaluations need the repos tree, which
the servers have and build workers may not. SKIP LOCKED gives a job to one of them, and the
database's publish lock keeps a promotion single even if two evaluations meet.

A server killed mid-evaluation leaves its job `doing`: a periodic job (one per minute across
all servers, procrastinate's periodic deferrer sees to that) marks it failed once its worker's
heartbeats stopped for `[queue] stalled_after` and defers a fresh evaluation (within
`stalled_after` plus a minute: two by default).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import procrastinate
from procrastinate.jobs import Status

from conveyor.assembly.workers import LOST_DATABASE, keep_working, worker_name
from conveyor.config import Config
from conveyor.promote.status import promote_now
from conveyor.queue.jobs import (
    PROMOTE_LOCK,
    PROMOTE_QUEUE,
    PROMOTE_TASK,
    RECOVER_TASK,
    ensure_schema,
    queue_app,
)
from conveyor.store.database import Database

log = logging.getLogger(__name__)


class PromotionRequests:
    """How a server asks for an evaluation after a vote."""

    def __init__(self, app: procrastinate.App) -> None:
        self._deferrer = app.configure_task(
            PROMOTE_TASK, queue=PROMOTE_QUEUE, queueing_lock=PROMOTE_LOCK
        )

    async def request(self, user: str) -> bool:
        """Defers an evaluation (promoting as `user`); False when the queue could not take
        it, and the caller evaluates in its own process instead."""
        try:
            await self._deferrer.defer_async(user=user)
        except procrastinate.exceptions.AlreadyEnqueued:
            pass  # the evaluation waiting has not started: it will read this vote too
        except LOST_DATABASE as exc:
            log.warning("promotion queue unreachable (%s): evaluating in this process", exc)
            return False
        return True


def promotion_app(
    current_config: Callable[[], Config], db: Database, name: str
) -> procrastinate.App:
    """The queue app of a server's promotion worker: the evaluation task, and the periodic
    recovery of evaluations whose server died."""
    config = current_config()
    app = queue_app(config.database_url, worker=(name, [PROMOTE_QUEUE]))

    @app.task(
        name=PROMOTE_TASK,
        queue=PROMOTE_QUEUE,
        retry=procrastinate.RetryStrategy(max_attempts=2, wait=2),
    )
    async def promote(user: str) -> None:
        # The configuration as the server follows it now (conveyor.toml may have changed).
        await asyncio.to_thread(promote_now, current_config(), db, user)

    @app.periodic(cron="* * * * *", periodic_id="recover")
    @app.task(name=RECOVER_TASK, queue=PROMOTE_QUEUE)
    async def recover(timestamp: int) -> None:
        stalled_after = current_config().queue.stalled_after
        stalled = list(
            await app.job_manager.get_stalled_jobs(
                queue=PROMOTE_QUEUE,
                task_name=PROMOTE_TASK,
                seconds_since_heartbeat=stalled_after,
            )
        )
        for job in stalled:
            log.warning("promotion evaluation %s: its server stopped; evaluating again", job.id)
            await app.job_manager.finish_job(job, Status.FAILED, delete_job=False)
        if stalled:
            await PromotionRequests(app).request(str(stalled[0].task_kwargs["user"]))

    return app


@asynccontextmanager
async def promotion_jobs(
    current_config: Callable[[], Config], db: Database
) -> AsyncIterator[PromotionRequests]:
    """A server's promotion worker, running while the context is open; the requests go to
    the same queue (any server's worker may take them)."""
    config = current_config()
    name = f"serve {worker_name()}"
    # procrastinate logs every job and every periodic defer: conveyor's own lines say enough.
    logging.getLogger("procrastinate").setLevel(logging.WARNING)
    worker = asyncio.create_task(
        keep_working(
            promotion_app(current_config, db, name),
            config,
            [PROMOTE_QUEUE],
            1,
            name,
            delete_jobs="successful",  # an evaluation per vote burst would pile up
        )
    )
    # Requests have an app of their own: the worker's is closed while it reconnects.
    requests = queue_app(config.database_url)
    try:
        async with requests.open_async():
            await ensure_schema(requests)
            yield PromotionRequests(requests)
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
