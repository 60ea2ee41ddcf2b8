"""rdopkg reqcheck's ``-a/--autosync``: make the spec's Requires follow requirements.txt.

As rdopkg does: a MISMATCH gets requirements.txt's version (``~``), a MISSING requirement is
added (``+``) and a REMOVED one (dropped upstream since the earlier ref) is deleted (``-``).
ANY and EXCESS are left alone: an unversioned or extra Requires may be deliberate.

The spec is edited with ``specfile`` so its layout (alignment, conditionals, macros in names)
is kept. The spec is not trusted: it is parsed and edited as the trunk parses distgit specs
(:func:`conveyor.builders.spec.run_parser`: sanitized, in the sandbox), never with its shell
code run in conveyor's process. Only active lines are touched (a Requires in a false ``%if``
branch is not), and a line listing several requires is refused rather than guessed at. New
Requires go after the last Python Requires of the package that has most of them. All edits
happen on a copy that must parse again before it replaces the spec, so a failure leaves the
spec as it was.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conveyor.builders.spec import SpecError, run_parser
from conveyor.uc.errors import UCError
from conveyor.uc.names import rpm_name
from conveyor.uc.reqcheck import CheckResult, read_spec

_OPERATOR = re.compile(r"^(<=|>=|==|<|>|=)$")
# A Requires value as written: a name (which may hold %{...} with spaces), then optionally
# an operator and a version. Several names (commas, or bare names in a row) do not match.
_RAW = re.compile(r"^(?P<name>(?:%\{[^}]*\}|[^\s<>=,])+)(?:\s*(?:<=|>=|==|<|>|=)\s*[^\s,]+)?\s*$")


@dataclass(frozen=True)
class SpecChange:
    action: str  # "+" added, "~" version changed, "-" removed
    name: str
    vers: str

    def __str__(self) -> str:
        return f"{self.action} {self.name}{' ' + self.vers if self.vers else ''}"


def _dep_names(expanded: str) -> list[str]:
    """The names in an (expanded) Requires value: ``a >= 1, b`` → ``[a, b]``."""
    names: list[str] = []
    tokens = [t for t in re.split(r"[\s,]+", expanded.strip()) if t]
    skip = 0
    for token in tokens:
        if skip:
            skip -= 1
        elif _OPERATOR.match(token):
            skip = 1  # the version after it
        else:
            names.append(token)
    return names


@dataclass
class _Line:
    section: str
    index: int
    value: str  # as written
    expanded: str
    names: list[str]  # rpm_name() of every dependency on the line


def _requires_lines(tags: list[list[Any]]) -> Iterator[_Line]:
    for section, index, name, value, valid, expanded in tags:
        if name.lower() == "requires" and valid:
            names = [rpm_name(n) for n in _dep_names(expanded)]
            yield _Line(section, index, value, expanded, names)


def _matching(lines: list[_Line], name: str, problems: list[str], caps: bool = True) -> list[_Line]:
    """The Requires lines of ``name``; without ``caps``, not its upper bounds (``< 3.0``),
    which a new minimum version must not overwrite."""
    found = [line for line in lines if name in line.names]
    if not caps:
        found = [line for line in found if "<" not in line.expanded]
    for line in found:
        if len(line.names) > 1 or not _RAW.match(line.value):
            problems.append(f"'Requires: {line.value}' lists several requires ({name})")
    if not found:
        problems.append(
            f"no Requires line {'found' if caps else 'without an upper bound'} for {name}"
        )
    return found


def _with_version(raw: str, vers: str) -> str:
    found = _RAW.match(raw)
    name = found["name"] if found else raw
    return f"{name} {vers}" if vers else name


@contextlib.contextmanager
def _scratch_copy(spec: Path) -> Iterator[Path]:
    """A copy of ``spec`` beside it (same file system, so it can be renamed over it)."""
    fd, name = tempfile.mkstemp(prefix=f".{spec.name}.", suffix=".autosync", dir=spec.parent)
    os.close(fd)
    copy = Path(name)
    try:
        shutil.copyfile(spec, copy)
        shutil.copymode(spec, copy)
        yield copy
    finally:
        copy.unlink(missing_ok=True)


def autosync(spec: Path, result: CheckResult) -> list[SpecChange]:
    """Edit ``spec`` in place from a reqcheck result; the changes made, in order."""
    wanted = result.mismatch or result.missing or result.removed
    if not wanted:
        return []
    try:
        with _scratch_copy(spec) as scratch:
            changes = _edit(scratch, spec, result)
            read_spec(scratch)  # the edited spec must still parse
            scratch.replace(spec)
    except OSError as exc:
        raise UCError(f"{spec}: cannot write: {exc}") from None
    return changes


def _edit(scratch: Path, spec: Path, result: CheckResult) -> list[SpecChange]:
    try:
        text = scratch.read_text(encoding="utf-8")
        tags = run_parser(spec, "tags", {"text": text})["tags"]
    except UnicodeDecodeError as exc:
        raise UCError(f"{spec}: cannot read spec: {exc}") from None
    except SpecError as exc:
        raise UCError(f"{spec}{str(exc).removeprefix(spec.name)}") from None
    lines = list(_requires_lines(tags))
    problems: list[str] = []
    changes: list[SpecChange] = []
    edits: dict[tuple[str, int], str | None] = {}  # (section, index) → new value, None: delete
    for entry in result.mismatch:
        for line in _matching(lines, entry.name, problems, caps=False):
            edits[(line.section, line.index)] = _with_version(line.value, entry.vers)
        changes.append(SpecChange("~", entry.name, entry.vers))
    for entry in result.removed:
        for line in _matching(lines, entry.name, problems):
            edits[(line.section, line.index)] = None
        changes.append(SpecChange("-", entry.name, entry.vers))
    anchor = _anchor(lines)
    if result.missing and anchor is None:
        problems.append("no Python Requires to add the missing ones next to")
    if problems:
        raise UCError(f"{spec}: cannot autosync, spec left unchanged: " + "; ".join(problems))
    ops: list[list[Any]] = [[section, index, value] for (section, index), value in edits.items()]
    if anchor is not None and result.missing:
        # Copies of the anchor line (alignment kept), after it.
        added = [_new_requires(anchor, e.name, e.vers) for e in result.missing]
        ops.append([anchor.section, anchor.index, added])
    try:
        edited = run_parser(spec, "edit", {"text": text, "edits": ops})["text"]
    except SpecError as exc:
        raise UCError(f"{spec}{str(exc).removeprefix(spec.name)}") from None
    changes += [SpecChange("+", e.name, e.vers) for e in result.missing]
    scratch.write_text(edited, encoding="utf-8")
    return changes


def _new_requires(anchor: _Line, name: str, vers: str) -> str:
    """A Requires value spelled like ``anchor``'s (python3- or python3dist)."""
    if anchor.expanded.lstrip().startswith("python3dist("):
        written = f"python3dist({name.removeprefix('python-')})"
    else:
        written = name.replace("python-", "python3-", 1)
    return f"{written} {vers}" if vers else written


def _anchor(lines: list[_Line]) -> _Line | None:
    """The last Python Requires of the package section with most of them."""
    python = [line for line in lines if line.names and line.names[0].startswith("python-")]
    if not python:
        return None
    counts: dict[str, int] = {}
    for line in python:
        counts[line.section] = counts.get(line.section, 0) + 1
    best = max(counts, key=lambda s: counts[s])
    return [line for line in python if line.section == best][-1]
