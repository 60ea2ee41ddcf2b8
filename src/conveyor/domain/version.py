"""Version and Release of a trunk build, derived from git facts alone.

DLRN learns the upstream version of a Python project by running ``python setup.py --version``
(pbr) inside a mock chroot, and that of a Puppet module from its ``metadata.json``; it cuts the
result down to an RPM ``Version`` and appends a date-and-hash ``Release`` (dlrn.md section 7).
conveyor never runs upstream code, so this module reproduces those answers from what a git
adapter can report without executing anything:

* pbr's answer, from the tags on each commit in ``git log`` order (the first commit carrying a
  version tag, and how many commits the log lists before it), the ``Sem-Ver:`` footers of the
  commit messages since that tag, and the ``version`` of ``setup.cfg``;
* a Puppet module's answer, from its ``metadata.json`` and ``git describe``.

Everything here is pure: no git, no clock, no filesystem.
"""

from __future__ import annotations

import configparser
import json
import re
import sys
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from conveyor.domain.names import check_package_name

__all__ = [
    "FALLBACK_VERSION",
    "RELEASE_NUMBERINGS",
    "BuildVersion",
    "PbrProject",
    "PuppetModule",
    "SemVerBump",
    "SemanticVersion",
    "TagPosition",
    "build_version",
    "is_ignored_tag",
    "make_build_version",
    "parse_semver",
    "pbr_project",
    "pkg_info",
    "puppet_module",
    "puppet_tarball_name",
    "puppet_version",
    "release_build_numbering",
    "release_string",
    "rpm_version",
    "semver_bump",
    "tag_position",
    "upstream_version",
]

FALLBACK_VERSION = "0.0.1"
RELEASE_NUMBERINGS = ("0.date.hash", "0.1.date.hash", "minor.date.hash")

# --- pbr's semantic versions --------------------------------------------------------------------

# pbr orders pre-releases a < b < rc < final ("z"), by name. It parses other letters too and
# then fails when comparing them; conveyor sorts them by name as well.
_FINAL = "z"


@dataclass(frozen=True)
class SemanticVersion:
    """A version as pbr models it (``pbr.version.SemanticVersion``): release, optional
    pre-release (``a``/``b``/``rc`` and a serial), optional dev count, optional local part."""

    major: int
    minor: int = 0
    patch: int = 0
    prerelease_type: str | None = None
    prerelease: int | None = None
    dev_count: int = 0
    local: str | None = None

    def sort_key(self) -> tuple[int, int, int, int, str, int, int]:
        """pbr's order: a dev build of a release sorts before its pre-releases, which sort before
        the release; a dev build of a pre-release sorts before that pre-release."""
        unqualified_dev = 0 if self.dev_count and not self.prerelease_type else 1
        return (
            self.major,
            self.minor,
            self.patch,
            unqualified_dev,
            self.prerelease_type or _FINAL,
            self.prerelease or 0,
            self.dev_count or sys.maxsize,
        )

    def increment(self, *, minor: bool = False, major: bool = False) -> SemanticVersion:
        """The next version: a patch increment, or the pre-release serial's for a pre-release;
        ``minor`` and ``major`` bump those numbers and drop the pre-release."""
        kind, serial, patch = self.prerelease_type, self.prerelease, self.patch
        if kind:
            serial = (serial or 0) + 1
        else:
            patch += 1
        new_minor, new_major = self.minor, self.major
        if minor:
            new_minor, patch, kind, serial = self.minor + 1, 0, None, None
        if major:
            new_major, new_minor, patch, kind, serial = self.major + 1, 0, 0, None, None
        return SemanticVersion(new_major, new_minor, patch, kind, serial)

    def to_dev(self, count: int) -> SemanticVersion:
        return SemanticVersion(
            self.major, self.minor, self.patch, self.prerelease_type, self.prerelease, count
        )

    def release_string(self) -> str:
        """pbr's spelling: ``1.2.3``, ``1.2.3.0rc1``, ``1.2.4.dev5``, ``2.0.0.0b2.dev3``."""
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease_type:
            text += f".0{self.prerelease_type}{self.prerelease or 0}"
        if self.dev_count:
            text += f".dev{self.dev_count}"
        return text + (f"+{self.local}" if self.local else "")


