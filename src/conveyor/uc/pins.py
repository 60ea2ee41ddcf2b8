"""Pins for branchless projects: what RDO writes by hand around GA.

Some deliverables never get a stable branch (openstack/releases says `stable-branch-type:
none`: tempest plugins, release-test...). A stable builder cannot follow `stable/<series>`
for them, so rdoinfo pins each one's `source-branch` to the series' final release, in
`tags/<series>.yml` (`barbican-tempest-plugin: {epoxy: {source-branch: 4.3.0}}`).
`conveyor release-pins` proposes exactly those edits, from the deliverables:

====== =====================================================================================
pin     no pin yet (or a branch, such as master): pin the final release
bump    pinned to an older release of the series: move the pin to the final release
ok      pinned to the final release
lower   pinned to a release newer than the series' final one: refused, for a person to check
ref     pinned to a commit: a deliberate choice, left alone
====== =====================================================================================
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.version import InvalidVersion, Version

from conveyor.metadata import Package, load_database, packages_for_release
from conveyor.metadata.yamlfiles import entry_file
from conveyor.uc.errors import UCError
from conveyor.uc.releases import newest_releases, repo_path

__all__ = [
    "BRANCHLESS",
    "Pin",
    "branchless_releases",
    "plan_pins",
    "refused_pins",
    "series_pins",
]

BRANCHLESS = "none"  # deliverables' `stable-branch-type` of projects that never branch
_COMMIT = re.compile(r"^[0-9a-f]{7,40}$")


@dataclass(frozen=True)
class Pin:
    project: str
    repo: str
    release: str  # the series' final release of the repository
    current: str | None  # the package's source-branch for the series now
    state: str  # pin, bump, ok, lower, ref

    @property
    def to_write(self) -> bool:
        return self.state in ("pin", "bump")


def branchless_releases(releases_root: Path, series: str) -> dict[str, str]:
    """Repository path (`openstack/barbican-tempest-plugin`) -> newest release in `series`,
    for the deliverables that never branch."""
    return newest_releases(releases_root, series, BRANCHLESS)


def _state(current: str | None, release: str) -> str:
    if current is None:
        return "pin"
    if _COMMIT.match(current):
        return "ref"
    try:
        pinned = Version(current.removeprefix("v"))
    except InvalidVersion:
        return "pin"  # a branch (master, stable/...): a stable builder needs the release
    final = Version(release)
    if pinned == final:
        return "ok"
    return "bump" if pinned < final else "lower"


def plan_pins(packages: Sequence[Package], branchless: Mapping[str, str]) -> list[Pin]:
    """One row per package whose upstream is a branchless deliverable of the series."""
    pins = []
    for package in sorted(packages, key=lambda p: p.project):
        repo = repo_path(package.upstream)
        if repo is None or repo not in branchless:
            continue
        release = branchless[repo]
        pins.append(
            Pin(
                package.project,
                repo,
                release,
                package.source_branch,
                _state(package.source_branch, release),
            )
        )
    return pins


def series_pins(releases_root: Path, info: Path, series: str, tag: str | None = None) -> list[Pin]:
    """The pins of the packages of rdoinfo tag `tag` (default: the series)."""
    db = load_database(entry_file(info))
    wanted = tag or series
    known = set(db.releases) | {t for p in db.packages.values() for t in p.get("tags") or ()}
    if wanted not in known:
        raise UCError(f"rdoinfo has no release or tag {wanted!r} (give --tag for another name)")
    return plan_pins(packages_for_release(db, wanted), branchless_releases(releases_root, series))


def refused_pins(pins: Sequence[Pin], series: str) -> str | None:
    """Why `pins` cannot be written, or None: a pin newer than the series' final release
    is a mistake (a wrong series, a typo) for a person to check."""
    lower = [p for p in pins if p.state == "lower"]
    if not lower:
        return None
    names = ", ".join(f"{p.project} (pinned {p.current}, final {p.release})" for p in lower)
    return f"refused: pinned newer than the {series} final release: {names}; nothing edited"
