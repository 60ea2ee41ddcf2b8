"""Recording CI votes with group commit: one writer thread takes every vote waiting and
records them in one transaction, then answers each request.

Why: a vote is a few small statements, and SQLite has one writer. With a thread per request,
the threads queued on the database's write lock while holding up each other for the GIL: a
single core managed about 300 votes a second. One writer never waits for a lock, and one commit
covers everything that arrived meanwhile; each request still gets its answer only after its
vote is committed, so an acknowledged vote is never lost.

Part of the votes service rather than of the API: recording a vote is the same work whoever
asks, and the writer needs nothing from HTTP (a refused vote is a `VoteRefused`, which the API
answers as DLRN does). Its statements are built once, in store/statements.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from conveyor.store.database import Database
from conveyor.store.queries import CommitKey, LookupKey, find_commit_keys, known_aggregate
from conveyor.store.statements import INSERT_AGGREGATE_VOTE, INSERT_AUDIT, INSERT_VOTE
from conveyor.votes.errors import AGGREGATE_NOT_FOUND, COMMIT_NOT_FOUND, VoteRefused

log = logging.getLogger(__name__)

# Enough to amortize a commit, small enough that one transaction stays short.
MAX_BATCH = 256


@dataclass(frozen=True)
class Recorded:
    """What the vote was attached to."""

    component: str | None = None
    extended_hash: str | None = None


@dataclass
class VoteJob:
    """One vote to record: on a commit (`commit_hash` + `distro_hash`) or an aggregate."""

    fields: dict[str, Any]  # the civotes / civotes_agg columns common to both kinds
    commit_hash: str | None
    distro_hash: str | None
    extended_hash: str | None
    aggregate_hash: str | None
    # The audit row's values, from what was recorded (its details quote the answer).
    audit: Callable[[Recorded], dict[str, Any]]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Recorded] = field(init=False)

    def __post_init__(self) -> None:
        self.future = self.loop.create_future()


def _settle(job: VoteJob, outcome: Recorded | BaseException) -> None:
    def apply() -> None:
        if job.future.done():  # the client went away: nothing to answer
            return
        if isinstance(outcome, BaseException):
            job.future.set_exception(outcome)
        else:
            job.future.set_result(outcome)

    # RuntimeError: that request's event loop is closed (a test client that ended).
    with contextlib.suppress(RuntimeError):
        job.loop.call_soon_threadsafe(apply)


class VoteWriter:
    """The writer thread of one Database, started on the first vote."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._queue: queue.SimpleQueue[VoteJob | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    async def record(self, job: VoteJob) -> Recorded:
        """Record `job` and return once it is committed. VoteRefused when its commit or
        aggregate is unknown; the database's own errors as they are."""
        with self._lock:  # a queue always has its thread, even across a close()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, args=(self._queue,), name="vote-writer", daemon=True
                )
                self._thread.start()
            self._queue.put(job)
        return await job.future

    def close(self) -> None:
        """Record what is queued, then stop the thread (a later vote starts another, with a
        queue of its own)."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is None:
                return
            self._queue.put(None)
            self._queue = queue.SimpleQueue()
        thread.join()

    def _run(self, jobs: queue.SimpleQueue[VoteJob | None]) -> None:
        while True:
            first = jobs.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < MAX_BATCH:
                try:
                    item = jobs.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self._write(batch)
            if stop:
                return

    def _write(self, batch: list[VoteJob]) -> None:
        outcomes: list[Recorded | BaseException] = []
        try:
            with self.db.transaction() as session:
                votes: list[dict[str, Any]] = []
                aggregate_votes: list[dict[str, Any]] = []
                audits: list[dict[str, Any]] = []
                builds = find_commit_keys(
                    session,
                    [
                        (job.commit_hash, job.distro_hash, job.extended_hash)
                        for job in batch
                        if not job.aggregate_hash and job.commit_hash and job.distro_hash
                    ],
                )
                for job in batch:
                    outcome: Recorded | BaseException = self._check(session, job, builds)
                    outcomes.append(outcome)
                    if isinstance(outcome, BaseException):
                        continue
                    if job.aggregate_hash:
                        aggregate_votes.append({**job.fields, "ref_hash": job.aggregate_hash})
                    else:
                        votes.append({**job.fields, "component": outcome.component})
                    audits.append(job.audit(outcome))
                connection = session.connection()
                for statement, rows in (
                    (INSERT_VOTE, votes),
                    (INSERT_AGGREGATE_VOTE, aggregate_votes),
                    (INSERT_AUDIT, audits),
                ):
                    if rows:
                        connection.execute(statement, rows)
        except Exception as exc:
            log.exception("recording %d vote(s) failed", len(batch))
            for job in batch:
                _settle(job, exc)
            return
        for job, outcome in zip(batch, outcomes, strict=True):
            _settle(job, outcome)

    @staticmethod
    def _check(
        session: Any, job: VoteJob, builds: dict[LookupKey, CommitKey]
    ) -> Recorded | VoteRefused:
        if job.aggregate_hash:
            if not known_aggregate(session, job.aggregate_hash):
                return VoteRefused(AGGREGATE_NOT_FOUND)
            return Recorded()
        assert job.commit_hash and job.distro_hash  # checked by the caller
        commit = builds.get((job.commit_hash, job.distro_hash, job.extended_hash))
        if commit is None:
            return VoteRefused(COMMIT_NOT_FOUND)
        job.fields["commit_id"] = commit.id
        return Recorded(commit.component, commit.extended_hash)
