"""The closure gate: would the tags still be closed after a change? libsolv over the
*simulated* content of each changed tag (its builds after the change, from the tag store's
pool) plus the lookaside repositories (BaseOS, AppStream, CRB...), without writing any
repository. A change is refused for what it breaks; what was already broken before it is
reported, not held against it (else a tag could never be repaired step by step)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import solv

from conveyor.closure.check import Unresolved, check_content
from conveyor.closure.check import content as content_of
from conveyor.closure.loader import load_repository, new_pool, prepare
from conveyor.publish.tagstore import TagStore

__all__ = ["StoreView", "TagChange", "Verdict", "closure_gate", "load_view", "providers_in"]

_SOURCE = ".src.rpm"


@dataclass(frozen=True)
class TagChange:
    before: Mapping[str, str]  # package name -> NVR, applied now
    after: Mapping[str, str]  # the same after the change


@dataclass(frozen=True)
class Verdict:
    broken: list[Unresolved] = field(default_factory=list)  # by the change: refused
    already: list[Unresolved] = field(default_factory=list)  # before it too: reported
    # The second, reported check: packages of the changed builds and their reverse
    # dependencies that the solver cannot install from the content (conflicts, a
    # requirement whose only providers cannot be installed...), with its explanation.
    uninstallable: list[tuple[str, str]] = field(default_factory=list)

    @property
    def closed(self) -> bool:
        return not self.broken


def _by_build(solvables: Sequence[Any]) -> dict[str, list[Any]]:
    builds: dict[str, list[Any]] = defaultdict(list)
    for solvable in solvables:
        source = solvable.lookup_sourcepkg() or ""
        if solvable.arch not in ("src", "nosrc") and source.endswith(_SOURCE):
            builds[source[: -len(_SOURCE)]].append(solvable)
    return builds


@dataclass(frozen=True)
class StoreView:
    """A pool of the tag store's builds and the lookasides, loaded once for many checks."""

    pool: Any
    builds: dict[str, list[Any]]  # the store's packages by build NVR
    outside: list[Any]  # the lookasides' newest packages


def load_view(store: TagStore, lookaside: Sequence[Path], cache: Path | None) -> StoreView:
    """ClosureError when the pool or a lookaside cannot be read."""
    pool = new_pool()
    index = load_repository(pool, store.index, cache, label="tag store")
    others = [load_repository(pool, path, cache) for path in lookaside]
    prepare(pool)
    return StoreView(pool, _by_build(index.solvables()), content_of(others))


def closure_gate(
    store: TagStore,
    changes: Mapping[str, TagChange],
    lookaside: Sequence[Path],
    cache: Path | None,
    installability: bool = True,
) -> dict[str, Verdict]:
    """Each changed tag's verdict, with the solver's installability check unless told
    not. ClosureError when the pool or a lookaside cannot be read (the caller applies
    nothing then)."""
    if not changes:
        return {}
    view = load_view(store, lookaside, cache)
    pool, builds, outside = view.pool, view.builds, view.outside
    verdicts = {}
    for tag, change in sorted(changes.items()):
        before = [s for nvr in change.before.values() for s in builds.get(nvr, ())]
        after = [s for nvr in change.after.values() for s in builds.get(nvr, ())]
        old = {u.package: set(u.missing) for u in check_content(pool, before, [*before, *outside])}
        broken, already = [], []
        for found in check_content(pool, after, [*after, *outside]):
            known = old.get(found.package, set())
            new = tuple(d for d in found.missing if d not in known)
            kept = tuple(d for d in found.missing if d in known)
            if new:
                broken.append(Unresolved(found.package, tag, new))
            if kept:
                already.append(Unresolved(found.package, tag, kept))
        refused = []
        if installability:
            touched = _touched(change, builds, after)
            refused = _uninstallable(pool, touched, [*after, *outside])
        verdicts[tag] = Verdict(broken, already, refused)
    return verdicts


