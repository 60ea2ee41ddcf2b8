"""rdopkg reqcheck's ``-a/--autosync``: make the spec's Requires follow requirements.txt.

As rdopkg does: a MISMATCH gets requirements.txt's version (``~``), a MISSING requirement is
added (``+``) and a REMOVED one (dropped upstream since the earlier ref) is deleted (``-``).
ANY and EXCESS are left alone: an unversioned or extra Requires may be deliberate.

The spec is edited with ``specfile`` so its layout (alignment, conditionals, macros in names)
is kept. Only active lines are touched (a Requires in a false ``%if`` branch is not), and a
line listing several requires is refused rather than guessed at. New Requires go after the
last Python Requires of the package that has most of them. All edits happen on a copy that
must parse again before it replaces the spec, so a failure leaves the spec as it was.
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from specfile.specfile import Specfile
from specfile.tags import Comments, Tag

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
    tag: Tag
    names: list[str]  # rpm_name() of every dependency on the line


def _requires_lines(spec: Specfile) -> Iterator[_Line]:
    with spec.sections() as sections:
        ids = [s.id for s in sections if s.name == "package"]
    for section in ids:
        with spec.tags(section) as tags:
            for index, tag in enumerate(tags):
                if tag.name.lower() == "requires" and tag.valid:
                    expanded = tag.expanded_value or tag.value
                    names = [rpm_name(n) for n in _dep_names(expanded)]
                    yield _Line(section, index, tag, names)


def _matching(lines: list[_Line], name: str, problems: list[str], caps: bool = True) -> list[_Line]:
    """The Requires lines of ``name``; without ``caps``, not its upper bounds (``< 3.0``),
    which a new minimum version must not overwrite."""
    found = [line for line in lines if name in line.names]
    if not caps:
        found = [line for line in found if "<" not in (line.tag.expanded_value or line.tag.value)]
    for line in found:
        if len(line.names) > 1 or not _RAW.match(line.tag.value):
            problems.append(f"'Requires: {line.tag.value}' lists several requires ({name})")
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
        parsed = Specfile(scratch, sourcedir=spec.parent, autosave=False)
    except Exception as exc:  # specfile raises many kinds while parsing; all mean "bad spec"
        raise UCError(f"{spec}: cannot parse spec: {exc}") from None
    lines = list(_requires_lines(parsed))
    problems: list[str] = []
    changes: list[SpecChange] = []
    edits: dict[tuple[str, int], str | None] = {}  # (section, index) → new value, None: delete
    for entry in result.mismatch:
        for line in _matching(lines, entry.name, problems, caps=False):
            edits[(line.section, line.index)] = _with_version(line.tag.value, entry.vers)
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
    additions = [_new_requires(anchor, e.name, e.vers) for e in result.missing] if anchor else []
    for section in sorted({s for s, _ in edits} | ({anchor.section} if anchor else set())):
        # One pass from the bottom up: each change moves only lines below it, all done.
        ops: list[tuple[float, str | list[Tag] | None]] = [
            (index, value) for (sec, index), value in edits.items() if sec == section
        ]
        if anchor is not None and anchor.section == section:
            ops.append((anchor.index + 0.5, additions))
        with parsed.tags(section) as tags:
            for position, op in sorted(ops, key=lambda o: o[0], reverse=True):
                if isinstance(op, list):
                    for offset, tag in enumerate(op, 1):
                        tags.insert(int(position) + offset, tag)
                elif op is None:
                    del tags[int(position)]
                else:
                    tags[int(position)].value = op
    changes += [SpecChange("+", e.name, e.vers) for e in result.missing]
    parsed.save()
    return changes


def _new_requires(anchor: _Line, name: str, vers: str) -> Tag:
    """A Requires line shaped like ``anchor`` (alignment, spelling: python3- or python3dist)."""
    if (anchor.tag.expanded_value or anchor.tag.value).lstrip().startswith("python3dist("):
        written = f"python3dist({name.removeprefix('python-')})"
    else:
        written = name.replace("python-", "python3-", 1)
    tag = copy.copy(anchor.tag)
    tag.value = f"{written} {vers}" if vers else written
    tag.comments = Comments()
    return tag


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
