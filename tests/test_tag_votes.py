"""CI votes on buildsys tag versions (conveyor.tags.votes): recorded by
`POST /api/tags/{tag}/report_result` as DLRN's report_result records trunk votes (same
credentials, body and errors), listed by `GET /api/tags/{tag}/votes` and `conveyor tags
votes`, judged by the promotion rules; the migration that adds `tag_votes` and
`release_steps` to an existing database."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from alembic import command
from alembic.config import Config as AlembicConfig
from fastapi.testclient import TestClient
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import create_engine, func, select
from tests.support import basic, cli, users_database

from conveyor.api import create_app
from conveyor.config import Config, load_config
from conveyor.domain.promotion import Vote, check_jobs
from conveyor.domain.tags import ActionKind, TagAction
from conveyor.store.database import HEAD_REVISION, MIGRATIONS, Database
from conveyor.store.models import Audit, ReleaseStep, TagVote, User
from conveyor.tags.state import record_version
from conveyor.tags.votes import (
    TagVoteError,
    record_tag_vote,
    resolve_version,
    tag_vote_records,
    tag_votes,
    votes_json,
)

VOTER = basic("ci", "vote-secret")
PROMOTER = basic("mover", "move-secret")  # may promote, may not vote
FOO, FOO2 = "foo-1.0-1", "foo-2.0-1"
T1 = "cloud9s-openstack-demo-testing"
REPORT = f"/api/tags/{T1}/report_result"
LISTING = f"/api/tags/{T1}/votes"
NOW = 1_700_000_000
VOTE = {
    "version": 1,
    "job_id": "ga-tempest",
    "success": True,
    "url": "https://ci.example.org/job/1",
    "timestamp": NOW,
    "notes": "all green",
}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def users_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("users") / "commits.sqlite"
    return users_database(
        path, {"ci": ("vote-secret", ["voter"]), "mover": ("move-secret", ["promoter"])}
    )


@dataclass
class Env:
    config_path: Path
    config: Config
    db: Database
    client: TestClient

    def apply(self, tag: str, content: dict[str, str]) -> int:
        """A new version of `tag`, as `tags apply` records it (its repository is not
        needed to vote on it)."""
        actions = [TagAction(tag, ActionKind.TAG, name, nvr) for name, nvr in content.items()]
        with self.db.transaction() as session:
            applied = record_version(session, tag, content, content, actions, "alice", "test")
        return applied.version

    def votes(self) -> list[TagVote]:
        with self.db.reader() as session:
            return list(session.scalars(select(TagVote).order_by(TagVote.id)))

    def audits(self) -> list[Audit]:
        with self.db.reader() as session:
            return list(session.scalars(select(Audit).order_by(Audit.id)))

    def tags(self, *args: str) -> tuple[int, str]:
        return cli("tags", *args, "--config", str(self.config_path))


@pytest.fixture
def env(tmp_path: Path, users_db: Path) -> Iterator[Env]:
    (tmp_path / "data").mkdir()
    shutil.copy(users_db, tmp_path / "data" / "commits.sqlite")
    config_path = tmp_path / "conveyor.toml"
    config_path.write_text('datadir = "data"\nbaseurl = "http://trunk.example.org/repos"\n')
    config = load_config(config_path)
    db = Database(config.database_url)
    environment = Env(config_path, config, db, TestClient(create_app(config, db)))
    environment.apply(T1, {"foo": FOO})
    yield environment
    db.close()


def _validate(env: Env, method: str, path: str, response: Any) -> None:
    """The answer is what /openapi.json says it is."""
    schema = schemathesis.openapi.from_dict(env.client.get("/openapi.json").json())
    case = schema[path][method].Case(path_parameters={"tag": T1})
    case.validate_response(response, checks=CHECKS)


# -- recorded and listed ---------------------------------------------------------------------


def test_a_vote_is_recorded_listed_and_audited(env: Env) -> None:
    answer = env.client.post(REPORT, json=VOTE, headers=VOTER)
    assert answer.status_code == 201, answer.text
    expected = {**VOTE, "tag": T1, "user": "ci"}
    assert answer.json() == expected
    _validate(env, "POST", "/api/tags/{tag}/report_result", answer)

    listed = env.client.get(LISTING)
    assert listed.json() == {"tag": T1, "version": 1, "votes": [expected]}
    _validate(env, "GET", "/api/tags/{tag}/votes", listed)

    (audit,) = env.audits()
    # The route, not the path: a 200-character tag name would not fit the column; the
    # tag is in the details.
    assert (audit.user, audit.status, audit.action) == ("ci", 201, "tags/{tag}/report_result")
    assert json.loads(audit.details or "{}") == expected

    # A CI user with tag votes is locked, not deleted: the votes keep naming it.
    code, output = cli(
        "user", "delete", "--username", "ci", "--force", "--config", str(env.config_path)
    )
    assert code == 0, output
    with env.db.reader() as session:
        assert session.get(User, "ci") is not None


def test_votes_belong_to_one_version(env: Env) -> None:
    assert env.client.post(REPORT, json=VOTE, headers=VOTER).status_code == 201
    assert env.apply(T1, {"foo": FOO2}) == 2
    newest = env.client.get(LISTING).json()
    assert (newest["version"], newest["votes"]) == (2, [])  # the newest by default
    older = env.client.get(LISTING, params={"version": 1}).json()
    assert [v["job_id"] for v in older["votes"]] == ["ga-tempest"]
    second = {**VOTE, "version": 2, "success": False}
    assert env.client.post(REPORT, json=second, headers=VOTER).status_code == 201
    assert [v["success"] for v in env.client.get(LISTING).json()["votes"]] == [False]


def test_the_body_spelled_as_strings_and_without_notes(env: Env) -> None:
    """What a form would carry, in JSON (as dlrnapi-client sends report_result): strings for
    the numbers and the boolean; notes are optional."""
    body = {
        "version": "1",
        "job_id": "ga-tempest",
        "success": "false",
        "url": "",
        "timestamp": str(NOW),
    }
    answer = env.client.post(REPORT, json=body, headers=VOTER)
    assert answer.status_code == 201, answer.text
    assert answer.json() == {
        "tag": T1,
        "version": 1,
        "job_id": "ga-tempest",
        "success": False,
        "url": "",
        "notes": "",
        "timestamp": NOW,
        "user": "ci",
    }


def test_a_form_body_is_refused_as_report_result_refuses_it(env: Env) -> None:
    """DLRN's report_result takes JSON only (415 otherwise); so does its tag counterpart."""
    form = {k: str(v) for k, v in VOTE.items()}
    for path in (REPORT, "/api/report_result"):
        answer = env.client.post(path, data=form, headers=VOTER)
        assert answer.status_code == 415, answer.text
        assert answer.json() == {"message": "Unsupported Media Type, use JSON"}
    assert env.votes() == []


