"""The difference between two published repositories: packages added, removed and changed,
with the upstream commits between the two builds of a changed package.

A repository is named as a user knows it: a hash directory (`<commit>_<distro[:8]>`, its
path below `repos/`, or an abbreviated commit hash), or a label (`current`, `consistent`, a
promotion label, also `component/<c>/<label>`). Names are checked (conveyor.domain.names,
.labels) before they reach the filesystem, and what they resolve to must stay inside
`repos/`.

Each published repository lists its content in `versions.csv` (every package, with its
hashes and NVR): two files of 1,000 rows are read and compared in a few milliseconds, and a
hash directory never changes, so a parsed file is kept (keyed by its resolved path, size and
mtime). The commits between two builds come from the builder's bare mirrors
(`<datadir>/sources/<package>/upstream.git`) with one bounded `git log` per changed package,
run a few at a time within a time budget; an answer between two fixed hashes never changes
and is kept too. Without a mirror, the two hashes are linked to the forge where
conveyor.domain.forge knows it.
"""

from __future__ import annotations

import csv
import functools
import io
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conveyor.domain.builds import Mirrors
from conveyor.domain.forge import commit_url
from conveyor.domain.labels import COMPONENT_DIR, is_shard, layout_collision
from conveyor.domain.names import InvalidName, check_component, check_hash, check_label
from conveyor.domain.names import check_package_name as _check_package_name
from conveyor.publish.formats import VERSIONS_CSV_HEADER
from conveyor.sources.git import GitError, run_git

__all__ = [
    "BadReference",
    "Change",
    "DiffError",
    "PackageVersion",
    "RepoDiff",
    "Repository",
    "UnknownRepository",
    "UpstreamCommit",
    "diff_repositories",
    "label_suggestions",
    "read_versions",
    "resolve_repository",
    "upstream_commits",
]

VERSIONS_FILE = "versions.csv"
# A versions.csv of 2,000 packages is about 600 KB; anything far larger is not one.
MAX_VERSIONS_BYTES = 32 * 1024 * 1024
# The commits listed per changed package, and the time all `git log` calls of a diff may take.
MAX_COMMITS = 50
GIT_BUDGET_SECONDS = 2.0
GIT_WORKERS = 4
_MAX_REF = 512
# A forge link is a pure function of the clone URL and the hash; a page shows hundreds.
_commit_url = functools.lru_cache(maxsize=16_384)(commit_url)

# A hash directory's name: the commit hash, then `_` and the short distro (and extended) hashes.
_HASH_DIR = re.compile(r"^[0-9a-f]{7,64}(?:_[0-9a-f]{1,64}){0,3}$")
_HEX = re.compile(r"^[0-9a-f]{7,64}$")
_COLUMN_NONE = "None"  # DLRN writes Python's None literally


class DiffError(Exception):
    """A repository that cannot be compared; `status` is the HTTP answer it deserves."""

    status = 400


class BadReference(DiffError):
    """Text that cannot name a repository (400)."""


class UnknownRepository(DiffError):
    """A well-formed name of a repository that does not exist (404)."""

    status = 404


@dataclass(frozen=True, slots=True)
class PackageVersion:
    """One row of a repository's versions.csv."""

    package: str
    nvr: str | None
    commit_hash: str
    distro_hash: str | None
    extended_hash: str | None
    status: str
    component: str | None
    source_repo: str | None
    last_success: int | None
    dist_repo: str | None = None

    @property
    def url(self) -> str | None:
        """The commit on its forge; None when there is no page to link."""
        return _commit_url(self.source_repo, self.commit_hash)

    def as_json(self) -> dict[str, Any]:
        return {
            "package": self.package,
            "nvr": self.nvr,
            "commit_hash": self.commit_hash,
            "distro_hash": self.distro_hash,
            "extended_hash": self.extended_hash,
            "status": self.status,
            "component": self.component,
            "url": self.url,
        }


