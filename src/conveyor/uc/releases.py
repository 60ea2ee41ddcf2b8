"""openstack/releases data joined to rdoinfo packages: what to build or pin before GA.

Deliverables (``deliverables/<series>/*.yaml``) are joined to packages on the upstream
repository path (``https://opendev.org/openstack/nova`` ↔ ``openstack/nova``). For each
package of the release tag: the newest upstream release of the series, the pinned
``source-branch`` and the NVRs in the release's buildsys-tags files, summed up in a state:

========== ==================================================================================
ok          the newest release is built (an NVR of that version is in a buildsys tag)
to-build    the newest release (pinned, or followed on the branch) has no NVR yet
pin-older   the pin is an older version than the newest release: bump it
pin-newer   the pin is newer than any release of the series: check it (wrong series?)
pin-ref     pinned to a branch or commit (e.g. ``master`` for TripleO tools): deliberate
no-release  no release of the upstream repository in the series (independent, retired…)
not-opendev the upstream is neither on opendev.org nor a local mirror of it (file://), so the
            series data says nothing about it
========== ==================================================================================

The first three are what a release engineer acts on (:data:`NEEDS_ACTION`).
"""

from __future__ import annotations

import re
import urllib.parse
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from packaging.version import InvalidVersion, Version

from conveyor.domain.nvr import Nvr
from conveyor.domain.tags import STAGES
from conveyor.metadata import Package, RdoInfoDatabase, load_database, packages_for_release
from conveyor.metadata.buildsys import check_tag_name
from conveyor.metadata.yamlfiles import entry_file
from conveyor.uc.errors import UCError
from conveyor.uc.versions import compare

MAX_BYTES = 5_000_000
STATES = ("ok", "to-build", "pin-older", "pin-newer", "pin-ref", "no-release", "not-opendev")
NEEDS_ACTION = ("to-build", "pin-older", "pin-newer")
_COMMIT = re.compile(r"^[0-9a-f]{7,40}$")
_SERIES = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # a folder of deliverables/


def read_data(path: Path) -> Any:
    try:
        if path.stat().st_size > MAX_BYTES:
            raise UCError(f"{path}: larger than {MAX_BYTES} bytes; refused")
        with path.open("rb") as fh:
            return yaml.load(fh, Loader=yaml.CSafeLoader)
    except (OSError, yaml.YAMLError) as exc:
        raise UCError(f"{path}: cannot read: {exc}") from None


def load_series_status(releases_root: Path) -> list[dict[str, Any]]:
    path = releases_root / "data" / "series_status.yaml"
    if not path.is_file():
        raise UCError(
            f"{path}: no such file: --releases names an openstack/releases checkout "
            f"({releases_root.resolve()} is not one)"
        )
    data = read_data(path)
    if not isinstance(data, list) or not all(isinstance(s, dict) and "name" in s for s in data):
        raise UCError(f"{releases_root}/data/series_status.yaml: expected a list of series")
    return data


def version_key(version: str) -> tuple[int, Version | str]:
    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)


def newest_releases(
    releases_root: Path, series: str, stable_branch_type: str | None = None
) -> dict[str, str]:
    """Upstream repo path (``openstack/nova``) → newest version released in ``series``; only
    the deliverables of that ``stable-branch-type`` when one is given (``none``: those that
    never branch)."""
    if not _SERIES.fullmatch(series):
        raise UCError(f"invalid series name {series!r}: letters, digits, '.', '_' and '-'")
    folder = releases_root / "deliverables" / series
    if not folder.is_dir():
        raise UCError(
            f"{folder}: no deliverables for series {series!r} "
            "(--releases names an openstack/releases checkout)"
        )
    newest: dict[str, str] = {}
    for path in sorted(folder.glob("*.yaml")):
        data = read_data(path)
        if not isinstance(data, dict):
            raise UCError(f"{path}: expected a mapping")
        if stable_branch_type is not None and data.get("stable-branch-type") != stable_branch_type:
            continue
        for release in data.get("releases") or ():
            version = str(release.get("version", ""))
            for project in release.get("projects") or ():
                repo = project.get("repo")
                if not repo or not version:
                    continue
                old = newest.get(repo)
                if old is None or version_key(version) > version_key(old):
                    newest[repo] = version
    return newest


