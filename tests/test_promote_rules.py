"""The promotion rules without a disk or a database: criteria files and the decision."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.domain.promotion import (
    Candidate,
    Incumbent,
    Verdict,
    Vote,
    check_jobs,
    decide,
    latest_results,
)
from conveyor.promote.criteria import (
    CriteriaError,
    PromotionTarget,
    evaluation_order,
    load_criteria,
    parse_criteria,
)

PATH = Path("promotions.yaml")


def ok(job: str, ts: int = 1, vid: int = 0) -> Vote:
    return Vote(job, True, False, ts, vid)


def ko(job: str, ts: int = 1, vid: int = 0) -> Vote:
    return Vote(job, False, False, ts, vid)


# -- decision ------------------------------------------------------------------------------


def test_newest_fully_voted_candidate_wins_and_older_are_superseded():
    candidates = [
        Candidate("c1", 1, (ok("a"), ok("b"))),
        Candidate("c3", 3, (ok("a"),)),
        Candidate("c2", 2, (ok("a"), ok("b"))),
    ]
    explanation = decide("t", ["a", "b"], {}, None, candidates)
    assert [(r.key, r.verdict) for r in explanation.candidates] == [
        ("c3", Verdict.MISSING_JOBS),
        ("c2", Verdict.PROMOTE),
        ("c1", Verdict.SUPERSEDED),
    ]
    assert explanation.candidates[0].missing == ("b",)
    assert explanation.candidates[0].passed == ("a",)
    assert explanation.chosen is not None and explanation.chosen.key == "c2"


def test_candidates_not_newer_than_the_incumbent_are_ignored():
    candidates = [Candidate("c1", 1, (ok("a"),)), Candidate("c2", 2, (ok("a"),))]
    explanation = decide("t", ["a"], {}, Incumbent("c2", 2), candidates)
    assert [r.verdict for r in explanation.candidates] == [Verdict.INCUMBENT, Verdict.NOT_NEWER]
    assert explanation.chosen is None


def test_an_incumbent_not_among_the_candidates_still_bounds_them():
    candidates = [Candidate("c4", 4, (ok("a"),)), Candidate("c2", 2, (ok("a"),))]
    explanation = decide("t", ["a"], {}, Incumbent("c3", 3), candidates)
    assert [r.verdict for r in explanation.candidates] == [Verdict.PROMOTE, Verdict.NOT_NEWER]


def test_alternative_criteria_satisfy_a_job():
    votes = (ok("a-internal"), ok("b"))
    explanation = decide("t", ["a", "b"], {"a": ["a-internal"]}, None, [Candidate("c", 1, votes)])
    report = explanation.candidates[0]
    assert report.verdict is Verdict.PROMOTE
    assert report.alternatives_used == {"a": "a-internal"}
    # An alternative of another job does not count.
    explanation = decide("t", ["a", "b"], {"b": ["a-internal"]}, None, [Candidate("c", 1, votes)])
    assert explanation.candidates[0].missing == ("a",)


def test_in_progress_votes_do_not_count():
    assert latest_results([Vote("a", True, True, 5)]) == {}
    # A newer in-progress vote does not hide a finished one.
    assert latest_results([ok("a", 1), Vote("a", False, True, 9)]) == {"a": True}


def test_a_revote_overrides_the_earlier_vote():
    assert latest_results([ok("a", 1), ko("a", 2)]) == {"a": False}
    assert latest_results([ko("a", 1), ok("a", 2)]) == {"a": True}
    # Same second: the later row wins.
    assert latest_results([ko("a", 1, vid=2), ok("a", 1, vid=1)]) == {"a": False}
    explanation = decide("t", ["a"], {}, None, [Candidate("c", 1, (ok("a", 1), ko("a", 2)))])
    assert explanation.candidates[0].verdict is Verdict.MISSING_JOBS


def test_purged_candidates_are_never_chosen():
    candidates = [Candidate("c2", 2, (ok("a"),), purged=True), Candidate("c1", 1, (ok("a"),))]
    explanation = decide("t", ["a"], {}, None, candidates)
    assert [r.verdict for r in explanation.candidates] == [Verdict.PURGED, Verdict.PROMOTE]


def test_no_criteria_promotes_the_newest_candidate():
    explanation = decide("t", [], {}, Incumbent("c1", 1), [Candidate("c2", 2), Candidate("c1", 1)])
    assert explanation.chosen is not None and explanation.chosen.key == "c2"


def test_a_candidate_listed_twice_is_reported_once():
    explanation = decide("t", [], {}, None, [Candidate("c", 1), Candidate("c", 1)])
    assert len(explanation.candidates) == 1


jobs = st.sampled_from(["a", "b", "c", "d"])
votes = st.builds(Vote, jobs, st.booleans(), st.booleans(), st.integers(0, 5), st.integers(0, 1000))
candidate_lists = st.lists(
    st.builds(
        Candidate,
        st.text("xyz", min_size=1, max_size=3),
        st.integers(0, 20),
        st.lists(votes, max_size=8).map(tuple),
        st.booleans(),
    ),
    max_size=8,
)


@given(
    criteria=st.lists(jobs, unique=True, max_size=3),
    candidates=candidate_lists,
    incumbent=st.none()
    | st.builds(Incumbent, st.text("xyz", min_size=1, max_size=3), st.integers(0, 20)),
)
def test_the_choice_is_the_newest_eligible_candidate(criteria, candidates, incumbent):
    explanation = decide("t", criteria, {}, incumbent, candidates)
    chosen = [r for r in explanation.candidates if r.verdict is Verdict.PROMOTE]
    assert len(chosen) <= 1
    orders = [r.order for r in explanation.candidates]
    assert orders == sorted(orders, reverse=True)

    def eligible(c: Candidate) -> bool:
        newer = incumbent is None or (c.key != incumbent.key and c.order > incumbent.order)
        return newer and not c.purged and not check_jobs(criteria, {}, c.votes)[1]

    first_of_key: dict[str, Candidate] = {}
    for c in sorted(candidates, key=lambda c: c.order, reverse=True):
        first_of_key.setdefault(c.key, c)
    expected = [c for c in first_of_key.values() if eligible(c)]
    if expected:
        assert chosen and chosen[0].key == expected[0].key
        assert not chosen[0].missing
    else:
        assert not chosen
    for report in explanation.candidates:
        assert set(report.passed) | set(report.missing) == set(criteria)
        assert not set(report.passed) & set(report.missing)


@given(st.lists(votes, max_size=10), st.lists(jobs, unique=True, max_size=4))
def test_alternatives_only_add_passes(vote_list, criteria):
    plain = set(check_jobs(criteria, {}, vote_list)[0])
    with_alts = set(check_jobs(criteria, {j: ["d"] for j in criteria}, vote_list)[0])
    assert plain <= with_alts


# -- criteria files ------------------------------------------------------------------------

GOOD = b"""\
version: 1
latest_hashes_count: 20
promotions:
  current-passed-ci:
    candidate_label: ci-testing
    criteria: [job-a, job-b]
    alternative_criteria:
      job-a: [job-a-internal]
  ci-testing:
    candidate_label: consistent
    criteria: []
