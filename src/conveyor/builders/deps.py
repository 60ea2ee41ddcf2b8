"""What a spec needs and offers, read by the host's `rpmspec` (the rpmspec adapter).

rpm's own parser does the work: macros, `%if` blocks, `%package -n` names, comma- and
space-separated dependency lists and continuation lines all mean exactly what they mean to
rpmbuild. Each spec is read in a subprocess of its own: rpm's Python bindings keep global
macro state (see `spec._RPM_LOCK`). Two queries are needed, because a source header carries
the BuildRequires and only the binary headers carry the Provides and Requires.

rpm runs a spec's `%(...)` snippets and Lua while it parses, and the spec comes from a
distgit, which is not trusted: rpmspec reads a copy of it inside the bubblewrap sandbox
(`conveyor.builders.bwrap`), which sees nothing of conveyor's. Where bubblewrap cannot run,
the copy is sanitized first (specfile's sanitizer removes shell expansions, impure Lua and
`%include`), and rpmspec runs on the host.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from specfile.sanitizer import Sanitizer

from conveyor.builders import bwrap

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


def _query(
    spec: Path, command: list[str], timeout: float, sandbox: bwrap.Sandbox | None
) -> list[str]:
    """rpmspec's output lines; `spec` names the spec in errors."""
    options: dict[str, Any] = {
        "stdin": subprocess.DEVNULL,
        "stdout": subprocess.PIPE,
        "stderr": subprocess.PIPE,
        "text": True,
        "errors": "replace",
    }
    try:
        if sandbox is not None:
            proc = sandbox.popen(command, **options)
        else:
            # A session of its own: a spec's `%(...)` may start processes a timeout must end.
            proc = subprocess.Popen(
                command,
                start_new_session=True,
                env={**os.environ, "LC_ALL": "C.UTF-8"},
                **options,
            )
    except FileNotFoundError:
        raise SpecDepsError(
            f"{spec}: {RPMSPEC} not found (Debian package 'rpm' provides it)"
        ) from None
    try:
        out: str
        err: str
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
    spec: Path,
    defines: Mapping[str, str] = MappingProxyType({}),
    timeout: float = 60.0,
    sandboxed: bool | None = None,
) -> SpecDeps:
    """Read `spec` with `repo_bootstrap` defined, `_sourcedir` the folder of its copy and
    `defines` on top (a define given here wins). SpecDepsError if rpmspec refuses it or is
    missing. `sandboxed`: in the bwrap sandbox (True), sanitized on the host (False), or the
    sandbox where it works (None)."""
    try:
        text = spec.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise SpecDepsError(f"{spec}: cannot read it: {exc}") from None
    if shutil.which(RPMSPEC) is None:  # the sandbox runs the host's /usr/bin
        raise SpecDepsError(f"{spec}: {RPMSPEC} not found (Debian package 'rpm' provides it)")
    if sandboxed is None:
        sandboxed = bwrap.problem() is None
    if not sandboxed:
        try:
            text, _, _ = Sanitizer.sanitize(text)
        except Exception as exc:  # the sanitizer's parser raises its own kinds
            raise SpecDepsError(f"{spec}: cannot sanitize it: {exc}") from None
        with tempfile.TemporaryDirectory(prefix="conveyor-specdeps-") as tmp:
            copy = Path(tmp) / spec.name
            copy.write_text(text, encoding="utf-8", errors="surrogateescape")
            return _read(spec, copy, defines, timeout, None)
    try:
        folder = bwrap.make_scratch()
    except bwrap.SandboxError as exc:
        raise SpecDepsError(f"{spec}: {exc}") from None
    try:
        (folder / spec.name).write_text(text, encoding="utf-8", errors="surrogateescape")
        bwrap.hand_over(folder)
        sandbox = bwrap.Sandbox(
            readonly=((folder, bwrap.INSIDE),),
            limits=bwrap.Limits(processes=64, cpu_seconds=int(timeout) + 1),
        )
        return _read(spec, bwrap.INSIDE / spec.name, defines, timeout, sandbox)
    finally:
        bwrap.remove_scratch(folder)


def _read(
    spec: Path,
    copy: Path,
    defines: Mapping[str, str],
    timeout: float,
    sandbox: bwrap.Sandbox | None,
) -> SpecDeps:
    macros = {**_ALWAYS_DEFINED, "_sourcedir": str(copy.parent), **defines}
    options = [arg for macro, body in macros.items() for arg in ("--define", f"{macro} {body}")]
    source_query = [RPMSPEC, "-q", *options, "--srpm", "--qf", _SOURCE_FORMAT, str(copy)]
    source = _facts(_query(spec, source_query, timeout, sandbox), spec)
    # --builtrpms: a package without %files is never built, so it provides nothing.
    binary_query = [RPMSPEC, "-q", *options, "--builtrpms", "--qf", _BINARY_FORMAT, str(copy)]
    binary = _facts(_query(spec, binary_query, timeout, sandbox), spec)
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
