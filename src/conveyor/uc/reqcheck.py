"""`conveyor reqcheck`: a spec's Requires against upstream requirements.txt, as rdopkg does.

Categories (rdopkg's): MET (in both, same constraint or both unversioned), ANY (versioned in
requirements.txt, unversioned in the spec), EXCESS (spec only), MISMATCH (different
versions), MISSING (requirements.txt only), REMOVED (spec only, but in the requirements of an
earlier upstream ref). Names are compared as RPM names (``python-<normalised>``; the spec's
``python3-`` prefix and ``python3dist(...)`` requires are normalised the same way).

For pyproject specs whose runtime requires are generated, compare the built binary package
instead (``--rpm``): its ``python3dist()`` requires play the part of the spec's Requires.

rdopkg's options: ``-O`` override files (:mod:`conveyor.uc.reqoverride`) are applied before
the comparison; ``-S`` fails on MISSING or MISMATCH (:func:`strict_failures`); ``-a`` edits the
spec (:mod:`conveyor.uc.specsync`).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import rpm
from packaging.markers import UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement

from conveyor.uc.constraints import marker_environment
from conveyor.uc.errors import UCError
from conveyor.uc.names import package_candidates, rpm_name
from conveyor.uc.reqoverride import Override, overrides_for

CATEGORIES = ("met", "any", "excess", "mismatch", "missing", "removed")
STRICT = ("missing", "mismatch")  # what rdopkg's -S makes fatal
_SCRIPT_FLAGS = (
    rpm.RPMSENSE_SCRIPT_PRE
    | rpm.RPMSENSE_SCRIPT_POST
    | rpm.RPMSENSE_SCRIPT_PREUN
    | rpm.RPMSENSE_SCRIPT_POSTUN
    | rpm.RPMSENSE_RPMLIB
)


@dataclass(frozen=True)
class Dep:
    name: str  # RPM-style name, python- prefixed for Python modules
    vers: str = ""  # ">= 1.2.0" or ""
    spec_name: str = ""  # as written in the spec (for -o spec)
    overridden_from: str | None = None  # requirements.txt's version, when -O replaced it


@dataclass(frozen=True)
class CheckEntry:
    name: str
    vers: str
    spec_vers: str = ""
    spec_name: str = ""
    overridden_from: str | None = None


@dataclass
class CheckResult:
    met: list[CheckEntry] = field(default_factory=list)
    any: list[CheckEntry] = field(default_factory=list)
    excess: list[CheckEntry] = field(default_factory=list)
    mismatch: list[CheckEntry] = field(default_factory=list)
    missing: list[CheckEntry] = field(default_factory=list)
    removed: list[CheckEntry] = field(default_factory=list)


def _flags_to_op(flags: int) -> str:
    op = ""
    if flags & rpm.RPMSENSE_LESS:
        op += "<"
    if flags & rpm.RPMSENSE_GREATER:
        op += ">"
    if flags & rpm.RPMSENSE_EQUAL:
        op += "="
    return {"=": "=="}.get(op, op)


def _restore_rpm_log() -> None:
    with contextlib.suppress(Exception):
        rpm.setLogFile(sys.__stderr__)


def _dep_from_header(name: str, flags: int, version: str) -> Dep:
    vers = f"{_flags_to_op(flags)} {version}" if version else ""
    return Dep(rpm_name(name), vers, name)


def spec_requires(spec: Path) -> tuple[str, list[Dep]]:
    """The spec's Version and explicit Requires of all its packages (rpm-expanded)."""
    _name, version, deps = read_spec(spec)
    return version, deps


def read_spec(spec: Path) -> tuple[str, str, list[Dep]]:
    """The spec's source Name, Version and explicit Requires of all its packages."""
    if not spec.is_file():
        raise UCError(f"{spec}: no such spec file")
    with tempfile.TemporaryFile("w+") as log:
        rpm.setLogFile(log)
        try:
            parsed = rpm.spec(str(spec))
        except ValueError:
            log.seek(0)
            details = " ".join(line.strip() for line in log if line.strip())
            raise UCError(f"{spec}: cannot parse spec: {details or 'rpm refused it'}") from None
        finally:
            _restore_rpm_log()
    own = {p.header[rpm.RPMTAG_NAME] for p in parsed.packages}
    deps: dict[str, Dep] = {}
    for package in parsed.packages:
        h = package.header
        for name, flags, version in zip(
            h[rpm.RPMTAG_REQUIRENAME],
            h[rpm.RPMTAG_REQUIREFLAGS],
            h[rpm.RPMTAG_REQUIREVERSION],
            strict=True,
        ):
            if flags & _SCRIPT_FLAGS or name in own or name.startswith(("rpmlib(", "/")):
                continue
            dep = _dep_from_header(name, flags, version)
            deps.setdefault(dep.name, dep)
    source = parsed.sourceHeader
    return str(source[rpm.RPMTAG_NAME]), str(source[rpm.RPMTAG_VERSION]), list(deps.values())


