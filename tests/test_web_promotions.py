"""The dashboard's promotions pages and the CI vote pages, on the example distribution after a
real trunk run: per target the incumbent and the candidates with their jobs passed, failed and
missing shown apart, the history of promotions, and the vote pages with the dashboard's
navigation, the package names and each repository's promotions."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.support import Trunk, built_example, default_first_cycle, rows

from conveyor.api import create_app
from conveyor.assembly.builder import run_cycle
from conveyor.config import Config
from conveyor.domain.paths import repo_dir
from conveyor.promote.criteria import load_criteria
from conveyor.promote.engine import evaluate
from conveyor.store.database import Database
from conveyor.store.models import CIVote, CIVoteAggregate
from conveyor.trunk.cycle import CycleOptions

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("rpmbuild") is None, reason="rpmbuild is not installed"),
]

CRITERIA = """\
promotions:
  ci-testing:
    candidate_label: current
    criteria: []
  current-passed-ci:
    candidate_label: current
    criteria: [tempest-full, packstack-scenario001, unit-tests]
    alternative_criteria:
      packstack-scenario001: [packstack-scenario001-internal]
"""
NAV = ('href="/"', 'href="/promotions"', 'href="/buildsys"', 'href="/static/web/dashboard.css"')


@dataclass(frozen=True)
class Built:
    trunk: Trunk
    config: Config
    client: TestClient
    newest: tuple[int, str, str, str]  # id, commit hash, distro hash, package
    older: tuple[int, str, str, str]  # the second newest successful build
    promoted: tuple[int, str, str, str]  # what ci-testing points at


def _vote(db: Database, commit_id: int, job: str, success: bool, **extra: object) -> None:
    with db.transaction() as session:
        session.add(
            CIVote(
                commit_id=commit_id,
                ci_name=job,
                ci_url=f"https://ci.example.org/{job}",
                ci_vote=success,
                ci_in_progress=bool(extra.get("in_progress", False)),
                timestamp=int(extra.get("timestamp", 2_000_000_000)),  # type: ignore[call-overload]
                notes="",
            )
        )


@pytest.fixture(scope="module")
def built() -> Iterator[Built]:
    """The example after its first trunk run (example-broken failed); criteria on `current`;
    ci-testing promoted; votes on the two newest repositories."""
    with built_example("default", default_first_cycle).changed() as trunk:
        criteria = trunk.root / "promotions.yaml"
        criteria.write_text(CRITERIA)
        config = trunk.config(promotion_criteria=criteria)
        successes = rows(
            trunk.db,
            "select id, commit_hash, distro_hash, project_name from commits "
            "where status = 'SUCCESS' order by id desc",
        )
        newest, older = successes[0], successes[1]
        db = Database(config.database_url)
        try:
            decisions = evaluate(config, db, load_criteria(criteria))
            assert [d.promoted for d in decisions] == [True, False], decisions
            _vote(db, newest[0], "tempest-full", True)
            _vote(db, newest[0], "packstack-scenario001", False)
            _vote(db, newest[0], "unit-tests", True, in_progress=True)
            _vote(db, older[0], "tempest-full", True)
            _vote(db, older[0], "packstack-scenario001", False, timestamp=1_999_999_000)
            _vote(db, older[0], "packstack-scenario001-internal", True)
            _vote(db, older[0], "unit-tests", True)
        finally:
            db.close()
        with TestClient(create_app(config)) as client:
            yield Built(trunk, config, client, newest, older, newest)


def _row_of(html: str, text: str) -> str:
    """The table row holding `text`."""
    for row in re.findall(r"<tr[^>]*>.*?</tr>", html, flags=re.DOTALL):
        if text in row:
            return row
    raise AssertionError(f"no row with {text!r}")


def _cell_texts(row: str) -> list[str]:
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.DOTALL)
    return [re.sub(r"<[^>]+>", "", c).strip() for c in cells]


def test_targets_show_jobs_passed_failed_and_missing_apart(built: Built) -> None:
    answer = built.client.get("/promotions")
    assert answer.status_code == 200, answer.text
    html = answer.text
    assert answer.headers["content-security-policy"].startswith("default-src 'self'")
    for link in NAV[:3]:
        assert link in html
    # The target that waits: its newest candidate passed one job, failed one, misses one.
    newest_dir = Path(repo_dir(built.newest[1], built.newest[2])).name
    older_dir = Path(repo_dir(built.older[1], built.older[2])).name
    section = html.split('id="target-current-passed-ci"')[1].split("</section>")[0]
    cells = _cell_texts(_row_of(section, newest_dir))
    assert cells[1] == built.newest[3]  # the package whose build made the repository
    assert cells[3] == "missing-jobs"
    assert cells[4] == "tempest-full"  # passed
    assert cells[5] == "packstack-scenario001"  # failed: not "missing"
    assert cells[6] == "unit-tests (running)"  # missing, a vote in progress
    older = _row_of(section, older_dir)
    assert 'class="promote"' in older
    assert "packstack-scenario001 (by packstack-scenario001-internal)" in _cell_texts(older)[4]
    assert f"would promote {older_dir}" in section
    vote_link = f"/api/civotes_detail.html?commit_hash={built.newest[1]}&amp;distro_hash="
    assert vote_link + built.newest[2] in section
    assert f'href="/repos/{repo_dir(built.newest[1], built.newest[2])}/"' in section
    # The target promoted: where it points, since when.
    head = html.split('id="target-ci-testing"')[1].split("</section>")[0]
    assert f'Points at <span class="hash">{newest_dir}</span>' in head
    assert " since 20" in head and "ago" in head
    assert "nothing newer to promote" in head


def test_history_of_promotions(built: Built) -> None:
    html = built.client.get("/promotions").text
    history = html.split('id="history"')[1]
    row = _row_of(history, ">ci-testing<")
    assert built.newest[3] in row and built.newest[1][:12] in row
    assert "civotes_detail.html?commit_hash=" in row


def test_one_target_page_and_unknown_targets(built: Built) -> None:
    answer = built.client.get("/promotions/current-passed-ci")
    assert answer.status_code == 200
    html = answer.text
    assert "Promotion target current-passed-ci" in html
    # Every candidate of `current` (the example's successful builds), not ten.
    successes = rows(built.trunk.db, "select count(*) from commits where status = 'SUCCESS'")
    assert html.count("missing-jobs") + html.count(">promote<") >= 2
    assert html.count('<tr class="') >= successes[0][0]
    assert "History of current-passed-ci" in html
    missing = built.client.get("/promotions/nope")
    assert missing.status_code == 404 and 'href="/promotions"' in missing.text
    assert "No promotion target nope" in missing.text
    hostile = built.client.get("/promotions/<img src=x onerror=alert(1)>")
    assert hostile.status_code == 404
    assert "<img" not in hostile.text and "&lt;img src=x onerror=alert(1)&gt;" in hostile.text


def test_hostile_query_strings_are_escaped(built: Built) -> None:
    answer = built.client.get("/promotions", params={"offset": "<x>", "q": '"><script>x</script>'})
    assert answer.status_code == 200
    assert "<script>x" not in answer.text and "&lt;script&gt;x" in answer.text
    assert built.client.get("/promotions", params={"offset": "99999999999"}).status_code == 200


def test_without_criteria_the_page_says_how_to_configure_them(built: Built) -> None:
    config = built.config.model_copy(update={"promotion_criteria": None})
    with TestClient(create_app(config)) as client:
        answer = client.get("/promotions")
        assert answer.status_code == 200
        assert "No promotion criteria configured" in answer.text
        assert 'promotion_criteria = "promotions.yaml"' in answer.text
        assert ">ci-testing<" in answer.text  # the history is still there
        assert client.get("/promotions/ci-testing").status_code == 404


def test_unusable_criteria_are_reported(built: Built, tmp_path: Path) -> None:
    broken = tmp_path / "promotions.yaml"
    broken.write_text("promotions:\n  current:\n    candidate_label: x\n    criteria: []\n")
    config = built.config.model_copy(update={"promotion_criteria": broken})
    with TestClient(create_app(config)) as client:
        answer = client.get("/promotions")
        assert answer.status_code == 500
        assert "cannot be used" in answer.text and "promotions.current" in answer.text


# -- the CI vote pages -------------------------------------------------------------------------


def test_vote_pages_have_the_navigation_package_names_and_promotions(built: Built) -> None:
    answer = built.client.get("/api/civotes.html")
    assert answer.status_code == 200
    html = answer.text
    for link in NAV:
        assert link in html
    assert "<style>" not in html and "style=" not in html  # the pages' policy forbids inline
    assert answer.headers["content-security-policy"].startswith("default-src 'self'")
    newest = _cell_texts(_row_of(html, built.newest[1]))
    assert built.newest[3] in newest  # the package name
    assert any("ci-testing" in cell for cell in newest)  # promoted there
    older = _cell_texts(_row_of(html, built.older[1]))
    assert built.older[3] in older and not any("ci-testing" in c for c in older)

    detail = built.client.get(
        "/api/civotes_detail.html",
        params={"commit_hash": built.newest[1], "distro_hash": built.newest[2]},
    )
    assert detail.status_code == 200
    text = detail.text
    for link in NAV:
        assert link in text
    assert built.newest[3] in text
    assert "Promotions of this repository" in text and "ci-testing" in text
    assert f'href="/repos/{repo_dir(built.newest[1], built.newest[2])}/"' in text
    assert 'href="/promotions/ci-testing"' in text
    by_job = built.client.get("/api/civotes_detail.html", params={"ci_name": "tempest-full"})
    assert by_job.status_code == 200 and built.older[3] in by_job.text
    assert built.client.get("/api/civotes_agg.html").status_code == 200
    assert built.client.get("/api/civotes_detail.html").status_code == 400


def test_vote_pages_escape_hostile_parameters(built: Built) -> None:
    answer = built.client.get(
        "/api/civotes_detail.html", params={"ci_name": "<script>x</script>", "q": "<b>"}
    )
    assert answer.status_code == 200
    assert "<script>x" not in answer.text and "<b>" not in answer.text


# -- timings -----------------------------------------------------------------------------------


# -- aggregate targets (components on) ---------------------------------------------------------

COMPONENT_CRITERIA = """\
components:
  common:
    ci-testing:
      candidate_label: consistent
      criteria: []