components:
  compute:
    component-ci-testing:
      candidate_label: consistent
      criteria: [compute-job]
"""


def test_a_good_file_in_rdo_shape_with_components():
    criteria = parse_criteria(GOOD, PATH)
    assert criteria.latest_hashes_count == 20
    # Chained: ci-testing is evaluated before the target that draws from it.
    assert [t.key for t in criteria.targets] == [
        "ci-testing",
        "current-passed-ci",
        "compute/component-ci-testing",
    ]
    target = criteria.target("current-passed-ci")
    assert target == PromotionTarget(
        "current-passed-ci", "ci-testing", ("job-a", "job-b"), {"job-a": ("job-a-internal",)}
    )
    compute = criteria.target("component-ci-testing", "compute")
    assert compute is not None and compute.component == "compute"
    assert compute.previous == "previous-component-ci-testing"


def test_load_from_disk(tmp_path):
    path = tmp_path / "promotions.yaml"
    path.write_bytes(GOOD)
    assert len(load_criteria(path).targets) == 3
    with pytest.raises(CriteriaError, match="cannot read"):
        load_criteria(tmp_path / "missing.yaml")


_TARGET = b"promotions:\n  x: {candidate_label: c, criteria: []}\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"promotions: {}\n", "promotions: no target defined"),
        (b"promotion: {}\n", r"promotions.yaml:1: promotion: unknown key"),
        (b"version: 2\npromotions: {}\n", "version: unsupported version 2"),
        (b"latest_hashes_count: 0\n", "latest_hashes_count: must be"),
        (
            b"promotions:\n  x:\n    candidate_label: consistent\n",
            r"promotions.yaml:2: promotions.x.criteria: required",
        ),
        (
            b"promotions:\n  x:\n    criteria: []\n",
            r"promotions.x.candidate_label: required",
        ),
        (
            b"promotions:\n  x:\n    candidate_label: c\n    criteria: []\n    extra: 1\n",
            r"promotions.x.extra: unknown key",
        ),
        (
            b"promotions:\n  current:\n    candidate_label: c\n    criteria: []\n",
            r"promotions.current: label 'current' is moved by the builder",
        ),
        (
            b"promotions:\n  ../x:\n    candidate_label: c\n    criteria: []\n",
            r"promotions.../x: invalid label",
        ),
        (
            b"promotions:\n  x:\n    candidate_label: a b\n    criteria: []\n",
            r"promotions.x.candidate_label: invalid label",
        ),
        (
            b"promotions:\n  x:\n    candidate_label: c\n    criteria: job\n",
            r"promotions.x.criteria: must be a list",
        ),
        (
            b"promotions:\n  x:\n    candidate_label: c\n    criteria: [a, a]\n",
            r"listed twice",
        ),
        (
            b"promotions:\n  x:\n    candidate_label: c\n    criteria: [a]\n"
            b"    alternative_criteria: {b: [c]}\n",
            r"promotions.x.alternative_criteria.b: not one of the target's criteria",
        ),
        (
            b"promotions:\n  x:\n    candidate_label: y\n    criteria: []\n"
            b"  y:\n    candidate_label: x\n    criteria: []\n",
            r"cycle: x -> y -> x",
        ),
        (
            b"promotions:\n  x:\n    candidate_label: x\n    criteria: []\n",
            r"its own candidate",
        ),
        (
            b"components:\n  a/b:\n    x: {candidate_label: c, criteria: []}\n",
            r"components.a/b: invalid component",
        ),
        (b"promotions: [a]\n", r"promotions: must map target labels"),
        (_TARGET + b"release: [a]\n", r"release: must be a mapping"),
        (_TARGET + b"release: {jobs: [a]}\n", r"release.jobs: unknown key"),
        (_TARGET + b"release: {}\n", r"release.criteria: required"),
        (
            _TARGET + b"release: {criteria: [a], alternative_criteria: {b: [c]}}\n",
            r"release.alternative_criteria.b: not one of the release's criteria",
        ),
        (b"a: &a [*a]\n", r"promotions.yaml"),
        (b"promotions: {x: {candidate_label: c, criteria: []}\n", r"promotions.yaml"),
    ],
)
def test_bad_files_are_refused_naming_file_and_key(text, message):
    with pytest.raises(CriteriaError, match=message):
        parse_criteria(text, PATH)


def test_a_target_name_too_long_for_its_previous_label_is_refused():
    name = "x" * 250
    text = f"promotions:\n  {name}:\n    candidate_label: c\n    criteria: []\n".encode()
    with pytest.raises(CriteriaError, match="previous-"):
        parse_criteria(text, PATH)


def test_evaluation_order_keeps_file_order_otherwise():
    targets = [
        PromotionTarget("b", "consistent"),
        PromotionTarget("a", "consistent"),
        PromotionTarget("c", "b"),
    ]
    assert [t.name for t in evaluation_order(targets)] == ["b", "a", "c"]


def test_a_trunk_target_comes_after_the_component_targets_it_aggregates():
    targets = [
        PromotionTarget("current-passed-ci", "ci-testing"),
        PromotionTarget("ci-testing", "consistent", component="compute"),
        PromotionTarget("ci-testing", "consistent", component="network"),
    ]
    assert [t.key for t in evaluation_order(targets)] == [
        "compute/ci-testing",
        "network/ci-testing",
        "current-passed-ci",
    ]


def test_release_criteria_are_the_jobs_ga_waits_for_on_the_testing_tag():
    text = _TARGET + b"release:\n  criteria: [a, b]\n  alternative_criteria: {a: [a2]}\n"
    release = parse_criteria(text, PATH).release
    assert release is not None
    assert (release.criteria, dict(release.alternative_criteria)) == (("a", "b"), {"a": ("a2",)})
    assert parse_criteria(_TARGET, PATH).release is None
