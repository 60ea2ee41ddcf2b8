"""Schemathesis against the app's own /openapi.json, in process: every operation with
generated (valid and invalid) parameters and bodies, anonymous and with credentials. No
answer may be a 5xx, and every answer must have a status, content type and body the document
declares (conveyor.api.openapi)."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import schemathesis
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.generation.modes import GenerationMode
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conveyor.api import bisect, create_app, dlrn, ops, pages, promotion, tags
from conveyor.api.auth import create_user
from conveyor.config import ApiConfig, Config
from conveyor.domain.paths import commit_relpath
from conveyor.store.database import Database
from conveyor.store.models import FLAG_PURGED, CIVote, Commit, Promotion

C1, D1 = "1" * 40, "a" * 40
C2, D2, E2 = "2" * 40, "b" * 40, "e" * 40
CF, DF = "f" * 40, "c" * 40  # a failed build
CP, DP = "3" * 40, "d" * 40  # a purged build
AGG = "9" * 32
NOW = int(time.time())
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Real values now and then, so that generated calls reach the successful paths too.
_BINDINGS = {
    "commit_hash": ("commit", 0.8),
    "distro_hash": ("distro", 0.8),
    "extended_hash": ("extended", 0.3),
    "aggregate_hash": ("aggregate", 0.5),
    "promote_name": ("label", 0.5),
    "job_id": ("job", 0.3),
    "previous_job_id": ("job", 0.3),
    "start_date": ("day", 0.3),
    "end_date": ("day", 0.3),
    "repo_url": ("url", 0.5),
    "package_name": ("package", 0.5),
}
GENERATION = {
    "dictionaries": {
        "commit": {"values": [C1, C2]},
        "distro": {"values": [D1, D2]},
        "extended": {"values": [E2]},
        "aggregate": {"values": [AGG]},
        "label": {"values": ["tested", "current", "../up", "a/b", "x" * 300]},
        "job": {"values": ["job-a", "consistent"]},
        "day": {"values": ["2024-01-15", "2024-1-1", "15/01/2024"]},
        "url": {"values": ["http://127.0.0.1:9/repos/ab/cd/x", "file:///etc"]},
        "package": {"values": ["p", "q"]},
    },
    "parameters": {
        key: {"dictionary": dictionary, "probability": probability}
        for name, (dictionary, probability) in _BINDINGS.items()
        for key in (name, f"body.{name}", f"body.[*].{name}")
    },
}


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


ADMIN = basic("admin", "admin-secret")
VOTER = basic("ci", "vote-secret")  # may vote, may not promote (403)


def _vote(commit: Commit, name: str, success: bool, age: int) -> CIVote:
    return CIVote(
        commit_id=commit.id,
        ci_name=name,
        ci_url="http://ci/1",
        ci_vote=success,
        ci_in_progress=False,
        timestamp=NOW - age,
        notes="",
        user="ci",
    )


def _seed(config: Config, db: Database) -> None:
    create_user(db, "admin", "admin-secret", ["admin"])
    create_user(db, "ci", "vote-secret", ["voter"])
    with db.transaction() as session:
        good = Commit(project_name="p", commit_hash=C1, distro_hash=D1, status="SUCCESS")
        extended = Commit(
            project_name="q", commit_hash=C2, distro_hash=D2, extended_hash=E2, status="SUCCESS"
        )
        purged = Commit(
            project_name="p", commit_hash=CP, distro_hash=DP, status="SUCCESS", flags=FLAG_PURGED
        )
        failed = Commit(project_name="q", commit_hash=CF, distro_hash=DF, status="FAILED")
        for commit in (good, extended, purged, failed):
            commit.dt_build, commit.type = 1705320000, "rpm"
        session.add_all([good, extended, purged, failed])
        session.flush()
        session.add_all(
            [
                _vote(good, "consistent", True, 7000),
                _vote(good, "job-a", True, 600),
                _vote(extended, "job-a", False, 300),
                Promotion(
                    commit_id=good.id, promotion_name="old", timestamp=NOW, aggregate_hash=AGG
                ),
            ]
        )
        relpaths = [commit_relpath(good), commit_relpath(extended)]
    for relpath in relpaths:
        (config.repos_dir / relpath).mkdir(parents=True)


def _no_import(_builder: Any, url: str) -> Any:
    """The fetch is not what is fuzzed here (tests/test_remote.py is): nothing leaves."""
    return SimpleNamespace(skipped=f"not fetched in tests: {url}")


def _operations() -> list[str]:
    """The documented operations, as `METHOD /path`: known at collection, before any app."""
    return sorted(
        f"{method} {route.path}"
        for router in (
            bisect.router,
            dlrn.router,
            ops.router,
            pages.router,
            promotion.router,
            tags.router,
        )
        for route in router.routes
        if isinstance(route, APIRoute) and route.include_in_schema
        for method in route.methods
    )


OPERATIONS = _operations()
IDENTITIES = {"anonymous": {}, "voter": VOTER, "admin": ADMIN}
# A deeper run, randomized: CONVEYOR_FUZZ_EXAMPLES=500 pytest tests/test_api_fuzz.py
DEEP = os.environ.get("CONVEYOR_FUZZ_EXAMPLES")
FUZZ = settings(
    max_examples=int(DEEP) if DEEP else 25,
    deadline=None,
    derandomize=not DEEP,  # by default the same cases on every run: failures reproduce
    database=None,
    suppress_health_check=list(HealthCheck),
)


@dataclass(frozen=True)
class FuzzTarget:
    schema: Any  # schemathesis' OpenApiSchema of the app
    client: Any  # one in-process client for every call (a new one per call is slow)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzTarget]:
    datadir = tmp_path_factory.mktemp("fuzz") / "data"
    datadir.mkdir()
    config = Config(datadir=datadir, baseurl="http://trunk.example.org/repos")
    db = Database(config.database_url)
    _seed(config, db)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("conveyor.assembly.builder.Builder.import_commit", _no_import)
        app = create_app(config, db)
        schema = schemathesis.openapi.from_asgi(
            "/openapi.json", app, config=SchemathesisConfig.from_dict(GENERATION)
        )
        with asgi.get_client(app) as client:
            yield FuzzTarget(schema, client)
    db.close()


@pytest.mark.parametrize("identity", list(IDENTITIES))
@pytest.mark.parametrize("operation", OPERATIONS)
def test_fuzz(target: FuzzTarget, operation: str, identity: str) -> None:
    method, path = operation.split(" ", 1)
    api_operation = target.schema[path][method]
    cases = st.one_of(
        api_operation.as_strategy(GenerationMode.POSITIVE),
        api_operation.as_strategy(GenerationMode.NEGATIVE),
    )
    headers = IDENTITIES[identity]

    @given(case=cases)
    @FUZZ
    def run(case: Any) -> None:
        case.call_and_validate(session=target.client, headers=headers, checks=CHECKS)

    run()


def test_the_fuzzed_operations_are_the_documented_ones(target: FuzzTarget) -> None:
    documented = {
        f"{method.upper()} {path}"
        for path, operations in target.schema.raw_schema["paths"].items()
        for method in operations
    }
    assert documented == set(OPERATIONS)


def test_every_operation_is_described(target: FuzzTarget) -> None:
    """What each operation takes and answers is in the document, errors included."""
    document = target.schema.raw_schema
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            where, responses = f"{method.upper()} {path}", operation["responses"]
            assert any(code.startswith("2") for code in responses), where
            if "dlrn" not in operation["tags"]:
                assert "default" in responses, where  # described elsewhere: DLRN's errors
                continue
            if operation.get("parameters") or "requestBody" in operation:
                assert "400" in responses, where
            if method == "post":
                assert operation["security"] == [{"basicAuth": []}], where
                assert "401" in responses, where
                if "requestBody" in operation:
                    assert {"403", "415"} <= set(responses), where
    take = document["paths"]["/api/last_tested_repo"]
    assert {p["name"] for p in take["get"]["parameters"]} >= {"max_age", "job_id", "success"}
    body = take["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "reporting_job_id" in body["required"]
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    assert document["components"]["securitySchemes"]["basicAuth"]["scheme"] == "basic"


PROMOTE_C1 = {"commit_hash": C1, "distro_hash": D1, "promote_name": "tested"}
AS_JSON = {"Content-Type": "application/json"}


def _call(
    why: str, operation: str, headers: dict[str, str], query: Any, body: Any, status: int
) -> Any:
    return pytest.param(operation, headers, query, body, status, id=f"{operation} {why}")


@pytest.mark.parametrize(
    ("operation", "headers", "query", "body", "status"),
    [
        _call("anonymous", "POST /api/promote", {}, None, PROMOTE_C1, 401),
        _call("wrong password", "POST /api/promote", basic("admin", "x"), None, PROMOTE_C1, 401),
        _call("no role", "POST /api/promote", VOTER, None, PROMOTE_C1, 403),
        _call(
            "reserved",
            "POST /api/promote",
            ADMIN,
            None,
            {**PROMOTE_C1, "promote_name": "current"},
            403,
        ),
        _call(
            "bad name", "POST /api/promote", ADMIN, None, {**PROMOTE_C1, "promote_name": "a b"}, 400
        ),
        _call("failed", "POST /api/promote", ADMIN, None, {**PROMOTE_C1, "commit_hash": CF}, 400),
        _call(
            "purged",
            "POST /api/promote",
            ADMIN,
            None,
            {**PROMOTE_C1, "commit_hash": CP, "distro_hash": DP},
            410,
        ),
        _call("ok", "POST /api/promote", ADMIN, None, PROMOTE_C1, 201),
        _call(
            "form", "POST /api/promote", {**ADMIN, "Content-Type": "text/plain"}, None, b"x", 415
        ),
        _call("deep JSON", "POST /api/promote", {**ADMIN, **AS_JSON}, None, b"[" * 100_000, 400),
        _call(
            "huge body", "POST /api/promote", {**ADMIN, **AS_JSON}, None, b" " * (2**20 + 1), 413
        ),
        _call(
            "missing",
            "POST /api/promote-batch",
            ADMIN,
            None,
            [PROMOTE_C1, {"promote_name": "x"}],
            400,
        ),
        _call("missing", "POST /api/report_result", ADMIN, None, {"job_id": "j"}, 400),
        _call("file URL", "POST /api/remote/import", ADMIN, None, {"repo_url": "file:///"}, 400),
        _call(
            "ok", "POST /api/remote/import", ADMIN, None, {"repo_url": "http://127.0.0.1:9/"}, 201
        ),
        _call(
            "Infinity", "GET /api/last_tested_repo", AS_JSON, None, b'{"max_age": Infinity}', 400
        ),
        _call("2**64", "GET /api/last_tested_repo", {}, {"max_age": str(2**64)}, None, 400),
        _call("2**62", "GET /api/last_tested_repo", {}, {"max_age": str(2**62)}, None, 200),
        _call(
            "surrogate",
            "GET /api/repo_status",
            AS_JSON,
            {"distro_hash": D1},
            b'{"commit_hash": "\\ud800"}',
            400,
        ),
        _call("negative", "GET /api/promotions", {}, {"offset": "-1"}, None, 400),
        _call("bad date", "GET /api/metrics/builds", {}, {"start_date": "2024-02-30"}, None, 400),
        _call("too long", "GET /api/v2/promotion-status", {}, {"target": "x" * 256}, None, 400),
        _call("no criteria", "GET /api/v2/promotion-status", {}, None, None, 404),
    ],
)
def test_the_documented_errors_are_the_real_ones(
    target: FuzzTarget,
    operation: str,
    headers: dict[str, str],
    query: dict[str, str] | None,
    body: Any,
    status: int,
) -> None:
    """Each error status, made on purpose, is answered as the document says."""
    method, path = operation.split(" ", 1)
    sent: dict[str, Any] = {"params": query, "headers": headers}
    if isinstance(body, bytes):
        sent["data"] = body
    elif body is not None:
        sent["json"] = body
    response = target.client.request(method, path, **sent)
    assert response.status_code == status, response.text
    target.schema[path][method].Case().validate_response(response, checks=CHECKS)


def test_protected_reads_are_documented(tmp_path: Path) -> None:
    """With `[api] read_auth`, every read asks for credentials, and the document says so."""
    datadir = tmp_path / "data"
    datadir.mkdir()
    config = Config(datadir=datadir, api=ApiConfig(read_auth=True))
    db = Database(config.database_url)
    app = create_app(config, db)
    with asgi.get_client(app) as client:
        assert client.get("/openapi.json").status_code == 401
    protected = schemathesis.openapi.from_dict(app.openapi())  # what it would serve
    reads = [op.ok() for op in protected.get_all_operations() if op.ok().method == "get"]
    assert reads
    with asgi.get_client(app) as client:
        for operation in reads:
            assert operation.definition.raw["security"] == [{"basicAuth": []}]
            names = [p.name for p in operation.path_parameters]
            case = operation.Case(path_parameters=dict.fromkeys(names, "t1"))
            response = client.get(case.formatted_path)
            assert response.status_code == 401, operation.path
            case.validate_response(response, checks=CHECKS)
    db.close()
