"""A vote that completes the criteria promotes at once; promotion-status explains why."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient
from tests.support import Trunk, example, rows

from conveyor.api import create_app
from conveyor.api.auth import create_user
from conveyor.assembly.builder import run_cycle
from conveyor.store.database import Database

pytestmark = pytest.mark.slow
VOTER = {"Authorization": "Basic " + base64.b64encode(b"ci:vote-secret").decode()}


def test_the_completing_vote_promotes_and_the_status_explains(tmp_path):
    trunk = Trunk(tmp_path / "dist")
    criteria = tmp_path / "promotions.yaml"
    criteria.write_text(
        "promotions:\n"
        "  ci-testing:\n"
        "    candidate_label: consistent\n"
        "    criteria: [unit, integration]\n"
    )
    config = trunk.config(promotion_criteria=criteria)
    example.fix_broken_package(trunk.root)
    run_cycle(config)
    consistent = (trunk.repos / "consistent").resolve()
    commit_hash, distro = consistent.name.split("_")[:2]
    (distro_hash,) = [
        r[0]
        for r in rows(
            trunk.db, "select distro_hash from commits where commit_hash = ?", commit_hash
        )
        if r[0].startswith(distro)
    ]
    db = Database(config.database_url)
    create_user(db, "ci", "vote-secret", ["voter"])
    client = TestClient(create_app(config, db))

    def vote(job: str) -> None:
        answer = client.post(
            "/api/report_result",
            json={
                "commit_hash": commit_hash,
                "distro_hash": distro_hash,
                "job_id": job,
                "url": f"https://ci.example.org/{job}",
                "timestamp": 1_800_000_000,
                "success": True,
            },
            headers=VOTER,
        )
        assert answer.status_code == 201, answer.text

    vote("unit")
    assert not (trunk.repos / "ci-testing").exists()
    (status,) = client.get("/api/v2/promotion-status", params={"target": "ci-testing"}).json()
    assert status["candidates"][0]["missing"] == ["integration"]
    assert status["candidates"][0]["passed"] == ["unit"]

    vote("integration")  # the background evaluation runs before TestClient returns
    assert (trunk.repos / "ci-testing").resolve() == consistent
    (status,) = client.get("/api/v2/promotion-status", params={"target": "ci-testing"}).json()
    assert status["incumbent"] is not None and status["candidates"][0]["verdict"] == "incumbent"
    assert client.get("/api/v2/promotion-status", params={"target": "nope"}).status_code == 404
    db.close()