def _touched(change: TagChange, builds: Mapping[str, list[Any]], after: Sequence[Any]) -> list[Any]:
    """The packages of the builds a change adds, and the packages of the content that
    require something a changed build (added or removed) provides."""
    new = set(change.after.values()) - set(change.before.values())
    gone = set(change.before.values()) - set(change.after.values())
    added = [s for nvr in new for s in builds.get(nvr, ())]
    changed = added + [s for nvr in gone for s in builds.get(nvr, ())]
    provided = {dep.id for s in changed for dep in s.lookup_deparray(solv.SOLVABLE_PROVIDES)}
    dependents = [
        s
        for s in after
        if any(dep.id in provided for dep in s.lookup_deparray(solv.SOLVABLE_REQUIRES))
    ]
    return list({s.id: s for s in [*added, *dependents]}.values())


def _uninstallable(
    pool: Any, packages: Sequence[Any], available: Sequence[Any]
) -> list[tuple[str, str]]:
    """Each of `packages` installed alone on an empty system from `available`: the ones the
    solver refuses, with its first problem."""
    if not packages:
        return []
    pool.set_considered_list(sorted({s.id for s in available}))
    pool.createwhatprovides()
    try:
        solver = pool.Solver()
        found = []
        for solvable in sorted(packages, key=lambda s: s.str()):
            if solvable.arch in ("src", "nosrc"):
                continue
            job = pool.Job(solv.Job.SOLVER_SOLVABLE | solv.Job.SOLVER_INSTALL, solvable.id)
            problems = solver.solve([job])
            if problems:
                found.append((solvable.str(), str(problems[0])))
        return found
    finally:
        pool.set_considered_list([s.id for s in pool.solvables_iter()])
        pool.createwhatprovides()


def providers_in(
    view: StoreView, content: Mapping[str, str], offered: Mapping[str, str]
) -> dict[str, tuple[str, str]]:
    """For each requirement of `content` ({name: NVR}) that neither it nor the lookasides
    provide: the build of `offered` that does, by package name, with the package needing it."""
    pool, builds, outside = view.pool, view.builds, view.outside
    checked = [s for nvr in content.values() for s in builds.get(nvr, ())]
    supply = [s for nvr in offered.values() for s in builds.get(nvr, ())]
    names = {nvr: name for name, nvr in offered.items()}
    found: dict[str, tuple[str, str]] = {}
    for unresolved in check_content(pool, checked, [*checked, *outside]):
        for text in unresolved.missing:
            provider = _provider(pool, text, [*checked, *outside, *supply], supply)
            if provider is not None:
                nvr = provider.lookup_sourcepkg()[: -len(_SOURCE)]
                found.setdefault(names[nvr], (nvr, unresolved.package))
    return found


_RELATIONS = {"<": solv.REL_LT, ">": solv.REL_GT, "=": solv.REL_EQ}


def _dependency(pool: Any, text: str) -> Any:
    """libsolv's dependency for `text` as rpm writes one (`name`, `name >= evr`, a rich
    `(a or b)`); 0 when it does not parse."""
    if text.startswith("("):
        return pool.parserpmrichdep(text)
    parts = text.split()
    if len(parts) == 1:
        return pool.Dep(parts[0])
    if len(parts) != 3 or not parts[1] or set(parts[1]) - set(_RELATIONS):
        return 0
    flags = 0
    for char in parts[1]:
        flags |= _RELATIONS[char]
    return pool.Dep(parts[0]).Rel(flags, pool.Dep(parts[2]))


def _provider(pool: Any, requirement: str, considered: Sequence[Any], supply: Sequence[Any]) -> Any:
    """A package of `supply` that provides `requirement` (a dependency as rpm writes it)."""
    dep = _dependency(pool, requirement)
    if not dep:
        return None
    wanted = {s.id for s in supply}
    pool.set_considered_list(sorted({s.id for s in considered}))
    pool.createwhatprovides()
    try:
        return next((s for s in pool.whatprovides(dep) if s.id in wanted), None)
    finally:
        pool.set_considered_list([s.id for s in pool.solvables_iter()])
        pool.createwhatprovides()
