"""Build order by dependencies, and the rebuilds a new version of a dependency calls for.

The order must be known before anything builds, so the specs are read straight from the
distgit mirrors at the commit about to be built, as the distgit holds them: no Version is
filled in (`Version: XXX` parses) and no upstream tarball is needed. A spec that cannot be
read only loses its place in the order: its package goes into the first layer and its own
build reports what is wrong with it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

from conveyor.builders.deps import SpecDeps, SpecDepsError, read_spec_deps
from conveyor.builders.renderspec import TEMPLATE_SUFFIX, render_spec
from conveyor.builders.spec import SpecError, choose_spec
from conveyor.domain.builds import BuildJob
from conveyor.domain.depgraph import (
    DependencyGraph,
    Layering,
    build_root_dependents,
    layers,
)
from conveyor.domain.names import InvalidName, check_hash, check_package_name
from conveyor.domain.nvr import nvr_from_artifacts
from conveyor.sources import git

__all__ = [
    "ORDERING_DEFINES",
    "BuildPlan",
    "DependencyReading",
    "Rebuild",
    "SpecDepsCache",
    "SpecSource",
    "VersionChange",
    "order_jobs",
    "plan_build_order",
    "plan_rebuilds",
    "read_dependencies",
    "version_changes",
    "version_from_artifacts",
]

log = logging.getLogger(__name__)

# What the build sees too: prepare_spec defines %dlrn. repo_bootstrap is DLRN's --order define.
ORDERING_DEFINES: Mapping[str, str] = MappingProxyType({"repo_bootstrap": "1", "dlrn": "1"})
_CACHE_FORMAT = 1


@dataclass(frozen=True)
class SpecSource:
    """Where a package's spec is: a distgit mirror at one commit, maybe in a subfolder."""

    package: str
    distgit: Path  # the bare mirror (`Mirrors.distgit`)
    distro_hash: str
    distgit_path: str | None = None

    @classmethod
    def of_job(cls, job: BuildJob) -> SpecSource:
        return cls(job.target.name, job.mirrors.distgit, job.distro_hash, job.target.distgit_path)

    def cache_name(self) -> str:
        """A file name safe by construction: both parts are validated, the path is hashed."""
        name = f"{check_hash(self.distro_hash, 'distro hash')}_{check_package_name(self.package)}"
        if self.distgit_path:
            name += "_" + hashlib.sha256(self.distgit_path.encode()).hexdigest()[:12]
        return name + ".json"

    def _object(self, name: str = "") -> str:
        """`git` object syntax for the distgit folder, or for a file `name` in it."""
        folder = (self.distgit_path or "").strip("/")
        path = "/".join(part for part in (folder, name) if part)
        return f"{self.distro_hash}:{path}" if path else self.distro_hash

    def read_spec(self, timeout: float) -> str:
        """The spec's text, chosen as a build chooses it: `<package>.spec`, else the only
        `*.spec` of the tree, else its only `*.spec.j2` template, rendered (in the sandbox)."""
        listing = git.run_git(["ls-tree", "-z", self._object()], self.distgit, timeout)
        blobs = []
        for entry in filter(None, listing.split("\0")):
            meta, _, name = entry.partition("\t")
            if meta.split(" ")[1:2] == ["blob"]:
                blobs.append(name)
        try:
            chosen = choose_spec(self.package, blobs)
        except SpecError as exc:
            raise SpecDepsError(str(exc)) from None
        text = git.run_git(["cat-file", "blob", self._object(chosen)], self.distgit, timeout)
        if not chosen.endswith(TEMPLATE_SUFFIX):
            return text
        with tempfile.TemporaryDirectory(prefix="conveyor-template-") as tmp:
            template = Path(tmp) / chosen
            template.write_text(text, encoding="utf-8")
            try:
                return render_spec(template).read_text(encoding="utf-8")
            except SpecError as exc:
                raise SpecDepsError(str(exc)) from None


class SpecDepsCache:
    """`<datadir>/cache/specdeps/`: one JSON file per (distgit commit, package), so rpmspec
    runs only when a distgit changed. A file in another format or made with other defines
    is read again, never trusted."""

    def __init__(self, directory: Path, defines: Mapping[str, str] = ORDERING_DEFINES) -> None:
        self.directory = directory
        self.defines = dict(defines)

    def get(self, source: SpecSource) -> SpecDeps | None:
        try:
            data = json.loads((self.directory / source.cache_name()).read_text(encoding="utf-8"))
            if data["format"] != _CACHE_FORMAT or data["defines"] != self.defines:
                return None
            return SpecDeps.from_json(data["deps"])
        except (OSError, ValueError, KeyError, TypeError):
            return None  # missing or damaged: read the spec again

    def put(self, source: SpecSource, deps: SpecDeps) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        data = {"format": _CACHE_FORMAT, "defines": self.defines, "deps": deps.to_json()}
        final = self.directory / source.cache_name()
        # Written beside and renamed in: a reader never sees half a file.
        with tempfile.NamedTemporaryFile(
            "w", dir=self.directory, prefix=".tmp-", suffix=".json", delete=False
        ) as out:
            json.dump(data, out, sort_keys=True)
        Path(out.name).replace(final)


@dataclass(frozen=True)
class DependencyReading:
    deps: Mapping[str, SpecDeps]  # by package (target) name
    unreadable: Mapping[str, str]  # package -> why its spec could not be read

    def graph(self) -> DependencyGraph:
        # Nodes are the trunk's package names, which may differ from a spec's Name.
        return DependencyGraph.from_declarations(
            replace(deps, name=package) for package, deps in self.deps.items()
        )


