"""The UC report: each upper-constraints pin against the package that provides it.

Rows have report-uc.py's columns (Release, ModName, ModVers, PkgName, PkgVers, Source,
Status); Status compares the UC version with the package Version in RPM ordering
(``rpm.labelCompare``): ``equal``, ``lower`` (package older than UC), ``greater`` (package
newer) or ``missing`` (nothing provides it).
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import rpm

from conveyor.uc.constraints import Pin
from conveyor.uc.names import package_candidates
from conveyor.uc.repometa import Build, ProviderIndex, newest

STATUSES = ("equal", "lower", "greater", "missing")
COLUMNS = ("Release", "ModName", "ModVers", "PkgName", "PkgVers", "Source", "Status")


@dataclass(frozen=True)
class Row:
    release: str
    modname: str
    modvers: str
    pkgname: str
    pkgvers: str
    source: str
    status: str
    others: tuple[str, ...] = ()  # other sources that also provide the module

    def cells(self) -> tuple[str, ...]:
        return (
            self.release,
            self.modname,
            self.modvers,
            self.pkgname,
            self.pkgvers,
            self.source,
            self.status,
        )


def compare(uc_version: str, pkg_version: str) -> str:
    """``lower`` when the package is older than the pin, in RPM version ordering."""
    result = rpm.labelCompare(("0", uc_version, "1"), ("0", pkg_version, "1"))
    return "equal" if result == 0 else ("lower" if result > 0 else "greater")


def find_provider(
    pin: Pin, index: ProviderIndex, overrides: Mapping[str, str] | None = None
) -> tuple[Build | None, list[Build]]:
    """The newest build providing ``pin`` (by python3dist, else by name) and all candidates."""
    builds = index.by_dist.get(pin.key)
    if not builds:
        builds = []
        for name in package_candidates(pin.name, overrides):
            builds = index.by_name.get(name.lower(), [])
            if builds:
                break
    return newest(builds), builds


def build_report(
    release: str,
    pins: Iterable[Pin],
    index: ProviderIndex,
    overrides: Mapping[str, str] | None = None,
) -> list[Row]:
    rows: list[Row] = []
    for pin in pins:
        best, builds = find_provider(pin, index, overrides)
        if best is None:
            rows.append(Row(release, pin.name, pin.version, "", "", "", "missing"))
            continue
        others = tuple(sorted({b.source for b in builds} - {best.source}))
        rows.append(
            Row(
                release,
                pin.name,
                pin.version,
                best.name,
                best.version,
                best.source,
                compare(pin.version, best.version),
                others,
            )
        )
    return rows


def filter_rows(rows: Sequence[Row], statuses: Iterable[str]) -> list[Row]:
    wanted = set(statuses)
    return [r for r in rows if not wanted or r.status in wanted]


def summary(rows: Iterable[Row]) -> dict[str, int]:
    counts = Counter(r.status for r in rows)
    return {status: counts.get(status, 0) for status in STATUSES}


def to_csv(rows: Iterable[Row]) -> str:
    """report-uc.py's layout: no header line, seven columns."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for row in rows:
        writer.writerow(row.cells())
    return buf.getvalue()


def to_json(rows: Sequence[Row], counts: Mapping[str, int]) -> str:
    items = []
    for row in rows:
        item = dict(zip(COLUMNS, row.cells(), strict=True))
        item["Others"] = list(row.others)  # type: ignore[assignment]
        items.append(item)
    return json.dumps({"rows": items, "summary": dict(counts)}, indent=2)


__all__ = [
    "COLUMNS",
    "STATUSES",
    "Row",
    "build_report",
    "compare",
    "filter_rows",
    "find_provider",
    "summary",
    "to_csv",
    "to_json",
]
