"""`conveyor release branch SERIES`: everything a stable builder needs when rdoinfo gains a
release (`releases:` entry with its `branch`, `upstream_branch` and buildsys tags), as one
reviewable change:

- the builder's `conveyor.toml`, from the running (master) builder's: source branch the
  release's `upstream_branch` (`stable/2025.1`), distgit branch its `branch`
  (`epoxy-rdo`), `[metadata] release` the series, its own data directory, the master's
  build driver, dist, macros, `deps_url` and tag settings kept;
- the master's promotion criteria, copied beside it;
- the distgit branches to create (each package's distgit, from the master's distgit branch),
  created by a push from conveyor's mirror where the distgit accepts one, else listed;
- the release's buildsys tags: a declaration file each (`buildsys-tags/<tag>.yml`, empty)
  and its line in `buildsys-tags.yml`, for the rdoinfo review.

Nothing is overwritten: an existing output folder or declaration is left as it is.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conveyor.config import Config
from conveyor.domain.builds import Mirrors
from conveyor.metadata import load_database, packages_for_release
from conveyor.metadata.buildsys import BUILDSYS_TAGS_ENTRY, check_tag_name
from conveyor.metadata.yamlfiles import entry_file
from conveyor.promote.criteria import CriteriaError, load_criteria
from conveyor.sources import git

__all__ = [
    "BranchError",
    "BranchPlan",
    "DistgitBranch",
    "branch_release",
    "look_up_branches",
    "plan_branch",
]


class BranchError(Exception):
    """The release cannot be branched; the message says why."""


@dataclass
class DistgitBranch:
    package: str
    distgit: str
    source: str  # the master's distgit branch
    branch: str  # the release's
    state: str = "to create"  # created, exists, to create (by hand: the push failed)
    detail: str = ""


@dataclass
class BranchPlan:
    series: str
    source_branch: str
    distro_branch: str
    config_text: str
    criteria: Path | None
    distgits: list[DistgitBranch]
    tags: list[str]  # the release's buildsys tags
    tags_to_declare: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "series": self.series,
            "source_branch": self.source_branch,
            "distro_branch": self.distro_branch,
            "buildsys_tags": self.tags,
            "tags_to_declare": self.tags_to_declare,
            "distgit_branches": [d.__dict__ for d in self.distgits],
        }


def _toml(value: Any) -> str:
    """A TOML value for what a configuration holds: JSON's strings, numbers and booleans
    are TOML's too (control characters escaped alike)."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    return json.dumps(str(value) if isinstance(value, Path) else value)


def stable_baseurl(master: Config, series: str, out: Path) -> tuple[str, bool]:
    """The stable builder's baseurl, and whether it is a guess to check: a local builder's
    is its own repos/ folder; a served one's cannot be known here."""
    if master.baseurl.startswith("file://"):
        return (out.resolve() / "data" / "repos").as_uri(), False
    return f"{master.baseurl.rstrip('/')}-{series}", True


def _config_text(
    master: Config,
    series: str,
    source: str,
    distro: str,
    criteria: bool,
    out: Path,
    releases: Path | None,
) -> str:
    baseurl, guessed = stable_baseurl(master, series, out)
    check = "  # a guess: where this builder's repos/ will be served" if guessed else ""
    lines = [
        f"# The {series} builder, made by `conveyor release-branch {series}` from the master's.",
        'datadir = "data"',
        f"baseurl = {_toml(baseurl)}{check}",
        f"reponame = {_toml(master.reponame)}",
        f"workers = {master.workers}",
        f"source_branch = {_toml(source)}",
        f"distro_branch = {_toml(distro)}",
        "fallback_to_master = false",
        f"build_driver = {_toml(master.build_driver.value)}",
        f"dist = {_toml(master.dist)}",
        f"rpm_macros = {_toml(master.rpm_macros)}",
        f"deps_url = {_toml(master.deps_url)}",
    ]
    if criteria:
        lines.append('promotion_criteria = "promotions.yaml"')
    lines += [
        "",
        "[metadata]",
        f"path = {_toml(str(master.metadata.path))}",
        f"release = {_toml(series)}",
        "",
        "[tags]",
        f"lookaside = {_toml([str(p) for p in master.tags.lookaside])}",
    ]
    if master.tags.baseurl:
        lines.append(f"baseurl = {_toml(master.tags.baseurl)}")
    releases = releases or master.dashboard.releases
    if releases is not None:
        # The dashboard's /releases shows this series' readiness and GA from it.
        lines += ["", "[dashboard]", f"releases = {_toml(str(releases.resolve()))}"]
    return "\n".join(lines) + "\n"


def plan_branch(master: Config, series: str, out: Path, releases: Path | None = None) -> BranchPlan:
    """What branching `series` into the builder folder `out` needs, from rdoinfo's release
    entry and packages. The builder's data directory is `out/data`."""
    db = load_database(entry_file(master.metadata.path))
    release = db.releases.get(series)
    if release is None:
        raise BranchError(f"rdoinfo has no release {series!r}; known: {', '.join(db.releases)}")
    distro = release.get("branch")
    if not distro or distro == master.distro_branch:
        raise BranchError(
            f"release {series!r} has no branch of its own (branch: {distro!r}); "
            f"add one (e.g. {series}-rdo) to rdoinfo first"
        )
    source = release.get("upstream_branch") or f"stable/{release.get('identifier', series)}"
    tags = [
        check_tag_name(str(tag))
        for repo in release.get("repos") or ()
        for tag in repo.get("buildsys-tags") or ()
    ]
    distgits = [
        DistgitBranch(p.name, p.distgit or "", master.distro_branch, str(distro))
        for p in packages_for_release(db, series)
        if p.distgit
    ]
    folder = entry_file(master.metadata.path).parent / "buildsys-tags"
    missing = [t for t in tags if not (folder / f"{t}.yml").exists()]
    criteria = master.promotion_criteria
    text = _config_text(master, series, source, str(distro), criteria is not None, out, releases)
    return BranchPlan(series, source, str(distro), text, criteria, distgits, tags, missing)


