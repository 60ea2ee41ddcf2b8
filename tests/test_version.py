from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import rpm
from hypothesis import given, settings
from hypothesis import strategies as st
from pbr.version import SemanticVersion

from conveyor.domain.version import (
    FALLBACK_VERSION,
    RELEASE_NUMBERINGS,
    BuildVersion,
    PbrProject,
    PuppetModule,
    SemVerBump,
    TagPosition,
    build_version,
    is_ignored_tag,
    make_build_version,
    parse_semver,
    pbr_project,
    pkg_info,
    puppet_module,
    puppet_tarball_name,
    puppet_version,
    release_build_numbering,
    release_string,
    rpm_version,
    semver_bump,
    tag_position,
    upstream_version,
)

RPM_VERSION = re.compile(r"[0-9]+(\.[0-9]+)*")
WHEN = datetime(2015, 1, 2, 3, 44, 55, tzinfo=UTC)


def label_compare(left: tuple[str, str], right: tuple[str, str]) -> int:
    result: int = rpm.labelCompare(("0", *left), ("0", *right))
    return result


# --- rpm_version -------------------------------------------------------------------------------

# The first six come from dlrn.md section 7; the rest are the cases DLRN's own
# scripts/run_sh_tests.sh checks against setversionandrelease.
DLRN_RPM_VERSIONS = [
    ("13.0.1.dev3", "13.0.1"),
    ("1.0.0.0rc2.dev128", "1.0.0"),
    ("2015.1.dev1604.g34cf1e3", "2015.1"),
    ("2015.1.9-13-g53b605d", "2015.1.9"),
    ("eb6dbe2", "0.0.1"),
    ("4.11.1.dev6", "4.11.1"),
    ("1.0.0-d7f1b849", "1.0.0"),
    ("0.10.1.11.ga5f0e3c", "0.10.1.11"),
    ("0.0.2.dev7", "0.0.2"),
    ("0.0.9", "0.0.9"),
    ("0.19.1.dev25", "0.19.1"),
    ("0.6.0", "0.6.0"),
    ("1.0.0.0b2.dev15", "1.0.0"),
    ("2015.1.0.dev47", "2015.1.0"),
    ("2015.2.1", "2015.2.1"),
    ("8.0.0.0b2.dev268", "8.0.0"),
    ("2.0.0.0b4.dev15", "2.0.0"),
    ("7.0.0.0a1.dev1", "7.0.0"),
    ("1.8.0.pre", "1.8.0"),
    ("1.8.0.pre.1", "1.8.0"),
]

# Rule order and edge cases, including where conveyor deliberately falls back instead of
# passing a non-numeric cut to the spec.
EDGE_RPM_VERSIONS = [
    ("1.0.0.0rc1", "1.0.0"),
    ("31.0.0.0rc1", "31.0.0"),
    ("1.0.0.0a1", "1.0.0"),
    ("1.2.3.4", "1.2.3.4"),
    ("1.0", "1.0"),
    ("2015.1", "2015.1"),
    ("5", "5"),
    # X-Y is tried first and leaves "1.0.0.0rc2", which is not dotted digits.
    ("1.0.0.0rc2-3", "0.0.1"),
    ("1.0.0.0rc1.0rc2", "1.0.0"),
    ("1.0.0.dev3.g1234abc", "1.0.0"),
    ("1.0.0.0rc", "0.0.1"),
    ("1.0.0.dev", "0.0.1"),
    ("1.2.3-", "0.0.1"),
    ("-x", "0.0.1"),
    ("foo.dev1", "0.0.1"),
    ("1..2", "0.0.1"),
    (".1", "0.0.1"),
    ("", "0.0.1"),
    ("1.2.3\n", "0.0.1"),
]


@pytest.mark.parametrize(("raw", "expected"), DLRN_RPM_VERSIONS + EDGE_RPM_VERSIONS)
def test_rpm_version_table(raw: str, expected: str) -> None:
    assert rpm_version(raw) == expected


def test_rpm_version_rc_rule_cuts_before_dev_rule() -> None:
    # ".dev" also occurs in this string; cutting there would give "1.0.0.0rc2".
    assert rpm_version("1.0.0.0rc2.dev128") == "1.0.0"