def _source_name(h: rpm.hdr) -> str:
    """The source package's name (``python-foo`` for ``python3-foo``), from SOURCERPM."""
    srpm = h[rpm.RPMTAG_SOURCERPM]
    if srpm and str(srpm).count("-") >= 2:
        return str(srpm).rsplit("-", 2)[0]
    return str(h[rpm.RPMTAG_NAME])


def rpm_requires(path: Path) -> list[Dep]:
    """The ``python3dist()`` requires of a built binary RPM (generated by RPM)."""
    return read_rpm(path)[1]


def read_rpm(path: Path) -> tuple[str, list[Dep]]:
    """A built binary RPM's source package name and ``python3dist()`` requires."""
    ts = rpm.TransactionSet()
    ts.setVSFlags(rpm._RPMVSF_NOSIGNATURES | rpm._RPMVSF_NODIGESTS)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise UCError(f"{path}: cannot read: {exc}") from None
    try:
        h = ts.hdrFromFdno(fd)
    except rpm.error as exc:
        raise UCError(f"{path}: not an RPM: {exc}") from None
    finally:
        os.close(fd)
    deps: dict[str, Dep] = {}
    for name, flags, version in zip(
        h[rpm.RPMTAG_REQUIRENAME],
        h[rpm.RPMTAG_REQUIREFLAGS],
        h[rpm.RPMTAG_REQUIREVERSION],
        strict=True,
    ):
        if name.startswith("python3dist(") and not flags & _SCRIPT_FLAGS:
            dep = _dep_from_header(name, flags, version)
            old = deps.get(dep.name)
            if old is None or (not old.vers and dep.vers) or dep.vers.startswith(">"):
                deps[dep.name] = dep
    return _source_name(h), list(deps.values())


def parse_requirements(text: str, source: str, python_version: str = "3.9") -> list[Dep]:
    """requirements.txt entries for ``python_version``, mapped to RPM names."""
    env = marker_environment(python_version)
    deps: dict[str, Dep] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement as exc:
            raise UCError(f"{source}:{number}: invalid requirement: {exc}") from None
        try:
            if req.marker is not None and not req.marker.evaluate(env):
                continue
        except (UndefinedEnvironmentName, UndefinedComparison) as exc:
            raise UCError(f"{source}:{number}: cannot evaluate marker: {exc}") from None
        vers = ""
        for spec in req.specifier:
            if spec.operator in (">=", "~=", "==", ">"):
                vers = f"{'>=' if spec.operator != '>' else '>'} {spec.version}"
        name = package_candidates(req.name)[0]
        deps.setdefault(name, Dep(name, vers))
    return list(deps.values())


def git_requirements(upstream: Path, ref: str) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(upstream), "show", f"{ref}:requirements.txt"],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError as exc:
        raise UCError(f"cannot run git: {exc}") from None
    if done.returncode:
        message = done.stderr.strip().splitlines()[-1:] or ["git failed"]
        raise UCError(f"{upstream}: requirements.txt at {ref!r}: {message[0]}")
    return done.stdout


def check(
    requirements: Iterable[Dep], spec: Iterable[Dep], previous: Iterable[Dep] = ()
) -> CheckResult:
    result = CheckResult()
    reqs = {d.name: d for d in requirements}
    have = {d.name: d for d in spec}
    earlier = {d.name for d in previous}
    for name, req in sorted(reqs.items()):
        got = have.get(name)
        if got is None:
            category, spec_vers, spec_name = result.missing, "", ""
        else:
            spec_vers, spec_name = got.vers, got.spec_name
            if req.vers == got.vers or not req.vers:
                category = result.met
            elif not got.vers:
                category = result.any
            else:
                category = result.mismatch
        category.append(CheckEntry(name, req.vers, spec_vers, spec_name, req.overridden_from))
    for name, got in sorted(have.items()):
        if name not in reqs:
            entry = CheckEntry(name, got.vers, got.vers, got.spec_name)
            (result.removed if name in earlier else result.excess).append(entry)
    return result