def _is_int(text: str | int) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def _prerelease_part(segment: str) -> tuple[str, int]:
    """``0rc1`` → (``rc``, 1): leading digits dropped, then letters, then the serial."""
    index = 0
    while index < len(segment) and segment[index].isdigit():
        index += 1
    rest = segment[index:]
    letters = 0
    while letters < len(rest) and rest[letters].isalpha():
        letters += 1
    return rest[:letters], int(rest[letters:])


def _parse_semver(text: str) -> SemanticVersion:
    # Raises ValueError or IndexError for what pbr refuses; parse_semver reports both alike.
    text = text.lstrip("vV")
    main, _, local = text.partition("+")
    if not text[:1].isdigit():
        raise ValueError("does not start with a digit")
    parts = main.split(".")
    # pbr collects every all-digit component, wherever it stands, then lines the others up
    # behind the first len(numbers) components; odd strings parse oddly, exactly as in pbr.
    components: list[str | int] = [part for part in parts if part.isdigit()]
    count = len(components)
    if count == 0:
        raise ValueError("no numeric component")
    if count < 3:
        if count < len(parts) and parts[count][0].isdigit():
            # X.YaZ: the digits before the letters are the next release component.
            mixed = parts[count]
            digits = 0
            while digits < len(mixed) and mixed[digits].isdigit():
                digits += 1
            components.append(mixed[:digits])
            parts[count : count + 1] = [mixed[:digits], mixed[digits:]]
            count += 1
        components.extend([0] * (3 - count))
    components.extend(parts[count:])
    major, minor = int(components[0]), int(components[1])
    if _is_int(components[2]):
        patch = int(components[2])
    else:  # a legacy spelling without a patch number: 1.2.0a1, 1.2.dev4
        patch = 0
        components[2:2] = [0]
    remainder = components[3:]
    dev_count: int | None = None
    post_count: int | None = None
    kind: str | None = None
    serial: int | None = None
    if remainder and _is_int(remainder[0]) and int(remainder[0]):
        dev_count = int(remainder[0])  # the old 0.1.2.3.g1234 form; the rest is ignored
    else:
        first = str(remainder[0]) if remainder else ""
        if remainder and (first[0] == "0" or first[0] in ("a", "b", "r")):
            kind, serial = _prerelease_part(first)
            remainder = remainder[1:]
        for component in map(str, remainder):
            if component.startswith("dev"):
                dev_count = int(component[3:])
            elif component.startswith("post"):
                dev_count = None
                post_count = int(component[4:])
            else:
                raise ValueError(f"unknown component {component!r}")
    version = SemanticVersion(
        major,
        minor,
        patch,
        kind or None,
        (serial or 0) if kind else None,
        dev_count or 0,
        local or None,
    )
    if post_count:
        if dev_count:
            raise ValueError("postN and devN together")
        version = version.increment().to_dev(post_count)
    return version


def parse_semver(text: str) -> SemanticVersion:
    """A version string as pbr reads it (``SemanticVersion.from_pip_string``); ValueError for
    one pbr refuses. Leading ``v``/``V`` are dropped; ``1.0`` is ``1.0.0``; ``1.0rc1``,
    ``1.0.0rc1`` and ``1.0.0.rc1`` are ``1.0.0.0rc1``; ``1.2.3.4`` is the legacy dev form
    ``1.2.3.dev4``; ``1.2.3.post2`` is ``1.2.4.dev2``."""
    try:
        return _parse_semver(text)
    except (ValueError, IndexError):
        raise ValueError(f"not a version pbr reads: {text!r}") from None


def _tag_version(tag: str) -> SemanticVersion | None:
    # pbr's history walk reads a tag with its dashes as dots (1.2.3-rc1 is 1.2.3.rc1). git
    # refuses spaces and control characters in ref names, so no tag holds one.
    if any(c.isspace() or not c.isprintable() for c in tag):
        return None
    try:
        return parse_semver(tag.replace("-", "."))
    except ValueError:
        return None