def repo_path(upstream: str) -> str | None:
    """``openstack/nova`` for an opendev.org (or git.openstack.org) URL, and for a local
    mirror (``file:///srv/opendev/openstack/nova``: its last two path components, the
    layout a mirror of opendev keeps), else None."""
    parsed = urllib.parse.urlparse(upstream)
    path = parsed.path.strip("/").removesuffix(".git")
    if parsed.scheme == "file":
        parts = path.split("/")
        return "/".join(parts[-2:]) if len(parts) >= 2 else None
    if parsed.hostname not in ("opendev.org", "git.openstack.org", "review.opendev.org"):
        return None
    return path or None


def release_tags(db: RdoInfoDatabase, release: str) -> list[str]:
    """The buildsys tags rdoinfo's release entry lists (``repos[].buildsys-tags``)."""
    entry = db.releases.get(release) or {}
    tags = [
        str(tag)
        for repo in entry.get("repos") or ()
        if isinstance(repo, dict)
        for tag in repo.get("buildsys-tags") or ()
    ]
    for tag in tags:
        try:
            check_tag_name(tag)
        except ValueError as exc:
            raise UCError(f"rdoinfo release {release}: {exc}") from None
    return tags


def buildsys_nvrs(
    info_root: Path, release: str, tags: Sequence[str] = ()
) -> dict[str, dict[str, str]]:
    """project → {cbs tag → NVR} over the declarations of `tags` (``buildsys-tags/<tag>.yml``),
    or, when the release lists none, of ``buildsys-tags/*-openstack-<release>-*.yml``."""
    found: dict[str, dict[str, str]] = {}
    folder = info_root / "buildsys-tags"
    paths = (
        [folder / f"{t}.yml" for t in tags]
        if tags
        else sorted(folder.glob(f"*-openstack-{release}-*.yml"))
    )
    for path in paths:
        if not path.is_file():
            continue
        data = read_data(path)
        for item in (data or {}).get("packages") or ():
            held = item.get("buildsys-tags") if isinstance(item, dict) else None
            if isinstance(held, dict):
                for tag, nvr in held.items():
                    if nvr:
                        found.setdefault(str(item.get("project")), {})[str(tag)] = str(nvr)
    return found


@dataclass(frozen=True)
class StatusRow:
    project: str
    package: str
    repo: str | None
    upstream_release: str | None
    source_branch: str | None
    nvrs: Mapping[str, str] = field(default_factory=dict)
    state: str = ""
    # With the builder's tag store (release-status --config): the applied NVRs of the
    # series' tags, and the next step toward GA.
    applied: Mapping[str, str] = field(default_factory=dict)
    todo: str = ""


def _built(release: str, nvrs: Mapping[str, str]) -> bool:
    """Whether an NVR of ``release`` (rc versions as RDO packages them) is in a tag."""
    for nvr in nvrs.values():
        try:
            parsed = Nvr.parse(nvr)
        except ValueError:
            continue
        if compare(release, parsed.version, parsed.release) == "equal":
            return True
    return False


def _state(repo: str | None, release: str | None, pin: str | None, nvrs: Mapping[str, str]) -> str:
    if repo is None:
        return "not-opendev"
    if release is None:
        return "no-release"
    if pin is not None and pin.removeprefix("v") != release:
        if _COMMIT.match(pin):
            return "pin-ref"
        try:
            pinned, newest = Version(pin.removeprefix("v")), Version(release)
        except InvalidVersion:
            return "pin-ref"  # a branch: master, stable/4.6…
        if pinned != newest:  # 1.2 and 1.2.0 are one release
            return "pin-older" if pinned < newest else "pin-newer"
    return "ok" if _built(release, nvrs) else "to-build"


