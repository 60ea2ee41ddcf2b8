"""Which change broke a CI job: the rules of a bisection between a good and a bad repository.

Pure: builds are opaque keys here (the service uses their paths below repos/), repositories
are mappings of package to build, and CI's verdicts come in keyed by a repository's content.
`decide` replays the search from the plan and every verdict so far and answers the next
repository to test or the conclusion, so nothing but the verdicts needs storing, and a
bisection read twice (or by two processes) decides the same.

The search, for N changed packages in dependency order (a package before those whose new
builds require it, so a mix never holds a new build without what it needs):

* package phase: S_k is the good repository with the first k changes applied. S_0 passed and
  S_N failed (that is why the user bisects), so a binary search finds the first failing k in
  ⌈log2 N⌉ steps;
* verification: S_N without change k. If it still fails, change k is not the whole story:
  the good repository is tested again, and failing there means the job is flaky, passing
  means more than one culprit. Either way no culprit is named;
* commit phase: S_(k-1) with the culprit package at each of its builds between the good and
  the bad one (its intermediate trunk builds, oldest first): ⌈log2 m⌉ steps over m intervals
  find the first failing build, and the last passing one before it.

A verdict that contradicts the premise (the good set failing, the bad set passing) ends the
bisection as flaky, never with a culprit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

# A bisection's state, as stored: running until it concludes or is reset.
RUNNING, CONCLUDED, RESET = "running", "concluded", "reset"

__all__ = [
    "CONCLUDED",
    "RESET",
    "RUNNING",
    "Change",
    "Conclusion",
    "Content",
    "Outcome",
    "Plan",
    "Progress",
    "Step",
    "StepKind",
    "content_key",
    "decide",
    "step_bound",
]

Build = str
Content = frozenset[tuple[str, Build]]


class StepKind(StrEnum):
    PACKAGE = "package"  # S_k: the good set plus the first k changes
    VERIFY = "verify"  # the bad set without the culprit package
    RETEST = "retest"  # the good set again: flaky job or a second culprit?
    COMMIT = "commit"  # S_(k-1) plus the culprit package at one of its intermediate builds


class Outcome(StrEnum):
    FOUND = "found"
    MORE_THAN_ONE = "more-than-one-culprit"
    FLAKY = "flaky"
    UNAVAILABLE = "unavailable"  # a step's repository could not be composed (the service's)


@dataclass(frozen=True)
class Change:
    """One package's change from the good to the bad repository; None where it is absent
    (added or removed). `between`: its successful builds in between, oldest first."""

    package: str
    good: Build | None
    bad: Build | None
    between: tuple[Build, ...] = ()

    @property
    def builds(self) -> tuple[Build | None, ...]:
        return (self.good, *self.between, self.bad)


@dataclass(frozen=True)
class Plan:
    good: Mapping[str, Build]
    changes: tuple[Change, ...]

    def __post_init__(self) -> None:
        if not self.changes:
            raise ValueError("nothing to bisect: no package changed")
        names = [c.package for c in self.changes]
        if len(set(names)) != len(names):
            raise ValueError("a package changes once in a plan")
        for change in self.changes:
            if change.good != self.good.get(change.package) or change.good == change.bad:
                raise ValueError(f"{change.package}: not a change from the good repository")

    def state(self, applied: int) -> dict[str, Build]:
        """S_applied: the good repository with the first `applied` changes."""
        content = dict(self.good)
        for change in self.changes[:applied]:
            _put(content, change.package, change.bad)
        return content

    def without(self, index: int) -> dict[str, Build]:
        """The bad repository with change `index` left out."""
        content = self.state(len(self.changes))
        _put(content, self.changes[index].package, self.changes[index].good)
        return content


def _put(content: dict[str, Build], package: str, build: Build | None) -> None:
    if build is None:
        content.pop(package, None)
    else:
        content[package] = build


def content_key(content: Mapping[str, Build]) -> Content:
    return frozenset(content.items())


@dataclass(frozen=True)
class Step:
    """A repository to compose and have CI test."""

    kind: StepKind
    position: int  # k of S_k, the build index of a commit step; 0 otherwise
    content: Mapping[str, Build] = field(hash=False)

    @property
    def key(self) -> Content:
        return content_key(self.content)


@dataclass(frozen=True)
class Conclusion:
    outcome: Outcome
    reason: str
    change: int | None = None  # the culprit's index in plan.changes
    last_good: Build | None = None  # its last build that passed (None: it was absent)
    culprit: Build | None = None  # its first build that failed (None: its removal)


@dataclass(frozen=True)
class Progress:
    """What `decide` found: the step awaiting a verdict, or the conclusion."""

    phase: StepKind
    suspects: int  # changes (package phase) or builds (commit phase) still suspected
    step: Step | None = None
    conclusion: Conclusion | None = None


def step_bound(changes: int, builds: int = 1) -> int:
    """Steps a one-culprit bisection takes at most: ⌈log2 N⌉ + 1 (the verification) for N
    changed packages, plus ⌈log2 m⌉ for the m build intervals of the culprit package."""
    return math.ceil(math.log2(max(changes, 1))) + 1 + math.ceil(math.log2(max(builds, 1)))


def _flaky(reason: str, phase: StepKind, suspects: int) -> Progress:
    return Progress(phase, suspects, conclusion=Conclusion(Outcome.FLAKY, reason))


def decide(plan: Plan, verdicts: Mapping[Content, bool]) -> Progress:
    """The next step, or the conclusion, given CI's verdicts so far (True: passed) on the
    repositories of each content."""
    count = len(plan.changes)
    good_key, bad_key = content_key(plan.state(0)), content_key(plan.state(count))
    if verdicts.get(good_key) is False:
        return _flaky("the good repository's packages failed when tested again", StepKind.RETEST, 0)
    if verdicts.get(bad_key) is True:
        return _flaky("the bad repository's packages passed when tested again", StepKind.RETEST, 0)
    low, high = 0, count  # S_low passes, S_high fails
    while high - low > 1:
        middle = (low + high) // 2
        state = plan.state(middle)
        verdict = verdicts.get(content_key(state))
        if verdict is None:
            return Progress(StepKind.PACKAGE, high - low, Step(StepKind.PACKAGE, middle, state))
        low, high = (middle, high) if verdict else (low, middle)
    index = high - 1
    change = plan.changes[index]
    without = plan.without(index)
    if content_key(without) != good_key:  # with one change, that is the good set: known
        verdict = verdicts.get(content_key(without))
        if verdict is None:
            return Progress(StepKind.VERIFY, 1, Step(StepKind.VERIFY, 0, without))
        if not verdict:
            if good_key not in verdicts:
                return Progress(StepKind.RETEST, 1, Step(StepKind.RETEST, 0, plan.state(0)))
            return Progress(
                StepKind.RETEST,
                0,
                conclusion=Conclusion(
                    Outcome.MORE_THAN_ONE,
                    f"cannot conclude: the bad repository without {change.package}'s change "
                    "still fails, and the good one passes again: more than one culprit",
                ),
            )
    builds = change.builds
    base = plan.state(index)
    low, high = 0, len(builds) - 1
    while high - low > 1:
        middle = (low + high) // 2
        state = dict(base)
        _put(state, change.package, builds[middle])
        verdict = verdicts.get(content_key(state))
        if verdict is None:
            return Progress(StepKind.COMMIT, high - low, Step(StepKind.COMMIT, middle, state))
        low, high = (middle, high) if verdict else (low, middle)
    return Progress(
        StepKind.COMMIT,
        1,
        conclusion=Conclusion(
            Outcome.FOUND,
            f"{change.package}: the first of its builds that fails, after the last that passes",
            index,
            builds[low],
            builds[high],
        ),
    )
