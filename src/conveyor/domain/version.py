"""Version and Release of a trunk build, derived from git facts alone.

DLRN learns the upstream version by running ``python setup.py --version`` (pbr) inside a mock
chroot, cuts it down to an RPM ``Version`` and appends a date-and-hash ``Release``. conveyor never
runs upstream code, so this module reproduces pbr's answer from what a git adapter can report
without executing anything: the newest reachable version tag and the number of commits since it.

Everything here is pure: no git, no clock, no filesystem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from conveyor.domain.names import check_package_name

__all__ = [
    "FALLBACK_VERSION",
    "RELEASE_NUMBERINGS",
    "BuildVersion",
    "build_version",
    "is_ignored_tag",
    "release_string",
    "rpm_version",
    "upstream_version",
]

FALLBACK_VERSION = "0.0.1"
RELEASE_NUMBERINGS = ("0.date.hash", "0.1.date.hash", "minor.date.hash")

_IGNORED_TAG_PREFIXES = ("private-",)
_IGNORED_TAG_SUFFIXES = ("-em", "-eol", "-eom")
_TAG_PREFIX_LETTERS = "vVrR"

_RELEASE_TAG = re.compile(r"[0-9]+(?:\.[0-9]+)*")
# pbr reads 1.0rc1, 1.0.0rc1, 1.0.0.rc1 and 1.0.0.0rc1 as the same pre-release; the optional
# ".0" is the lead-in of pbr's canonical spelling, not a fourth release component.
_PRERELEASE_TAG = re.compile(
    r"(?P<release>[0-9]+(?:\.[0-9]+){0,2})(?:\.0?)?(?P<kind>a|b|rc)(?P<serial>[0-9]+)"
)

# DLRN's setversionandrelease tests these in this order and keeps group 1 of the first that
# matches; DOTALL because bash's "." also matches a newline.
_RPM_CUTS = tuple(
    re.compile(pattern, re.DOTALL)
    for pattern in (
        r"([^-]*)-.",
        r"(.*?)\.0rc.",
        r"(.*?)\.0b.",
        r"(.*?)\.0a.",
        r"(.*?)\.dev.",
        r"(.*?)\.g.",
        r"(.*?)\.pre",
    )
)
_PURE_DOTTED = re.compile(r"[.0-9]*")
_RPM_VERSION = re.compile(r"[0-9]+(?:\.[0-9]+)*")

_SHORT_HASH = re.compile(r"[0-9a-f]{7}")
_RELEASE_MINOR = re.compile(r"[0-9]+(?:\.[0-9]+)*")
_NO_SPACE = re.compile(r"\S+")


@dataclass(frozen=True)
class _ParsedTag:
    """``exact`` is the tagged commit's version; later commits are ``<successor>.devN``."""

    exact: str
    successor: str


def _strip_tag_prefix(tag: str) -> str:
    return tag[1:] if tag and tag[0] in _TAG_PREFIX_LETTERS else tag


def _parse_tag(tag: str) -> _ParsedTag | None:
    if tag.startswith(_IGNORED_TAG_PREFIXES) or tag.endswith(_IGNORED_TAG_SUFFIXES):
        return None
    text = _strip_tag_prefix(tag)
    if _RELEASE_TAG.fullmatch(text):
        parts = [int(part) for part in text.split(".")]
        parts.extend([0] * (3 - len(parts)))
        parts[-1] += 1
        return _ParsedTag(exact=text, successor=".".join(map(str, parts)))
    match = _PRERELEASE_TAG.fullmatch(text)
    if match is None:
        return None
    release = [int(part) for part in match["release"].split(".")]
    release.extend([0] * (3 - len(release)))
    base = ".".join(map(str, release))
    kind, serial = match["kind"], int(match["serial"])
    return _ParsedTag(
        exact=f"{base}.0{kind}{serial}",
        successor=f"{base}.0{kind}{serial + 1}",
    )


def is_ignored_tag(tag: str) -> bool:
    """Whether ``tag`` must be left out before looking for the newest reachable version tag.

    DLRN deletes ``private-*``, ``*-em``, ``*-eol`` and ``*-eom`` tags before ``git describe``;
    pbr itself skips tags it cannot parse as a version. Both kinds are ignored here, so the git
    adapter can hand the survivors' newest to :func:`upstream_version`. Dash-separated
    pre-releases such as ``1.2.3-rc1`` count as not version-like, as in pbr's history walk.
    """
    return _parse_tag(tag) is None


def upstream_version(tag: str | None, distance: int) -> str:
    """The version pbr would report ``distance`` commits after ``tag``.

    ``tag`` is the newest reachable non-ignored tag (``None`` if there is none); ``distance`` is
    the number of commits from it to the built commit, 0 when the commit is tagged.

    One leading ``v``, ``V``, ``r`` or ``R`` is dropped from the tag, as DLRN does.

    * Tagged commit: a release tag is returned as written (``v1.0`` → ``1.0``), because that is
      the name upstream published; a pre-release tag is returned in pbr's canonical spelling
      (``2.0.0rc1`` → ``2.0.0.0rc1``), the only one :func:`rpm_version` can cut down correctly.
      pbr itself would also pad short release tags (``1.0`` → ``1.0.0``); both sort below the
      next trunk build, so keeping the tag's spelling loses nothing.
    * N commits after ``X.Y.Z``: ``X.Y.(Z+1).devN``, as pbr; tags with fewer components are
      padded with zeros first (``2015.1`` → ``2015.1.1.devN``), also as pbr.
    * N commits after a tag with more than three components: the last component is bumped
      (``1.2.3.4`` → ``1.2.3.5.devN``), DLRN's rule for tags found with ``git describe``. pbr
      would misread the fourth component as a legacy dev counter and give ``1.2.4.devN``, which
      sorts above a later ``1.2.3.5`` release.
    * N commits after pre-release ``X.Y.Z.0rcK`` (or ``aK``, ``bK``, in any spelling pbr
      accepts): ``X.Y.Z.0rc(K+1).devN``, as pbr's patch-level increment of a pre-release.
    * No tag, or a tag that is not a version: pbr counts from version ``0``, so ``0.0.1.devN``
      with N = ``distance``, and plain ``0.0.1`` (DLRN's fallback) when ``distance`` is 0.

    pbr's ``Sem-Ver:`` commit-message headers, which can bump the minor or major number, are not
    honoured: they would need commit messages, and OpenStack projects do not use them.
    """
    if distance < 0:
        raise ValueError(f"distance must be >= 0, got {distance}")
    parsed = _parse_tag(tag) if tag else None
    if parsed is None:
        return FALLBACK_VERSION if distance == 0 else f"{FALLBACK_VERSION}.dev{distance}"
    if distance == 0:
        return parsed.exact
    return f"{parsed.successor}.dev{distance}"