def is_ignored_tag(tag: str) -> bool:
    """Whether pbr's history walk passes over ``tag``: it is not a version once its dashes are
    read as dots. DLRN's own deletions before building a Python project (``private-*``) and
    before describing a Puppet module (``*-em``, ``*-eol``, ``*-eom``) are mostly of this kind
    already; the git adapter excludes them when it runs ``git describe``."""
    return _tag_version(tag) is None


@dataclass(frozen=True)
class TagPosition:
    """Where pbr finds the last version tag: walking ``git log`` from the commit, in git's
    order, the first commit with a version tag.

    ``tag`` is pbr's spelling of the highest version tag there (dashes read as dots), None when
    no commit carries one; ``distance`` is the number of commits the log lists before it (for
    an untagged history, the number of commits minus one, as pbr counts). ``footers_from`` is
    the tag whose range ``<tag>..<commit>`` holds the ``Sem-Ver:`` footers; None when there is
    no tag (the footers of the whole history count) or when pbr's range names no ref (a tag
    spelled with dashes), in which case no footer counts: see ``footers``.
    """

    tag: str | None
    distance: int
    footers_from: str | None = None

    @property
    def footers(self) -> str:
        """Which commit messages carry the footers: ``none``, ``all`` or ``since-tag``."""
        if self.distance == 0:
            return "none"
        if self.tag is None:
            return "all"
        return "since-tag" if self.footers_from is not None else "none"


def tag_position(tagged: Iterable[tuple[int, Sequence[str]]], commits: int) -> TagPosition:
    """pbr's last tag (``_get_revno_and_last_tag``) from the tagged rows of ``git log``.

    ``tagged`` holds, for the commits that carry tags, their position in ``git log`` order
    (0 for the commit itself) and their tag names; ``commits`` is how many commits the log
    lists. Dated-before-the-tag side branches and merges are therefore counted as git's date
    order lists them, not as ``git describe`` would."""
    for position, names in sorted(tagged, key=lambda row: row[0]):
        versions = [(v, name) for name in names if (v := _tag_version(name)) is not None]
        if not versions:
            continue
        best = max(v.sort_key() for v, _ in versions)
        top = sorted(name for v, name in versions if v.sort_key() == best)
        # Equal versions on one commit (1.0 and 1.0.0) name the same range; a name pbr can
        # hand to git as it spells it (no dash) is preferred.
        spelled = [name for name in top if "-" not in name]
        chosen = (spelled or top)[0]
        candidate = chosen.replace("-", ".")
        return TagPosition(candidate, position, candidate if candidate in names else None)
    return TagPosition(None, max(commits - 1, 0))


@dataclass(frozen=True)
class SemVerBump:
    """What ``Sem-Ver:`` footers ask of the next version (``bugfix`` is the default patch)."""

    minor: bool = False
    major: bool = False


_SEMVER_HEADER = "sem-ver:"


def semver_bump(messages: str) -> SemVerBump:
    """pbr's ``_get_increment_kwargs``: every line of the messages that starts (case- and
    space-insensitively) with ``Sem-Ver:`` lists comma-separated symbols; ``feature`` and
    ``deprecation`` bump the minor number, ``api-break`` the major; others are ignored."""
    symbols: set[str] = set()
    for line in messages.split("\n"):
        line = line.lower().strip()
        if line.startswith(_SEMVER_HEADER):
            symbols.update(s.strip() for s in line[len(_SEMVER_HEADER) :].strip().split(","))
    return SemVerBump(
        minor=bool(symbols & {"feature", "deprecation"}), major="api-break" in symbols
    )


