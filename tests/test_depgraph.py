"""The dependency graph: resolution of names, layers, cycles and reverse dependencies."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor.domain.depgraph import (
    DependencyGraph,
    build_root_dependents,
    layers,
    reverse_dependencies,
    strongly_connected,
)


@dataclass(frozen=True)
class Declared:
    name: str
    provides: frozenset[str] = frozenset()
    build_requires: frozenset[str] = frozenset()
    requires: frozenset[str] = frozenset()


def declared(name: str, provides=(), build_requires=(), requires=()) -> Declared:
    return Declared(name, frozenset(provides), frozenset(build_requires), frozenset(requires))


# --- resolving names ----------------------------------------------------------------------------


def test_names_resolve_to_the_source_package_of_the_provider():
    graph = DependencyGraph.from_declarations(
        [
            declared("python-lib", provides={"python3-lib", "python3dist(lib)"}),
            declared("client", build_requires={"python3dist(lib)"}, requires={"python3-lib"}),
            declared("tool", requires={"python3-lib", "glibc", "/usr/bin/sh"}),
        ]
    )
    assert graph.build["client"] == {"python-lib"}
    assert graph.runtime["client"] == {"python-lib"}
    assert graph.dependencies("tool") == {"python-lib"}  # names of the base OS link nowhere
    assert graph.dependencies("python-lib") == frozenset()


def test_own_subpackages_make_no_edge_and_shared_provides_link_to_all():
    graph = DependencyGraph.from_declarations(
        [
            declared("a", provides={"a", "a-doc"}, requires={"a"}, build_requires={"a-doc"}),
            declared("b", provides={"virtual"}),
            declared("c", provides={"virtual"}),
            declared("d", requires={"virtual"}),
        ]
    )
    assert graph.dependencies("a") == frozenset()
    assert graph.dependencies("d") == {"b", "c"}


def test_edges_must_stay_inside_the_graph():
    with pytest.raises(ValueError, match="leave the graph"):
        DependencyGraph(frozenset({"a"}), build={"a": frozenset({"b"})})
    assert DependencyGraph.of([], {"a": ["b", "a"]}).nodes == {"a", "b"}


# --- layers and cycles --------------------------------------------------------------------------


def test_layers_put_each_package_as_early_as_its_dependencies_allow():
    graph = DependencyGraph.of(
        ["lonely"],
        build={"app": ["client", "lib"], "client": ["lib"]},
        runtime={"plugin": ["lib"]},
    )
    result = layers(graph)
    assert result.layers == (("lib", "lonely"), ("client", "plugin"), ("app",))
    assert result.cycles == ()


def test_a_cycle_is_reported_and_still_ordered_with_the_rest():
    graph = DependencyGraph.of(
        [], build={"a": ["b"], "b": ["a", "base"], "top": ["a"]}, runtime={"c": ["c"]}
    )
    result = layers(graph)
    assert result.cycles == (("a", "b"),)
    assert result.layers == (("base", "c"), ("a", "b"), ("top",))


def test_a_long_chain_does_not_hit_the_recursion_limit():
    n = 5000
    graph = DependencyGraph.of([], runtime={f"p{i}": [f"p{i - 1}"] for i in range(1, n)})
    result = layers(graph)
    assert len(result.layers) == n
    assert result.layers[0] == ("p0",)


names = st.sampled_from([f"p{i}" for i in range(12)])
edge_maps = st.dictionaries(names, st.sets(names, max_size=4), max_size=12)


def reachable(graph: DependencyGraph, start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.dependencies(todo.pop()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


@settings(max_examples=300, deadline=None)
@given(st.sets(names), edge_maps, edge_maps)
def test_layers_respect_every_edge_outside_reported_cycles(nodes, build, runtime):
    graph = DependencyGraph.of(nodes, build, runtime)
    result = layers(graph)
    flat = [node for layer in result.layers for node in layer]
    assert sorted(flat) == sorted(graph.nodes)  # every node exactly once
    assert all(list(layer) == sorted(layer) for layer in result.layers)
    position = result.index()
    cycle_of = {node: cycle for cycle in result.cycles for node in cycle}
    for node in graph.nodes:
        for dependency in graph.dependencies(node):
            if node in cycle_of and dependency in cycle_of[node]:
                assert position[node] == position[dependency]
            else:
                assert position[node] > position[dependency]
        if position[node] > 0:  # as early as possible: something holds it back one layer
            members = cycle_of.get(node, (node,))
            held_by = {d for m in members for d in graph.dependencies(m)} - set(members)
            assert any(position[d] == position[node] - 1 for d in held_by)


@settings(max_examples=300, deadline=None)
@given(st.sets(names), edge_maps, edge_maps)
def test_strongly_connected_components_match_mutual_reachability(nodes, build, runtime):
    graph = DependencyGraph.of(nodes, build, runtime)
    reach = {node: reachable(graph, node) for node in graph.nodes}
    components = strongly_connected(graph)
    assert sorted(n for c in components for n in c) == sorted(graph.nodes)
    for component in components:
        for a in component:
            for b in graph.nodes:
                mutual = a == b or (b in reach[a] and a in reach[b])
                assert mutual == (b in component)
    cycles = layers(graph).cycles
    assert set(cycles) == {c for c in components if len(c) > 1}


# --- reverse dependencies -----------------------------------------------------------------------


def test_reverse_dependencies_are_direct_and_by_kind():
    graph = DependencyGraph.of(
        [], build={"client": ["lib"], "app": ["client"]}, runtime={"plugin": ["lib"]}
    )
    assert reverse_dependencies(graph, "lib") == {"client", "plugin"}
    assert reverse_dependencies(graph, "lib", runtime=False) == {"client"}
    assert reverse_dependencies(graph, "lib", build=False) == {"plugin"}
    assert reverse_dependencies(graph, "app") == frozenset()


def test_build_root_dependents_follow_runtime_requires_of_build_requires():
    graph = DependencyGraph.of(
        [],
        build={"app": ["framework"], "docs": ["lib"], "lib": ["base"]},
        runtime={"framework": ["lib"], "plugin": ["lib"], "lib": ["base"]},
    )
    # framework drags lib into app's build root; plugin only needs lib at runtime.
    assert build_root_dependents(graph, ["lib"]) == {"app", "docs"}
    assert build_root_dependents(graph, ["base"]) == {"app", "docs", "lib"}
    assert build_root_dependents(graph, ["app"]) == frozenset()


@settings(max_examples=200, deadline=None)
@given(st.sets(names), edge_maps, edge_maps, names)
def test_build_root_dependents_match_their_definition(nodes, build, runtime, changed):
    graph = DependencyGraph.of(nodes, build, runtime)

    def runtime_closure(node: str) -> set[str]:
        seen, todo = {node}, [node]
        while todo:
            for nxt in graph.runtime.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    expected = {
        node
        for node in graph.nodes
        if node != changed and any(changed in runtime_closure(b) for b in graph.build.get(node, ()))
    }
    assert build_root_dependents(graph, [changed]) == expected
