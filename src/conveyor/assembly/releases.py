"""Release builds: a package built from an upstream release (the tag openstack/releases
names), with Release `1` instead of the trunk's `0.<date>.<hash>`, by the builder's own build
driver, and tagged into a `-candidate` buildsys tag, as `cbs build` lands a build there.

A release build is a trunk build of the tagged commit (the same source preparation, tarball
and driver: `trunk.buildjob`), whose RPMs go into the tag store's pool instead of a trunk
repository, so it lives here, where the builder is assembled, beside both services. The
candidate tag's declaration (rdoinfo's `buildsys-tags/<tag>.yml`) is edited to name the new
NVR, and that tag alone is applied through the closure gate, once for all the builds of a
batch. A release whose NVR the store already holds is not built again.
"""

from __future__ import annotations

import asyncio
import getpass
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from conveyor.assembly.reqsync import RequirementsSyncError, check_requirements_of
from conveyor.builders.registry import driver_for
from conveyor.builders.spec import SpecError, choose_spec, run_parser
from conveyor.config import Config
from conveyor.domain.builds import BuildJob, BuildTarget, Mirrors
from conveyor.domain.nvr import nvr_from_artifacts
from conveyor.domain.version import release_build_numbering
from conveyor.edit import EditError, MetadataEditor
from conveyor.metadata import load_database
from conveyor.metadata.buildsys import check_tag_name
from conveyor.metadata.errors import MetadataError
from conveyor.metadata.targets import TargetError, load_targets, select_targets
from conveyor.metadata.yamlfiles import entry_file
from conveyor.publish.tagstore import check_nvr_folder
from conveyor.sources import git
from conveyor.store.database import Database
from conveyor.tags import service
from conveyor.tags.builds import add_build, pool_builds
from conveyor.tags.state import AppliedTag, newest_versions
from conveyor.trunk.buildjob import execute_build
from conveyor.uc.errors import UCError
from conveyor.uc.releases import (
    SeriesStatus,
    StatusRow,
    newest_releases,
    next_step,
    release_tags,
    repo_path,
)

__all__ = [
    "PreparedRelease",
    "ReleaseBuild",
    "ReleaseBuildError",
    "apply_declared",
    "build_release",
    "check_candidate",
    "check_not_older",
    "prepare_release",
    "refresh_mirrors",
    "release_targets",
    "tag_builds",
    "with_applied_tags",
]


class ReleaseBuildError(Exception):
    """The release cannot be built or tagged; the message says why."""


@dataclass(frozen=True)
class ReleaseBuild:
    package: str
    version: str  # the upstream release
    nvr: str
    state: str  # built, skipped (the store has that NVR), failed
    notes: str = ""


def refresh_mirrors(config: Config, targets: Sequence[BuildTarget]) -> dict[str, str]:
    """The targets' upstream and distgit mirrors brought up to date, `git_jobs` at a time;
    package name -> why it could not be (the others are fetched all the same)."""
    limit = asyncio.Semaphore(config.git_jobs)
    failed: dict[str, str] = {}

    async def one(target: BuildTarget) -> None:
        mirrors = Mirrors.under(config.datadir, target.name)
        async with limit:
            try:
                await asyncio.gather(
                    git.refresh_mirror(mirrors.upstream, target.upstream, config.git_timeout),
                    git.refresh_mirror(mirrors.distgit, target.distgit, config.git_timeout),
                )
            except git.GitError as exc:
                failed[target.name] = str(exc)

    async def every() -> None:
        await asyncio.gather(*(one(target) for target in targets))

    asyncio.run(every())
    return failed


def release_targets(config: Config) -> list[BuildTarget]:
    """The builder's packages, as release builds take them (load once for a batch)."""
    try:
        return load_targets(config)
    except (TargetError, MetadataError) as exc:
        raise ReleaseBuildError(str(exc)) from None


def _commit(git_dir: Path, ref: str, what: str, timeout: float) -> tuple[str, int]:
    """The commit `ref` names in the mirror, and its time; `what` names it in an error."""
    try:
        line = git.run_git(
            ["log", "-1", "--format=%H %ct", f"{ref}^{{commit}}", "--"], git_dir, timeout
        )
    except git.GitError:
        raise ReleaseBuildError(f"no {what}") from None
    commit, when = line.split()
    return commit, int(when)


@dataclass(frozen=True)
class PreparedRelease:
    """A release build ready to run: its job, and the NVR it should make."""

    package: str
    version: str
    job: BuildJob
    expected: str


