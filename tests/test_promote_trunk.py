"""The promotion engine end to end on the example distribution (real rpmbuild): a chain
`consistent` -> `ci-testing` -> `current-passed-ci` promoted in one evaluation, through the
CLI, and per-component targets with the aggregate rebuilt."""

from __future__ import annotations

import os
import shutil
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.support import (
    Trunk,
    built_example,
    default_first_cycle,
    example,
    fresh_trunk,
    rows,
)
from typer.testing import CliRunner

from conveyor.api import create_app
from conveyor.api.auth import create_user
from conveyor.assembly.builder import run_cycle
from conveyor.cli.promote import register
from conveyor.config import Config
from conveyor.promote.criteria import parse_criteria
from conveyor.promote.engine import evaluate
from conveyor.publish.aggregate import published_hash
from conveyor.store.database import Database
from conveyor.store.models import CIVote, CIVoteAggregate, Promotion
from conveyor.trunk.cycle import CycleOptions

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("rpmbuild") is None, reason="rpmbuild is not installed"),
]

CRITERIA = """\
version: 1
promotions:
  current-passed-ci:
    candidate_label: ci-testing
    criteria: [tempest-full, packstack-scenario001]
    alternative_criteria:
      packstack-scenario001: [packstack-scenario001-internal]
  ci-testing:
    candidate_label: consistent
    criteria: []
"""


def promote_cli(*args: str) -> tuple[int, str]:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """conveyor (test)"""

    register(app)
    result = CliRunner().invoke(app, ["promote", *args])
    return result.exit_code, result.output


def _vote_columns(job: str, success: bool) -> dict[str, object]:
    return {
        "ci_name": job,
        "ci_url": f"https://ci.example.org/{job}",
        "ci_vote": success,
        "ci_in_progress": False,
        "timestamp": 2_000_000_000,
        "notes": "",
    }


def add_vote(db: Database, commit_id: int, job: str, success: bool = True) -> None:
    with db.transaction() as session:
        session.add(CIVote(commit_id=commit_id, **_vote_columns(job, success)))


@pytest.fixture
def built() -> Iterator[Trunk]:
    """The example after its first cycle (example-broken failed), built once for the run."""
    with built_example("default", default_first_cycle).changed() as trunk:
        yield trunk


def components_first_cycle(trunk: Trunk) -> None:
    # example-broken fails
    assert run_cycle(trunk.config(use_components=True), CycleOptions()).exit_code == 1


@pytest.fixture
def built_with_components() -> Iterator[tuple[Trunk, Config, list[str]]]:
    """The example built once with components on (once for the run), its configuration, and
    the components that have `consistent`."""
    with built_example("components", components_first_cycle).changed() as trunk:
        components = sorted(
            p.name for p in (trunk.repos / "component").iterdir() if (p / "consistent").exists()
        )
        yield trunk, trunk.config(use_components=True), components


def test_chain_promoted_in_one_evaluation_through_the_cli(built, tmp_path):
    trunk = built  # after its first cycle, where example-broken failed
    config = trunk.config()
    example.fix_broken_package(trunk.root)
    assert run_cycle(trunk.config(), CycleOptions()).exit_code == 0
    (consistent_id,) = rows(trunk.db, "select commit_id from civotes where ci_name = 'consistent'")[
        0
    ]
    criteria = tmp_path / "promotions.yaml"
    criteria.write_text(CRITERIA)
    common = ("--criteria", str(criteria), "--config", str(trunk.config_path))

    db = Database(config.database_url)
    try:
        add_vote(db, consistent_id, "tempest-full")
        add_vote(db, consistent_id, "packstack-scenario001", success=False)
        code, output = promote_cli("--once", "--dry-run", "--explain", *common)
        assert code == 0, output
        assert "ci-testing <- consistent (now (not set)): would promote" in output
        assert "current-passed-ci <- ci-testing" in output
        assert "nothing to promote; 1 candidate(s) missing jobs" in output
        assert "packstack-scenario001" in output and "missing-jobs" in output
        assert not (trunk.repos / "ci-testing").exists()

        add_vote(db, consistent_id, "packstack-scenario001-internal")
        code, output = promote_cli("--once", *common)
        assert code == 0, output
        assert output.count("promoted") == 2, output
    finally:
        db.close()

    consistent = trunk.repos / "consistent"
    for label in ("ci-testing", "current-passed-ci"):
        link = trunk.repos / label
        assert link.is_symlink() and not os.path.isabs(os.readlink(link))
        assert link.resolve() == consistent.resolve()
    assert rows(trunk.db, "select promotion_name, commit_id from promotions order by id") == [
        ("ci-testing", consistent_id),
        ("current-passed-ci", consistent_id),
    ]
    code, output = promote_cli("--once", "--explain", *common)
    assert code == 0 and "nothing newer to promote" in output and "incumbent" in output


