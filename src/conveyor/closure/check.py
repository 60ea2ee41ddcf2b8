"""Dependency closure, `dnf repoclosure`'s verdict: each package checked needs every
`Requires` provided by some package of the content available.

What is available is a set of solvables chosen from the pool, not a repository on disk: the
tag gate asks "would this content, with these builds added and those removed, still be
closed?" by choosing another set (`check_change`), without writing anything. libsolv answers
each requirement, rich (boolean) ones and file paths included, through `pool.whatprovides`
while only the chosen solvables are "considered".
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import solv

from conveyor.closure.loader import LoadedRepo

# rpm satisfies these itself; `solvable:` are libsolv's internal namespace dependencies.
# dnf repoclosure skips both.
_SKIPPED = ("rpmlib(", "solvable:")
_NOT_INSTALLABLE = ("src", "nosrc")


@dataclass(frozen=True)
class Unresolved:
    """A package with requirements nothing available provides."""

    package: str  # NEVRA, the epoch shown when not 0, as dnf prints it
    repo: str
    missing: tuple[str, ...]

    def as_json(self) -> dict[str, object]:
        return {"package": self.package, "repo": self.repo, "missing": list(self.missing)}


def newest(solvables: Iterable[Any]) -> list[Any]:
    """The newest version of each name and architecture, as `dnf repoclosure --newest`
    chooses in each repository."""
    best: dict[tuple[int, int], Any] = {}
    for solvable in solvables:
        key = (solvable.nameid, solvable.archid)
        kept = best.get(key)
        if kept is None or solvable.evrcmp(kept) > 0:
            best[key] = solvable
    return list(best.values())


def content(repos: Iterable[LoadedRepo], *, only_newest: bool = True) -> list[Any]:
    """The packages of `repos`, the newest of each repository or all of them."""
    chosen: list[Any] = []
    for loaded in repos:
        packages = loaded.solvables()
        chosen += newest(packages) if only_newest else packages
    return chosen


@contextmanager
def _considering(pool: Any, solvables: Iterable[Any]) -> Iterator[None]:
    """Only `solvables` provide anything inside the block; everything does again after it."""
    pool.set_considered_list(sorted({s.id for s in solvables}))
    pool.createwhatprovides()  # whatprovides was indexed for the previous choice
    try:
        yield
    finally:
        pool.set_considered_list([s.id for s in pool.solvables_iter()])
        pool.createwhatprovides()


def _requirements(solvable: Any) -> list[int]:
    """Dependency ids (ints: a Dep object per requirement costs a third of the check).
    Marker 0: plain and pre-install requirements both (dnf checks both); the marker that
    separates them is dropped."""
    ids: list[int] = solvable.lookup_idarray(solv.SOLVABLE_REQUIRES, 0)
    return [i for i in ids if i != solv.SOLVABLE_PREREQMARKER]


def check_content(pool: Any, check: Iterable[Any], available: Iterable[Any]) -> list[Unresolved]:
    """The packages of `check` with requirements that no package of `available` provides,
    sorted. The pool must be prepared (`loader.prepare`)."""
    provided: dict[int, bool] = {}  # by dependency id: packages share most requirements
    found = []
    with _considering(pool, available):
        for solvable in check:
            if solvable.arch in _NOT_INSTALLABLE:
                continue
            missing: set[str] = set()
            for dep in _requirements(solvable):
                ok = provided.get(dep)
                if ok is None:
                    ok = pool.dep2str(dep).startswith(_SKIPPED) or bool(pool.whatprovides(dep))
                    provided[dep] = ok
                if not ok:
                    missing.add(pool.dep2str(dep))
            if missing:
                found.append(Unresolved(solvable.str(), solvable.repo.name, tuple(sorted(missing))))
    return sorted(found, key=lambda u: (u.package, u.repo))


def check_closure(
    pool: Any,
    repos: Sequence[LoadedRepo],
    lookaside: Sequence[LoadedRepo] = (),
    *,
    only_newest: bool = True,
) -> list[Unresolved]:
    """`dnf repoclosure --check REPOS [--newest]`: the packages of `repos` whose requirements
    neither `repos` nor `lookaside` satisfy. With `only_newest`, both what is checked and
    what satisfies are each repository's newest packages (as `--newest` does)."""
    checked = content(repos, only_newest=only_newest)
    available = checked + content(lookaside, only_newest=only_newest)
    return check_content(pool, checked, available)


def check_change(
    pool: Any,
    current: Sequence[Any],
    lookaside: Sequence[Any] = (),
    *,
    add: Iterable[Any] = (),
    remove: Iterable[Any] = (),
) -> list[Unresolved]:
    """What changing `current` (solvables) by `add` and `remove` breaks: the requirements of
    the changed content that are unresolved after the change and were not before, by
    package. A requirement already broken does not count against the change."""
    removed = {s.id for s in remove}
    after = [s for s in current if s.id not in removed]
    after += [s for s in add if s.id not in {k.id for k in after}]
    before = {
        (u.package, u.repo): set(u.missing)
        for u in check_content(pool, current, [*current, *lookaside])
    }
    broken = []
    for u in check_content(pool, after, [*after, *lookaside]):
        new = tuple(d for d in u.missing if d not in before.get((u.package, u.repo), set()))
        if new:
            broken.append(Unresolved(u.package, u.repo, new))
    return broken


def by_nevra(solvables: Iterable[Any]) -> dict[str, Any]:
    """Solvables by their NEVRA (`name-[epoch:]version-release.arch`), to name a change."""
    return {s.str(): s for s in solvables}