def release_status(
    packages: Sequence[Package], newest: Mapping[str, str], nvrs: Mapping[str, Mapping[str, str]]
) -> list[StatusRow]:
    rows = []
    for pkg in sorted(packages, key=lambda p: p.project):
        repo = repo_path(pkg.upstream)
        release = newest.get(repo) if repo else None
        built = nvrs.get(pkg.project, {})
        rows.append(
            StatusRow(
                pkg.project,
                pkg.name,
                repo,
                release,
                pkg.source_branch,
                dict(built),
                _state(repo, release, pkg.source_branch, built),
            )
        )
    return rows


@dataclass(frozen=True)
class SeriesStatus:
    about: Mapping[str, Any]  # the series' entry in series_status.yaml
    rows: list[StatusRow]
    # Repositories released in the series that no package of the release builds (a
    # deliverable RDO does not package, or a package whose upstream URL is wrong).
    unpackaged: list[str]
    # The buildsys tags rdoinfo's release entry lists (empty: RDO's naming is assumed).
    tags: list[str]


def series_release_status(
    releases_root: Path, info: Path, series: str, tag: str | None = None
) -> SeriesStatus:
    """``series``'s entry in series_status.yaml and :func:`release_status` for the packages
    of rdoinfo tag ``tag`` (default: the series); ``info`` is a checkout or its entry file."""
    status = {s["name"]: s for s in load_series_status(releases_root)}
    if series not in status:
        raise UCError(f"unknown series {series!r}; known: {', '.join(status)}")
    entry = entry_file(info)
    db = load_database(entry)
    newest = newest_releases(releases_root, series)
    tags = release_tags(db, series)
    rows = release_status(
        packages_for_release(db, tag or series), newest, buildsys_nvrs(entry.parent, series, tags)
    )
    packaged = {r.repo for r in rows}
    return SeriesStatus(status[series], rows, sorted(set(newest) - packaged), tags)


def next_step(row: StatusRow) -> str:
    """What is still to do for `row` before GA, from its state and the applied tags: build
    the release, fix the pin, apply the declaration, or promote it a stage further."""
    if row.state in ("to-build", "pin-older"):
        return "release-build" if row.state == "to-build" else "release-pins"
    if row.state == "pin-newer":
        return "check the pin"
    if row.state != "ok" or row.upstream_release is None:
        return ""
    final = {n for n in row.nvrs.values() if _built(row.upstream_release, {"": n})}
    reached = [
        stage
        for stage in STAGES
        if any(tag.endswith(f"-{stage}") and nvr in final for tag, nvr in row.applied.items())
    ]
    if not reached:
        return "tags apply"
    return {"candidate": "propose --to testing", "testing": "propose --to release"}.get(
        reached[-1], "done"
    )


def state_counts(rows: Iterable[StatusRow]) -> dict[str, int]:
    counts = Counter(r.state for r in rows)
    return {state: counts[state] for state in STATES if counts[state]}


def compile_pattern(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise UCError(f"invalid regular expression {pattern!r}: {exc}") from None


def check_states(states: Iterable[str]) -> set[str]:
    """``states`` as a set; one that is not in :data:`STATES` is an error."""
    wanted = set(states)
    unknown = wanted - set(STATES)
    if unknown:
        raise UCError(
            f"unknown state {', '.join(sorted(unknown))}; expected one of {', '.join(STATES)}"
        )
    return wanted


def filter_status(
    rows: Iterable[StatusRow],
    pattern: re.Pattern[str] | None = None,
    states: Iterable[str] = (),
) -> list[StatusRow]:
    """Rows whose project or package name matches ``pattern`` (``re.search``, as rdopkg's
    filters) and whose state is one of ``states`` (any state when empty)."""
    wanted = check_states(states)
    return [
        r
        for r in rows
        if (not wanted or r.state in wanted)
        and (pattern is None or pattern.search(r.project) or pattern.search(r.package))
    ]