def test_bad_criteria_and_arguments_exit_2(tmp_path):
    trunk = fresh_trunk(tmp_path / "dist")
    criteria = tmp_path / "promotions.yaml"
    criteria.write_text("promotions:\n  current:\n    candidate_label: x\n    criteria: []\n")
    code, output = promote_cli(
        "--once", "--criteria", str(criteria), "--config", str(trunk.config_path)
    )
    assert code == 2 and "promotions.yaml:2: promotions.current" in output
    code, output = promote_cli("--criteria", str(criteria), "--config", str(trunk.config_path))
    assert code == 2 and "exactly one of --once and --loop" in output


COMPONENT_CRITERIA = b"""\
components:
  common:
    current-passed-ci:
      candidate_label: ci-testing
      criteria: [common-job]
    ci-testing:
      candidate_label: consistent
      criteria: []
"""


def test_component_targets_move_component_labels_and_the_aggregate(built_with_components):
    trunk, config, _ = built_with_components  # after its first cycle, example-broken failed
    criteria = parse_criteria(COMPONENT_CRITERIA, Path("promotions.yaml"))
    db = Database(config.database_url)
    try:
        (decision, waiting) = evaluate(config, db, criteria)
        assert decision.promoted and not waiting.promoted
        assert waiting.explanation.candidates[0].missing == ("common-job",)
        assert decision.chosen is not None
        add_vote(db, decision.chosen.id, "common-job")
        decisions = evaluate(config, db, criteria)
        assert [d.promoted for d in decisions] == [False, True]
        with db.reader() as session:
            promotions = session.scalars(select(Promotion).order_by(Promotion.id)).all()
    finally:
        db.close()
    component_dir = trunk.repos / "component" / "common"
    for label in ("ci-testing", "current-passed-ci"):
        link = component_dir / label
        assert link.is_symlink()
        assert link.resolve() == (component_dir / "consistent").resolve()
        # The aggregate of the label is rebuilt and its hash stored with the promotion.
        assert (trunk.repos / label / "delorean.repo").exists()
    assert [(p.promotion_name, p.component) for p in promotions] == [
        ("ci-testing", "common"),
        ("current-passed-ci", "common"),
    ]
    assert promotions[1].aggregate_hash == published_hash(
        trunk.repos, "current-passed-ci", "delorean"
    )


def test_loop_evaluates_until_sigterm(tmp_path):
    trunk = fresh_trunk(tmp_path / "dist")
    criteria = tmp_path / "promotions.yaml"
    criteria.write_text(CRITERIA)
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    code, output = promote_cli(
        "--loop",
        "--interval",
        "0.1",
        "--criteria",
        str(criteria),
        "--config",
        str(trunk.config_path),
    )
    timer.join()
    assert code == 0, output
    assert output.count("ci-testing <- consistent (now (not set)): no candidate") >= 2


def aggregate_criteria(components: list[str]) -> bytes:
    per_component = "".join(
        f"  {c}:\n    ci-testing:\n      candidate_label: consistent\n      criteria: []\n"
        for c in components
    )
    return (
        "promotions:\n  current-passed-ci:\n    candidate_label: ci-testing\n"
        f"    criteria: [integration]\ncomponents:\n{per_component}"
    ).encode()


def add_aggregate_vote(db: Database, aggregate_hash: str, job: str, success: bool = True) -> None:
    with db.transaction() as session:
        session.add(CIVoteAggregate(ref_hash=aggregate_hash, **_vote_columns(job, success)))