def upstream_version(
    tag: str | None,
    distance: int,
    bump: SemVerBump | None = None,
    pre_version: str | None = None,
) -> str:
    """The version pbr reports (``_get_version_from_git``), ``distance`` commits after ``tag``.

    ``tag`` and ``distance`` come from :func:`tag_position`; ``bump`` from the ``Sem-Ver:``
    footers since the tag (:func:`semver_bump`); ``pre_version`` is ``setup.cfg``'s
    ``[metadata] version``, pbr's target version, if any. A ``tag`` pbr does not read as a
    version (:func:`is_ignored_tag`) counts as none.

    * A tagged commit (``distance`` 0) reports its tag in pbr's spelling: ``1.0`` → ``1.0.0``,
      ``2.0.0rc1`` → ``2.0.0.0rc1``.
    * N commits after ``X.Y.Z``: ``X.Y.(Z+1).devN``; with a ``feature`` footer
      ``X.(Y+1).0.devN``; with ``api-break`` ``(X+1).0.0.devN``.
    * N commits after a pre-release ``X.Y.Z.0rcK``: ``X.Y.Z.0rc(K+1).devN`` (a footer drops the
      pre-release and bumps as above).
    * No tag: counted from ``0``: ``0.0.0`` for a single commit, else ``0.0.1.devN``.
    * With ``pre_version``: the larger of that target's ``.devN`` and the history's; a history
      that requires more than the target is refused with ValueError, as pbr refuses it. On a
      tagged commit the tag wins (pbr would also refuse a lightweight tag above the target).
    """
    if distance < 0:
        raise ValueError(f"distance must be >= 0, got {distance}")
    last = (_tag_version(tag) if tag else None) or SemanticVersion(0)
    if distance == 0:
        return last.release_string()
    bump = bump or SemVerBump()
    new = last.increment(minor=bump.minor, major=bump.major)
    target = parse_semver(pre_version) if pre_version else None
    if target is not None and new.sort_key() > target.sort_key():
        raise ValueError(
            f"git history requires a target version of {new.release_string()}, but setup.cfg's "
            f"version is {pre_version}"
        )
    dev = new.to_dev(distance)
    if target is not None and target.to_dev(distance).sort_key() > dev.sort_key():
        return target.to_dev(distance).release_string()
    return dev.release_string()


# --- what the build reads from the source tree --------------------------------------------------


@dataclass(frozen=True)
class PbrProject:
    """What pbr reads from a project's configuration: the distribution name it looks for in
    ``PKG-INFO``, and ``setup.cfg``'s ``version`` (pbr's target version), both optional."""

    name: str | None = None
    pre_version: str | None = None


def pbr_project(setup_cfg: str | None, pyproject: str | None) -> PbrProject:
    """``[metadata] name`` and ``version`` of ``setup.cfg``; without a name there, the
    ``[project] name`` of a ``pyproject.toml`` whose build backend is pbr's. ValueError for a
    file that cannot be parsed (pbr would stop on it too)."""
    name: str | None = None
    pre_version: str | None = None
    if setup_cfg is not None:
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string(setup_cfg, "setup.cfg")
        except configparser.Error as exc:
            raise ValueError(f"setup.cfg: {exc}") from None
        name = parser.get("metadata", "name", fallback=None) or None
        pre_version = parser.get("metadata", "version", fallback=None) or None
    if name is None and pyproject is not None:
        try:
            data = tomllib.loads(pyproject)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"pyproject.toml: {exc}") from None
        system, project = data.get("build-system"), data.get("project")
        backend = system.get("build-backend") if isinstance(system, dict) else None
        if isinstance(backend, str) and backend.startswith("pbr") and isinstance(project, dict):
            found = project.get("name")
            name = found if isinstance(found, str) and found else None
    return PbrProject(name, pre_version)


def pkg_info(name: str, version: str) -> str:
    """The ``PKG-INFO`` an sdist carries, reduced to what pbr reads when there is no git:
    without it, pbr in the build reports ``0.0.0`` or fails."""
    for field, value in (("name", name), ("version", version)):
        if not value or any(c in value for c in "\r\n"):
            raise ValueError(f"invalid PKG-INFO {field} {value!r}")
    return f"Metadata-Version: 1.1\nName: {name}\nVersion: {version}\n"


