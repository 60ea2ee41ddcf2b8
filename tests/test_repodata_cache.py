"""The per-build XML cache a publish reads for every package: kept in memory by the process,
and never served stale when another process replaced the file."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from conveyor.publish.repodata import PackageXml, PackageXmlCache

RELPATH = "ab/cd/abcd_ef012345"


def package(name: str, marker: str) -> PackageXml:
    return PackageXml(name, f"<primary {marker}/>", f"<filelists {marker}/>", f"<other {marker}/>")


def test_a_cache_file_another_process_replaced_is_read_again(tmp_path: Path) -> None:
    cache = PackageXmlCache(tmp_path / "cache")
    cache.store(RELPATH, [package("a-1.noarch.rpm", "old")])
    assert cache.load(RELPATH, tmp_path, ["a-1.noarch.rpm"])[0].primary == "<primary old/>"
    # Another process (an import through the API) rewrites the same build's file, by rename.
    other = PackageXmlCache(tmp_path / "cache")
    other.store(RELPATH, [package("a-1.noarch.rpm", "new")])
    assert cache.load(RELPATH, tmp_path, ["a-1.noarch.rpm"])[0].primary == "<primary new/>"


def test_memory_is_bounded_and_what_it_forgot_is_read_from_the_file(tmp_path: Path) -> None:
    cache = PackageXmlCache(tmp_path / "cache")
    cache.MEMORY = 3
    for n in range(5):
        cache.store(f"{RELPATH}{n}", [package(f"p{n}.rpm", str(n))])
    assert len(cache._memory) == 3
    assert cache.load(f"{RELPATH}0", tmp_path, ["p0.rpm"]) == [package("p0.rpm", "0")]
    stored = json.loads((tmp_path / "cache" / f"{RELPATH}0.json").read_text())
    assert stored == [asdict(package("p0.rpm", "0"))]