@given(st.text())
def test_rpm_version_is_always_dotted_digits(raw: str) -> None:
    result = rpm_version(raw)
    assert RPM_VERSION.fullmatch(result) or result == FALLBACK_VERSION
    assert "-" not in result


release_parts = st.lists(st.integers(0, 99999), min_size=1, max_size=5).map(
    lambda parts: ".".join(map(str, parts))
)
marker_suffixes = st.sampled_from(
    ["", ".dev3", ".0rc2", ".0rc2.dev128", ".0b1", ".0a4.dev2", ".g1a2b3c4", ".pre", "-13-gabc"]
)
version_like = st.builds(lambda release, suffix: release + suffix, release_parts, marker_suffixes)


@given(release_parts, marker_suffixes)
def test_rpm_version_keeps_the_release_before_any_marker(release: str, suffix: str) -> None:
    assert rpm_version(release + suffix) == release


# --- upstream_version -------------------------------------------------------------------------

# pbr's answers (checked against pbr itself below). Rows changed when conveyor moved from its own
# reading of tags to pbr's exact algorithm: r/R prefixes are not versions to pbr; a tagged
# commit is spelled as pbr spells it (1.0 -> 1.0.0); a fourth component is pbr's legacy dev
# count (1.2.3.4 is 1.2.3.dev4); dashed pre-releases are versions (1.2.3-rc1); no tag at all is
# 0.0.0 on a single commit.
UPSTREAM_VERSIONS = [
    ("1.2.3", 0, "1.2.3"),
    ("1.2.3", 5, "1.2.4.dev5"),
    ("v1.2.3", 0, "1.2.3"),
    ("V1.2.3", 2, "1.2.4.dev2"),
    ("vv1.2.3", 1, "1.2.4.dev1"),
    ("r1.2.3", 1, "0.0.1.dev1"),
    ("R2.0.0", 0, "0.0.0"),
    ("4.2.0", 3, "4.2.1.dev3"),
    ("4.11.0", 6, "4.11.1.dev6"),
    ("1.0", 0, "1.0.0"),
    ("1.0", 4, "1.0.1.dev4"),
    ("2015.1", 0, "2015.1.0"),
    ("2015.1", 1604, "2015.1.1.dev1604"),
    ("3", 2, "3.0.1.dev2"),
    ("1.02.3", 1, "1.2.4.dev1"),
    ("1.2.3.4", 0, "1.2.3.dev4"),
    ("1.2.3.4", 7, "1.2.4.dev7"),
    ("v0.10.1.11", 3, "0.10.2.dev3"),
    ("1.0.0.0rc1", 0, "1.0.0.0rc1"),
    ("1.0.0.0rc1", 128, "1.0.0.0rc2.dev128"),
    ("v31.0.0.0rc1", 0, "31.0.0.0rc1"),
    ("2.0.0rc1", 0, "2.0.0.0rc1"),
    ("2.0.0rc1", 3, "2.0.0.0rc2.dev3"),
    ("1.0.0.0b2", 15, "1.0.0.0b3.dev15"),
    ("1.0.0a1", 1, "1.0.0.0a2.dev1"),
    ("1.0rc1", 2, "1.0.0.0rc2.dev2"),
    ("1.0.0.rc1", 0, "1.0.0.0rc1"),
    ("1.2.3-rc1", 1, "1.2.3.0rc2.dev1"),
    ("8.0.0.0b1", 268, "8.0.0.0b2.dev268"),
    ("1.2.3.post2", 0, "1.2.4.dev2"),
    ("1.0.0+local", 0, "1.0.0+local"),
    (None, 0, "0.0.0"),
    (None, 12, "0.0.1.dev12"),
    ("", 3, "0.0.1.dev3"),
    ("foo-eol", 2, "0.0.1.dev2"),
    ("1.0.0-eol", 2, "0.0.1.dev2"),
    ("private-x", 0, "0.0.0"),
]


def pbr_answer(tag: str | None, distance: int, **bump: bool) -> str:
    """What pbr computes for a last tag and distance (``_get_version_from_git_target``)."""
    try:
        last = SemanticVersion.from_pip_string((tag or "0").replace("-", "."))
    except ValueError:
        last = SemanticVersion.from_pip_string("0")
    if distance == 0:
        return str(last.release_string())
    return str(last.increment(**bump).to_dev(distance).release_string())