@dataclass(frozen=True, slots=True)
class Repository:
    """A repository the user named, resolved."""

    ref: str  # as given
    relpath: str  # below repos/, after following links
    label: str | None  # the label it was named by, if any
    packages: Mapping[str, PackageVersion]

    def as_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "path": self.relpath,
            "label": self.label,
            "packages": len(self.packages),
        }


@dataclass(frozen=True, slots=True)
class UpstreamCommit:
    commit_hash: str
    subject: str
    url: str | None

    def as_json(self) -> dict[str, Any]:
        return {"hash": self.commit_hash, "subject": self.subject, "url": self.url}


# What the commits of a change are: how they were (or were not) found.
LISTED = "listed"  # every commit between the two, oldest last
TRUNCATED = "truncated"  # the first MAX_COMMITS of more
BACKWARDS = "backwards"  # the new build is older: the commits it goes back over
SAME_SOURCE = "same-source"  # the upstream commit is the same (a distgit or rebuild change)
NO_MIRROR = "no-mirror"  # this builder has no mirror of the package's upstream
UNKNOWN = "unknown"  # the mirror does not know one of the hashes (or git failed)
SKIPPED = "skipped"  # not looked up: out of the time budget, or not asked for
_STATE_NOTES = {
    LISTED: "",
    TRUNCATED: f"the newest {MAX_COMMITS} commits only",
    BACKWARDS: "the new build is older: commits it goes back over",
    SAME_SOURCE: "same upstream commit: packaging or rebuild change",
    NO_MIRROR: "no mirror of the upstream on this builder",
    UNKNOWN: "the mirror does not know one of the two commits",
    SKIPPED: "commits not looked up",
}


@dataclass(slots=True)
class Change:
    package: str
    old: PackageVersion
    new: PackageVersion
    commits: tuple[UpstreamCommit, ...] = ()
    commits_state: str = SKIPPED

    @property
    def note(self) -> str:
        return _STATE_NOTES.get(self.commits_state, "")

    def as_json(self) -> dict[str, Any]:
        return {
            "package": self.package,
            "old": self.old.as_json(),
            "new": self.new.as_json(),
            "commits": [c.as_json() for c in self.commits],
            "commits_state": self.commits_state,
        }


@dataclass(slots=True)
class RepoDiff:
    old: Repository
    new: Repository
    added: list[PackageVersion] = field(default_factory=list)
    removed: list[PackageVersion] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)
    unchanged: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "from": self.old.as_json(),
            "to": self.new.as_json(),
            "summary": {
                "added": len(self.added),
                "removed": len(self.removed),
                "changed": len(self.changed),
                "unchanged": self.unchanged,
            },
            "added": [p.as_json() for p in self.added],
            "removed": [p.as_json() for p in self.removed],
            "changed": [c.as_json() for c in self.changed],
        }


# --- naming a repository ------------------------------------------------------------------


def _label(name: str) -> str:
    """A label name, or BadReference: a name of the layout (a shard, a report) is no label."""
    try:
        check_label(name)
    except InvalidName:
        raise BadReference(f"{name!r} is neither a repository hash nor a label") from None
    reason = layout_collision(name)
    if reason is not None:
        raise BadReference(f"{name!r} is not a label: {reason}")
    return name


def _hash_dir(name: str) -> str:
    """`xx/yy/<name>` of a hash directory's name."""
    if not _HASH_DIR.fullmatch(name) or ".." in name:
        raise BadReference(f"{name!r} is not a repository hash (<commit>_<distro[:8]>)")
    return f"{name[0:2]}/{name[2:4]}/{name}"


def _checked_shards(first: str, second: str, name: str) -> str:
    if not (is_shard(first) and is_shard(second)):
        raise BadReference(f"{first}/{second}: not the folders of a hash directory")
    if not (_HASH_DIR.fullmatch(name) or _HEX.fullmatch(name)) or name[0:4] != first + second:
        raise BadReference(f"{name!r} is not a repository hash of {first}/{second}/")
    return f"{first}/{second}/{name}"