def test_the_promotion_rules_judge_tag_votes(env: Env) -> None:
    with env.db.transaction() as session:
        record_tag_vote(session, T1, 1, "ga-tempest", False, "", "", NOW, "ci")
        record_tag_vote(session, T1, 1, "ga-tempest", True, "", "rerun", NOW, "ci")
        record_tag_vote(session, T1, 1, "ga-puppet", False, "", "", NOW + 1, "ci")
    with env.db.reader() as session:
        votes = tag_votes(session, T1, 1)
        assert votes_json(session, T1, 1) == [r.to_json() for r in tag_vote_records(session, T1, 1)]
    assert all(isinstance(v, Vote) and not v.in_progress for v in votes)
    # The re-vote of the same second wins: recorded later.
    passed, missing, _ = check_jobs(["ga-tempest", "ga-puppet"], {}, votes)
    assert (passed, missing) == (("ga-tempest",), ("ga-puppet",))


def test_the_service_refuses_a_version_that_does_not_exist(env: Env) -> None:
    with env.db.transaction() as session:
        with pytest.raises(TagVoteError, match=f"^{T1}: no version 2$"):
            record_tag_vote(session, T1, 2, "j", True, "", "", NOW, "ci")
        with pytest.raises(TagVoteError, match=r"^nope: no such tag$"):
            resolve_version(session, "nope")
        assert resolve_version(session, T1) == 1
    assert env.votes() == []