@pytest.mark.parametrize(("tag", "distance", "expected"), UPSTREAM_VERSIONS)
def test_upstream_version_table(tag: str | None, distance: int, expected: str) -> None:
    assert upstream_version(tag, distance) == expected
    assert pbr_answer(tag, distance) == expected


@pytest.mark.parametrize(
    ("tag", "distance", "bump", "pre_version", "expected"),
    [
        # python-glanceclient at 0b06bb4: "Update master for stable/2026.1" says feature.
        ("4.11.0", 6, SemVerBump(minor=True), None, "4.12.0.dev6"),
        ("22.0.0", 64, SemVerBump(minor=True), None, "22.1.0.dev64"),  # aodh
        ("1.2.3", 2, SemVerBump(major=True), None, "2.0.0.dev2"),
        ("1.2.3", 2, SemVerBump(minor=True, major=True), None, "2.0.0.dev2"),
        ("2.0.0.0rc1", 3, SemVerBump(minor=True), None, "2.1.0.dev3"),
        ("2.0.0.0rc1", 3, SemVerBump(), None, "2.0.0.0rc2.dev3"),
        ("1.2.3", 0, SemVerBump(major=True), None, "1.2.3"),
        # setup.cfg's version is pbr's target: the larger of the two .devN wins.
        ("1.2.3", 2, SemVerBump(), "2.0.0", "2.0.0.dev2"),
        ("1.2.3", 2, SemVerBump(), "1.2.4", "1.2.4.dev2"),
        ("1.2.3", 2, SemVerBump(minor=True), "1.3.0", "1.3.0.dev2"),
        (None, 4, SemVerBump(), "1.0.0", "1.0.0.dev4"),
        ("1.2.3", 0, SemVerBump(), "1.0.0", "1.2.3"),
    ],
)
def test_upstream_version_with_footers_and_target(
    tag: str | None, distance: int, bump: SemVerBump, pre_version: str | None, expected: str
) -> None:
    assert upstream_version(tag, distance, bump, pre_version) == expected
    if pre_version is None:
        assert pbr_answer(tag, distance, minor=bump.minor, major=bump.major) == expected


@pytest.mark.parametrize(
    ("pre_version", "bump"), [("1.2.3", SemVerBump()), ("1.2.9", SemVerBump(minor=True))]
)
def test_history_above_the_target_version_is_refused_as_pbr_refuses_it(
    pre_version: str, bump: SemVerBump
) -> None:
    with pytest.raises(ValueError, match="requires a target version"):
        upstream_version("1.2.3", 1, bump, pre_version)


@pytest.mark.parametrize(
    ("tag", "distance", "expected"),
    [
        ("4.11.0", 6, "4.11.1"),
        ("1.0.0.0rc1", 127, "1.0.0"),
        ("2.0.0rc1", 0, "2.0.0"),
        ("1.0.0a1", 0, "1.0.0"),
        ("2015.1", 9, "2015.1.1"),
        ("1.2.3.4", 1, "1.2.4"),
        (None, 40, "0.0.1"),
        (None, 0, "0.0.0"),
    ],
)
def test_rpm_version_of_upstream_version(tag: str | None, distance: int, expected: str) -> None:
    assert rpm_version(upstream_version(tag, distance)) == expected


def test_upstream_version_rejects_negative_distance() -> None:
    with pytest.raises(ValueError, match="distance"):
        upstream_version("1.0.0", -1)