def apply_overrides(
    reqs: Iterable[Dep],
    have: Iterable[Dep],
    previous: Iterable[Dep],
    overrides: Mapping[str, Override],
) -> tuple[list[Dep], list[Dep], list[Dep]]:
    """Drop ignored names from all three lists; give overridden requirements their version
    (keeping requirements.txt's in ``overridden_from`` for the report)."""
    ignored = {name for name, o in overrides.items() if o.vers is None}
    new_reqs = []
    for dep in reqs:
        if dep.name in ignored:
            continue
        override = overrides.get(dep.name)
        if override is not None and override.vers is not None and override.vers != dep.vers:
            dep = replace(dep, vers=override.vers, overridden_from=dep.vers)
        new_reqs.append(dep)
    return (
        new_reqs,
        [d for d in have if d.name not in ignored],
        [d for d in previous if d.name not in ignored],
    )


def load_reqcheck_inputs(
    *,
    spec: Path | None,
    ref: str | None,
    upstream: Path | None,
    requirements: Path | None,
    previous_ref: str | None = None,
    python_version: str = "3.9",
    built_rpm: Path | None = None,
    overrides: Mapping[str, Iterable[Override]] | None = None,
) -> tuple[list[Dep], list[Dep], list[Dep]]:
    """(requirements, spec or RPM requires, earlier requirements) for :func:`check`.

    ``overrides`` is a loaded ``-O`` file; the entries for the spec's (or RPM's source)
    package name and for ``all`` are applied.
    """
    version = None
    if built_rpm is not None:
        package, have = read_rpm(built_rpm)
    else:
        package, version, have = read_spec(find_spec(spec))
    if requirements is not None:
        try:
            text = requirements.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UCError(f"{requirements}: cannot read: {exc}") from None
        source = str(requirements)
    else:
        ref = ref or version
        if not ref or ref.upper() == "XXX":
            raise UCError("give --ref: the spec's Version is not an upstream tag")
        upstream = upstream or Path()
        text, source = git_requirements(upstream, ref), f"{ref}:requirements.txt"
    reqs = parse_requirements(text, source, python_version)
    previous: list[Dep] = []
    if previous_ref:
        prev_text = git_requirements(upstream or Path(), previous_ref)
        previous = parse_requirements(prev_text, f"{previous_ref}:requirements.txt", python_version)
    if overrides:
        return apply_overrides(reqs, have, previous, overrides_for(overrides, package))
    return reqs, have, previous


def find_spec(spec: Path | None) -> Path:
    """``spec``, or the one ``*.spec`` of the current directory (a distgit checkout)."""
    if spec is not None:
        return spec
    specs = sorted(Path().glob("*.spec"))
    if len(specs) != 1:
        raise UCError("give --spec (expected one .spec file in the current directory)")
    return specs[0]


def check_requirements(reqs: list[Dep], have: list[Dep], previous: list[Dep]) -> CheckResult:
    return check(reqs, have, previous)


def strict_failures(result: CheckResult) -> list[str]:
    """The categories rdopkg's ``-S`` fails on (MISSING, MISMATCH) that are not empty."""
    return [cat for cat in STRICT if getattr(result, cat)]


def format_reqcheck(result: CheckResult, output: str = "text") -> str:
    if output == "json":
        data: dict[str, list[dict[str, str]]] = {}
        for cat in CATEGORIES:
            items = []
            for e in getattr(result, cat):
                item = {"name": e.name, "vers": e.vers}
                if e.overridden_from is not None:
                    item["overridden_from"] = e.overridden_from
                items.append(item)
            data[cat] = items
        return json.dumps(data, indent=2) + "\n"
    lines: list[str] = []
    for cat in CATEGORIES:
        entries: list[CheckEntry] = getattr(result, cat)
        if not entries:
            continue
        lines.append(f"{cat.upper()}:")
        for e in entries:
            if output == "spec":
                name = e.spec_name or e.name.replace("python-", "python3-", 1)
                lines.append(f"Requires:       {name}{' ' + e.vers if e.vers else ''}")
                continue
            text = f"  {e.name}{' ' + e.vers if e.vers else ''}"
            if cat in ("met", "mismatch", "any") and e.spec_vers != e.vers:
                text += f"  ({e.spec_vers or 'unversioned'} in .spec)"
            elif cat in ("met", "mismatch") and e.vers:
                text += f"  ({e.spec_vers} in .spec)"
            if e.overridden_from is not None:
                upstream = e.overridden_from or "unversioned"
                text += f"  (has been overridden; {upstream} in requirements.txt)"
            lines.append(text)
    return "\n".join(lines) + "\n" if lines else ""