def check_candidate(config: Config, tag: str) -> None:
    """The tag builds go into (checked before any build): a `-candidate` tag (builds reach
    testing and release by promotion, never directly), declared in rdoinfo, and one of the
    tags of the release this builder builds where rdoinfo lists them."""
    try:
        check_tag_name(tag)
    except ValueError as exc:
        raise ReleaseBuildError(str(exc)) from None
    if not tag.endswith("-candidate"):
        raise ReleaseBuildError(
            f"{tag} is not a -candidate tag: release builds land in candidate and are "
            "promoted from there (conveyor tags propose, release-ga)"
        )
    path = service.rdoinfo_folder(config) / "buildsys-tags" / f"{tag}.yml"
    if not path.is_file():
        raise ReleaseBuildError(
            f"{tag} is not declared: no {path} (release-branch declares a release's tags)"
        )
    release = config.metadata.release or "master"
    try:
        db = load_database(entry_file(config.metadata.path))
        owners = {name for name in db.releases if tag in release_tags(db, name)}
    except (MetadataError, UCError) as exc:
        raise ReleaseBuildError(str(exc)) from None
    if owners and release not in owners:
        raise ReleaseBuildError(
            f"{tag} is not a tag of release {release}, which this builder builds: give the "
            "release's own builder (its conveyor.toml, made by release-branch)"
        )


def check_not_older(config: Config, prepared: PreparedRelease, tag: str) -> None:
    """A release build never replaces a newer build the tag declares (an older --version
    would silently downgrade the candidate)."""
    declared = service.load_desired(config).content(tag).get(prepared.job.target.name)
    if declared and service.is_older(prepared.expected, declared):
        raise ReleaseBuildError(
            f"{prepared.expected} is older than {declared}, which {tag} declares: "
            "a release build does not downgrade a tag"
        )


def prepare_release(
    config: Config,
    package: str,
    version: str | None,
    series: str | None = None,
    releases: Path | None = None,
    *,
    targets: Sequence[BuildTarget] | None = None,
    fetch: bool = True,
) -> PreparedRelease:
    """The job of building `package` from its upstream tag `version`, or from its newest
    release of `series` in the openstack/releases checkout `releases`; its mirrors fetched
    (unless `fetch` is off: a batch fetches them all first, see `refresh_mirrors`), among
    `targets` when given (a batch loads them once). ReleaseBuildError for an unknown
    package, release, tag or distgit branch."""
    try:
        target = select_targets(targets or release_targets(config), [package])[0]
    except TargetError as exc:
        raise ReleaseBuildError(str(exc)) from None
    if version is None:
        version = _series_release(target, series, releases)
    mirrors = Mirrors.under(config.datadir, target.name)
    if fetch:
        failed = refresh_mirrors(config, [target])
        if failed:
            raise ReleaseBuildError(failed[target.name])
    timeout = config.git_timeout
    tag_ref, branch_ref = f"refs/tags/{version}", f"refs/remotes/origin/{target.distro_branch}"
    upstream_what = f"tag {version} in {package}'s upstream {target.upstream}"
    distgit_what = f"branch {target.distro_branch} in {package}'s distgit {target.distgit}"
    commit, dt_commit = _commit(mirrors.upstream, tag_ref, upstream_what, timeout)
    distro, dt_distro = _commit(mirrors.distgit, branch_ref, distgit_what, timeout)
    try:
        rpm_version, release = release_build_numbering(version)
    except ValueError as exc:
        raise ReleaseBuildError(f"{package}: {exc}") from None
    job = BuildJob(target, mirrors, commit, dt_commit, tag_ref, distro, dt_distro, release=release)
    expected = f"{target.name}-{rpm_version}-{release}{config.dist}"
    return PreparedRelease(package, version, job, expected)


def _series_release(target: BuildTarget, series: str | None, releases: Path | None) -> str:
    """The newest release of the target's upstream repository in `series` (deliverables)."""
    if releases is None or series is None:
        raise ReleaseBuildError("--series needs --releases (an openstack/releases checkout)")
    repo = repo_path(target.upstream)
    newest = newest_releases(releases, series)
    if repo is None or repo not in newest:
        raise ReleaseBuildError(
            f"{target.name}: no release of {target.upstream} in {series} (--series knows "
            "opendev.org upstreams only; give --version)"
        )
    return newest[repo]


def build_release(
    config: Config, db: Database, prepared: PreparedRelease, sync_requirements: bool = False
) -> ReleaseBuild:
    """Builds `prepared` into the tag store's pool, unless the store has its NVR (`skipped`).
    The spec's Requires are checked against the release's requirements.txt first, and with
    `sync_requirements` synced (a distgit commit, pushed; see `reqsync`); a difference left
    is in the notes. A failed build (`failed`, with the build's notes) adds nothing."""
    package, version = prepared.package, prepared.version
    stored = pool_builds_of(db)
    if prepared.expected in stored:
        prepared = _bumped(config, prepared)
    if prepared.expected in stored:
        kept = "in the store already: tagged, not built again"
        return ReleaseBuild(package, version, prepared.expected, "skipped", kept)
    try:
        requirements = check_requirements_of(config, prepared.job, version, sync_requirements)
    except RequirementsSyncError as exc:
        return ReleaseBuild(package, version, prepared.expected, "failed", str(exc))
    said = {"differs": "requirements differ: ", "synced": "requirements synced: "}
    notes = said[requirements.state] + requirements.detail if requirements.state in said else ""
    result = execute_build(requirements.job, config, driver_for(config))
    try:
        if not result.outcome.success:
            logs = _keep_logs(config, prepared.expected, [result.log, *result.extra_logs])
            notes = f"{result.outcome.notes}\nlogs: {logs}"
            return ReleaseBuild(package, version, prepared.expected, "failed", notes)
        nvr = nvr_from_artifacts(p.name for p in result.outcome.rpms) or prepared.expected
        store = service.store_of(config)
        # The pool's metadata is refreshed by the next plan (tags apply, tag_builds), once
        # for a whole batch of builds: the store knows it is behind.
        with service.exclusive(config, db), db.transaction() as session:
            add_build(session, store, nvr, list(result.outcome.rpms), "release")
        return ReleaseBuild(package, version, nvr, "built", notes)
    finally:
        shutil.rmtree(result.workdir, ignore_errors=True)


