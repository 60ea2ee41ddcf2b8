"""The dependency graph between source packages, and the build order it implies.

Pure: specs are read elsewhere (`build.deps`); this module only sees names. A source package
depends on another when one of its BuildRequires or one of its binary packages' Requires
names something the other's binary packages provide. Build and runtime edges are kept apart
because they answer different questions: both decide the order (a build root holds the
BuildRequires *and* everything they require at runtime), but only what lands in a build root
can change a build's result (`build_root_dependents`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

__all__ = [
    "DeclaresDependencies",
    "DependencyGraph",
    "Layering",
    "build_root_dependents",
    "layers",
    "reverse_dependencies",
    "strongly_connected",
]

_EMPTY: frozenset[str] = frozenset()


class DeclaresDependencies(Protocol):
    """A source package's declared facts (what `build.deps.SpecDeps` holds)."""

    @property
    def name(self) -> str: ...
    @property
    def provides(self) -> frozenset[str]: ...
    @property
    def build_requires(self) -> frozenset[str]: ...
    @property
    def requires(self) -> frozenset[str]: ...


def _frozen(edges: Mapping[str, Iterable[str]]) -> Mapping[str, frozenset[str]]:
    return MappingProxyType({node: frozenset(targets) for node, targets in edges.items()})


@dataclass(frozen=True)
class DependencyGraph:
    """`build[a]` / `runtime[a]`: the packages `a` build-requires / requires at runtime.

    Every package named in an edge is a node; there are no self-edges.
    """

    nodes: frozenset[str]
    build: Mapping[str, frozenset[str]] = field(default_factory=lambda: MappingProxyType({}))
    runtime: Mapping[str, frozenset[str]] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        for edges in (self.build, self.runtime):
            for node, targets in edges.items():
                if node not in self.nodes or not targets <= self.nodes or node in targets:
                    raise ValueError(f"edges of {node!r} leave the graph or point to itself")

    @classmethod
    def of(
        cls,
        nodes: Iterable[str],
        build: Mapping[str, Iterable[str]] | None = None,
        runtime: Mapping[str, Iterable[str]] | None = None,
    ) -> DependencyGraph:
        """A graph from explicit edges; self-edges are dropped, edge ends become nodes."""
        build_edges = {a: {b for b in bs if b != a} for a, bs in (build or {}).items()}
        runtime_edges = {a: {b for b in bs if b != a} for a, bs in (runtime or {}).items()}
        all_nodes = set(nodes)
        for edges in (build_edges, runtime_edges):
            for a, bs in edges.items():
                all_nodes.add(a)
                all_nodes.update(bs)
        return cls(frozenset(all_nodes), _frozen(build_edges), _frozen(runtime_edges))

    @classmethod
    def from_declarations(cls, packages: Iterable[DeclaresDependencies]) -> DependencyGraph:
        """Resolve names to the packages providing them. A name several packages provide
        links to all of them; a name nobody here provides (the base OS) links to nothing."""
        packages = list(packages)
        providers: dict[str, set[str]] = defaultdict(set)
        for package in packages:
            for provided in package.provides:
                providers[provided].add(package.name)

        def resolve(names: Iterable[str]) -> set[str]:
            return {p for name in names for p in providers.get(name, ())}

        return cls.of(
            (p.name for p in packages),
            {p.name: resolve(p.build_requires) for p in packages},
            {p.name: resolve(p.requires) for p in packages},
        )

    def dependencies(self, package: str) -> frozenset[str]:
        """Everything `package` waits for, build and runtime alike."""
        return self.build.get(package, _EMPTY) | self.runtime.get(package, _EMPTY)


@dataclass(frozen=True)
class Layering:
    """`layers[0]` needs nothing from the graph; layer n needs only layers before it, except
    between members of one of `cycles`, which share a layer (each sorted by name)."""

    layers: tuple[tuple[str, ...], ...]
    cycles: tuple[tuple[str, ...], ...]

    def index(self) -> dict[str, int]:
        return {node: i for i, layer in enumerate(self.layers) for node in layer}


def strongly_connected(graph: DependencyGraph) -> list[tuple[str, ...]]:
    """Tarjan's strongly connected components, iteratively (a long dependency chain must not
    hit Python's recursion limit). Components come out dependencies first."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[tuple[str, ...]] = []
    successors = {node: sorted(graph.dependencies(node)) for node in graph.nodes}
    for root in sorted(graph.nodes):
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, position = work.pop()
            if position == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            children = successors[node]
            if position < len(children):
                work.append((node, position + 1))
                child = children[position]
                if child not in index:
                    work.append((child, 0))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            if low[node] == index[node]:
                members = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    members.append(member)
                    if member == node:
                        break
                components.append(tuple(sorted(members)))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return components


def layers(graph: DependencyGraph) -> Layering:
    """Kahn's algorithm on the graph with each dependency cycle collapsed into one node, so an
    order always exists: a cycle is reported, never fatal. Every package comes in the
    earliest layer its dependencies allow."""
    components = strongly_connected(graph)
    component_of = {node: i for i, members in enumerate(components) for node in members}
    waits_for: list[set[int]] = [set() for _ in components]
    for node in graph.nodes:
        for dependency in graph.dependencies(node):
            if component_of[dependency] != component_of[node]:
                waits_for[component_of[node]].add(component_of[dependency])
    needed_by: dict[int, set[int]] = defaultdict(set)
    for component, awaited in enumerate(waits_for):
        for other in awaited:
            needed_by[other].add(component)
    pending = [len(awaited) for awaited in waits_for]
    ready = [c for c, count in enumerate(pending) if count == 0]
    result: list[tuple[str, ...]] = []
    while ready:
        result.append(tuple(sorted(node for c in ready for node in components[c])))
        following = []
        for component in ready:
            for dependent in needed_by[component]:
                pending[dependent] -= 1
                if pending[dependent] == 0:
                    following.append(dependent)
        ready = following
    cycles = tuple(sorted(members for members in components if len(members) > 1))
    return Layering(tuple(result), cycles)


def reverse_dependencies(
    graph: DependencyGraph, package: str, *, build: bool = True, runtime: bool = True
) -> frozenset[str]:
    """The packages that directly (build-)require `package` (not transitive)."""
    return frozenset(
        node
        for node in graph.nodes
        if (build and package in graph.build.get(node, _EMPTY))
        or (runtime and package in graph.runtime.get(node, _EMPTY))
    )


def build_root_dependents(graph: DependencyGraph, changed: Collection[str]) -> frozenset[str]:
    """The packages whose build root holds one of `changed`: they BuildRequire it, or
    BuildRequire something that requires it at runtime, however indirectly.

    This is what OBS rebuilds. A package that only requires `changed` at runtime is left
    alone: rebuilding it would produce the same content under a new Release. The members of
    `changed` themselves are not included.
    """
    # Everything that drags a changed package into a build root when installed.
    dragging = set(changed)
    frontier = list(changed)
    runtime_dependents: dict[str, set[str]] = defaultdict(set)
    for node, dependencies in graph.runtime.items():
        for dependency in dependencies:
            runtime_dependents[dependency].add(node)
    while frontier:
        for dependent in runtime_dependents[frontier.pop()]:
            if dependent not in dragging:
                dragging.add(dependent)
                frontier.append(dependent)
    affected = {
        node for node, dependencies in graph.build.items() if not dependencies.isdisjoint(dragging)
    }
    return frozenset(affected - set(changed))
