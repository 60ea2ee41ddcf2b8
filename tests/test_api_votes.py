"""The vote writer's group commit: votes that arrive together are committed together, and
each request still gets its own answer."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select
from tests.postgres_server import database_url, postgres  # noqa: F401 (fixtures)

from conveyor.store.database import Database
from conveyor.store.models import Audit, CIVote, Commit
from conveyor.votes.errors import VoteRefused
from conveyor.votes.writer import Recorded, VoteJob, VoteWriter


def _job(loop: asyncio.AbstractEventLoop, commit_hash: str, number: int) -> VoteJob:
    return VoteJob(
        fields={
            "ci_name": f"job-{number}",
            "ci_url": f"http://ci/{number}",
            "ci_vote": True,
            "ci_in_progress": False,
            "timestamp": 1_700_000_000,
            "notes": "",
            "user": None,
        },
        commit_hash=commit_hash,
        distro_hash="d" * 40,
        extended_hash=None,
        aggregate_hash=None,
        audit=lambda recorded: {
            "timestamp": 1,
            "user": None,
            "action": "report_result",
            "remote_addr": None,
            "status": 201,
            "details": str(recorded),
        },
        loop=loop,
    )


@pytest.fixture
def db(database_url: str):  # noqa: F811 (the fixture)
    """On both engines (tests.postgres_server.database_url)."""
    database = Database(database_url)
    with database.transaction() as session:
        session.add(
            Commit(
                project_name="p",
                commit_hash="a" * 40,
                distro_hash="d" * 40,
                status="SUCCESS",
                type="rpm",
                component="compute",
            )
        )
    yield database
    database.close()


def test_a_batch_answers_each_vote_and_commits_only_the_known_ones(db: Database) -> None:
    writer = VoteWriter(db)

    async def vote_all() -> list[Recorded | BaseException]:
        loop = asyncio.get_running_loop()
        hashes = ["a" * 40 if n % 3 else "b" * 40 for n in range(300)]
        jobs = [_job(loop, h, n) for n, h in enumerate(hashes)]
        return await asyncio.gather(*(writer.record(j) for j in jobs), return_exceptions=True)

    try:
        outcomes = asyncio.run(vote_all())
    finally:
        writer.close()
    refused = [o for o in outcomes if isinstance(o, VoteRefused)]
    recorded = [o for o in outcomes if isinstance(o, Recorded)]
    assert len(refused) == 100 and all(e.status == 400 for e in refused)
    assert len(recorded) == 200 and all(r.component == "compute" for r in recorded)
    with db.reader() as session:
        names = set(session.scalars(select(CIVote.ci_name)))
        audits = session.scalar(select(func.count(Audit.id)))
    assert names == {f"job-{n}" for n in range(300) if n % 3}
    assert audits == 200


def test_a_database_failure_fails_its_votes_records_none_and_the_writer_goes_on(
    db: Database,
) -> None:
    writer = VoteWriter(db)

    async def vote() -> tuple[BaseException | Recorded, Recorded]:
        loop = asyncio.get_running_loop()
        broken = _job(loop, "a" * 40, 1)
        broken.fields["notes"] = object()  # no driver can store it: the insert fails
        failed = await asyncio.gather(writer.record(broken), return_exceptions=True)
        return failed[0], await writer.record(_job(loop, "a" * 40, 2))

    try:
        failed, later = asyncio.run(vote())
    finally:
        writer.close()
    assert isinstance(failed, Exception) and not isinstance(failed, VoteRefused)
    assert isinstance(later, Recorded)
    with db.reader() as session:
        assert list(session.scalars(select(CIVote.ci_name))) == ["job-2"]


def test_a_closed_writer_records_what_was_queued_and_starts_again_on_the_next_vote(
    db: Database,
) -> None:
    writer = VoteWriter(db)
    try:
        assert isinstance(asyncio.run(_one(writer))[0], Recorded)
        writer.close()
        writer.close()  # twice is harmless
        assert isinstance(asyncio.run(_one(writer))[0], Recorded)
    finally:
        writer.close()
    with db.reader() as session:
        assert session.scalar(select(func.count(CIVote.id))) == 2


async def _one(writer: VoteWriter) -> list[Recorded]:
    return [await writer.record(_job(asyncio.get_running_loop(), "a" * 40, 7))]
