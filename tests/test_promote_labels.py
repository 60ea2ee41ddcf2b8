"""Moving promotion labels: compare-and-swap, `previous-<label>`, refusals; and the engine on
a database of hand-made commits (no RPM build)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.postgres_server import database_url, postgres  # noqa: F401 (fixtures)

from conveyor.config import Config
from conveyor.domain.names import InvalidName
from conveyor.domain.paths import commit_relpath
from conveyor.domain.promotion import Verdict
from conveyor.promote.criteria import parse_criteria
from conveyor.promote.engine import AfterVoteEvaluator, evaluate, evaluate_after_vote, explain
from conveyor.promote.labels import (
    CommitPurged,
    PromotionConflict,
    PromotionRefused,
    incumbent_of,
    promote_label,
)
from conveyor.store.database import Database
from conveyor.store.models import FLAG_PURGED, CIVote, Commit, Promotion


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> tuple[Config, Database]:  # noqa: F811
    """A builder on SQLite, then on PostgreSQL."""
    config = Config(datadir=tmp_path / "data", database=database_url)
    db = Database(config.database_url)
    yield config, db
    db.close()


def add_commit(
    config: Config,
    db: Database,
    n: int,
    status: str = "SUCCESS",
    flags: int = 0,
    component: str | None = None,
) -> Commit:
    commit = Commit(
        project_name=f"pkg{n}",
        commit_hash=f"{n:040x}",
        distro_hash=f"{n + 1000:040x}",
        status=status,
        flags=flags,
        component=component,
        dt_build=1000 + n,
        type="rpm",
    )
    with db.transaction() as session:
        session.add(commit)
    directory = config.repos_dir.joinpath(*commit_relpath(commit).parts)
    directory.mkdir(parents=True)
    (directory / "delorean.repo").write_text(f"[pkg{n}]\n")
    return commit


def vote(db: Database, commit: Commit, job: str, success: bool = True, ts: int = 1) -> None:
    with db.transaction() as session:
        session.add(
            CIVote(
                commit_id=commit.id,
                ci_name=job,
                ci_url="http://ci",
                ci_vote=success,
                ci_in_progress=False,
                timestamp=ts,
                notes="",
            )
        )


def link(config: Config, name: str) -> str:
    return os.readlink(config.repos_dir / name)


def test_promote_writes_row_and_relative_link(env):
    config, db = env
    commit = add_commit(config, db, 1)
    promotion = promote_label(config, db, commit, "ci-testing", timestamp=42)
    assert promotion.promotion_name == "ci-testing"
    assert promotion.commit_id == commit.id
    assert promotion.timestamp == 42
    target = link(config, "ci-testing")
    assert not os.path.isabs(target)
    assert (config.repos_dir / "ci-testing").resolve() == (
        config.repos_dir.joinpath(*commit_relpath(commit).parts).resolve()
    )
    assert not (config.repos_dir / "previous-ci-testing").exists()


def test_the_incumbent_moves_to_previous(env):
    config, db = env
    first, second = add_commit(config, db, 1), add_commit(config, db, 2)
    promote_label(config, db, first, "ci-testing")
    promote_label(config, db, second, "ci-testing")
    assert link(config, "ci-testing").endswith(commit_relpath(second).name)
    assert link(config, "previous-ci-testing").endswith(commit_relpath(first).name)
    with db.reader() as session:
        names = [
            (p.promotion_name, p.commit_id)
            for p in session.scalars(select(Promotion).order_by(Promotion.id))
        ]
    assert names == [
        ("ci-testing", first.id),
        ("previous-ci-testing", first.id),
        ("ci-testing", second.id),
    ]
    # Promoting the incumbent again leaves previous- alone.
    promote_label(config, db, second, "ci-testing")
    assert link(config, "previous-ci-testing").endswith(commit_relpath(first).name)


@pytest.mark.parametrize(
    "name", ["current", "consistent", "a/b", "../x", "..", "with space", "x" * 300, "", " x"]
)
def test_bad_names_are_refused(env, name):
    config, db = env
    commit = add_commit(config, db, 1)
    with pytest.raises(InvalidName):
        promote_label(config, db, commit, name)
    assert not any(p.is_symlink() for p in config.repos_dir.iterdir())


def test_purged_failed_and_unknown_commits_are_refused(env):
    config, db = env
    purged = add_commit(config, db, 1, flags=FLAG_PURGED)
    failed = add_commit(config, db, 2, status="FAILED")
    with pytest.raises(CommitPurged):
        promote_label(config, db, purged, "ci-testing")
    with pytest.raises(PromotionRefused, match="FAILED"):
        promote_label(config, db, failed, "ci-testing")
    with pytest.raises(PromotionRefused, match="does not exist"):
        promote_label(config, db, 999, "ci-testing")
    gone = add_commit(config, db, 3)
    config.repos_dir.joinpath(*commit_relpath(gone).parts).rename(config.repos_dir / "elsewhere")
    with pytest.raises(CommitPurged):
        promote_label(config, db, gone, "ci-testing")
    with db.reader() as session:
        assert session.scalars(select(Promotion)).all() == []
    assert not (config.repos_dir / "ci-testing").exists()


def test_a_component_must_match_the_commit(env):
    config, db = env
    commit = add_commit(config, db, 1, component="compute")
    with pytest.raises(PromotionRefused, match="component"):
        promote_label(config, db, commit, "ci-testing", component="network")


def test_compare_and_swap_refuses_a_moved_label(env):
    config, db = env
    first, second = add_commit(config, db, 1), add_commit(config, db, 2)
    with db.reader() as session:
        assert incumbent_of(session, "ci-testing", None) is None
    promote_label(config, db, first, "ci-testing", expected=None)
    with pytest.raises(PromotionConflict):
        promote_label(config, db, second, "ci-testing", expected=None)
    assert link(config, "ci-testing").endswith(commit_relpath(first).name)


def test_two_promoters_racing_for_one_label_exactly_one_wins(env):
    config, db = env
    commits = [add_commit(config, db, n) for n in range(1, 9)]
    barrier = threading.Barrier(len(commits))
    results: list[object] = []
    lock = threading.Lock()

    def promoter(commit: Commit) -> None:
        with db.reader() as session:
            seen = incumbent_of(session, "ci-testing", None)
        expected = seen.id if seen is not None else None
        barrier.wait()
        try:
            outcome: object = promote_label(config, db, commit.id, "ci-testing", expected=expected)
        except PromotionConflict as exc:
            outcome = exc
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=promoter, args=(c,)) for c in commits]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [r for r in results if isinstance(r, Promotion)]
    assert len(winners) == 1
    assert sum(isinstance(r, PromotionConflict) for r in results) == len(commits) - 1
    winner = next(c for c in commits if c.id == winners[0].commit_id)
    assert link(config, "ci-testing").endswith(commit_relpath(winner).name)
    with db.reader() as session:
        assert len(session.scalars(select(Promotion)).all()) == 1


def test_a_failing_link_move_rolls_back_row_and_links(env, monkeypatch):
    config, db = env
    first, second = add_commit(config, db, 1), add_commit(config, db, 2)
    promote_label(config, db, first, "ci-testing")
    from conveyor.publish.repostore import RepoStore

    real = RepoStore.move_label

    def flaky(self, name, relpath, base=None):  # previous- moves, then the label fails
        if name == "ci-testing":
            raise OSError("disk full")
        return real(self, name, relpath) if base is None else real(self, name, relpath, base)

    monkeypatch.setattr(RepoStore, "move_label", flaky)
    with pytest.raises(OSError, match="disk full"):
        promote_label(config, db, second, "ci-testing")
    assert not (config.repos_dir / "previous-ci-testing").exists()
    assert link(config, "ci-testing").endswith(commit_relpath(first).name)
    with db.reader() as session:
        assert len(session.scalars(select(Promotion)).all()) == 1


CRITERIA = b"""\
promotions:
  current-passed-ci:
    candidate_label: ci-testing
    criteria: [job-a, job-b]
    alternative_criteria: {job-b: [job-b-alt]}
  ci-testing:
    candidate_label: consistent
    criteria: []