def _push(master: Config, item: DistgitBranch) -> None:
    """Creates the release branch on the distgit from conveyor's mirror, where it can. The
    mirror is brought up to date first (or made, when the master builder never fetched
    it): the branch starts at the distgit's master branch as it is now."""
    mirror = Mirrors.under(master.datadir, item.package).distgit
    try:
        remote, _ = asyncio.run(git.refresh_mirror(mirror, item.distgit, master.git_timeout))
    except git.GitError as exc:
        item.detail = _last_line(exc, "cannot fetch it")
        return
    if item.branch in remote.heads:
        item.state = "exists"
        return
    if item.source not in remote.heads:
        item.detail = f"it has no {item.source} branch to start from"
        return
    refspec = f"refs/remotes/origin/{item.source}:refs/heads/{item.branch}"
    try:
        git.run_git(["push", "--quiet", item.distgit, refspec], mirror, master.git_timeout)
    except git.GitError as exc:
        item.detail = _last_line(exc, "push refused")
        return
    item.state = "created"
    item.detail = f"at {remote.heads[item.source][:8]}"


def look_up_branches(master: Config, plan: BranchPlan) -> None:
    """Which release branches the distgits have already (`exists`), for a dry run."""

    async def each(item: DistgitBranch) -> None:
        try:
            remote = await git.ls_remote(item.distgit, master.git_timeout)
        except git.GitError as exc:
            item.detail = _last_line(exc, "cannot list its branches")
            return
        if item.branch in remote.heads:
            item.state = "exists"

    async def every() -> None:
        await asyncio.gather(*(each(item) for item in plan.distgits))

    asyncio.run(every())


def _last_line(exc: Exception, default: str) -> str:
    lines = str(exc).strip().splitlines()
    return lines[-1] if lines else default


def branch_release(master: Config, plan: BranchPlan, out: Path, create_branches: bool) -> bool:
    """Writes the builder's folder `out`, declares the release's tags in rdoinfo, and
    creates the distgit branches where asked and possible. A failure to write leaves no
    builder folder behind. A builder folder that exists is kept as it is (run again to
    create the branches that could not be created); returns whether it was kept. Another
    folder is refused."""
    root = entry_file(master.metadata.path).parent
    if out.exists():
        if not (out / "conveyor.toml").is_file():
            raise BranchError(f"{out} exists: choose a new folder for the {plan.series} builder")
        try:
            _declare(root, plan.tags_to_declare)
        except OSError as exc:
            raise BranchError(f"cannot declare the {plan.series} tags: {exc}") from None
        if create_branches:
            for item in plan.distgits:
                _push(master, item)
        return True
    try:
        out.mkdir(parents=True)
        (out / "conveyor.toml").write_text(plan.config_text, encoding="utf-8")
        if plan.criteria is not None:
            _copy_criteria(plan.criteria, out / "promotions.yaml")
        _declare(root, plan.tags_to_declare)
    except BranchError:
        shutil.rmtree(out, ignore_errors=True)
        raise
    except OSError as exc:
        shutil.rmtree(out, ignore_errors=True)
        raise BranchError(f"cannot write the {plan.series} builder: {exc}") from None
    if create_branches:
        for item in plan.distgits:
            _push(master, item)
    return False


def _copy_criteria(master: Path, copy: Path) -> None:
    """The master's criteria, with a `release:` section when they have none: the jobs of
    the master's last trunk target (`current-passed-ci`), which GA then waits for on the
    -testing tag's repository. A person reviews it with the rest."""
    shutil.copyfile(master, copy)
    try:
        criteria = load_criteria(master)
    except CriteriaError as exc:
        raise BranchError(f"the master's promotion criteria: {exc}") from None
    if criteria.release is not None:
        return
    trunk = [t for t in criteria.targets if t.component is None]
    last = trunk[-1] if trunk else criteria.targets[-1]
    text = copy.read_text(encoding="utf-8")
    text = text if text.endswith("\n") else text + "\n"
    copy.write_text(
        text + "\n# Added by `conveyor release-branch`: the jobs that must pass on the -testing\n"
        f"# tag's repository before `conveyor release-ga` moves it to -release ({last.key}'s).\n"
        f"release:\n  criteria: [{', '.join(json.dumps(j) for j in last.criteria)}]\n",
        encoding="utf-8",
    )


def _declare(root: Path, tags: list[str]) -> None:
    """An empty declaration per new tag, and its line in buildsys-tags.yml."""
    if not tags:
        return
    (root / "buildsys-tags").mkdir(exist_ok=True)
    for tag in tags:
        (root / "buildsys-tags" / f"{tag}.yml").write_text("packages: []\n", encoding="utf-8")
    entry = root / BUILDSYS_TAGS_ENTRY
    text = entry.read_text(encoding="utf-8") if entry.exists() else "import:\n"
    text = text if text.endswith("\n") else text + "\n"
    text += "".join(f"- buildsys-tags/{tag}.yml\n" for tag in tags)
    entry.write_text(text, encoding="utf-8")
