"""What a spec needs and offers, read by the host's `rpmspec` (the rpmspec adapter).

rpm's own parser does the work: macros, `%if` blocks, `%package -n` names, comma- and
space-separated dependency lists and continuation lines all mean exactly what they mean to
rpmbuild. Each spec is read in a subprocess of its own: rpm's Python bindings keep global
macro state (see `spec._RPM_LOCK`), and a spec's `%(...)` shell snippets must not run inside
conveyor. Two queries are needed, because a source header carries the BuildRequires and only
the binary headers carry the Provides and Requires.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = [
    "RPMSPEC",
    "SpecDeps",
    "SpecDepsError",
    "dependency_names",
    "read_spec_deps",
]

RPMSPEC = "rpmspec"
# DLRN reads specs for ordering with repo_bootstrap set: RDO guards the BuildRequires that
# would close a cycle (test-only dependencies, mostly) with `%if 0%{?repo_bootstrap} == 0`.
_ALWAYS_DEFINED = MappingProxyType({"repo_bootstrap": "1"})
# One line per fact: a two-letter kind, a space, the value (a rich dependency holds spaces).
_SOURCE_FORMAT = "SN %{NAME}\\n[BR %{REQUIRENAME}\\n]"
_BINARY_FORMAT = "PN %{NAME}\\n[PR %{PROVIDENAME}\\n][RQ %{REQUIRENAME}\\n]"
_RICH_KEYWORDS = frozenset({"and", "or", "if", "else", "with", "without", "unless"})
_COMPARISONS = frozenset({"<", "<=", "=", "==", ">=", ">"})
# rpm adds these itself; no package of a distribution provides them.
_RPM_INTERNAL_PREFIXES = ("rpmlib(",)


class SpecDepsError(Exception):
    """The spec cannot be read; the message names the spec and rpmspec's own words."""


@dataclass(frozen=True)
class SpecDeps:
    """Dependency facts of one spec, names only (versions never decide an order)."""

    name: str  # the source package
    packages: frozenset[str]  # binary packages the spec builds (those with a %files)
    provides: frozenset[str]  # every name a binary package provides, its own name included
    build_requires: frozenset[str]
    requires: frozenset[str]  # of all binary packages, Requires(pre/post/...) included

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "packages": sorted(self.packages),
            "provides": sorted(self.provides),
            "build_requires": sorted(self.build_requires),
            "requires": sorted(self.requires),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SpecDeps:
        """The inverse of `to_json`; ValueError if `data` is not what it wrote."""

        def names(key: str) -> frozenset[str]:
            value = data[key]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{key}: expected a list of names")
            return frozenset(value)

        try:
            name = data["name"]
            if not isinstance(name, str):
                raise ValueError("name: expected a string")
            return cls(
                name,
                names("packages"),
                names("provides"),
                names("build_requires"),
                names("requires"),
            )
        except KeyError as exc:
            raise ValueError(f"missing key {exc}") from None


def dependency_names(dependency: str) -> tuple[str, ...]:
    """The package names a dependency as rpm reports it mentions, in order.

    A simple dependency is already a bare name (`python3dist(foo)` included: its parentheses
    belong to the name). A rich dependency such as `(a >= 1 or (b if c))` yields every name
    in it, conditions included: an ordering that waits for too much is slower, one that waits
    for too little builds against stale packages.
    """
    dependency = dependency.strip()
    if not dependency.startswith("("):
        return () if _is_internal(dependency) else (dependency,)
    names: list[str] = []
    after_comparison = False
    for token in _rich_tokens(dependency):
        if token in _COMPARISONS:
            after_comparison = True
        elif after_comparison:
            after_comparison = False  # the version of the comparison just read
        elif token not in _RICH_KEYWORDS and not _is_internal(token):
            names.append(token)
    return tuple(names)


def _is_internal(name: str) -> bool:
    return name.startswith(_RPM_INTERNAL_PREFIXES)


def _rich_tokens(text: str) -> Iterable[str]:
    """Words of a rich dependency. A `(` opens a group only where a word may start; inside a
    word it is part of the name, as in `python3dist(foo)`."""
    i, end = 0, len(text)
    while i < end:
        if text[i].isspace() or text[i] in "()":
            i += 1
            continue
        j, depth = i, 0
        while j < end:
            char = text[j]
            if char == "(":
                depth += 1
            elif char == ")":
                if depth == 0:
                    break
                depth -= 1
            elif char.isspace() and depth == 0:
                break
            j += 1
        yield text[i:j]
        i = j


def _query(spec: Path, options: list[str], timeout: float) -> list[str]:
    cmd = [RPMSPEC, "-q", *options, str(spec)]
    try:
        # A session of its own: a spec's `%(...)` may start processes a timeout must end too.
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,
            env={**os.environ, "LC_ALL": "C.UTF-8"},
        )
    except FileNotFoundError:
        raise SpecDepsError(
            f"{spec}: {RPMSPEC} not found (Debian package 'rpm' provides it)"
        ) from None
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise SpecDepsError(f"{spec}: {RPMSPEC} timed out after {timeout:.0f} s") from None
    if proc.returncode != 0:
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        detail = errors[0] if errors else (err.strip().splitlines() or ["no output"])[-1]
        raise SpecDepsError(f"{spec}: {RPMSPEC} cannot parse it: {detail}")
    return out.splitlines()


def _facts(lines: list[str], spec: Path) -> dict[str, list[str]]:
    facts: dict[str, list[str]] = {}
    for line in lines:
        kind, _, value = line.partition(" ")
        if len(kind) != 2 or not value:
            raise SpecDepsError(f"{spec}: unexpected {RPMSPEC} output line {line!r}")
        facts.setdefault(kind, []).append(value)
    return facts


def _names(dependencies: Iterable[str]) -> frozenset[str]:
    return frozenset(name for dep in dependencies for name in dependency_names(dep))


def read_spec_deps(
    spec: Path, defines: Mapping[str, str] = MappingProxyType({}), timeout: float = 60.0
) -> SpecDeps:
    """Read `spec` with `repo_bootstrap` defined, `_sourcedir` its own folder and `defines`
    on top (a define given here wins). SpecDepsError if rpmspec refuses it or is missing."""
    macros = {**_ALWAYS_DEFINED, "_sourcedir": str(spec.parent), **defines}
    options = [arg for macro, body in macros.items() for arg in ("--define", f"{macro} {body}")]
    source = _facts(_query(spec, [*options, "--srpm", "--qf", _SOURCE_FORMAT], timeout), spec)
    # --builtrpms: a package without %files is never built, so it provides nothing.
    binary = _facts(_query(spec, [*options, "--builtrpms", "--qf", _BINARY_FORMAT], timeout), spec)
    names = source.get("SN", [])
    if len(names) != 1:
        raise SpecDepsError(f"{spec}: {RPMSPEC} reported no source package name")
    packages = frozenset(binary.get("PN", []))
    return SpecDeps(
        name=names[0],
        packages=packages,
        provides=packages | _names(binary.get("PR", [])),
        build_requires=_names(source.get("BR", [])),
        requires=_names(binary.get("RQ", [])),
    )
