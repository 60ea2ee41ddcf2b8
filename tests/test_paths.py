"""DLRN's hashed path formula (reference/dlrn.md section 8) and the names that reach paths."""

from pathlib import PurePosixPath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.domain.names import InvalidName, check_label, check_package_name
from conveyor.domain.paths import repo_hash, repo_relpath

COMMIT = "cdaf2c77d974d5e794909313dceb3554be69a42e"
DISTRO = "4b1619fe2c5a3a9f0dbc5fbd4cb1b06b9fe0fd0e"


def test_dlrn_example_path():
    assert repo_relpath(COMMIT, DISTRO) == PurePosixPath(f"cd/af/{COMMIT}_4b1619fe")


def test_component_prefix():
    assert repo_relpath(COMMIT, DISTRO, component="compute") == PurePosixPath(
        f"component/compute/cd/af/{COMMIT}_4b1619fe"
    )


def test_short_and_downstream_extended_hash():
    short = "0123456789abcdef"
    assert repo_relpath(COMMIT, DISTRO, short).name == f"{COMMIT}_4b1619fe_01234567"
    downstream = "a" * 40 + "_" + "b" * 40
    assert repo_relpath(COMMIT, DISTRO, downstream).name == f"{COMMIT}_4b1619fe_aaaaaaaa_bbbbbbbb"


def test_no_distro_hash():
    assert repo_relpath(COMMIT, None).name == COMMIT


def test_repo_hash_ignores_extended_hash():
    assert repo_hash(COMMIT, DISTRO) == f"{COMMIT}_4b1619fe"


@pytest.mark.parametrize(
    "bad", ["../etc", "a/b", "a b", "..", "", "x\n", "/abs", "a..b", "-x", "é" * 3]
)
def test_unsafe_package_names_refused(bad):
    with pytest.raises(InvalidName):
        check_package_name(bad)


@pytest.mark.parametrize("bad", ["../" + COMMIT[3:], COMMIT.upper(), "zz" + COMMIT[2:], "a b"])
def test_unsafe_hashes_refused(bad):
    with pytest.raises(InvalidName):
        repo_relpath(bad, DISTRO)
    with pytest.raises(InvalidName):
        repo_relpath(COMMIT, bad)


@pytest.mark.parametrize("bad", ["a/b", "..", "current/..", "x" * 300, "with space"])
def test_unsafe_labels_refused(bad):
    with pytest.raises(InvalidName):
        check_label(bad)


@given(
    st.from_regex(r"[0-9a-f]{40}", fullmatch=True), st.from_regex(r"[0-9a-f]{40}", fullmatch=True)
)
def test_path_is_three_levels_sharded_by_commit(commit, distro):
    path = repo_relpath(commit, distro)
    assert path.parts == (commit[:2], commit[2:4], f"{commit}_{distro[:8]}")
