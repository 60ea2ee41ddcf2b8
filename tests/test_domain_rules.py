"""Pure rules of the domain, without a disk or a database: `is_consistent` and NVRs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.support import build_target

from conveyor.domain.builds import BuildTarget
from conveyor.domain.consistency import is_consistent
from conveyor.domain.status import CommitStatus

S, F, R = CommitStatus.SUCCESS, CommitStatus.FAILED, CommitStatus.RETRY


def target(name: str, under_review: bool = False) -> BuildTarget:
    return build_target(name, under_review=under_review)


A, B, C = target("a"), target("b"), target("c")


def test_every_peer_newest_success_is_consistent() -> None:
    assert is_consistent(A, [A, B, C], {"a": S, "b": S, "c": S})


def test_one_failing_or_retrying_peer_is_not() -> None:
    assert not is_consistent(A, [A, B, C], {"a": S, "b": F, "c": S})
    assert not is_consistent(A, [A, B, C], {"a": S, "b": S, "c": R})


def test_a_peer_never_built_is_not() -> None:
    assert not is_consistent(A, [A, B, C], {"a": S, "b": S})


def test_a_package_under_review_never_makes_a_repository_consistent() -> None:
    review = target("r", under_review=True)
    assert not is_consistent(review, [review, A], {"r": S, "a": S})


def test_packages_outside_the_repository_do_not_count() -> None:
    assert is_consistent(A, [A, B], {"a": S, "b": S, "c": F})


def test_status_strings_as_stored_count_too() -> None:
    assert is_consistent(A, [A], {"a": "SUCCESS"})


@given(st.lists(st.sampled_from([S, F, R, None]), min_size=1, max_size=8))
def test_consistent_exactly_when_all_succeeded(statuses: list[CommitStatus | None]) -> None:
    peers = [target(f"p{i}") for i in range(len(statuses))]
    newest = {p.name: s for p, s in zip(peers, statuses, strict=True) if s is not None}
    assert is_consistent(peers[0], peers, newest) == all(s is S for s in statuses)


# -- NVRs ---------------------------------------------------------------------------------------


def test_an_nvr_reads_as_rpm_writes_it() -> None:
    from conveyor.domain.nvr import Nvr, nvr_from_artifacts

    assert Nvr.parse("python-nova-28.0.1-0.2026.abc1234.el9") == Nvr(
        "python-nova", "28.0.1", "0.2026.abc1234.el9"
    )
    epoch = Nvr.parse("python-foo-1:2.0-1")
    assert (epoch.epoch, epoch.version, str(epoch)) == ("1", "2.0", "python-foo-2.0-1")
    for bad in ("nova", "a-b", "a b-1-1", "x-y:1-1", "x-1:-1"):
        with pytest.raises(ValueError, match="not an NVR"):
            Nvr.parse(bad)
    assert nvr_from_artifacts(["repos/a/b.noarch.rpm", "repos/a/b-1-1.src.rpm"]) == "b-1-1"
    assert nvr_from_artifacts(["b.noarch.rpm"]) is None