def _read_one(source: SpecSource, cache: SpecDepsCache, timeout: float) -> SpecDeps:
    cached = cache.get(source)
    if cached is not None:
        return cached
    with tempfile.TemporaryDirectory(prefix="conveyor-specdeps-") as tmp:
        spec = Path(tmp) / f"{check_package_name(source.package)}.spec"
        spec.write_text(source.read_spec(timeout), encoding="utf-8")
        deps = read_spec_deps(spec, cache.defines, timeout)
    cache.put(source, deps)
    return deps


def read_dependencies(
    sources: Iterable[SpecSource], cache: SpecDepsCache, timeout: float, parallel: int
) -> DependencyReading:
    """Every source's SpecDeps, rpmspec calls side by side (they are subprocesses)."""
    unique = list({s.package: s for s in sources}.values())
    deps: dict[str, SpecDeps] = {}
    unreadable: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        futures = [(s, pool.submit(_read_one, s, cache, timeout)) for s in unique]
        for source, future in futures:
            try:
                deps[source.package] = future.result()
            except (SpecDepsError, git.GitError, InvalidName, OSError, UnicodeError) as exc:
                unreadable[source.package] = str(exc)
    return DependencyReading(MappingProxyType(deps), MappingProxyType(unreadable))


def order_jobs(jobs: Sequence[BuildJob], layering: Layering) -> list[list[BuildJob]]:
    """The jobs in layers; a package outside the graph goes into the first layer. Layers
    with no job are dropped; a package's commits keep their order."""
    position = layering.index()
    by_layer: dict[int, list[BuildJob]] = defaultdict(list)
    for job in jobs:
        by_layer[position.get(job.target.name, 0)].append(job)
    # sorted() is stable: one package's commits stay oldest first.
    return [sorted(by_layer[i], key=lambda j: j.target.name) for i in sorted(by_layer)]


@dataclass(frozen=True)
class BuildPlan:
    layers: list[list[BuildJob]]
    cycles: tuple[tuple[str, ...], ...]
    unreadable: Mapping[str, str]
    graph: DependencyGraph  # kept for `plan_rebuilds` once the builds are done


def plan_build_order(
    jobs: Sequence[BuildJob],
    cache_dir: Path,
    others: Sequence[SpecSource] = (),
    timeout: float = 60.0,
    parallel: int | None = None,
    defines: Mapping[str, str] = ORDERING_DEFINES,
) -> BuildPlan:
    """Order `jobs` by the dependencies between their specs.

    `others` are the specs of packages not built this cycle (at their last built distgit
    commit): with them, A waits for C when A needs B and B needs C even if B is not being
    built. Cycles and unreadable specs are logged, never fatal. `defines` are the macros the
    specs are read with: ORDERING_DEFINES, and a builder's `Config.rpm_defines` on top so that
    `%if` blocks choose as in its builds.
    """
    sources = [*others, *(SpecSource.of_job(job) for job in jobs)]  # a job's spec wins
    reading = read_dependencies(
        sources, SpecDepsCache(cache_dir, defines), timeout, parallel or os.cpu_count() or 1
    )
    for package, reason in sorted(reading.unreadable.items()):
        log.warning("%s: not ordered by dependencies: %s", package, reason)
    graph = reading.graph()
    layering = layers(graph)
    for cycle in layering.cycles:
        log.warning("dependency cycle, built in one layer: %s", ", ".join(cycle))
    return BuildPlan(order_jobs(jobs, layering), layering.cycles, reading.unreadable, graph)


# --- rebuilds of reverse dependencies -----------------------------------------------------------


@dataclass(frozen=True)
class VersionChange:
    package: str
    old: str
    new: str


@dataclass(frozen=True)
class Rebuild:
    """Build `package`'s last good commit again because `triggers` changed in its build root."""

    package: str
    triggers: tuple[VersionChange, ...] = field(default=())

    @property
    def extended_hash(self) -> str:
        """The rebuild's identity next to (commit_hash, distro_hash): the same triggers give
        the same hash, so a rebuild is deduplicated like any build. 40 hex digits, the short
        DLRN form: the hash directory gets `_<first 8>`."""
        text = "".join(f"{c.package} {c.old} {c.new}\n" for c in sorted(self.triggers, key=str))
        return hashlib.sha256(b"rebuild\n" + text.encode()).hexdigest()[:40]


def version_changes(
    before: Mapping[str, str | None], after: Mapping[str, str]
) -> list[VersionChange]:
    """Packages whose RPM Version differs from their last success before the cycle. A first
    build is no change: nothing was built against an older version of it."""
    return [
        VersionChange(package, old, new)
        for package, new in sorted(after.items())
        if (old := before.get(package)) is not None and old != new
    ]


def plan_rebuilds(
    graph: DependencyGraph, changes: Iterable[VersionChange], built: Collection[str]
) -> list[Rebuild]:
    """The packages to rebuild, each with the changes that call for it (sorted by name).

    Direct build-root dependents only (see `build_root_dependents`): a rebuild keeps its
    Version, so it triggers nothing further and rebuilds never cascade. Packages built in
    this cycle (`built`) are skipped: they came in a later layer than their dependencies,
    or they failed and have nothing newer to rebuild.
    """
    triggers: dict[str, list[VersionChange]] = defaultdict(list)
    for change in changes:
        for dependent in build_root_dependents(graph, [change.package]):
            if dependent not in built:
                triggers[dependent].append(change)
    return [Rebuild(package, tuple(triggers[package])) for package in sorted(triggers)]


def version_from_artifacts(artifacts: str | None) -> str | None:
    """The Version of a commit row's source RPM (`name-version-release.src.rpm`)."""
    nvr = nvr_from_artifacts((artifacts or "").split(","))
    parts = nvr.rsplit("-", 2) if nvr else []
    return parts[1] if len(parts) == 3 else None