"""


def consistent(db: Database, commit: Commit) -> None:
    vote(db, commit, "consistent")


def test_engine_chain_on_hand_made_commits(env):
    config, db = env
    criteria = parse_criteria(CRITERIA, Path("promotions.yaml"))
    old, new = add_commit(config, db, 1), add_commit(config, db, 2)
    consistent(db, old)
    consistent(db, new)
    vote(db, new, "job-a")
    vote(db, new, "job-b-alt")
    # A dry run sees the chain (simulated) and changes nothing.
    dry = evaluate(config, db, criteria, dry_run=True)
    assert [(d.target.name, d.chosen and d.chosen.id, d.promoted) for d in dry] == [
        ("ci-testing", new.id, False),
        ("current-passed-ci", new.id, False),
    ]
    assert not (config.repos_dir / "ci-testing").exists()
    decisions = evaluate(config, db, criteria)
    assert [d.promoted for d in decisions] == [True, True]
    assert link(config, "current-passed-ci").endswith(commit_relpath(new).name)
    # Idempotent: nothing newer now.
    again = evaluate(config, db, criteria)
    assert [d.promoted for d in again] == [False, False]
    assert [c.verdict for c in again[1].explanation.candidates] == [Verdict.INCUMBENT]
    # A newer consistent commit missing a job moves ci-testing, not current-passed-ci.
    newer = add_commit(config, db, 3)
    consistent(db, newer)
    vote(db, newer, "job-a")
    vote(db, newer, "job-b", success=False)
    status = explain(config, db, criteria, "current-passed-ci")
    assert len(status) == 1
    report = status[0].explanation.candidates[0]
    assert (report.key, report.missing, report.passed) == (
        commit_relpath(newer).name,
        ("job-b",),
        ("job-a",),
    )
    decisions = evaluate_after_vote(config, db, criteria)
    assert [d.promoted for d in decisions] == [True, False]
    assert link(config, "previous-ci-testing").endswith(commit_relpath(new).name)
    # The re-vote makes it pass.
    vote(db, newer, "job-b", ts=2)
    decisions = evaluate_after_vote(config, db, criteria)
    assert [d.promoted for d in decisions] == [False, True]
    assert link(config, "current-passed-ci").endswith(commit_relpath(newer).name)
    assert link(config, "previous-current-passed-ci").endswith(commit_relpath(new).name)


def test_engine_reports_unsupported_component_targets(env):
    config, db = env
    text = b"components:\n  compute:\n    ci-testing: {candidate_label: consistent, criteria: []}\n"
    criteria = parse_criteria(text, Path("p.yaml"))
    commit = add_commit(config, db, 1, component="compute")
    consistent(db, commit)
    (decision,) = evaluate(config, db, criteria)
    assert decision.error is not None and "use_components" in decision.error
    assert not decision.promoted


def test_after_vote_evaluations_coalesce():
    evaluator = AfterVoteEvaluator()
    runs: list[int] = []
    started = threading.Event()
    release = threading.Event()

    def slow_run() -> list:
        runs.append(1)
        if len(runs) == 1:
            started.set()
            release.wait(5)
        return []

    first = threading.Thread(target=evaluator, args=(slow_run,))
    first.start()
    started.wait(5)
    # Votes arriving meanwhile return at once; the running evaluation runs once more.
    for _ in range(5):
        assert evaluator(slow_run) == []
    release.set()
    first.join()
    assert len(runs) == 2
