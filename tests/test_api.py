"""The DLRN-compatible API against a small database and a temporary repos/ tree."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.postgres_server import PostgresServer, postgres  # noqa: F401 (fixture)
from tests.support import basic, users_database

from conveyor.api import create_app
from conveyor.api.auth import (
    Authenticator,
    CredentialCache,
    Role,
    create_user,
    delete_user,
    update_user,
    verify_password,
)
from conveyor.config import ApiConfig, Config
from conveyor.domain.paths import commit_relpath
from conveyor.store.database import Database
from conveyor.store.models import FLAG_PURGED, Audit, CIVote, Commit, Promotion, User

C1, D1 = "1" * 40, "a" * 40
C2, D2 = "2" * 40, "b" * 40
CF, DF = "f" * 40, "e" * 40  # a failed build
CP, DP = "3" * 40, "c" * 40  # a purged build
NOW = int(time.time())


ADMIN = basic("admin", "admin-secret")
VOTER = basic("ci", "vote-secret")
PROMOTER = basic("promoter", "promote-secret")


@dataclass
class Env:
    client: TestClient
    db: Database
    config: Config


def _commit(commit_hash: str, distro_hash: str, status: str, dt: int, flags: int = 0) -> Commit:
    return Commit(
        project_name="python-foo",
        commit_hash=commit_hash,
        distro_hash=distro_hash,
        status=status,
        dt_build=dt,
        flags=flags,
        type="rpm",
    )


USERS = {
    "admin": ("admin-secret", ["admin"]),
    "ci": ("vote-secret", ["voter"]),
    "promoter": ("promote-secret", ["promoter"]),
}


@pytest.fixture(scope="module")
def users_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return users_database(tmp_path_factory.mktemp("users") / "commits.sqlite", USERS)


@pytest.fixture(params=["sqlite", "postgresql"])
def env(request: pytest.FixtureRequest, tmp_path: Path, users_db: Path) -> Iterator[Env]:
    """The API on both engines: SQLite (the users copied from a database made once) and
    PostgreSQL (a database of its own)."""
    datadir = tmp_path / "data"
    datadir.mkdir()
    if request.param == "sqlite":
        (datadir / "commits.sqlite").write_bytes(users_db.read_bytes())
        config = Config(datadir=datadir, baseurl="http://example.com/repos")
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        url = server.new_database()
        config = Config(datadir=datadir, baseurl="http://example.com/repos", database=url)
    db = Database(config.database_url)
    if request.param == "postgresql":
        for name, (password, roles) in USERS.items():
            create_user(db, name, password, roles)
    with db.transaction() as session:
        good = _commit(C1, D1, "SUCCESS", NOW - 7200)
        newer = _commit(C2, D2, "SUCCESS", NOW - 3600)
        session.add_all(
            [
                good,
                newer,
                _commit(CF, DF, "FAILED", NOW),
                _commit(CP, DP, "SUCCESS", 0, FLAG_PURGED),
            ]
        )
        session.flush()
        session.add_all(
            [
                CIVote(
                    commit_id=good.id,
                    ci_name="consistent",
                    ci_vote=True,
                    timestamp=NOW - 7000,
                    ci_in_progress=False,
                    ci_url="",
                    notes="",
                ),
                CIVote(
                    commit_id=good.id,
                    ci_name="job-a",
                    ci_vote=True,
                    timestamp=NOW - 600,
                    ci_in_progress=False,
                    ci_url="http://ci/1",
                    notes="",
                    user="ci",
                ),
                CIVote(
                    commit_id=newer.id,
                    ci_name="job-b",
                    ci_vote=False,
                    timestamp=NOW - 300,
                    ci_in_progress=False,
                    ci_url="http://ci/2",
                    notes="",
                    user="ci",
                ),
            ]
        )
    for commit in (good, newer):
        (config.repos_dir / commit_relpath(commit)).mkdir(parents=True)
    client = TestClient(create_app(config, db))
    yield Env(client, db, config)
    db.close()


def audits(db: Database) -> list[Audit]:
    with db.reader() as session:
        return list(session.scalars(select(Audit).order_by(Audit.id)))


# -- reads ------------------------------------------------------------------------------------


def test_health(env: Env) -> None:
    assert env.client.get("/api/health").json() == {"result": "ok"}
    assert env.client.post("/api/health", json={}).status_code == 401
    response = env.client.post("/api/health", json={}, headers=VOTER)
    assert response.status_code == 200
    assert response.json() == {"result": "ok"}


def test_openapi_document(env: Env) -> None:
    paths = env.client.get("/openapi.json").json()["paths"]
    assert "/api/report_result" in paths and "/api/promote" in paths


def test_repo_status_query_and_json_body(env: Env) -> None:
    by_query = env.client.get("/api/repo_status", params={"commit_hash": C1, "distro_hash": D1})
    assert by_query.status_code == 200
    votes = by_query.json()
    assert [v["job_id"] for v in votes] == ["consistent", "job-a"]
    assert set(votes[0]) == {
        "timestamp",
        "commit_hash",
        "distro_hash",
        "extended_hash",
        "job_id",
        "success",
        "in_progress",
        "url",
        "notes",
        "user",
        "component",
    }
    by_body = env.client.request(
        "GET", "/api/repo_status", json={"commit_hash": C1, "distro_hash": D1, "success": False}
    )
    assert by_body.json() == []
    only_true = env.client.get(
        "/api/repo_status", params={"commit_hash": C1, "distro_hash": D1, "success": "true"}
    )
    assert len(only_true.json()) == 2


def test_repo_status_errors(env: Env) -> None:
    missing = env.client.get("/api/repo_status", params={"commit_hash": C1})
    assert (missing.status_code, missing.json()) == (400, {"message": "Missing parameters"})
    failed = env.client.get("/api/repo_status", params={"commit_hash": CF, "distro_hash": DF})
    assert failed.status_code == 400
    assert "combination not found" in failed.json()["message"]
    bad_bool = env.client.get(
        "/api/repo_status", params={"commit_hash": C1, "distro_hash": D1, "success": "maybe"}
    )
    assert bad_bool.status_code == 400


def test_last_tested_repo(env: Env) -> None:
    newest = env.client.get("/api/last_tested_repo", params={"max_age": 0}).json()
    assert (newest["commit_hash"], newest["job_id"], newest["success"]) == (C2, "job-b", False)
    ok = env.client.get("/api/last_tested_repo", params={"max_age": 24, "success": "true"})
    assert ok.json()["job_id"] == "job-a"
    # an unknown job falls back to any real CI vote, then to `consistent`
    other = env.client.get("/api/last_tested_repo", params={"max_age": 0, "job_id": "nope"})
    assert other.json()["job_id"] == "job-b"
    sequential = env.client.get(
        "/api/last_tested_repo",
        params={"max_age": 0, "sequential_mode": "true", "previous_job_id": "nope"},
    )
    assert (sequential.status_code, sequential.json()) == (400, {"message": "No vote found"})
    assert env.client.get("/api/last_tested_repo", params={"max_age": -1}).status_code == 400
    assert env.client.get("/api/last_tested_repo").status_code == 400


def test_last_tested_repo_post_records_in_progress_vote(env: Env) -> None:
    body = {"max_age": 0, "reporting_job_id": "job-c", "job_id": "job-a"}
    response = env.client.post("/api/last_tested_repo", json=body, headers=VOTER)
    assert response.status_code == 201
    data = response.json()
    assert (data["commit_hash"], data["job_id"], data["in_progress"], data["success"]) == (
        C1,
        "job-c",
        True,
        False,
    )
    assert data["user"] == "ci"


def test_promotions_components_metrics(env: Env) -> None:
    env.client.post(
        "/api/promote",
        json={"commit_hash": C1, "distro_hash": D1, "promote_name": "tripleo-ci"},
        headers=PROMOTER,
    )
    listed = env.client.get("/api/promotions", params={"promote_name": "tripleo-ci"}).json()
    assert len(listed) == 1
    assert listed[0]["repo_hash"] == f"{C1}_{D1[:8]}"
    assert listed[0]["repo_url"] == f"http://example.com/repos/11/11/{C1}_{D1[:8]}"
    assert listed[0]["user"] == "promoter"
    assert env.client.get("/api/promotions", params={"commit_hash": C1}).status_code == 400
    assert env.client.get("/api/promotions", params={"limit": 1000}).status_code == 200
    assert env.client.get("/api/components").json() == {"components": []}
    day = time.strftime("%Y-%m-%d", time.gmtime(NOW))
    tomorrow = time.strftime("%Y-%m-%d", time.gmtime(NOW + 86400))
    metrics = env.client.get(
        "/api/metrics/builds", params={"start_date": "1970-01-02", "end_date": tomorrow}
    ).json()
    assert metrics == {"succeeded": 2, "failed": 1, "total": 3}
    bad = env.client.get("/api/metrics/builds", params={"start_date": day, "end_date": "x"})
    assert bad.status_code == 400


def test_agg_status_and_aggregate_votes(env: Env) -> None:
    with env.db.transaction() as session:
        session.add(
            Promotion(commit_id=1, promotion_name="x", timestamp=NOW, aggregate_hash="ab" * 16)
        )
    vote = {"job_id": "j", "url": "http://ci/j", "timestamp": NOW, "success": "true"}
    unknown = env.client.post(
        "/api/report_result", json={**vote, "aggregate_hash": "cd" * 16}, headers=VOTER
    )
    assert unknown.status_code == 400
    done = env.client.post(
        "/api/report_result", json={**vote, "aggregate_hash": "ab" * 16}, headers=VOTER
    )
    assert done.status_code == 201
    status = env.client.get("/api/agg_status", params={"aggregate_hash": "ab" * 16}).json()
    assert status[0]["job_id"] == "j" and status[0]["success"] is True
    page = env.client.get("/api/civotes_agg.html")
    assert page.status_code == 200 and "civotes_agg_detail.html?ref_hash=" + "ab" * 16 in page.text
    detail = env.client.get("/api/civotes_agg_detail.html", params={"ref_hash": "ab" * 16})
    assert detail.status_code == 200 and ">j<" in detail.text and "success" in detail.text
    by_job = env.client.get("/api/civotes_agg_detail.html", params={"ci_name": "other"})
    assert by_job.status_code == 200 and "ab" * 16 not in by_job.text
    assert env.client.get("/api/civotes_agg_detail.html").status_code == 400


# -- writes -----------------------------------------------------------------------------------

VOTE = {"job_id": "job-x", "url": "http://ci/x", "timestamp": NOW, "success": "true"}


def test_report_result(env: Env) -> None:
    body = {**VOTE, "commit_hash": C1, "distro_hash": D1, "notes": "fine"}
    response = env.client.post("/api/report_result", json=body, headers=VOTER)
    assert response.status_code == 201
    assert response.json() == {
        "commit_hash": C1,
        "distro_hash": D1,
        "extended_hash": None,
        "aggregate_hash": None,
        "timestamp": NOW,
        "job_id": "job-x",
        "success": True,
        "in_progress": False,
        "url": "http://ci/x",
        "notes": "fine",
        "user": "ci",
        "component": None,
    }
    json_bool = env.client.post(
        "/api/report_result", json={**body, "success": False}, headers=VOTER
    )
    assert json_bool.json()["success"] is False
    first, _ = audits(env.db)
    assert (first.user, first.action, first.status) == ("ci", "report_result", 201)
    assert first.remote_addr == "testclient"
    assert json.loads(first.details or "{}")["job_id"] == "job-x"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"commit_hash": "9" * 40, "distro_hash": D1}, 400),  # unknown
        ({"commit_hash": CF, "distro_hash": DF}, 400),  # failed builds are not voted on
        ({"commit_hash": C1, "distro_hash": D1, "aggregate_hash": "ab" * 16}, 400),
        ({"commit_hash": C1}, 400),
        ({}, 400),
    ],
)
def test_report_result_bad_input(env: Env, body: dict[str, str], status: int) -> None:
    response = env.client.post("/api/report_result", json={**VOTE, **body}, headers=VOTER)
    assert response.status_code == status
    assert "message" in response.json()
    (row,) = audits(env.db)
    assert (row.user, row.status) == ("ci", status)


def test_credentials(env: Env) -> None:
    body = {**VOTE, "commit_hash": C1, "distro_hash": D1}
    missing = env.client.post("/api/report_result", json=body)
    assert (missing.status_code, missing.text) == (401, "Unauthorized Access")
    assert missing.headers["www-authenticate"].startswith("Basic")
    wrong = env.client.post("/api/report_result", json=body, headers=basic("ci", "nope"))
    assert wrong.status_code == 401
    nobody = env.client.post("/api/report_result", json=body, headers=basic("who", "x"))
    assert nobody.status_code == 401
    garbage = env.client.post(
        "/api/report_result", json=body, headers={"Authorization": "Basic !!!"}
    )
    assert garbage.status_code == 401
    assert audits(env.db) == []


def test_non_json_body_is_415(env: Env) -> None:
    response = env.client.post(
        "/api/report_result", content="job_id=x", headers={**VOTER, "Content-Type": "text/plain"}
    )
    assert response.status_code == 415
    assert response.json() == {"message": "Unsupported Media Type, use JSON"}
    broken = env.client.post(
        "/api/report_result", content="{", headers={**VOTER, "Content-Type": "application/json"}
    )
    assert broken.status_code == 400


def test_promote_writes_relative_symlink(env: Env) -> None:
    body = {"commit_hash": C1, "distro_hash": D1, "promote_name": "current-passed-ci"}
    response = env.client.post("/api/promote", json=body, headers=PROMOTER)
    assert response.status_code == 201
    data = response.json()
    assert set(data) == {
        "commit_hash",
        "distro_hash",
        "extended_hash",
        "repo_hash",
        "repo_url",
        "promote_name",
        "component",
        "timestamp",
        "user",
        "aggregate_hash",
    }
    assert isinstance(data["timestamp"], int)
    link = env.config.repos_dir / "current-passed-ci"
    assert os.readlink(link) == f"11/11/{C1}_{D1[:8]}"
    assert link.resolve() == (env.config.repos_dir / f"11/11/{C1}_{D1[:8]}").resolve()
    # moved again: replaced atomically
    again = env.client.post(
        "/api/promote", json={**body, "commit_hash": C2, "distro_hash": D2}, headers=ADMIN
    )
    assert again.status_code == 201
    assert os.readlink(link) == f"22/22/{C2}_{D2[:8]}"
    with env.db.reader() as session:
        rows = list(session.scalars(select(Promotion).order_by(Promotion.id)))
    assert [(r.promotion_name, r.user) for r in rows] == [
        ("current-passed-ci", "promoter"),
        ("current-passed-ci", "admin"),
    ]
    first = audits(env.db)[0]
    assert (first.action, first.user) == ("promote", "promoter")


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("current", 403),
        ("consistent", 403),
        ("../x", 403),
        ("a/b", 403),
        ("..", 403),
        ("with space", 400),
        ("x" * 300, 400),
        (".hidden", 400),
    ],
)
def test_promote_refuses_names(env: Env, name: str, status: int) -> None:
    body = {"commit_hash": C1, "distro_hash": D1, "promote_name": name}
    response = env.client.post("/api/promote", json=body, headers=PROMOTER)
    assert response.status_code == status
    assert sorted(p.name for p in env.config.repos_dir.iterdir()) == ["11", "22"]


def test_promote_unknown_purged_and_roles(env: Env) -> None:
    body = {"commit_hash": CP, "distro_hash": DP, "promote_name": "x"}
    purged = env.client.post("/api/promote", json=body, headers=PROMOTER)
    assert purged.status_code == 410
    failed = env.client.post(
        "/api/promote", json={**body, "commit_hash": CF, "distro_hash": DF}, headers=PROMOTER
    )
    assert failed.status_code == 400
    voter = env.client.post(
        "/api/promote", json={**body, "commit_hash": C1, "distro_hash": D1}, headers=VOTER
    )
    assert voter.status_code == 403
    assert not (env.config.repos_dir / "x").exists()
    assert [(a.user, a.status) for a in audits(env.db)] == [
        ("promoter", 410),
        ("promoter", 400),
        ("ci", 403),
    ]
    # and a promoter may not vote
    vote = {**VOTE, "commit_hash": C1, "distro_hash": D1}
    assert env.client.post("/api/report_result", json=vote, headers=PROMOTER).status_code == 403


def test_promote_batch(env: Env) -> None:
    items = [
        {"commit_hash": C1, "distro_hash": D1, "promote_name": "a"},
        {"commit_hash": C2, "distro_hash": D2, "promote_name": "b"},
    ]
    response = env.client.post("/api/promote-batch", json=items, headers=PROMOTER)
    assert response.status_code == 201
    assert response.json()["promote_name"] == "b"
    assert os.readlink(env.config.repos_dir / "a") == f"11/11/{C1}_{D1[:8]}"
    assert os.readlink(env.config.repos_dir / "b") == f"22/22/{C2}_{D2[:8]}"
    # one bad item: nothing moves
    bad = [{**items[0], "promote_name": "c"}, {**items[1], "commit_hash": CF, "distro_hash": DF}]
    assert env.client.post("/api/promote-batch", json=bad, headers=PROMOTER).status_code == 400
    assert not (env.config.repos_dir / "c").exists()
    not_a_list = env.client.post("/api/promote-batch", json=items[0], headers=PROMOTER)
    assert not_a_list.status_code == 400


def test_recheck_and_import_refusals(env: Env) -> None:
    ok = env.client.post("/api/recheck_package", json={"package_name": "python-foo"}, headers=ADMIN)
    assert ok.status_code == 409  # the purged build of python-foo is its newest success
    none = env.client.post("/api/recheck_package", json={"package_name": "nope"}, headers=ADMIN)
    assert none.status_code == 400
    voter = env.client.post("/api/recheck_package", json={"package_name": "x"}, headers=VOTER)
    assert voter.status_code == 403
    scheme = env.client.post("/api/remote/import", json={"repo_url": "file:///etc"}, headers=ADMIN)
    assert scheme.status_code == 400
    failing = env.client.post(
        "/api/remote/import", json={"repo_url": "http://127.0.0.1:9/x"}, headers=ADMIN
    )
    assert failing.status_code == 500
    assert failing.json()["message"].startswith("Remote import failed with error")


def test_pages_metrics_and_static_repos(env: Env) -> None:
    page = env.client.get("/api/civotes.html")
    assert page.status_code == 200
    assert C1 in page.text and C2 in page.text
    detail = env.client.get("/api/civotes_detail.html", params={"ci_name": "job-a"})
    assert "job-a" in detail.text and "job-b" not in detail.text
    assert env.client.get("/api/civotes_detail.html").status_code == 400
    metrics = env.client.get("/metrics").text
    assert 'dlrn_builds_succeeded_total{baseurl="http://example.com/repos"} 3.0' in metrics
    assert 'dlrn_builds_failed_total{baseurl="http://example.com/repos"} 1.0' in metrics
    assert "dlrn_request_processing_seconds" in metrics
    repo = env.config.repos_dir / commit_relpath_of(C1, D1)
    (repo / "delorean.repo").write_text("[delorean]\n")
    env.client.post(
        "/api/promote",
        json={"commit_hash": C1, "distro_hash": D1, "promote_name": "tested"},
        headers=PROMOTER,
    )
    served = env.client.get("/repos/tested/delorean.repo")
    assert (served.status_code, served.text) == (200, "[delorean]\n")


def commit_relpath_of(commit_hash: str, distro_hash: str) -> str:
    return f"{commit_hash[:2]}/{commit_hash[2:4]}/{commit_hash}_{distro_hash[:8]}"


# -- users and passwords ----------------------------------------------------------------------


def test_dlrn_sha512_crypt_is_verified_and_rehashed(env: Env) -> None:
    from passlib.hash import sha512_crypt  # type: ignore[import-untyped]

    legacy = sha512_crypt.using(rounds=5000).hash("old")
    with env.db.transaction() as session:
        session.add(User(username="dlrn", password=legacy))
        session.add(User(username="locked", password="!"))
    assert verify_password(legacy, "wrong") == (False, None)
    auth = Authenticator(env.db, CredentialCache())
    assert auth.check("locked", "!") is None
    identity = auth.check("dlrn", "old")
    assert identity is not None and identity.may(Role.PROMOTER)
    with env.db.reader() as session:
        row = session.get(User, "dlrn")
        assert row is not None and row.password.startswith("$argon2id$")
    assert Authenticator(env.db, CredentialCache()).check("dlrn", "old") is not None


def test_credential_cache_skips_the_hash(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    auth = Authenticator(env.db, CredentialCache(ttl=60))
    assert auth.check("ci", "vote-secret") is not None
    monkeypatch.setattr("conveyor.api.auth.verify_password", lambda *a: pytest.fail("hashed"))
    assert auth.check("ci", "vote-secret") is not None
    expired = Authenticator(env.db, CredentialCache(ttl=-1))
    monkeypatch.undo()
    assert expired.check("ci", "vote-secret") is not None
    assert expired.check("ci", "wrong") is None


def test_user_management(env: Env) -> None:
    from conveyor.api.auth import UserError

    create_user(env.db, "new", "new-secret", ["voter", "promoter"])
    with pytest.raises(UserError):
        create_user(env.db, "new", "new-secret", ["voter"])
    with pytest.raises(ValueError, match="root"):
        create_user(env.db, "bad", "bad-secret", ["root"])
    update_user(env.db, "new", password="new-secret2", roles=["admin"])
    identity = Authenticator(env.db).check("new", "new-secret2")
    assert identity is not None and identity.roles == {"admin"}
    assert delete_user(env.db, "new") is False
    assert delete_user(env.db, "ci") is True  # its votes keep the row: locked
    assert Authenticator(env.db).check("ci", "vote-secret") is None


@pytest.mark.parametrize("repos_auth", [False, True])
def test_reads_need_credentials_when_configured(env: Env, repos_auth: bool) -> None:
    settings = ApiConfig(read_auth=True, repos_auth=repos_auth)
    config = env.config.model_copy(update={"api": settings})
    (config.repos_dir / "hello.txt").write_text("hi")
    with TestClient(create_app(config, env.db)) as client:
        for path in ("/api/health", "/api/civotes.html", "/metrics", "/openapi.json"):
            anonymous = client.get(path)
            assert anonymous.status_code == 401 and anonymous.text == "Unauthorized Access"
            assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
            assert client.get(path, headers=basic("ci", "wrong")).status_code == 401
            assert client.get(path, headers=VOTER).status_code == 200, path
        params = {"commit_hash": C1, "distro_hash": D1}
        assert client.get("/api/repo_status", params=params).status_code == 401
        assert client.get("/api/repo_status", params=params, headers=VOTER).status_code == 200
        repo_file = client.get("/repos/hello.txt")
        assert repo_file.status_code == (401 if repos_auth else 200)
        assert client.get("/repos/hello.txt", headers=VOTER).text == "hi"
        # Writes are unchanged: credentials and a role, whatever the read setting.
        assert client.post("/api/promote", json={}, headers=VOTER).status_code == 403


def test_reads_are_open_by_default(env: Env) -> None:
    assert env.client.get("/api/health").status_code == 200
    assert env.client.get("/openapi.json").status_code == 200
