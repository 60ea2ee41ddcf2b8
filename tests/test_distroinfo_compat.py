"""The loader resolves exactly what distroinfo 0.6.3 resolves, on both real rdoinfo snapshots.

For every tag a package carries (and for no tag), each resolved package mapping must equal
distroinfo's ``parse_package`` output for the same project. Both sides parse once per snapshot;
only the per-tag resolution is repeated.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from conveyor.metadata import RdoInfoDatabase, load_database, packages_for_release
from conveyor.metadata.cache import ParseCache
from conveyor.metadata.query import resolved_releases

distroinfo_info = pytest.importorskip("distroinfo.info")
distroinfo_parse = pytest.importorskip("distroinfo.parse")

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SNAPSHOTS = ("rdoinfo-2cdac3d7e", "rdoinfo-b967254ab")


def _snapshot(name: str) -> Path:
    path = DATA / name
    if not (path / "rdo-full.yml").is_file():
        pytest.skip(f"{path} not present")
    return path


@pytest.fixture(scope="module", params=SNAPSHOTS)
def both(request: pytest.FixtureRequest) -> tuple[RdoInfoDatabase, dict[str, Any]]:
    path = _snapshot(request.param)
    db = load_database(path / "rdo-full.yml")
    di = distroinfo_info.DistroInfo("rdo-full.yml", local_info=str(path))
    raw_infos = di.fetcher.fetch(*di.info_files)
    raw = distroinfo_parse.merge_infos(*raw_infos, info_dicts=True)
    distroinfo_parse.parse_releases(raw)
    return db, raw


def _all_tags(raw: dict[str, Any]) -> list[str]:
    tags: set[str] = set()
    for pkg in raw["packages"].values():
        tags.update(pkg.get("tags") or {})
    return sorted(tags)


def _distroinfo_packages(raw: dict[str, Any], tag: str | None) -> dict[str, dict[str, Any]]:
    result = {}
    for project, entry in raw["packages"].items():
        parsed = distroinfo_parse.parse_package(copy.deepcopy(entry), raw, apply_tag=tag)
        # distroinfo resolves every package; a tag selects the packages that carry it.
        if tag is None or tag in (parsed.get("tags") or {}):
            result[project] = parsed
    return result


def _compare(db: RdoInfoDatabase, raw: dict[str, Any], tag: str | None) -> None:
    ours = {package.project: dict(package.raw) for package in packages_for_release(db, tag)}
    theirs = _distroinfo_packages(raw, tag)
    assert sorted(ours) == sorted(theirs), f"tag {tag}: package sets differ"
    for project, expected in theirs.items():
        assert ours[project] == expected, f"tag {tag}: package {project} differs"


def test_same_releases_and_sections(both: tuple[RdoInfoDatabase, dict[str, Any]]) -> None:
    db, raw = both
    assert {release["name"]: release for release in resolved_releases(db)} == raw["releases"]
    assert list(db.packages) == list(raw["packages"])
    assert dict(db.package_configs) == raw["package-configs"]
    assert dict(db.package_default) == raw["package-default"]
    assert list(db.components) == raw["components"]


def test_every_tag_resolves_like_distroinfo(both: tuple[RdoInfoDatabase, dict[str, Any]]) -> None:
    db, raw = both
    tags = _all_tags(raw)
    assert len(tags) > 10
    for tag in [None, *tags]:
        _compare(db, raw, tag)


def test_cached_load_equals_uncached(tmp_path: Path) -> None:
    path = _snapshot(SNAPSHOTS[0]) / "rdo-full.yml"
    plain = load_database(path)
    cache = ParseCache(tmp_path / "cache")
    cold = load_database(path, cache=cache)
    assert cache.misses > 0
    misses = cache.misses
    warm = load_database(path, cache=cache)
    assert cache.misses == misses and cache.hits > 0
    for db in (cold, warm):
        assert dict(db.packages) == dict(plain.packages)
        assert dict(db.releases) == dict(plain.releases)
        assert db.files == plain.files
        for project in ("glanceclient", "python-markupsafe"):
            assert db.location(project) == plain.location(project)