def rpm_version(raw: str) -> str:
    """The RPM ``Version`` DLRN derives from an upstream version string.

    The first rule that matches wins: ``X-Y`` → ``X``; then the part before ``.0rc…``,
    ``.0b…``, ``.0a…``, ``.dev…``, ``.g…``, ``.pre…``; a pure ``[0-9.]*`` string stays; anything
    else becomes ``0.0.1``.

    Two deliberate differences from DLRN's shell, both only for strings pbr never prints:

    * The cut is at the first occurrence of the marker; bash's greedy match cuts at the last,
      which leaves marker text in the result when a marker repeats.
    * A result that is not dotted digits (``foo.dev1`` → ``foo``, ``-x`` → empty, ``1..2``)
      becomes ``0.0.1`` instead of reaching the spec.

    DLRN then turns the first ``-`` into ``.``; no ``-`` can survive the first rule, so that step
    is a no-op and is not repeated here.
    """
    for cut in _RPM_CUTS:
        match = cut.match(raw)
        if match is not None:
            version = match[1]
            break
    else:
        version = raw if _PURE_DOTTED.fullmatch(raw) else FALLBACK_VERSION
    return version if _RPM_VERSION.fullmatch(version) else FALLBACK_VERSION


def release_string(numbering: str, build_time: datetime, short_hash: str, minor: str = "0") -> str:
    """The RPM ``Release`` of a trunk build: ``<prefix>.<UTC %Y%m%d%H%M%S>.<short_hash>``.

    ``numbering`` selects the prefix: ``0.date.hash`` → ``0``, ``0.1.date.hash`` → ``0.1``,
    ``minor.date.hash`` → ``minor``. ``build_time`` is the build start and must be timezone-aware;
    it is rendered in UTC to whole seconds, so two builds within one second share the date part.
    ``short_hash`` is the 7-character abbreviated commit hash.

    Raises ValueError for an unknown numbering, a naive or out-of-range ``build_time``, a
    ``short_hash`` that is not 7 lowercase hex digits, or a ``minor`` that is not dotted digits.
    """
    if build_time.utcoffset() is None:
        raise ValueError(f"build_time must be timezone-aware, got {build_time!r}")
    if not _SHORT_HASH.fullmatch(short_hash):
        raise ValueError(f"short_hash must be 7 lowercase hex digits, got {short_hash!r}")
    if not _RELEASE_MINOR.fullmatch(minor):
        raise ValueError(f"release minor must be dotted digits, got {minor!r}")
    if numbering == "0.date.hash":
        prefix = "0"
    elif numbering == "0.1.date.hash":
        prefix = "0.1"
    elif numbering == "minor.date.hash":
        prefix = minor
    else:
        raise ValueError(f"unknown release numbering {numbering!r}; expected {RELEASE_NUMBERINGS}")
    try:
        utc = build_time.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError(f"build_time {build_time!r} is out of range in UTC") from exc
    # Fixed-width fields keep the date a 14-digit number on every platform (strftime's %Y does
    # not zero-pad years below 1000 everywhere), so it sorts chronologically under rpmvercmp.
    date = (
        f"{utc.year:04d}{utc.month:02d}{utc.day:02d}{utc.hour:02d}{utc.minute:02d}{utc.second:02d}"
    )
    return f"{prefix}.{date}.{short_hash}"


@dataclass(frozen=True)
class BuildVersion:
    """RPM Version and Release of one build, plus the upstream version they came from."""

    version: str
    release: str
    upstream_version: str

    def __post_init__(self) -> None:
        # NVR parsing splits on the last two dashes, so neither field may contain one.
        for field, value in (("version", self.version), ("release", self.release)):
            if not _NO_SPACE.fullmatch(value) or "-" in value:
                raise ValueError(f"invalid RPM {field} {value!r}")
        if not _NO_SPACE.fullmatch(self.upstream_version):
            raise ValueError(f"invalid upstream version {self.upstream_version!r}")

    def nvr(self, name: str) -> str:
        return f"{check_package_name(name)}-{self.version}-{self.release}"


def build_version(
    tag: str | None,
    distance: int,
    numbering: str,
    build_time: datetime,
    short_hash: str,
    minor: str = "0",
) -> BuildVersion:
    """Version, Release and upstream version of the commit ``distance`` commits after ``tag``."""
    upstream = upstream_version(tag, distance)
    return BuildVersion(
        version=rpm_version(upstream),
        release=release_string(numbering, build_time, short_hash, minor),
        upstream_version=upstream,
    )