@dataclass(frozen=True)
class PuppetModule:
    name: str
    version: str


_PUPPET_VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z._+~-]*")


def puppet_module(metadata_json: str) -> PuppetModule:
    """``name`` and ``version`` of a Puppet module's ``metadata.json``; ValueError when either
    is missing (DLRN's build stops there too) or unusable in a file name."""
    try:
        data = json.loads(metadata_json)
    except ValueError as exc:
        raise ValueError(f"metadata.json: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("metadata.json: not a JSON object")
    fields = {}
    for key in ("name", "version"):
        value = data.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not _PUPPET_VERSION.fullmatch(value):
            raise ValueError(f"metadata.json: no usable {key!r}: {value!r}")
        fields[key] = value
    return PuppetModule(fields["name"], fields["version"])


_TAG_PREFIX_LETTERS = "vVrR"


def puppet_version(version: str, tag: str | None, distance: int) -> str:
    """DLRN's version of a Puppet module: ``metadata.json``'s version, with its last dotted
    component bumped when the commit is past the nearest tag (``git describe --tags``, one
    leading ``v``/``V``/``r``/``R`` dropped), the version equals that tag and is not an
    ``-rc``: ``28.0.0`` two commits after tag ``28.0.0`` is ``28.0.1``."""
    if tag is None or distance == 0:
        return version
    current = tag[1:] if tag[:1] in _TAG_PREFIX_LETTERS else tag
    if version != current or "-rc" in version:
        return version
    head, _, last = version.rpartition(".")
    # awk's $NF+1: the number the last field starts with, plus one.
    digits = 0
    while digits < len(last) and last[digits] in "0123456789":
        digits += 1
    bumped = int(last[:digits] or "0") + 1
    return f"{head}.{bumped}" if head else str(bumped)


def puppet_tarball_name(module_name: str, repository: str) -> str:
    """The folder DLRN names a Puppet module's tarball after: the module's name when it
    contains ``openstack`` (``openstack-nova``; DLRN's ``=~ openstack-*``), else the upstream
    repository's name."""
    return check_package_name(module_name if "openstack" in module_name else repository)


# --- the RPM fields -----------------------------------------------------------------------------

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


def release_build_numbering(tag: str) -> tuple[str, str]:
    """(Version, Release without ``%{?dist}``) of a build of the upstream release `tag`, as
    RDO numbers release builds: a final release is Release ``1`` (``31.0.0`` → ``31.0.0-1``);
    a pre-release takes the milestone form, Release ``0.<n>.0<type><n>`` below the final's
    ``1`` (``31.0.0.0rc1`` and ``31.0.0rc1`` → ``31.0.0-0.1.0rc1``, rc2 → ``0.2.0rc2``).
    Version is read as pbr reads the tag, so it is the one the build itself derives.
    ValueError for a tag that is not a release (unreadable, a dev or local version)."""
    semver = parse_semver(tag)
    if semver.dev_count or semver.local:
        raise ValueError(f"{tag!r} is not a release: pbr reads it as {semver.release_string()}")
    version = rpm_version(semver.release_string())
    if semver.prerelease_type is None:
        return version, "1"
    serial = semver.prerelease or 0
    return version, f"0.{serial}.0{semver.prerelease_type}{serial}"


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


def make_build_version(
    upstream: str,
    numbering: str,
    build_time: datetime,
    short_hash: str,
    minor: str = "0",
) -> BuildVersion:
    """Version, Release and upstream version of a build whose upstream version is known."""
    return BuildVersion(
        version=rpm_version(upstream),
        release=release_string(numbering, build_time, short_hash, minor),
        upstream_version=upstream,
    )


def build_version(
    tag: str | None,
    distance: int,
    numbering: str,
    build_time: datetime,
    short_hash: str,
    minor: str = "0",
) -> BuildVersion:
    """Version, Release and upstream version of the commit pbr finds ``distance`` commits
    after ``tag``, without ``Sem-Ver:`` footers nor a target version."""
    return make_build_version(
        upstream_version(tag, distance), numbering, build_time, short_hash, minor
    )