def _by_commit(root: Path, prefix: str) -> str | None:
    """The one published repository whose commit hash starts with `prefix` (7 to 64 hex
    digits): the shard folder holds a handful of directories, even on a long history."""
    shard = root / prefix[0:2] / prefix[2:4]
    try:
        names = sorted(e.name for e in os.scandir(shard) if e.name.startswith(prefix))
    except OSError:
        return None
    published = [n for n in names if (shard / n / VERSIONS_FILE).is_file()]
    if len(published) > 1:
        shown = ", ".join(published[:5])
        raise BadReference(f"{prefix!r} names several repositories: {shown}; give the full name")
    return f"{prefix[0:2]}/{prefix[2:4]}/{published[0]}" if published else None


def _relpath(root: Path, ref: str) -> tuple[str, str | None]:
    """Where `ref` is below repos/ (before links are followed), and the label it names."""
    text = ref.strip().removeprefix("repos/").strip("/")
    if not text:
        raise BadReference("no repository given")
    parts = text.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise BadReference(f"{ref!r}: a repository path has no empty, `.` or `..` parts")
    base = ""
    if parts[0] == COMPONENT_DIR:
        if len(parts) < 3:
            raise BadReference(f"{ref!r}: a component path is component/<name>/<repository>")
        try:
            check_component(parts[1])
        except InvalidName as exc:
            raise BadReference(str(exc)) from None
        base, parts = f"{COMPONENT_DIR}/{parts[1]}/", parts[2:]
    if len(parts) == 1:
        name = parts[0]
        try:
            check_label(name)  # hash directory names and labels alike, before any lookup
        except InvalidName:
            raise BadReference(f"{name!r} is neither a repository hash nor a label") from None
        folder = root / base if base else root
        if (folder / name).is_symlink():
            return base + _label(name), name
        if _HEX.fullmatch(name):  # a commit hash, possibly abbreviated
            found = _by_commit(folder, name)
            if found is None:
                raise UnknownRepository(f"no published repository of commit {name}")
            return base + found, None
        if _HASH_DIR.fullmatch(name):
            return base + _hash_dir(name), None
        return base + _label(name), name
    if len(parts) == 3:
        return base + _checked_shards(*parts), None
    if len(parts) == 4 and not base:  # an aggregate: <label>/xx/yy/<aggregate hash>
        label = _label(parts[0])
        try:
            check_hash(parts[3])
        except InvalidName:
            raise BadReference(f"{parts[3]!r} is not an aggregate hash") from None
        return f"{label}/{_checked_shards(*parts[1:])}", None
    raise BadReference(f"{ref!r} is not a repository path (xx/yy/<commit>_<distro[:8]>)")


def resolve_repository(repos_dir: Path, ref: str) -> Repository:
    """The repository `ref` names, with its packages; BadReference for text that cannot
    name one, UnknownRepository when it names none that exists (or a failed build)."""
    if len(ref) > _MAX_REF or "\x00" in ref or "\\" in ref:
        raise BadReference("not a repository name")
    if ref.startswith("/"):
        raise BadReference(f"{ref!r}: give a path below repos/, not an absolute path")
    root = Path(os.path.realpath(repos_dir))
    relpath, label = _relpath(root, ref)
    real = Path(os.path.realpath(root / relpath))
    if real != root and root not in real.parents:
        raise UnknownRepository(f"{ref}: no such repository")  # a link out of the tree
    versions = real / VERSIONS_FILE
    if not real.is_dir():
        raise UnknownRepository(f"{ref}: no such repository")
    if not versions.is_file():
        raise UnknownRepository(
            f"{ref}: not a published repository (no versions.csv: a failed build's logs?)"
        )
    return Repository(
        ref.strip(), real.relative_to(root).as_posix(), label, read_versions(versions)
    )


def label_suggestions(repos_dir: Path, limit: int = 100) -> list[str]:
    """The labels at the top of repos/ (current, consistent, promotion labels; links, or an
    aggregate's folder when components are on), sorted."""
    found = []
    try:
        entries = list(os.scandir(repos_dir))
    except OSError:
        return []
    for entry in entries:
        try:
            _label(entry.name)
        except BadReference:
            continue
        # A link to a repository, or an aggregate's folder (components on).
        if entry.is_symlink() or (Path(entry.path) / VERSIONS_FILE).is_file():
            found.append(entry.name)
    return sorted(found)[:limit]