@pytest.mark.parametrize(
    ("tag", "ignored"),
    [
        ("private-foo", True),
        ("private-1.0.0", True),
        ("newton-em", True),
        ("1.0.0-em", True),
        ("ocata-eol", True),
        ("stable-eom", True),
        ("foo", True),
        ("", True),
        ("R1.2.3", True),
        ("r1.2.3", True),
        ("1.2.3.4rc1", True),
        ("1.2.3.0", True),
        ("1.0 ", True),
        ("vv1.0", False),
        ("1.2.3-rc1", False),
        ("1.0.0.dev3", False),
        ("1.2.3.4-eol", False),  # pbr reads 1.2.3.dev4 and ignores the rest
        ("1.2.3", False),
        ("v1.2.3", False),
        ("2015.1", False),
        ("1.2.3.4", False),
        ("1.0.0.0rc1", False),
        ("2.0.0rc1", False),
        ("1.0.0a1", False),
    ],
)
def test_is_ignored_tag(tag: str, ignored: bool) -> None:
    assert is_ignored_tag(tag) is ignored
    if tag.strip() == tag:
        try:
            SemanticVersion.from_pip_string(tag.replace("-", "."))
            pbr_ignores = False
        except ValueError:
            pbr_ignores = True
        assert pbr_ignores is ignored


prefixes = st.sampled_from(["", "v", "V"])
components = st.integers(0, 10**6)
distances = st.integers(1, 10**6)


@given(prefixes, components, components, components, distances)
def test_trunk_build_sorts_between_tag_and_next_release(
    prefix: str, x: int, y: int, z: int, distance: int
) -> None:
    upstream = upstream_version(f"{prefix}{x}.{y}.{z}", distance)
    version = rpm_version(upstream)
    assert version == f"{x}.{y}.{z + 1}"
    release = release_string("0.date.hash", WHEN, "abcdef0")
    assert label_compare((version, release), (f"{x}.{y}.{z}", "1")) == 1
    assert label_compare((version, release), (f"{x}.{y}.{z + 1}", "1")) == -1


@given(prefixes, st.lists(components, min_size=1, max_size=3), distances)
def test_trunk_build_sorts_between_any_release_tag_and_its_bump(
    prefix: str, parts: list[int], distance: int
) -> None:
    tag = ".".join(map(str, parts))
    padded = parts + [0] * (3 - len(parts))
    bumped = ".".join(map(str, [*padded[:-1], padded[-1] + 1]))
    version = rpm_version(upstream_version(prefix + tag, distance))
    assert version == bumped
    for numbering in RELEASE_NUMBERINGS:
        # A minor of 1 or more would deliberately sort trunk builds above the final "-1".
        release = release_string(numbering, WHEN, "0123abc", "0")
        assert label_compare((version, release), (tag, "1")) == 1
        assert label_compare((version, release), (bumped, "1")) == -1


prerelease_kinds = st.sampled_from(["a", "b", "rc"])


@given(prefixes, components, components, components, prerelease_kinds, components, distances)
def test_build_after_prerelease_tag_sorts_below_the_final_release(
    prefix: str, x: int, y: int, z: int, kind: str, serial: int, distance: int
) -> None:
    tag = f"{prefix}{x}.{y}.{z}.0{kind}{serial}"
    upstream = upstream_version(tag, distance)
    assert upstream == f"{x}.{y}.{z}.0{kind}{serial + 1}.dev{distance}"
    version = rpm_version(upstream)
    assert version == f"{x}.{y}.{z}"
    release = release_string("0.date.hash", WHEN, "abcdef0")
    assert label_compare((version, release), (f"{x}.{y}.{z}", "1")) == -1


@given(prefixes, st.lists(components, min_size=1, max_size=3))
def test_tagged_release_commit_reports_pbrs_spelling_of_the_tag(
    prefix: str, parts: list[int]
) -> None:
    padded = parts + [0] * (3 - len(parts))
    assert upstream_version(prefix + ".".join(map(str, parts)), 0) == ".".join(map(str, padded))


@given(prefixes, components, components, components, prerelease_kinds, components)
def test_tagged_canonical_prerelease_commit_keeps_the_tag(
    prefix: str, x: int, y: int, z: int, kind: str, serial: int
) -> None:
    tag = f"{x}.{y}.{z}.0{kind}{serial}"
    assert upstream_version(prefix + tag, 0) == tag


@given(st.text(max_size=20), st.integers(0, 1000))
def test_ignored_tags_fall_back(tag: str, distance: int) -> None:
    if is_ignored_tag(tag):
        expected = "0.0.0" if distance == 0 else f"0.0.1.dev{distance}"
        assert upstream_version(tag, distance) == expected


# --- pbr's version parsing, against pbr itself --------------------------------------------------

