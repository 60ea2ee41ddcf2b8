"""rdopkg reqcheck's ``-O/--override`` file: per-package corrections to requirements.txt.

The file (YAML) maps a package (the spec's source ``Name``), or ``all`` for every package, to
a list of entries::

    packages:
      all:
        - name: python-argparse          # no version: ignore python-argparse entirely
      python-osc-lib:
        - name: python-sqlalchemy
          version: ">= 1.1.0"            # check the spec against this, not requirements.txt

An entry with a non-empty ``version`` replaces the version requirements.txt asks for (the
requirement is then reported as overridden); an entry without one removes the name from both
sides, so it is never MISSING, EXCESS or REMOVED. Entries under the package's own name win
over ``all``. A bare version means ``>=`` it, as RDO's Requires are minimums.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from conveyor.uc.errors import UCError
from conveyor.uc.inputs import read_yaml
from conveyor.uc.names import rpm_name

ALL = "all"
_VERSION = re.compile(r"^(?P<op>>=|>|==|=)?\s*(?P<ver>[0-9][0-9A-Za-z.+~_-]*)$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+()-]*$")


@dataclass(frozen=True)
class Override:
    name: str  # RPM name, python3- spelled python- as reqcheck compares them
    vers: str | None  # ">= 1.1.0", or None: ignore the name


def _normal_vers(value: str, where: str) -> str:
    found = _VERSION.match(value.strip())
    if not found:
        raise UCError(f"{where}: version {value!r} is not '[>=|>|==] VERSION'")
    op = ">" if found["op"] == ">" else ">="  # as requirements.txt pins are read
    return f"{op} {found['ver']}"


def _entry(item: object, where: str) -> Override:
    if not isinstance(item, dict):
        raise UCError(f"{where}: expected an entry {{name: ..., version: ...}}, got {item!r}")
    unknown = sorted(str(k) for k in item if k not in ("name", "version"))
    if unknown:
        raise UCError(f"{where}: unknown key(s) {', '.join(unknown)} (expected name, version)")
    name, version = item.get("name"), item.get("version")
    if not isinstance(name, str) or not _NAME.match(name):
        raise UCError(f"{where}: entry needs a package 'name', got {name!r}")
    if version is not None and not isinstance(version, str):
        raise UCError(f"{where}: {name}: quote the version ({version!r} is not a string)")
    vers = _normal_vers(version, f"{where}: {name}") if version else None
    return Override(rpm_name(name), vers)


def load_overrides(path: Path) -> dict[str, list[Override]]:
    """Package name (or ``all``) → its overrides; any fault is an error naming the file."""
    doc = read_yaml(path, what="override file")
    packages = doc.data.get("packages")
    unknown = sorted(str(k) for k in doc.data if k != "packages")
    if not isinstance(packages, dict) or unknown:
        raise UCError(
            f"{path}: expected only a 'packages:' mapping of package name (or 'all') "
            "to a list of {name, version} entries"
        )
    table: dict[str, list[Override]] = {}
    for package, items in packages.items():
        where = str(doc.section_location("packages", package))
        if not isinstance(package, str):
            raise UCError(f"{where}: package name {package!r} is not a string")
        if items is None:
            items = []
        if not isinstance(items, list):
            raise UCError(f"{where}: {package}: expected a list of {{name, version}} entries")
        table[package] = [_entry(item, where) for item in items]
    return table


def overrides_for(table: Mapping[str, Iterable[Override]], package: str) -> dict[str, Override]:
    """The overrides that apply to ``package``: ``all``'s, then its own (which win)."""
    found: dict[str, Override] = {}
    for key in (ALL, package):
        for override in table.get(key, ()):
            found[override.name] = override
    return found