# -- refused ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        (basic("ci", "wrong-password"), 401),
        (basic("nobody", "whatever-secret"), 401),
        (PROMOTER, 403),
    ],
)
def test_a_vote_needs_a_voter(env: Env, headers: dict[str, str], status: int) -> None:
    answer = env.client.post(REPORT, json=VOTE, headers=headers)
    assert answer.status_code == status
    if status == 401:
        assert answer.text == "Unauthorized Access"  # as report_result: plain text
    else:
        assert answer.json() == {"message": "User mover does not have the voter role"}
    assert env.votes() == []


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/api/tags/nope/report_result", VOTE, "nope: no version 1"),
        (REPORT, {**VOTE, "version": 2}, f"{T1}: no version 2"),
    ],
)
def test_unknown_tag_or_version_is_404_and_writes_no_vote(
    env: Env, path: str, body: dict[str, object], message: str
) -> None:
    answer = env.client.post(path, json=body, headers=VOTER)
    assert answer.status_code == 404
    assert answer.json() == {"message": message}
    assert env.votes() == []
    # The refusal of an authenticated caller is audited, as every refused write is.
    assert [(a.user, a.status) for a in env.audits()] == [("ci", 404)]


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        (None, 404, "nope: no such tag"),
        ({"version": 3}, 404, "nope: no version 3"),
        ({"version": 0}, 400, "Invalid request"),
        ({"version": 2**31}, 400, "Invalid request"),
    ],
)
def test_listing_an_unknown_tag_or_version(
    env: Env, params: dict[str, int] | None, status: int, message: str
) -> None:
    answer = env.client.get("/api/tags/nope/votes", params=params)
    assert answer.status_code == status
    assert message in answer.json()["message"]
    assert env.client.get(LISTING, params={"version": 2}).status_code == 404


@pytest.mark.parametrize("tag", ["..t1", "a%20b", "versions", "x" * 201])
def test_an_invalid_tag_name_is_400(env: Env, tag: str) -> None:
    for answer in (
        env.client.post(f"/api/tags/{tag}/report_result", json=VOTE, headers=VOTER),
        env.client.get(f"/api/tags/{tag}/votes"),
    ):
        assert answer.status_code == 400
        assert "invalid buildsys tag name" in answer.json()["message"]
    assert env.votes() == []


@pytest.mark.parametrize("name", ["version", "job_id", "success", "url", "timestamp"])
def test_a_missing_parameter_is_400(env: Env, name: str) -> None:
    body = {key: value for key, value in VOTE.items() if key != name}
    # A null url is an empty one, as report_result takes it (DLRN allows an empty url).
    for sent in (body, {**body, name: None}) if name != "url" else (body,):
        answer = env.client.post(REPORT, json=sent, headers=VOTER)
        assert answer.status_code == 400
        assert answer.json() == {"message": "Missing parameters"}
    assert env.votes() == []


@pytest.mark.parametrize(
    ("changed", "message"),
    [
        ({"url": "javascript:alert(1)"}, "only http and https URLs are accepted"),
        ({"url": "file:///etc/passwd"}, "only http and https URLs are accepted"),
        ({"url": "https://ci/" + "x" * 1024}, "parameter url: at most 1024 characters"),
        ({"job_id": "j" * 256}, "parameter job_id: at most 255 characters"),
        ({"version": 0}, "out of range for parameter version"),
        ({"version": 2**31}, "out of range for parameter version"),
        ({"version": "two"}, "Invalid integer value for parameter version"),
        ({"timestamp": -1}, "out of range for parameter timestamp"),
        ({"timestamp": 2**40}, "out of range for parameter timestamp"),
        ({"success": "maybe"}, "Invalid boolean value for parameter success"),
        ({"notes": ["a"]}, "Invalid value for parameter notes"),
    ],
)
def test_an_invalid_parameter_is_400(env: Env, changed: dict[str, object], message: str) -> None:
    answer = env.client.post(REPORT, json={**VOTE, **changed}, headers=VOTER)
    assert answer.status_code == 400
    assert message in answer.json()["message"]
    assert env.votes() == []