version_pieces = st.sampled_from(
    [*"0123456789", *"...vVrabc+-x", "rc", "0rc", "dev", "post", ".dev", ".0rc", ".0b", "10"]
)
version_texts = st.lists(version_pieces, max_size=10).map("".join)


@settings(max_examples=3000)
@given(version_texts)
def test_parse_semver_agrees_with_pbr(text: str) -> None:
    try:
        reference = SemanticVersion.from_pip_string(text)
    except ValueError:
        with pytest.raises(ValueError):
            parse_semver(text)
        return
    mine = parse_semver(text)
    assert mine.release_string() == reference.release_string()
    for bump in ({}, {"minor": True}, {"major": True}):
        theirs = reference.increment(**bump).to_dev(7).release_string()
        assert mine.increment(**bump).to_dev(7).release_string() == theirs


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("1.0.0.dev3", "1.0.0.0a1"),
        ("1.0.0.0a1", "1.0.0.0b1"),
        ("1.0.0.0b1", "1.0.0.0rc1"),
        ("1.0.0.0rc1.dev2", "1.0.0.0rc1"),
        ("1.0.0.0rc1", "1.0.0"),
        ("1.0.0", "1.0.1.dev1"),
        ("1.9.0", "1.10.0"),
        ("1.2.3.4", "1.2.3"),
    ],
)
def test_semver_order_is_pbrs(lower: str, higher: str) -> None:
    assert parse_semver(lower).sort_key() < parse_semver(higher).sort_key()
    theirs = SemanticVersion.from_pip_string
    assert theirs(lower) < theirs(higher)


