from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
import rpm
from hypothesis import given
from hypothesis import strategies as st

from conveyor.domain.version import (
    FALLBACK_VERSION,
    RELEASE_NUMBERINGS,
    BuildVersion,
    build_version,
    is_ignored_tag,
    release_string,
    rpm_version,
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

UPSTREAM_VERSIONS = [
    ("1.2.3", 0, "1.2.3"),
    ("1.2.3", 5, "1.2.4.dev5"),
    ("v1.2.3", 0, "1.2.3"),
    ("V1.2.3", 2, "1.2.4.dev2"),
    ("r1.2.3", 1, "1.2.4.dev1"),
    ("R2.0.0", 0, "2.0.0"),
    ("4.2.0", 3, "4.2.1.dev3"),
    ("4.11.0", 6, "4.11.1.dev6"),
    ("1.0", 0, "1.0"),
    ("1.0", 4, "1.0.1.dev4"),
    ("2015.1", 0, "2015.1"),
    ("2015.1", 1604, "2015.1.1.dev1604"),
    ("3", 2, "3.0.1.dev2"),
    ("1.02.3", 1, "1.2.4.dev1"),
    ("1.2.3.4", 0, "1.2.3.4"),
    ("1.2.3.4", 7, "1.2.3.5.dev7"),
    ("v0.10.1.11", 3, "0.10.1.12.dev3"),
    ("1.0.0.0rc1", 0, "1.0.0.0rc1"),
    ("1.0.0.0rc1", 128, "1.0.0.0rc2.dev128"),
    ("v31.0.0.0rc1", 0, "31.0.0.0rc1"),
    ("2.0.0rc1", 0, "2.0.0.0rc1"),
    ("2.0.0rc1", 3, "2.0.0.0rc2.dev3"),
    ("1.0.0.0b2", 15, "1.0.0.0b3.dev15"),
    ("1.0.0a1", 1, "1.0.0.0a2.dev1"),
    ("1.0rc1", 2, "1.0.0.0rc2.dev2"),
    ("1.0.0.rc1", 0, "1.0.0.0rc1"),
    ("8.0.0.0b1", 268, "8.0.0.0b2.dev268"),
    (None, 0, "0.0.1"),
    (None, 12, "0.0.1.dev12"),
    ("", 3, "0.0.1.dev3"),
    ("foo-eol", 2, "0.0.1.dev2"),
    ("1.0.0-eol", 2, "0.0.1.dev2"),
    ("private-x", 0, "0.0.1"),
    ("1.2.3-rc1", 1, "0.0.1.dev1"),
]


@pytest.mark.parametrize(("tag", "distance", "expected"), UPSTREAM_VERSIONS)
def test_upstream_version_table(tag: str | None, distance: int, expected: str) -> None:
    assert upstream_version(tag, distance) == expected


@pytest.mark.parametrize(
    ("tag", "distance", "expected"),
    [
        ("4.11.0", 6, "4.11.1"),
        ("1.0.0.0rc1", 127, "1.0.0"),
        ("2.0.0rc1", 0, "2.0.0"),
        ("1.0.0a1", 0, "1.0.0"),
        ("2015.1", 9, "2015.1.1"),
        ("1.2.3.4", 1, "1.2.3.5"),
        (None, 40, "0.0.1"),
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
        ("vv1.0", True),
        ("1.2.3-rc1", True),
        ("1.0.0.dev3", True),
        ("1.2.3.4rc1", True),
        ("1.2.3", False),
        ("v1.2.3", False),
        ("R1.2.3", False),
        ("2015.1", False),
        ("1.2.3.4", False),
        ("1.0.0.0rc1", False),
        ("2.0.0rc1", False),
        ("1.0.0a1", False),
    ],
)
def test_is_ignored_tag(tag: str, ignored: bool) -> None:
    assert is_ignored_tag(tag) is ignored


prefixes = st.sampled_from(["", "v", "V", "r", "R"])
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


@given(prefixes, st.lists(components, min_size=1, max_size=6), distances)
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


@given(prefixes, st.lists(components, min_size=1, max_size=6))
def test_tagged_release_commit_keeps_the_tag(prefix: str, parts: list[int]) -> None:
    tag = ".".join(map(str, parts))
    assert upstream_version(prefix + tag, 0) == tag


@given(prefixes, components, components, components, prerelease_kinds, components)
def test_tagged_canonical_prerelease_commit_keeps_the_tag(
    prefix: str, x: int, y: int, z: int, kind: str, serial: int
) -> None:
    tag = f"{x}.{y}.{z}.0{kind}{serial}"
    assert upstream_version(prefix + tag, 0) == tag


@given(st.text(max_size=20), st.integers(0, 1000))
def test_ignored_tags_fall_back(tag: str, distance: int) -> None:
    if is_ignored_tag(tag):
        expected = "0.0.1" if distance == 0 else f"0.0.1.dev{distance}"
        assert upstream_version(tag, distance) == expected


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


def test_build_version_matches_dlrn_glanceclient_build() -> None:
    # dlrn.md / rdoinfo notes: python-glanceclient 4.11.1-0.20260422174943.0b06bb4, six
    # commits after tag 4.11.0.
    built = build_version(
        "4.11.0", 6, "0.date.hash", datetime(2026, 4, 22, 17, 49, 43, tzinfo=UTC), "0b06bb4"
    )
    assert built == BuildVersion(
        version="4.11.1", release="0.20260422174943.0b06bb4", upstream_version="4.11.1.dev6"
    )
    assert built.nvr("python-glanceclient") == (
        "python-glanceclient-4.11.1-0.20260422174943.0b06bb4"
    )


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