promotions:
  integration:
    candidate_label: ci-testing
    criteria: [agg-job, other-job]
"""


def _components_first_cycle(trunk: Trunk) -> None:
    # As tests/test_promote_trunk.py's (the same key, the same cycle): example-broken fails.
    assert run_cycle(trunk.config(use_components=True), CycleOptions()).exit_code == 1


def test_an_aggregate_target_shows_aggregate_candidates(tmp_path: Path) -> None:
    with built_example("components", _components_first_cycle).changed() as trunk:
        criteria = tmp_path / "promotions.yaml"
        criteria.write_text(COMPONENT_CRITERIA)
        config = trunk.config(use_components=True, promotion_criteria=criteria)
        db = Database(config.database_url)
        try:
            (component, aggregate) = evaluate(config, db, load_criteria(criteria))
            assert component.promoted and not aggregate.promoted
            (candidate,) = aggregate.explanation.candidates
            with db.transaction() as session:
                session.add(
                    CIVoteAggregate(
                        ref_hash=candidate.key,
                        ci_name="agg-job",
                        ci_url="https://ci.example.org/agg",
                        ci_vote=False,
                        ci_in_progress=False,
                        timestamp=2_000_000_000,
                        notes="",
                    )
                )
        finally:
            db.close()
        with TestClient(create_app(config)) as client:
            html = client.get("/promotions/integration").text
            cells = _cell_texts(_row_of(html, candidate.key))
            assert cells[1] == "aggregate" and cells[3] == "missing-jobs"
            assert cells[5] == "agg-job" and cells[6] == "other-job"  # failed, missing
            assert f"/api/civotes_agg_detail.html?ref_hash={candidate.key}" in html
            component_page = client.get("/promotions/ci-testing").text
            assert "common/ci-testing" in component_page
            agg = client.get("/api/civotes_agg_detail.html", params={"ref_hash": candidate.key})
            assert "Promotions of this aggregate" in agg.text and "ci-testing" in agg.text