@pytest.mark.parametrize(
    "messages",
    [
        "",
        "Fix a bug\n\nSem-Ver: feature\n",
        "Update master for stable/2026.1\n\nSem-Ver: feature\nChange-Id: I0\n",
        "x\n   sem-ver:  API-Break , feature \n",
        "x\nSem-Ver: bugfix\n",
        "x\nSem-Ver: deprecation\n",
        "x\nSem-Ver:feature\n",
        "x\nNot-Sem-Ver: api-break\nsaying Sem-Ver: api-break mid-line\n",
        "x\nSem-Ver: unknown-symbol\n",
        "a\r\nSEM-VER: API-BREAK\r\n",
    ],
)
def test_semver_footers_read_as_pbr_reads_them(
    messages: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pbr.git
    import pbr.packaging

    monkeypatch.setattr(pbr.git, "_run_git_command", lambda *_a, **_k: messages.strip())
    theirs = pbr.packaging._get_increment_kwargs("unused", "1.0.0")
    bump = semver_bump(messages)
    assert (bump.minor, bump.major) == (bool(theirs.get("minor")), bool(theirs.get("major")))


# --- pbr's walk: the first tagged commit in git log order ----------------------------------------


@pytest.mark.parametrize(
    ("tagged", "commits", "expected"),
    [
        ([], 1, TagPosition(None, 0)),
        ([], 5, TagPosition(None, 4)),
        ([(0, ("1.0.0",))], 3, TagPosition("1.0.0", 0, "1.0.0")),
        ([(2, ("juno-eol",)), (4, ("1.0.0",))], 9, TagPosition("1.0.0", 4, "1.0.0")),
        # A release and its candidate on one commit: the release is the higher version.
        ([(1, ("2.0.0.0rc1", "2.0.0"))], 4, TagPosition("2.0.0", 1, "2.0.0")),
        ([(1, ("2.0.0", "2.0.0.0rc1"))], 4, TagPosition("2.0.0", 1, "2.0.0")),
        # Rows come in any order: the first in log order wins, not the highest version.
        ([(5, ("9.0.0",)), (3, ("1.0.0",))], 9, TagPosition("1.0.0", 3, "1.0.0")),
        # pbr names a dashed tag with dots in its Sem-Ver range, which git cannot resolve.
        ([(2, ("1.2.3-rc1",))], 4, TagPosition("1.2.3.rc1", 2, None)),
        ([(2, ("1.0", "1.0.0"))], 4, TagPosition("1.0", 2, "1.0")),
    ],
)
def test_tag_position(
    tagged: list[tuple[int, tuple[str, ...]]], commits: int, expected: TagPosition
) -> None:
    assert tag_position(tagged, commits) == expected


def test_tag_position_says_which_messages_hold_footers() -> None:
    assert TagPosition("1.0.0", 0, "1.0.0").footers == "none"
    assert TagPosition("1.0.0", 3, "1.0.0").footers == "since-tag"
    assert TagPosition("1.2.3.rc1", 3, None).footers == "none"
    assert TagPosition(None, 3).footers == "all"


# --- what the build reads from the tree -----------------------------------------------------------


@pytest.mark.parametrize(
    ("setup_cfg", "pyproject", "expected"),
    [
        (None, None, PbrProject()),
        ("[metadata]\nname = python-glanceclient\n", None, PbrProject("python-glanceclient")),
        ("[metadata]\nname = foo\nversion = 2.0.0\n", None, PbrProject("foo", "2.0.0")),
        ("[metadata]\nname = foo\nsummary = 100% pure\n", None, PbrProject("foo")),
        ("[global]\nsetup_hooks = x\n", None, PbrProject()),
        (
            None,
            '[build-system]\nbuild-backend = "pbr.build"\n[project]\nname = "bar"\n',
            PbrProject("bar"),
        ),
        (
            None,
            '[build-system]\nbuild-backend = "setuptools.build_meta"\n[project]\nname = "b"\n',
            PbrProject(),
        ),
    ],
)
def test_pbr_project(setup_cfg: str | None, pyproject: str | None, expected: PbrProject) -> None:
    assert pbr_project(setup_cfg, pyproject) == expected


@pytest.mark.parametrize(
    ("setup_cfg", "pyproject"), [("[metadata\nname=x", None), (None, "[project")]
)
def test_pbr_project_refuses_unparsable_files(setup_cfg: str | None, pyproject: str | None) -> None:
    with pytest.raises(ValueError):
        pbr_project(setup_cfg, pyproject)


def test_pkg_info_is_what_pbr_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pbr.packaging

    (tmp_path / "PKG-INFO").write_text(pkg_info("python-foo", "1.2.4.dev3"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert pbr.packaging._get_version_from_pkg_metadata("python-foo") == "1.2.4.dev3"
    with pytest.raises(ValueError):
        pkg_info("foo\nVersion: 9", "1.0")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '{"name": "openstack-nova", "version": "28.0.1"}',
            PuppetModule("openstack-nova", "28.0.1"),
        ),
        ('{"name": "theforeman-dns", "version": 7}', PuppetModule("theforeman-dns", "7")),
    ],
)
def test_puppet_module(text: str, expected: PuppetModule) -> None:
    assert puppet_module(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "{",
        "[]",
        '{"name": "openstack-nova"}',
        '{"version": "1.0.0"}',
        '{"name": "openstack-nova", "version": "../../x"}',
        '{"name": "a b", "version": "1.0"}',
    ],
)
def test_puppet_module_refuses_unusable_metadata(text: str) -> None:
    with pytest.raises(ValueError, match=r"metadata\.json"):
        puppet_module(text)


@pytest.mark.parametrize(
    ("version", "tag", "distance", "expected"),
    [
        ("28.0.0", "28.0.0", 0, "28.0.0"),
        ("28.0.0", "28.0.0", 2, "28.0.1"),
        ("28.0.0", "v28.0.0", 2, "28.0.1"),
        ("28.0.1", "28.0.0", 2, "28.0.1"),  # already moved on: kept
        ("29.0.0", "28.0.0", 2, "29.0.0"),
        ("28.0.0-rc1", "28.0.0-rc1", 2, "28.0.0-rc1"),
        ("5", "5", 1, "6"),
        ("1.2.0rc1", "1.2.0rc1", 1, "1.2.1"),  # awk's $NF+1 reads the leading number
        ("1.0.0", None, 7, "1.0.0"),
    ],
)
def test_puppet_version(version: str, tag: str | None, distance: int, expected: str) -> None:
    assert puppet_version(version, tag, distance) == expected


