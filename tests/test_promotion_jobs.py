"""Promotion evaluations as procrastinate jobs on a real PostgreSQL: a vote that completes
the criteria promotes through a job any server takes; a burst of votes waits as one
evaluation; an evaluation left by a server that died is evaluated again; and the servers'
promotion workers are told from build workers."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from tests.postgres_server import PostgresServer, postgres  # noqa: F401 (fixture)
from tests.test_api_concurrency import (
    PASSWORD,
    TARGET,
    USER,
    add_vote,
    make_commit,
    promoting_builder,
    vote_body,
)

from conveyor.api import create_app
from conveyor.assembly.promotions import PromotionRequests
from conveyor.config import Config, load_config
from conveyor.queue.jobs import (
    PROMOTE_QUEUE,
    PROMOTE_TASK,
    RECOVER_TASK,
    ensure_schema,
    queue_app,
)
from conveyor.store.database import Database
from conveyor.store.models import Commit

AUTH = {"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}


@dataclass
class Builder:
    config: Config
    url: str
    db: Database
    data: Path

    def rows(self, query: str) -> list[tuple]:
        engine = create_engine(self.url)
        try:
            with engine.begin() as connection:
                return [tuple(row) for row in connection.execute(text(query))]
        finally:
            engine.dispose()

    def promoted(self) -> list[tuple]:
        return self.rows(f"select commit_id from promotions where promotion_name = '{TARGET}'")

    def candidate(self, n: int) -> Commit:
        """A consistent commit that passed job-a: a vote of job-b completes its criteria."""
        commit = make_commit(self.db, self.data, n)
        for job in ("consistent", "job-a"):
            add_vote(self.db, commit, job)
        return commit


@pytest.fixture
def builder(tmp_path: Path, postgres: PostgresServer) -> Iterator[Builder]:  # noqa: F811
    url = postgres.new_database()
    config_file, data = promoting_builder(
        tmp_path, url, "[queue]\nheartbeat = 0.5\nstalled_after = 2\n"
    )
    db = Database(url)
    try:
        yield Builder(load_config(config_file), url, db, data)
    finally:
        db.close()


def wait_for(condition: Callable[[], object], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "waited in vain"
        time.sleep(0.1)


def defer(builder: Builder, times: int) -> None:
    """Evaluations asked for as a server asks after a vote, with no server running."""

    async def asking() -> None:
        app = queue_app(builder.url)
        async with app.open_async():
            await ensure_schema(app)
            requests = PromotionRequests(app)
            for _ in range(times):
                assert await requests.request(USER)

    asyncio.run(asking())


def evaluations(builder: Builder, status: str) -> int:
    found = builder.rows(
        f"select count(*) from procrastinate_jobs where task_name = '{PROMOTE_TASK}' "
        f"and status = '{status}'"
    )
    return int(found[0][0])


def test_a_vote_that_completes_the_criteria_promotes_through_a_job(
    builder: Builder, caplog: pytest.LogCaptureFixture
) -> None:
    commit = builder.candidate(1)
    with TestClient(create_app(builder.config, builder.db)) as client:
        assert client.app.state.ctx.promotions is not None  # type: ignore[attr-defined]
        answer = client.post(
            "/api/report_result", json=vote_body(commit, "job-b", "http://ci/b"), headers=AUTH
        )
        assert answer.status_code == 201, answer.text
        wait_for(builder.promoted)
        # Done by the server's promotion worker, which lists itself as one.
        workers = client.get("/metrics").text
        assert 'conveyor_workers{queue="promotions"} 1.0' in workers
    assert builder.promoted() == [(commit.id,)]
    assert evaluations(builder, "todo") == evaluations(builder, "doing") == 0
    assert "evaluating in this process" not in caplog.text  # not the fallback


def test_a_burst_of_votes_waits_as_one_evaluation_that_a_server_started_later_runs(
    builder: Builder,
) -> None:
    """A server that answered votes and died before evaluating left its evaluation in the
    database: the next server to start runs it; the burst's 50 requests made one job."""
    commit = builder.candidate(1)
    add_vote(builder.db, commit, "job-b")
    defer(builder, 50)
    assert evaluations(builder, "todo") == 1
    assert builder.promoted() == []
    with TestClient(create_app(builder.config, builder.db)):
        wait_for(builder.promoted)
    assert builder.promoted() == [(commit.id,)]


def test_an_evaluation_whose_server_died_is_evaluated_again(builder: Builder) -> None:
    commit = builder.candidate(1)
    add_vote(builder.db, commit, "job-b")
    defer(builder, 1)
    # A server took it and died: its worker's heartbeats stopped long ago.
    (worker,) = builder.rows(
        "insert into procrastinate_workers (last_heartbeat) "
        "values (now() - interval '1 hour') returning id"
    )
    builder.rows(
        f"update procrastinate_jobs set status = 'doing', worker_id = {worker[0]} "
        f"where task_name = '{PROMOTE_TASK}' returning id"
    )
    with TestClient(create_app(builder.config, builder.db)):
        # The periodic recovery, which a server's worker defers once a minute, asked for now.
        async def recover_now() -> None:
            app = queue_app(builder.url)
            async with app.open_async():
                await app.configure_task(RECOVER_TASK, queue=PROMOTE_QUEUE).defer_async(timestamp=0)

        asyncio.run(recover_now())
        wait_for(builder.promoted)
    assert builder.promoted() == [(commit.id,)]
    assert evaluations(builder, "failed") == 1  # the dead server's, marked so


def test_votes_of_jobs_the_criteria_ignore_defer_nothing(builder: Builder) -> None:
    commit = builder.candidate(1)
    with TestClient(create_app(builder.config, builder.db)) as client:
        for n in range(5):
            answer = client.post(
                "/api/report_result",
                json=vote_body(commit, f"other-{n}", "http://ci/o"),
                headers=AUTH,
            )
            assert answer.status_code == 201
    assert builder.rows(
        f"select count(*) from procrastinate_jobs where task_name = '{PROMOTE_TASK}'"
    ) == [(0,)]
    assert builder.promoted() == []


def test_a_server_evaluates_again_after_a_postgresql_restart(
    builder: Builder,
    postgres: PostgresServer,  # noqa: F811
) -> None:
    """While the database is away, requests get a 503 to retry, not a 500; once it is back,
    the server's promotion worker has reconnected and takes the next evaluation."""
    commit = builder.candidate(1)
    add_vote(builder.db, commit, "job-b")
    with TestClient(create_app(builder.config, builder.db)) as client:
        wait_for(lambda: 'conveyor_workers{queue="promotions"} 1.0' in client.get("/metrics").text)
        postgres.stop("fast")
        try:
            away = client.get("/api/v2/promotion-status")
            assert away.status_code == 503
            assert "database is unavailable" in away.json()["message"]
        finally:
            postgres.restart()
        defer(builder, 1)
        wait_for(builder.promoted)
    assert builder.promoted() == [(commit.id,)]
