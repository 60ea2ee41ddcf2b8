"""The UC report: each upper-constraints pin against the package that provides it.

Rows have report-uc.py's columns (Release, ModName, ModVers, PkgName, PkgVers, Source,
Status, and with ``show_others`` its 8th: the other sources that also provide the module).
Status compares the UC version with the package Version in RPM ordering
(``rpm.labelCompare``, pre-releases as RDO packages them: see :mod:`conveyor.uc.versions`):
``equal``, ``lower`` (package older than UC), ``greater`` (package newer) or ``missing``
(nothing provides it).
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from conveyor.uc.constraints import Pin
from conveyor.uc.names import normalise, package_candidates
from conveyor.uc.repometa import Build, ProviderIndex, newest
from conveyor.uc.versions import compare

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

    def cells(self, show_others: bool = False) -> tuple[str, ...]:
        cells = (
            self.release,
            self.modname,
            self.modvers,
            self.pkgname,
            self.pkgvers,
            self.source,
            self.status,
        )
        if not show_others:
            return cells
        # report-uc.py -S: the other repositories, "None" when there are none.
        others = "" if self.status == "missing" else (" ".join(self.others) or "None")
        return (*cells, others)


def find_provider(
    pin: Pin, index: ProviderIndex, overrides: Mapping[str, str] | None = None
) -> tuple[Build | None, list[Build]]:
    """The newest build providing ``pin`` and all candidates.

    An override naming a package that is present wins (the table exists to correct the
    mapping); then ``python3dist()`` provides; then the pymod2pkg-style names. ``overrides``
    is keyed by :func:`normalise`'d module name (:func:`build_report` keys it so once).
    """
    package = (overrides or {}).get(normalise(pin.name))
    builds = index.by_name.get(package.lower(), []) if package else []
    if not builds:
        builds = index.by_dist.get(pin.key, [])
    if not builds:
        for name in package_candidates(pin.name):
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
    """One row per pin; ``overrides`` maps module names (any spelling) to RPM names."""
    table = {normalise(module): package for module, package in (overrides or {}).items()}
    rows: list[Row] = []
    for pin in pins:
        best, builds = find_provider(pin, index, table)
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
                compare(pin.version, best.version, best.release),
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


def source_counts(rows: Iterable[Row], sources: Iterable[str] = ()) -> dict[str, int]:
    """Rows per source (report-uc.py -v), listing ``sources`` that matched nothing as 0."""
    counts = dict.fromkeys(sources, 0)
    for row in rows:
        if row.source:
            counts[row.source] = counts.get(row.source, 0) + 1
    return counts


def to_csv(rows: Iterable[Row], show_others: bool = False) -> str:
    """report-uc.py's layout: no header line, seven columns (eight with ``show_others``)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for row in rows:
        writer.writerow(row.cells(show_others))
    return buf.getvalue()


def to_json(
    rows: Sequence[Row], counts: Mapping[str, int], sources: Mapping[str, int] | None = None
) -> str:
    items = []
    for row in rows:
        item: dict[str, object] = dict(zip(COLUMNS, row.cells(), strict=True))
        item["Others"] = list(row.others)
        items.append(item)
    data: dict[str, object] = {"rows": items, "summary": dict(counts)}
    if sources is not None:
        data["sources"] = dict(sources)
    return json.dumps(data, indent=2)


__all__ = [
    "COLUMNS",
    "STATUSES",
    "Row",
    "build_report",
    "compare",
    "filter_rows",
    "find_provider",
    "source_counts",
    "summary",
    "to_csv",
    "to_json",
]