@pytest.mark.parametrize(
    ("module", "repository", "expected"),
    [
        ("openstack-nova", "puppet-nova", "openstack-nova"),
        ("openstack-openstacklib", "puppet-openstacklib", "openstack-openstacklib"),
        ("theforeman-dns", "puppet-dns", "puppet-dns"),
        ("puppetlabs-openstack_extras", "puppet-x", "puppetlabs-openstack_extras"),
    ],
)
def test_puppet_tarball_name(module: str, repository: str, expected: str) -> None:
    assert puppet_tarball_name(module, repository) == expected


# --- release_string ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("numbering", "minor", "expected"),
    [
        ("0.date.hash", "0", "0.20150102034455.abcdef0"),
        ("0.1.date.hash", "0", "0.1.20150102034455.abcdef0"),
        ("minor.date.hash", "4", "4.20150102034455.abcdef0"),
        ("minor.date.hash", "0", "0.20150102034455.abcdef0"),
        ("0.date.hash", "4", "0.20150102034455.abcdef0"),
    ],
)
def test_release_string_numberings(numbering: str, minor: str, expected: str) -> None:
    assert release_string(numbering, WHEN, "abcdef0", minor) == expected


def test_release_string_converts_to_utc() -> None:
    cest = timezone(timedelta(hours=2))
    when = datetime(2015, 1, 2, 5, 44, 55, 999999, tzinfo=cest)
    assert release_string("0.date.hash", when, "f41f2c3") == "0.20150102034455.f41f2c3"


def test_release_string_pads_early_years() -> None:
    when = datetime(999, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert release_string("0.date.hash", when, "f41f2c3") == "0.09990304050607.f41f2c3"


def test_release_string_rejects_naive_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        release_string("0.date.hash", datetime(2015, 1, 2, 3, 44, 55), "abcdef0")


def test_release_string_rejects_time_outside_utc_range() -> None:
    with pytest.raises(ValueError, match="out of range"):
        release_string(
            "0.date.hash", datetime.min.replace(tzinfo=timezone(timedelta(hours=1))), "abcdef0"
        )


@pytest.mark.parametrize("short_hash", ["ABCDEF0", "abcdef", "abcdef01", "ghijklm", "", " abcdef"])
def test_release_string_rejects_bad_hash(short_hash: str) -> None:
    with pytest.raises(ValueError, match="short_hash"):
        release_string("0.date.hash", WHEN, short_hash)


@pytest.mark.parametrize("numbering", ["date.hash", "0.date", "", "0.1.date.hash "])
def test_release_string_rejects_unknown_numbering(numbering: str) -> None:
    with pytest.raises(ValueError, match="numbering"):
        release_string(numbering, WHEN, "abcdef0")


@pytest.mark.parametrize("minor", ["", "a", "1-2", "1.", " 1"])
def test_release_string_rejects_bad_minor(minor: str) -> None:
    with pytest.raises(ValueError, match="minor"):
        release_string("minor.date.hash", WHEN, "abcdef0", minor)


offsets = st.builds(
    timezone, st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23))
)
build_times = st.datetimes(
    min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=offsets
)
short_hashes = st.text("0123456789abcdef", min_size=7, max_size=7)


@given(
    st.sampled_from(RELEASE_NUMBERINGS),
    build_times,
    st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=3650)),
    short_hashes,
    short_hashes,
)
def test_later_build_sorts_higher(
    numbering: str, first: datetime, gap: timedelta, hash1: str, hash2: str
) -> None:
    later = (first + gap).astimezone(timezone(timedelta(hours=-5)))
    release1 = release_string(numbering, first, hash1, "3")
    release2 = release_string(numbering, later, hash2, "3")
    assert label_compare(("1.2.3", release1), ("1.2.3", release2)) == -1


@given(st.sampled_from(RELEASE_NUMBERINGS), build_times, short_hashes)
def test_release_string_shape(numbering: str, when: datetime, short_hash: str) -> None:
    release = release_string(numbering, when, short_hash, "12")
    assert re.fullmatch(r"(0|0\.1|12)\.[0-9]{14}\.[0-9a-f]{7}", release)
    assert "-" not in release


# --- BuildVersion -----------------------------------------------------------------------------