# --- reading versions.csv -------------------------------------------------------------------

_Key = tuple[Path, int, int]
_CACHE: OrderedDict[_Key, dict[str, PackageVersion]] = OrderedDict()
_CACHE_SIZE = 32
_CACHE_LOCK = threading.Lock()


def _value(text: str) -> str | None:
    return None if text in ("", _COLUMN_NONE) else text


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def parse_versions(text: str) -> dict[str, PackageVersion]:
    """versions.csv's rows by package. The columns are found by their header (DLRN's older
    files lack the last ones); a file without `Project` and `Source Sha` is refused."""
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None)
    if header is None:
        return {}
    where = {name: i for i, name in enumerate(header)}
    if "Project" not in where or "Source Sha" not in where:
        raise DiffError("versions.csv has no Project and Source Sha columns")
    width = len(header)
    columns = [where.get(name, -1) for name in VERSIONS_CSV_HEADER]
    packages: dict[str, PackageVersion] = {}
    for row in rows:
        if len(row) < width:
            row = row + [""] * (width - len(row))
        cells = [row[i] if i >= 0 else "" for i in columns]
        project, source, source_sha, dist, dist_sha, status, last, comp, ext, nvr = cells
        if not project:
            continue
        packages[project] = PackageVersion(
            package=project,
            nvr=_value(nvr),
            commit_hash=source_sha,
            distro_hash=_value(dist_sha),
            extended_hash=_value(ext),
            status=status,
            component=_value(comp),
            source_repo=_value(source),
            last_success=_int(last),
            dist_repo=_value(dist),
        )
    return packages


def read_versions(path: Path) -> dict[str, PackageVersion]:
    """A versions.csv, parsed; kept while its resolved path, size and mtime stay the same."""
    real = Path(os.path.realpath(path))
    try:
        info = real.stat()
    except OSError:
        raise UnknownRepository(f"{path.name}: not readable") from None
    if info.st_size > MAX_VERSIONS_BYTES:
        raise DiffError(f"{path.name} is {info.st_size} bytes: not a versions.csv")
    key = (real, info.st_size, info.st_mtime_ns)
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        if cached is not None:
            _CACHE.move_to_end(key)
            return cached
    try:
        with real.open(encoding="utf-8", errors="replace", newline="") as stream:
            parsed = parse_versions(stream.read())
    except OSError:
        raise UnknownRepository(f"{path.name}: not readable") from None
    with _CACHE_LOCK:
        _CACHE[key] = parsed
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return parsed


# --- comparing ------------------------------------------------------------------------------


def _identity(p: PackageVersion) -> tuple[str, str | None, str | None, str | None]:
    return p.commit_hash, p.distro_hash, p.extended_hash, p.nvr


def compare(old: Repository, new: Repository) -> RepoDiff:
    """Packages added, removed and changed (another build: hashes or NVR) from `old` to `new`."""
    result = RepoDiff(old, new)
    before, after = old.packages, new.packages
    for name in sorted(before.keys() | after.keys()):
        was, now = before.get(name), after.get(name)
        if was is None and now is not None:
            result.added.append(now)
        elif now is None and was is not None:
            result.removed.append(was)
        elif was is not None and now is not None:
            if _identity(was) == _identity(now):
                result.unchanged += 1
            else:
                state = SAME_SOURCE if was.commit_hash == now.commit_hash else SKIPPED
                result.changed.append(Change(name, was, now, commits_state=state))
    return result


# --- the commits between two builds ---------------------------------------------------------

_Range = tuple[str, str, str]  # package, old hash, new hash
_LOG_CACHE: OrderedDict[_Range, tuple[str, tuple[tuple[str, str], ...]]] = OrderedDict()
_LOG_CACHE_SIZE = 4096


def _range_of(change: Change) -> _Range:
    return change.package, change.old.commit_hash, change.new.commit_hash


