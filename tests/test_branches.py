"""Branch fallback rules (reference/dlrn.md section 6)."""

import pytest

from conveyor.domain.branches import BranchNotFound, resolve_distgit_ref, resolve_source_ref

NONFALLBACK = ("^master$", "^rpm-master$", "^main$")
SHA = "0123456789abcdef0123456789abcdef01234567"


def resolve(wanted, heads=(), tags=(), fallback=True):
    return resolve_source_ref(
        wanted, {h: "h-" + h for h in heads}, {t: "t-" + t for t in tags}, fallback, NONFALLBACK
    )


def test_existing_branch_wins():
    ref = resolve("stable/2025.1", heads=["stable/2025.1", "master"])
    assert (ref.name, ref.sha, ref.fallback) == ("stable/2025.1", "h-stable/2025.1", False)


def test_tag_pin():
    assert resolve("4.8.0", heads=["master"], tags=["4.8.0"]).sha == "t-4.8.0"


def test_commit_pin():
    assert resolve(SHA, heads=["master"]).sha == SHA


def test_unmaintained_then_eol_then_master():
    assert resolve("stable/zed", heads=["unmaintained/zed", "master"]).name == "unmaintained/zed"
    assert resolve("stable/zed", heads=["master"], tags=["zed-eol"]).name == "zed-eol"
    ref = resolve("stable/zed", heads=["master"])
    assert (ref.name, ref.fallback) == ("master", True)


def test_no_fallback_to_master_when_disabled():
    with pytest.raises(BranchNotFound, match="stable/zed"):
        resolve("stable/zed", heads=["master"], fallback=False)


def test_master_falls_back_to_main_only():
    assert resolve("master", heads=["main"]).name == "main"
    with pytest.raises(BranchNotFound):
        resolve("master", heads=["develop"])


def test_distgit_rdo_branch_falls_back_to_rpm_master():
    assert resolve_distgit_ref("zed-rdo", {"rpm-master": "x"}, NONFALLBACK).name == "rpm-master"
    with pytest.raises(BranchNotFound, match="rpm-master"):
        resolve_distgit_ref("rpm-master", {"zed-rdo": "x"}, NONFALLBACK)


def test_a_stable_builder_without_fallback_never_builds_the_masters_distgit():
    with pytest.raises(BranchNotFound, match="zed-rdo"):
        resolve_distgit_ref("zed-rdo", {"rpm-master": "x"}, NONFALLBACK, fallback_to_master=False)