def test_build_version_of_glanceclient_follows_its_sem_ver_footer() -> None:
    # python-glanceclient at 0b06bb4, six commits after tag 4.11.0: the release bot's "Update
    # master for stable/2026.1" says "Sem-Ver: feature", so pbr reports 4.12.0.dev6 (this test
    # used to expect 4.11.1, which ignored the footer).
    built = make_build_version(
        upstream_version("4.11.0", 6, SemVerBump(minor=True)),
        "0.date.hash",
        datetime(2026, 4, 22, 17, 49, 43, tzinfo=UTC),
        "0b06bb4",
    )
    assert built == BuildVersion(
        version="4.12.0", release="0.20260422174943.0b06bb4", upstream_version="4.12.0.dev6"
    )
    assert built.nvr("python-glanceclient") == (
        "python-glanceclient-4.12.0-0.20260422174943.0b06bb4"
    )
    # Without the footer (build_version reads none), pbr's patch increment.
    plain = build_version("4.11.0", 6, "0.date.hash", WHEN, "0b06bb4")
    assert plain.upstream_version == "4.11.1.dev6"


def test_build_version_minor_numbering() -> None:
    built = build_version("v2.0.0rc1", 0, "minor.date.hash", WHEN, "f41f2c3", minor="2")
    assert built.version == "2.0.0"
    assert built.release == "2.20150102034455.f41f2c3"
    assert built.upstream_version == "2.0.0.0rc1"


def test_build_version_without_tag() -> None:
    built = build_version(None, 9, "0.1.date.hash", WHEN, "eb6dbe2")
    assert built.nvr("foo") == "foo-0.0.1-0.1.20150102034455.eb6dbe2"
    assert built.upstream_version == "0.0.1.dev9"


def test_build_version_is_frozen() -> None:
    built = build_version("1.0.0", 0, "0.date.hash", WHEN, "abcdef0")
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.version = "2.0.0"  # type: ignore[misc]


@pytest.mark.parametrize("name", ["", "../x", "foo bar", "-foo"])
def test_nvr_rejects_bad_names(name: str) -> None:
    built = build_version("1.0.0", 0, "0.date.hash", WHEN, "abcdef0")
    with pytest.raises(ValueError):
        built.nvr(name)


@pytest.mark.parametrize(
    ("version", "release", "upstream"),
    [
        ("1.0-1", "0.1", "1.0"),
        ("1.0", "0-1", "1.0"),
        ("", "0.1", "1.0"),
        ("1.0", "", "1.0"),
        ("1.0", "0.1", ""),
        ("1 0", "0.1", "1.0"),
        ("1.0", "0.1", "1.0 dev"),
    ],
)
def test_build_version_rejects_unusable_fields(version: str, release: str, upstream: str) -> None:
    with pytest.raises(ValueError):
        BuildVersion(version=version, release=release, upstream_version=upstream)


@given(
    st.one_of(st.none(), st.text(max_size=12), version_like),
    st.integers(0, 10**6),
    st.sampled_from(RELEASE_NUMBERINGS),
    build_times,
    short_hashes,
)
def test_build_version_nvr_always_parses_back(
    tag: str | None, distance: int, numbering: str, when: datetime, short_hash: str
) -> None:
    built = build_version(tag, distance, numbering, when, short_hash)
    name, version, release = built.nvr("pkg-name").rsplit("-", 2)
    assert (name, version, release) == ("pkg-name", built.version, built.release)
    assert RPM_VERSION.fullmatch(built.version)


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("31.0.0", ("31.0.0", "1")),
        ("v2.3.0", ("2.3.0", "1")),
        ("2.0", ("2.0.0", "1")),
        # RDO's milestone numbering of pre-releases: Release below the final's 1.
        ("31.0.0.0rc1", ("31.0.0", "0.1.0rc1")),
        ("1.2.0rc2", ("1.2.0", "0.2.0rc2")),
        ("6.0.0.0b3", ("6.0.0", "0.3.0b3")),
    ],
)
def test_release_builds_are_numbered_as_rdo_numbers_them(tag, expected):
    assert release_build_numbering(tag) == expected


@pytest.mark.parametrize("tag", ["1.2.3.dev4", "master", "1.0.0+local"])
def test_what_is_not_a_release_has_no_release_numbering(tag):
    with pytest.raises(ValueError, match="not a"):
        release_build_numbering(tag)