def _git_log(mirror: Path, since: str, until: str, timeout: float) -> list[tuple[str, str]]:
    text = run_git(
        ["log", f"--max-count={MAX_COMMITS + 1}", "--format=%H%x00%s", f"{since}..{until}", "--"],
        mirror,
        timeout,
    )
    found = []
    for line in text.splitlines():
        sha, _, subject = line.partition("\x00")
        if sha:
            found.append((sha, subject))
    return found


def _lookup(mirror: Path, old: str, new: str, deadline: float) -> tuple[str, list[tuple[str, str]]]:
    forward = _git_log(mirror, old, new, max(0.1, deadline - time.monotonic()))
    if forward:
        return (TRUNCATED if len(forward) > MAX_COMMITS else LISTED), forward[:MAX_COMMITS]
    back = _git_log(mirror, new, old, max(0.1, deadline - time.monotonic()))
    return BACKWARDS, back[:MAX_COMMITS]


def _commits_of(
    datadir: Path, change: Change, deadline: float
) -> tuple[str, tuple[tuple[str, str], ...]]:
    old, new = change.old.commit_hash, change.new.commit_hash
    key = _range_of(change)
    with _CACHE_LOCK:
        cached = _LOG_CACHE.get(key)
    if cached is not None:
        return cached
    if time.monotonic() >= deadline:
        return SKIPPED, ()
    try:
        name = _check_package_name(change.package)
        check_hash(old)
        check_hash(new)
    except InvalidName:
        return UNKNOWN, ()
    mirror = Mirrors.under(datadir, name).upstream
    if not (mirror / "HEAD").is_file():
        return NO_MIRROR, ()
    try:
        state, commits = _lookup(mirror, old, new, deadline)
    except GitError:
        if time.monotonic() >= deadline:
            return SKIPPED, ()
        return UNKNOWN, ()
    answer = (state, tuple(commits))
    with _CACHE_LOCK:
        _LOG_CACHE[key] = answer
        while len(_LOG_CACHE) > _LOG_CACHE_SIZE:
            _LOG_CACHE.popitem(last=False)
    return answer


def upstream_commits(
    datadir: Path,
    changes: Sequence[Change],
    budget: float = GIT_BUDGET_SECONDS,
    workers: int = GIT_WORKERS,
) -> None:
    """Fill in each change's commits between its two upstream hashes, from the mirrors,
    `workers` at a time; what the `budget` (seconds) does not reach stays SKIPPED."""
    todo = [c for c in changes if c.commits_state == SKIPPED]
    if not todo:
        return
    deadline = time.monotonic() + budget

    def apply(change: Change, state: str, commits: tuple[tuple[str, str], ...]) -> None:
        url_of = change.new if state != BACKWARDS else change.old
        change.commits_state = state
        change.commits = tuple(
            UpstreamCommit(sha, subject, _commit_url(url_of.source_repo, sha))
            for sha, subject in commits
        )

    def fill(change: Change) -> None:
        apply(change, *_commits_of(datadir, change, deadline))

    with _CACHE_LOCK:  # the answers known already, without a thread
        known = [
            (c, _LOG_CACHE.get((c.package, c.old.commit_hash, c.new.commit_hash))) for c in todo
        ]
    asked = []
    for change, answer in known:
        if answer is None:
            asked.append(change)
        else:
            apply(change, *answer)
    if len(asked) <= 1 or workers <= 1:
        for change in asked:
            fill(change)
        return
    with ThreadPoolExecutor(max_workers=min(workers, len(asked))) as pool:
        list(pool.map(fill, asked))


def diff_repositories(
    repos_dir: Path,
    datadir: Path,
    old_ref: str,
    new_ref: str,
    commits: bool = True,
    budget: float = GIT_BUDGET_SECONDS,
) -> RepoDiff:
    """The diff from `old_ref` to `new_ref`; with `commits`, the upstream commits between
    the builds of each changed package (bounded by `budget` seconds in all)."""
    old = resolve_repository(repos_dir, old_ref)
    new = resolve_repository(repos_dir, new_ref)
    result = compare(old, new)
    if commits:
        upstream_commits(datadir, result.changed, budget)
    return result