def _bumped(config: Config, prepared: PreparedRelease) -> PreparedRelease:
    """`prepared` with the spec's own Release where the distgit bumped it for a rebuild of
    the same version (`Release: 2%{?dist}`: a packaging fix), as CBS builds take it; else
    as it is. Read only when the store has the version's first build already."""
    job = prepared.job
    if job.release != "1":
        return prepared  # a pre-release's milestone numbering is conveyor's own
    distgit, timeout = job.mirrors.distgit, config.git_timeout
    try:
        names = git.run_git(["ls-tree", "--name-only", job.distro_hash], distgit, timeout)
        name = choose_spec(job.target.name, names.split())
        text = git.run_git(["show", f"{job.distro_hash}:{name}"], distgit, timeout)
        if not name.endswith(".spec"):
            return prepared
        with tempfile.TemporaryDirectory(prefix="conveyor-release-") as folder:
            spec = Path(folder) / name
            spec.write_text(text, encoding="utf-8")
            answer = run_parser(spec, "requires", {"text": text})
    except (git.GitError, SpecError, OSError):
        return prepared
    found = re.match(r"(\d+)", str(answer["release"]))
    version = prepared.expected.removeprefix(f"{job.target.name}-").split("-", 1)[0]
    if found is None or int(found[1]) <= 1 or answer["version"] != version:
        return prepared
    release = str(int(found[1]))
    expected = f"{job.target.name}-{version}-{release}{config.dist}"
    return replace(prepared, job=replace(job, release=release), expected=expected)


def _keep_logs(config: Config, nvr: str, logs: list[Path]) -> Path:
    """A failed release build's logs, kept in `<datadir>/release-logs/<nvr>/` (its work
    folder goes): the notes quote a few lines, a person needs the whole log."""
    folder = config.datadir / "release-logs" / check_nvr_folder(nvr)
    folder.mkdir(parents=True, exist_ok=True)
    for log in logs:
        if log.is_file():
            shutil.copyfile(log, folder / log.name)
    return folder


def pool_builds_of(db: Database) -> set[str]:
    with db.reader() as session:
        return set(pool_builds(session))


def tag_builds(
    config: Config, db: Database, builds: list[tuple[str, str]], tag: str, reason: str
) -> None:
    """The (project, NVR) `builds` declared in `tag` (rdoinfo edited, minimal diffs) and
    applied with whatever else its declaration holds and the tag does not (one new version,
    through the closure gate: `ClosureRefused`)."""
    editor = MetadataEditor(service.rdoinfo_folder(config))
    try:
        for project, nvr in builds:
            editor.set_buildsys_tag(project, tag, nvr)
    except EditError as exc:
        raise ReleaseBuildError(str(exc)) from None
    apply_declared(config, db, tag, reason)


def apply_declared(config: Config, db: Database, tag: str, reason: str) -> list[AppliedTag]:
    """`tag` brought to its declared content through the closure gate (`ClosureRefused`):
    its new version, or nothing when it is up to date."""
    store = service.store_of(config)
    with service.exclusive(config, db):
        with db.transaction() as session:
            plan = service.plan_declared(config, session, store, [tag])
        return service.apply_plan(config, db, store, plan, getpass.getuser(), reason)


def with_applied_tags(config: Config, series: str, found: SeriesStatus) -> list[StatusRow]:
    """`release-status --config`: the rows of `found` with the builder's applied NVRs of the
    series' tags (the tag store's, a service of its own) and their next step toward GA. The
    builder must be the series' own: another one's tag store would say nothing was applied."""
    if config.metadata.release != series:
        raise UCError(
            f"this builder builds {config.metadata.release or 'master'!r}, not {series!r}: "
            f"give --config the {series} builder's conveyor.toml (made by release-branch)"
        )
    db = Database(config.database_url)
    try:
        with db.reader() as session:
            applied = newest_versions(session)
    finally:
        db.close()
    declared = set(found.tags)
    marker = f"-openstack-{series}-"
    tags = {
        tag: a.content
        for tag, a in applied.items()
        if tag in declared or (not declared and marker in tag)
    }
    result = []
    for row in found.rows:
        held = {tag: names[row.package] for tag, names in tags.items() if row.package in names}
        row = replace(row, applied=held)
        result.append(replace(row, todo=next_step(row)))
    return result