def test_aggregate_target_promotes_the_voted_aggregate_of_its_candidate_label(
    built_with_components,
):
    trunk, config, components = built_with_components
    assert len(components) >= 2, components
    criteria = parse_criteria(aggregate_criteria(components), Path("promotions.yaml"))
    db = Database(config.database_url)
    try:
        decisions = evaluate(config, db, criteria)
        *component_decisions, aggregate_decision = decisions
        assert all(d.promoted for d in component_decisions)
        assert aggregate_decision.target.key == "current-passed-ci"
        assert not aggregate_decision.promoted and aggregate_decision.error is None
        # One candidate per component move: the aggregate with the first component only,
        # then with both; the newest first.
        candidates = aggregate_decision.explanation.candidates
        assert [c.missing for c in candidates] == [("integration",)] * len(components)
        with db.reader() as session:
            rows_ = session.scalars(
                select(Promotion).where(Promotion.promotion_name == "ci-testing")
            ).all()
        full = published_hash(trunk.repos, "ci-testing", "delorean")
        assert candidates[0].key == full == rows_[-1].aggregate_hash
        partial = rows_[0].aggregate_hash
        assert partial is not None and partial != full

        # The older aggregate passes first: it is promoted (the newest passing candidate).
        add_aggregate_vote(db, partial, "integration")
        (decision,) = [d for d in evaluate(config, db, criteria) if d.target.component is None]
        assert decision.promoted, decision
        assert published_hash(trunk.repos, "current-passed-ci", "delorean") == partial

        # A failed vote on the full one is not enough; a later success is.
        add_aggregate_vote(db, full, "integration", success=False)
        (decision,) = [d for d in evaluate(config, db, criteria) if d.target.component is None]
        assert not decision.promoted
        add_aggregate_vote(db, full, "integration")
        (decision,) = [d for d in evaluate(config, db, criteria) if d.target.component is None]
        assert decision.promoted and decision.explanation.chosen is not None
        assert decision.explanation.chosen.key == full
        assert published_hash(trunk.repos, "current-passed-ci", "delorean") == full
        # The former aggregate is kept as previous-<target>, component by component.
        assert published_hash(trunk.repos, "previous-current-passed-ci", "delorean") == partial
        for component in components:
            folder = trunk.repos / "component" / component
            assert (folder / "current-passed-ci").resolve() == (folder / "ci-testing").resolve()

        # Nothing newer: a new evaluation promotes nothing, and says the incumbent is `full`.
        (decision,) = [d for d in evaluate(config, db, criteria) if d.target.component is None]
        assert not decision.promoted
        assert decision.explanation.incumbent is not None
        assert decision.explanation.incumbent.key == full
    finally:
        db.close()


def test_aggregate_target_from_consistent_is_refused_with_a_reason(built_with_components):
    _, config, _ = built_with_components
    text = b"promotions:\n  ci-testing:\n    candidate_label: consistent\n    criteria: []\n"
    criteria = parse_criteria(text, Path("promotions.yaml"))
    db = Database(config.database_url)
    try:
        (decision,) = evaluate(config, db, criteria)
    finally:
        db.close()
    assert not decision.promoted
    assert decision.error is not None and "promote components to a label first" in decision.error


def test_an_aggregate_vote_through_the_api_promotes_the_aggregate(built_with_components, tmp_path):
    trunk, config, components = built_with_components
    criteria_file = tmp_path / "promotions.yaml"
    criteria_file.write_bytes(aggregate_criteria(components))
    config = config.model_copy(update={"promotion_criteria": criteria_file})
    db = Database(config.database_url)
    create_user(db, "ci", "ci-secret", ["admin"])
    try:
        evaluate(config, db, parse_criteria(criteria_file.read_bytes(), criteria_file))
        full = published_hash(trunk.repos, "ci-testing", "delorean")
        assert full is not None
        with TestClient(create_app(config, db)) as client:
            auth = ("ci", "ci-secret")
            status = client.get("/api/v2/promotion-status", params={"target": "current-passed-ci"})
            (target,) = status.json()
            assert target["candidates"][0] == {
                "key": full,
                "verdict": "missing-jobs",
                "passed": [],
                "missing": ["integration"],
                "alternatives_used": {},
            }
            vote = {"job_id": "integration", "url": "http://ci/x", "timestamp": 2_000_000_000}
            answer = client.post(
                "/api/report_result",
                json={**vote, "success": "true", "aggregate_hash": full},
                auth=auth,
            )
            assert answer.status_code == 201, answer.text
            # The evaluation after the vote promoted it before the next request.
            promoted = client.get("/api/promotions", params={"promote_name": "current-passed-ci"})
            assert {p["aggregate_hash"] for p in promoted.json()} == {full}
            assert {p["component"] for p in promoted.json()} == set(components)
    finally:
        db.close()
    assert published_hash(trunk.repos, "current-passed-ci", "delorean") == full
