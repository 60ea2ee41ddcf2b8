"""The rules of a bisection (conveyor.domain.bisect), against a model CI: one culprit at any
position is named within the step bound; two culprits, a flaky job or contradicting verdicts
never name a single wrong one."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor.domain.bisect import (
    Change,
    Content,
    Outcome,
    Plan,
    Progress,
    StepKind,
    content_key,
    decide,
    step_bound,
)

Ci = Callable[[Mapping[str, str]], bool]


def _plan(count: int, builds: Mapping[int, int] | None = None) -> Plan:
    """`count` changed packages p0…; package i has `builds[i]` builds after its good one
    (the last is the bad build), named `p<i>@<n>` (n = 0 is the good build)."""
    builds = builds or {}
    good = {f"p{i}": f"p{i}@0" for i in range(count)} | {"unchanged": "unchanged@0"}
    changes = []
    for i in range(count):
        last = builds.get(i, 1)
        between = tuple(f"p{i}@{n}" for n in range(1, last))
        changes.append(Change(f"p{i}", f"p{i}@0", f"p{i}@{last}", between))
    return Plan(good, tuple(changes))


def _breaks_at(package: str, build: int) -> Ci:
    """CI passes unless `package` is at its build `build` or later."""

    def passes(content: Mapping[str, str]) -> bool:
        found = content.get(package)
        return found is None or int(found.split("@")[1]) < build

    return passes


def _run(plan: Plan, ci: Ci, limit: int = 100) -> tuple[Progress, int]:
    verdicts: dict[Content, bool] = {}
    for steps in range(limit):
        progress = decide(plan, verdicts)
        if progress.conclusion is not None:
            return progress, steps
        assert progress.step is not None
        assert progress.step.key not in verdicts  # never asks twice
        verdicts[progress.step.key] = ci(progress.step.content)
    raise AssertionError("no conclusion")


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_one_culprit_is_named_within_the_bound(data: st.DataObject) -> None:
    count = data.draw(st.integers(1, 40), "changes")
    builds = data.draw(st.lists(st.integers(1, 12), min_size=count, max_size=count), "builds")
    plan = _plan(count, dict(enumerate(builds)))
    culprit = data.draw(st.integers(0, count - 1), "culprit")
    first_bad = data.draw(st.integers(1, builds[culprit]), "first bad build")
    progress, steps = _run(plan, _breaks_at(f"p{culprit}", first_bad))
    conclusion = progress.conclusion
    assert conclusion is not None and conclusion.outcome is Outcome.FOUND, conclusion
    assert conclusion.change == culprit
    assert conclusion.culprit == f"p{culprit}@{first_bad}"
    assert conclusion.last_good == f"p{culprit}@{first_bad - 1}"
    assert steps <= step_bound(count, builds[culprit])


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_two_culprits_are_never_one(data: st.DataObject) -> None:
    count = data.draw(st.integers(2, 40), "changes")
    first, second = sorted(data.draw(st.sets(st.integers(0, count - 1), min_size=2, max_size=2)))
    breaks = (_breaks_at(f"p{first}", 1), _breaks_at(f"p{second}", 1))
    progress, steps = _run(_plan(count), lambda content: all(ci(content) for ci in breaks))
    assert progress.conclusion is not None
    assert progress.conclusion.outcome is Outcome.MORE_THAN_ONE
    assert "more than one culprit" in progress.conclusion.reason
    assert steps <= step_bound(count) + 1  # the good set's retest


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 30), st.data())
def test_any_verdicts_end_in_bounded_steps_and_a_failing_good_set_is_flaky(
    count: int, data: st.DataObject
) -> None:
    plan = _plan(count, {0: 5})
    progress, steps = _run(plan, lambda _content: data.draw(st.booleans()))
    assert steps <= step_bound(count, 5) + 1
    conclusion = progress.conclusion
    assert conclusion is not None
    if conclusion.outcome is Outcome.FOUND:
        assert conclusion.change is not None


def test_a_job_that_always_fails_is_flaky() -> None:
    progress, steps = _run(_plan(10), lambda _content: False)
    assert progress.conclusion is not None and progress.conclusion.outcome is Outcome.FLAKY
    assert "good repository" in progress.conclusion.reason
    assert steps <= step_bound(10) + 1  # the package phase, the verification, the retest


def test_the_bad_set_passing_is_a_contradiction() -> None:
    plan = _plan(3)
    verdicts = {content_key(plan.state(3)): True}
    conclusion = decide(plan, verdicts).conclusion
    assert conclusion is not None and conclusion.outcome is Outcome.FLAKY


def test_the_steps_one_after_the_other() -> None:
    plan = _plan(4, {2: 4})
    ci = _breaks_at("p2", 3)
    verdicts: dict[Content, bool] = {}
    seen = []
    while (progress := decide(plan, verdicts)).step is not None:
        step = progress.step
        seen.append((step.kind, step.position, progress.suspects))
        verdicts[step.key] = ci(step.content)
    assert seen == [
        (StepKind.PACKAGE, 2, 4),  # S_2 passes
        (StepKind.PACKAGE, 3, 2),  # S_3 fails: p2
        (StepKind.VERIFY, 0, 1),  # everything but p2 passes
        (StepKind.COMMIT, 2, 4),  # p2@2 passes
        (StepKind.COMMIT, 3, 2),  # p2@3 fails
    ]
    assert progress.conclusion is not None
    assert (progress.conclusion.last_good, progress.conclusion.culprit) == ("p2@2", "p2@3")


def test_one_change_without_intermediate_builds_needs_no_step() -> None:
    progress, steps = _run(_plan(1), _breaks_at("p0", 1))
    assert steps == 0 and progress.conclusion is not None
    assert progress.conclusion.outcome is Outcome.FOUND and progress.conclusion.change == 0


def test_added_and_removed_packages() -> None:
    good = {"kept": "kept@0", "gone": "gone@0"}
    plan = Plan(
        good,
        (
            Change("new", None, "new@2", ("new@1",)),
            Change("gone", "gone@0", None),
        ),
    )
    progress, _ = _run(plan, lambda content: "gone" in content)
    assert progress.conclusion is not None
    assert progress.conclusion.change == 1 and progress.conclusion.culprit is None
    progress, _ = _run(plan, lambda content: content.get("new") != "new@2")
    assert progress.conclusion is not None
    assert progress.conclusion.change == 0
    assert (progress.conclusion.last_good, progress.conclusion.culprit) == ("new@1", "new@2")


@pytest.mark.parametrize(
    "changes",
    [
        (),
        (Change("a", "a@0", "a@1"), Change("a", "a@0", "a@2")),
        (Change("a", "other", "a@1"),),
        (Change("a", "a@0", "a@0"),),
    ],
)
def test_bad_plans_are_refused(changes: tuple[Change, ...]) -> None:
    with pytest.raises(ValueError):
        Plan({"a": "a@0"}, changes)


def test_the_bound() -> None:
    assert [step_bound(n) for n in (1, 2, 10, 100, 1000)] == [1, 2, 5, 8, 11]
    assert step_bound(10, 4) == 7
