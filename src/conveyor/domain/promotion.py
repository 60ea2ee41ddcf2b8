"""Which candidate a target is promoted to, and why: the promoter's rules as a pure function
(reference/peers.md section 2.4), so they are tested without a database or a disk.

- Only candidates newer than the incumbent count (`order` greater than the incumbent's; the
  incumbent itself never).
- The votes of a candidate: per job, the latest finished vote wins (a re-vote overrides an
  earlier one); votes still in progress do not count at all.
- A criteria job passes when its latest vote succeeded, or when the latest vote of one of its
  alternative jobs did.
- The newest candidate whose criteria all pass is chosen; older ones are never promoted after
  it. Purged candidates are never chosen.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

K = TypeVar("K")


@dataclass(frozen=True)
class Vote:
    job: str
    success: bool
    in_progress: bool = False
    timestamp: int = 0
    id: int = 0  # breaks ties between votes of the same second: the later row wins


@dataclass(frozen=True)
class Candidate:
    key: str  # what identifies it (a repository's hash directory name, an aggregate hash)
    order: int  # greater is newer (a commit's id)
    votes: tuple[Vote, ...] = ()
    purged: bool = False


@dataclass(frozen=True)
class Incumbent:
    key: str
    order: int


class Verdict(StrEnum):
    PROMOTE = "promote"  # the newest candidate whose criteria pass
    MISSING_JOBS = "missing-jobs"  # newer than the incumbent, but some jobs did not pass
    PURGED = "purged"  # its repository was purged: never promoted
    SUPERSEDED = "superseded"  # older than the candidate chosen
    INCUMBENT = "incumbent"  # the target points at it already
    NOT_NEWER = "not-newer"  # older than the incumbent


@dataclass(frozen=True)
class CandidateReport:
    key: str
    order: int
    passed: tuple[str, ...]  # criteria jobs that passed (directly or by an alternative)
    missing: tuple[str, ...]  # criteria jobs that did not
    verdict: Verdict
    alternatives_used: Mapping[str, str] = field(default_factory=dict)  # job -> alt job


@dataclass(frozen=True)
class Explanation:
    """Every candidate, newest first, with its passed and missing jobs."""

    target: str
    incumbent: Incumbent | None
    candidates: tuple[CandidateReport, ...]

    @property
    def chosen(self) -> CandidateReport | None:
        for report in self.candidates:
            if report.verdict is Verdict.PROMOTE:
                return report
        return None


def group_votes(
    keys: Iterable[K],
    rows: Iterable[tuple[K, str | None, bool | None, bool | None, int | None, int]],
) -> dict[K, list[Vote]]:
    """Votes by what they were cast on, from rows of (key, job, success, in progress,
    timestamp, id) as the vote tables hold them; every key of `keys` is present."""
    votes: dict[K, list[Vote]] = {key: [] for key in keys}
    for key, job, success, in_progress, timestamp, vote_id in rows:
        if job is not None:
            votes[key].append(Vote(job, bool(success), bool(in_progress), timestamp or 0, vote_id))
    return votes


def latest_results(votes: Iterable[Vote]) -> dict[str, bool]:
    """Each job's latest finished vote: True if it succeeded."""
    latest: dict[str, Vote] = {}
    for vote in votes:
        if vote.in_progress:
            continue
        known = latest.get(vote.job)
        if known is None or (vote.timestamp, vote.id) >= (known.timestamp, known.id):
            latest[vote.job] = vote
    return {job: vote.success for job, vote in latest.items()}


def check_jobs(
    criteria: Sequence[str],
    alternatives: Mapping[str, Sequence[str]],
    votes: Iterable[Vote],
) -> tuple[tuple[str, ...], tuple[str, ...], dict[str, str]]:
    """(passed, missing, alternatives used) for the criteria jobs, in criteria order."""
    results = latest_results(votes)
    passed: list[str] = []
    missing: list[str] = []
    used: dict[str, str] = {}
    for job in criteria:
        if results.get(job, False):
            passed.append(job)
            continue
        alternative = next((alt for alt in alternatives.get(job, ()) if results.get(alt)), None)
        if alternative is not None:
            passed.append(job)
            used[job] = alternative
        else:
            missing.append(job)
    return tuple(passed), tuple(missing), used


def decide(
    target: str,
    criteria: Sequence[str],
    alternatives: Mapping[str, Sequence[str]],
    incumbent: Incumbent | None,
    candidates: Iterable[Candidate],
) -> Explanation:
    """Explain every candidate and choose at most one (the one with Verdict.PROMOTE)."""
    ordered = sorted(candidates, key=lambda c: c.order, reverse=True)
    seen: set[str] = set()
    reports: list[CandidateReport] = []
    chosen = False
    for candidate in ordered:
        if candidate.key in seen:
            continue  # a candidate listed twice (promoted to the candidate label twice)
        seen.add(candidate.key)
        passed, missing, used = check_jobs(criteria, alternatives, candidate.votes)
        if incumbent is not None and candidate.key == incumbent.key:
            verdict = Verdict.INCUMBENT
        elif incumbent is not None and candidate.order <= incumbent.order:
            verdict = Verdict.NOT_NEWER
        elif chosen:
            verdict = Verdict.SUPERSEDED
        elif candidate.purged:
            verdict = Verdict.PURGED
        elif missing:
            verdict = Verdict.MISSING_JOBS
        else:
            verdict = Verdict.PROMOTE
            chosen = True
        reports.append(
            CandidateReport(candidate.key, candidate.order, passed, missing, verdict, used)
        )
    return Explanation(target, incumbent, tuple(reports))