def test_the_operations_are_documented(env: Env) -> None:
    paths = env.client.get("/openapi.json").json()["paths"]
    report = paths["/api/tags/{tag}/report_result"]["post"]
    assert report["security"] == [{"basicAuth": []}]
    assert {"201", "400", "401", "403", "404", "415"} <= set(report["responses"])
    body = report["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["required"]) == {"version", "job_id", "success", "url", "timestamp"}
    listing = paths["/api/tags/{tag}/votes"]["get"]
    assert {"200", "400", "404"} <= set(listing["responses"])


# -- the command line ------------------------------------------------------------------------


def test_tags_votes_command(env: Env) -> None:
    assert env.client.post(REPORT, json=VOTE, headers=VOTER).status_code == 201
    failed = {**VOTE, "job_id": "ga-puppet", "success": False, "notes": ""}
    assert env.client.post(REPORT, json=failed, headers=VOTER).status_code == 201
    env.apply(T1, {"foo": FOO2})

    code, output = env.tags("votes", T1)
    assert code == 0, output
    assert output == f"{T1} version 2: 0 votes\n"

    code, output = env.tags("votes", T1, "--version", "1")
    assert code == 0, output
    lines = output.splitlines()
    assert lines[0] == f"{T1} version 1: 2 votes"
    assert lines[1] == (
        "  SUCCESS  ga-tempest  2023-11-14 22:13 UTC  ci  https://ci.example.org/job/1  all green"
    )
    assert lines[2].startswith("  FAILURE  ga-puppet  ")

    code, output = env.tags("votes", T1, "--version", "1", "--json")
    assert code == 0, output
    listed = json.loads(output)
    assert listed == env.client.get(LISTING, params={"version": 1}).json()


@pytest.mark.parametrize(
    ("args", "message"),
    [(("nope",), "nope: no such tag"), ((T1, "--version", "5"), f"{T1}: no version 5")],
)
def test_tags_votes_of_an_unknown_tag_or_version(
    env: Env, args: tuple[str, ...], message: str
) -> None:
    code, output = env.tags("votes", *args)
    assert code == 2
    assert message in output


# -- the migration ---------------------------------------------------------------------------


def _alembic(connection: Any) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def test_the_migration_upgrades_a_0005_database(tmp_path: Path) -> None:
    path = tmp_path / "commits.sqlite"
    url = f"sqlite:///{path}"
    engine = create_engine(url)
    with engine.begin() as connection:
        command.upgrade(_alembic(connection), "0005")
    engine.dispose()
    with sqlite3.connect(path) as conn:
        conn.execute(
            "insert into tag_versions (tag, version, created, author, reason, forced, content,"
            " registered, actions) values ('t1', 1, 0, 'alice', 'r', 0, '{}', '[]', '[]')"
        )
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
    assert "tag_versions" in tables and "tag_votes" not in tables

    db = Database(url)  # opening migrates
    try:
        with db.transaction() as session:
            assert resolve_version(session, "t1") == 1  # the old rows are kept
            record_tag_vote(session, "t1", 1, "j", True, "", "", NOW, "ci")
            session.add(ReleaseStep(series="epoxy", run=1, step="tag", state="running", started=1))
        with db.reader() as session:
            step = session.scalars(select(ReleaseStep)).one()
            assert (step.id, step.ended, step.detail) == (1, None, "")
            assert session.scalar(select(func.count(TagVote.id))) == 1
    finally:
        db.close()
    with sqlite3.connect(path) as conn:
        version = conn.execute("select version_num from alembic_version").fetchone()[0]
        indexes = {r[0] for r in conn.execute("select name from sqlite_master where type='index'")}
    assert version == HEAD_REVISION
    assert {"ix_tag_votes_tag_version", "ix_release_steps_series_run"} <= indexes

    engine = create_engine(url)  # and back: the downgrade drops what the upgrade added
    with engine.begin() as connection:
        command.downgrade(_alembic(connection), "0005")
    engine.dispose()
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
    assert "tag_votes" not in tables and "release_steps" not in tables
    assert "tag_versions" in tables
