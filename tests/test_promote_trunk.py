"""The promotion engine end to end on the example distribution (real rpmbuild): a chain
`consistent` -> `ci-testing` -> `current-passed-ci` promoted in one evaluation, through the
CLI, and per-component targets with the aggregate rebuilt."""

from __future__ import annotations

import os
import shutil
import signal
import threading
from pathlib import Path

import pytest
import typer
from sqlalchemy import select
from tests.support import Trunk, example, rows
from typer.testing import CliRunner

from conveyor.cli.promote import register
from conveyor.promote.criteria import parse_criteria
from conveyor.promote.engine import evaluate
from conveyor.publish.aggregate import published_hash
from conveyor.store.database import Database
from conveyor.store.models import CIVote, Promotion
from conveyor.trunk.cycle import CycleOptions, run_cycle

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


def add_vote(db: Database, commit_id: int, job: str, success: bool = True) -> None:
    with db.transaction() as session:
        session.add(
            CIVote(
                commit_id=commit_id,
                ci_name=job,
                ci_url=f"https://ci.example.org/{job}",
                ci_vote=success,
                ci_in_progress=False,
                timestamp=2_000_000_000,
                notes="",
            )
        )


def test_chain_promoted_in_one_evaluation_through_the_cli(tmp_path):
    trunk = Trunk(tmp_path / "dist")
    config = trunk.config()
    assert run_cycle(config, CycleOptions()).exit_code == 1  # example-broken fails
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
    trunk = Trunk(tmp_path / "dist")
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


def test_component_targets_move_component_labels_and_the_aggregate(tmp_path):
    trunk = Trunk(tmp_path / "dist")
    config = trunk.config(use_components=True)
    assert run_cycle(config, CycleOptions()).exit_code == 1
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
    trunk = Trunk(tmp_path / "dist")
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
