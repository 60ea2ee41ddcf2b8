"""What a bisection searches: the changes from the good to the bad repository (the diff of
conveyor.reports.diff), each package's builds as the database knows them, in the order the
search applies them.

Fixed at the start and stored with the bisection: labels move on, the builds they named
stay. A build is named by its repository's path below repos/ (unique, and where its RPMs
are); `BuildInfo` holds what the step repositories and the conclusion show of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from conveyor.domain.bisect import Change, Plan
from conveyor.domain.depgraph import DependencyGraph, layers
from conveyor.domain.names import InvalidName
from conveyor.domain.nvr import nvr_from_artifacts
from conveyor.domain.paths import commit_relpath
from conveyor.domain.status import CommitStatus
from conveyor.publish.repodata import PackageXmlCache, relations
from conveyor.reports.diff import DiffError, PackageVersion, compare, resolve_repository
from conveyor.store.models import FLAG_PURGED, Commit


class BisectError(Exception):
    """A bisection that cannot start or go on; `status` is the HTTP answer it deserves."""

    status = 400


@dataclass(frozen=True)
class BuildInfo:
    """One successful build, as a step repository and a conclusion show it."""

    package: str
    path: str  # its repository below repos/: the build's key
    commit_id: int
    commit_hash: str
    distro_hash: str | None
    extended_hash: str | None
    component: str | None
    nvr: str | None
    files: tuple[str, ...]  # its RPMs' file names, in `path`
    dt_commit: int | None
    dt_build: int | None
    source_repo: str | None
    dist_repo: str | None

    def as_json(self) -> dict[str, Any]:
        return asdict(self) | {"files": list(self.files)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BuildInfo:
        return cls(**(dict(data) | {"files": tuple(data["files"])}))


@dataclass(frozen=True)
class Bisectable:
    """The plan of the pure rules and what its build keys stand for."""

    plan: Plan
    builds: Mapping[str, BuildInfo]

    def as_json(self) -> dict[str, Any]:
        return {
            "good": dict(self.plan.good),
            "changes": [
                {"package": c.package, "good": c.good, "bad": c.bad, "between": list(c.between)}
                for c in self.plan.changes
            ],
            "builds": {key: info.as_json() for key, info in self.builds.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Bisectable:
        changes = tuple(
            Change(c["package"], c["good"], c["bad"], tuple(c["between"])) for c in data["changes"]
        )
        builds = {key: BuildInfo.from_json(info) for key, info in data["builds"].items()}
        return cls(Plan(dict(data["good"]), changes), builds)


def _info(commit: Commit, row: PackageVersion | None) -> BuildInfo:
    return BuildInfo(
        package=commit.project_name,
        path=commit_relpath(commit).as_posix(),
        commit_id=commit.id,
        commit_hash=commit.commit_hash,
        distro_hash=commit.distro_hash,
        extended_hash=commit.extended_hash,
        component=commit.component,
        nvr=nvr_from_artifacts(commit.artifact_list),
        files=tuple(PurePosixPath(a).name for a in commit.artifact_list),
        dt_commit=commit.dt_commit,
        dt_build=commit.dt_build,
        source_repo=row.source_repo if row else None,
        dist_repo=row.dist_repo if row else None,
    )


def _published(repos_dir: Path, commit: Commit) -> bool:
    """A success whose repository is still there (not purged, hashes that name a path)."""
    if commit.flags & FLAG_PURGED or not commit.artifact_list:
        return False
    try:
        return (repos_dir / commit_relpath(commit) / "repodata").is_dir()
    except InvalidName:
        return False


def _builds_of(
    session: Session, repos_dir: Path, rows: Iterable[PackageVersion]
) -> dict[str, BuildInfo]:
    """The successful build each versions.csv row names (its newest one of those hashes),
    by package; rows of packages without one (never built, or purged) are left out."""
    wanted = {row.package: row for row in rows if row.distro_hash}
    pairs = list({(row.commit_hash, row.distro_hash) for row in wanted.values()})
    found: dict[str, BuildInfo] = {}
    if not pairs:
        return found
    query = (
        select(Commit)
        .where(
            Commit.status == CommitStatus.SUCCESS,
            tuple_(Commit.commit_hash, Commit.distro_hash).in_(pairs),
        )
        .order_by(Commit.id.desc())
    )
    for commit in session.scalars(query):
        row = wanted.get(commit.project_name)
        if row is None or commit.project_name in found:
            continue
        same = (commit.commit_hash, commit.distro_hash) == (row.commit_hash, row.distro_hash)
        extended_ok = not row.extended_hash or commit.extended_hash == row.extended_hash
        if same and extended_ok and _published(repos_dir, commit):
            found[commit.project_name] = _info(commit, row)
    return found


def _between(
    session: Session,
    repos_dir: Path,
    package: str,
    good: BuildInfo | None,
    bad: BuildInfo,
    row: PackageVersion | None,
) -> list[BuildInfo]:
    """The package's successful builds after its good one and before its bad one, oldest
    first, whose repositories are still published (a purged one cannot be composed)."""
    if good is not None and good.commit_id > bad.commit_id:
        return []  # the bad build is older: nothing lies between in build order
    query = select(Commit).where(
        Commit.project_name == package,
        Commit.status == CommitStatus.SUCCESS,
        Commit.id < bad.commit_id,
    )
    if good is not None:
        query = query.where(Commit.id > good.commit_id)
    commits = session.scalars(query.order_by(Commit.id))
    return [_info(c, row) for c in commits if _published(repos_dir, c)]


def _ordered(
    changes: Sequence[Change], builds: Mapping[str, BuildInfo], cache: PackageXmlCache, root: Path
) -> list[Change]:
    """Dependency order (a package before those whose new builds require what its new
    build provides), then commit time: a mix never holds a new build without the new
    build it needs, which would fail for a reason that is no culprit."""
    found = {}
    for change in changes:
        if change.bad is not None:
            info = builds[change.bad]
            found[change.package] = relations(cache.load(info.path, root / info.path, info.files))
    runtime = {
        package: {
            other
            for other, theirs in found.items()
            if other != package and not mine.requires.isdisjoint(theirs.provides)
        }
        for package, mine in found.items()
    }
    layering = layers(DependencyGraph.of([c.package for c in changes], runtime=runtime))
    layer_of = layering.index()

    def when(change: Change) -> int:
        info = builds.get(change.bad or change.good or "")
        return (info.dt_commit or 0) if info else 0

    return sorted(changes, key=lambda c: (layer_of[c.package], when(c), c.package))


def plan_bisection(
    session: Session, repos_dir: Path, cache: PackageXmlCache, good_ref: str, bad_ref: str
) -> tuple[Bisectable, str, str]:
    """The plan from `good_ref` to `bad_ref` (hashes or labels, as `conveyor diff` takes
    them) and the paths they resolved to; BisectError when it cannot be made."""
    try:
        good_repo = resolve_repository(repos_dir, good_ref)
        bad_repo = resolve_repository(repos_dir, bad_ref)
    except DiffError as exc:
        error = BisectError(str(exc))
        error.status = exc.status
        raise error from None
    if good_repo.relpath == bad_repo.relpath:
        raise BisectError(f"{good_ref} and {bad_ref} are the same repository ({good_repo.relpath})")
    diff = compare(good_repo, bad_repo)
    good_builds = _builds_of(session, repos_dir, good_repo.packages.values())
    bad_builds = _builds_of(session, repos_dir, bad_repo.packages.values())
    builds = {info.path: info for info in [*good_builds.values(), *bad_builds.values()]}
    names = [c.package for c in diff.changed] + [p.package for p in diff.added + diff.removed]
    changes = []
    for package in sorted(names):
        good, bad = good_builds.get(package), bad_builds.get(package)
        if good == bad:
            continue  # e.g. a status change, or a package without a build on either side
        between = []
        if bad is not None:
            between = _between(
                session, repos_dir, package, good, bad, bad_repo.packages.get(package)
            )
            builds.update((info.path, info) for info in between)
        changes.append(
            Change(
                package,
                good.path if good else None,
                bad.path if bad else None,
                tuple(info.path for info in between),
            )
        )
    if not changes:
        raise BisectError(
            f"no package build differs from {good_ref} to {bad_ref}: nothing to bisect"
        )
    both = [(good_builds[c.package], bad_builds[c.package]) for c in changes if c.good and c.bad]
    if both and all(good.commit_id > bad.commit_id for good, bad in both):
        raise BisectError(
            f"every package changed from {good_ref} to {bad_ref} was built earlier in "
            f"{bad_ref}: are --good and --bad swapped?"
        )
    ordered = _ordered(changes, builds, cache, repos_dir)
    plan = Plan({p: info.path for p, info in good_builds.items()}, tuple(ordered))
    return Bisectable(plan, builds), good_repo.relpath, bad_repo.relpath
