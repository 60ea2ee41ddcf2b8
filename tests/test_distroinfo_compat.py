"""The loader resolves exactly what distroinfo 0.6.3 resolves, on real rdoinfo snapshots
and on synthetic databases with the shapes older snapshots have.

For every tag a package carries (and for no tag), each resolved package mapping must equal
distroinfo's ``parse_package`` output for the same project. Both sides parse once per snapshot;
only the per-tag resolution is repeated.

Snapshots: the two in ``shared/data`` and, where a git mirror of rdoinfo is at hand, its states
of 2018-06-01 (dependencies without ``upstream``) and 2020-06-01 (a project listed twice in
deps.yml with different ``conf``), both refused by conveyor before and loaded by distroinfo.
The synthetic databases reproduce those two shapes and always run.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from tests.rdoinfo_history import REVISIONS, rdoinfo_at

from conveyor.metadata import (
    MetadataError,
    RdoInfoDatabase,
    load_database,
    packages_for_release,
    resolve_package,
)
from conveyor.metadata.cache import ParseCache
from conveyor.metadata.lint import lint
from conveyor.metadata.merge import merge_documents
from conveyor.metadata.query import format_package, resolved_packages, resolved_releases
from conveyor.metadata.yamlfiles import read_yaml_file

distroinfo_info = pytest.importorskip("distroinfo.info")
distroinfo_parse = pytest.importorskip("distroinfo.parse")

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SNAPSHOTS = ("rdoinfo-2cdac3d7e", "rdoinfo-b967254ab")


def _snapshot(name: str) -> Path:
    path = DATA / name
    if not (path / "rdo-full.yml").is_file():
        pytest.skip(f"{path} not present")
    return path


def _distroinfo_raw(path: Path) -> dict[str, Any]:
    """distroinfo's merged info (dicts by project / release name), releases parsed."""
    di = distroinfo_info.DistroInfo("rdo-full.yml", local_info=str(path))
    raw_infos = di.fetcher.fetch(*di.info_files)
    raw: dict[str, Any] = distroinfo_parse.merge_infos(*raw_infos, info_dicts=True)
    distroinfo_parse.parse_releases(raw)
    return raw


def _both(path: Path) -> tuple[RdoInfoDatabase, dict[str, Any]]:
    return load_database(path / "rdo-full.yml"), _distroinfo_raw(path)


@pytest.fixture(scope="module", params=SNAPSHOTS + tuple(REVISIONS))
def both(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[RdoInfoDatabase, dict[str, Any]]:
    if request.param in REVISIONS:
        return _both(rdoinfo_at(request.param, tmp_path_factory.mktemp(request.param)))
    return _both(_snapshot(request.param))


def _all_tags(raw: dict[str, Any]) -> list[str]:
    """Every tag a package, a template or package-default carries (the old snapshots' deps
    get ``dependency`` from their template)."""
    tags: set[str] = set()
    templates = (raw.get("package-configs") or {}).values()
    for pkg in [*raw["packages"].values(), *templates, raw.get("package-default") or {}]:
        tags.update((pkg or {}).get("tags") or {})
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


def _assert_same_sections(db: RdoInfoDatabase, raw: dict[str, Any]) -> None:
    assert {release["name"]: release for release in resolved_releases(db)} == raw["releases"]
    assert list(db.packages) == list(raw["packages"])
    assert dict(db.package_configs) == raw["package-configs"]
    assert dict(db.package_default) == raw.get("package-default", {})
    assert list(db.components) == raw.get("components", [])  # none before 2019


def test_same_releases_and_sections(both: tuple[RdoInfoDatabase, dict[str, Any]]) -> None:
    _assert_same_sections(*both)


def test_every_tag_resolves_like_distroinfo(both: tuple[RdoInfoDatabase, dict[str, Any]]) -> None:
    db, raw = both
    tags = _all_tags(raw)
    assert len(tags) > 8
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


# --- the shapes of older snapshots, as synthetic databases (these always run) ----------------

RDO_YML = """\
releases:
- name: ussuri
  branch: ussuri-rdo
  repos:
  - name: el8
    buildsys: cbs/cloud8-openstack-ussuri-el8
    buildsys-tags:
    - cloud8-openstack-ussuri-el8-build
    - cloud8-openstack-ussuri-testing
- name: train
  branch: train-rdo
  repos:
  - name: el8
    buildsys: cbs/cloud8-openstack-train-el8
    buildsys-tags:
    - cloud8-openstack-train-el8-build
    - cloud8-openstack-train-testing
- name: train
  status: eol
  branch: train-eol
  repos: []
package-default:
  name: "%(project)s"
package-configs:
  rpmfactory-core:
    name: openstack-%(project)s
    upstream: git://git.openstack.org/openstack/%(project)s
    master-distgit: https://github.com/rdo-packages/%(project)s-distgit.git
    maintainers:
    - dev@example.org
    tags:
      ussuri:
      train:
packages:
- project: nova
  conf: rpmfactory-core
"""

# deps.yml as rdoinfo had it in 2018-2020: dependencies rebuilt from a distgit, without
# `upstream`; python-sphinx-testing listed twice with different `conf` (lines 27 and 37).
DEPS_YML = """\
package-configs:
  fedora-dependency:
    distgit: https://src.fedoraproject.org/git/rpms/%(project)s.git
    patches:
    master-distgit: https://src.fedoraproject.org/git/rpms/%(project)s.git
    tags:
      dependency:
    maintainers:
    - nobody@rdoproject.org
  rdo-dependency:
    distgit: https://github.com/rdo-common/%(project)s.git
    master-distgit: https://github.com/rdo-common/%(project)s.git
    tags:
      dependency:
    maintainers:
    - nobody@rdoproject.org
packages:
- project: python-sphinx
  name: python-sphinx
  conf: rdo-dependency
  upstream: https://github.com/sphinx-doc/sphinx
- project: python-sphinxcontrib-websupport
  name: python-sphinxcontrib-websupport
  conf: rdo-dependency
  buildsys-tags:
    cloud8-openstack-train-el8-build: python-sphinxcontrib-websupport-1.1.2-1.el8
- project: python-sphinx-testing
  name: python-sphinx-testing
  conf: rdo-dependency
  buildsys-tags:
    cloud8-openstack-train-el8-build: python-sphinx-testing-1.0.1-7.el8
- project: phantomjs
  conf: fedora-dependency
  buildsys-tags:
    version-locked:
    - cloud8-openstack-train-testing
- project: python-sphinx-testing
  name: python-sphinx-testing
  conf: fedora-dependency
  maintainers:
  - someone@example.org
  buildsys-tags:
    cloud8-openstack-ussuri-el8-build: python-sphinx-testing-1.0.1-7.el8
  tags:
    ussuri:
"""


@pytest.fixture
def synthetic(tmp_path: Path) -> Path:
    (tmp_path / "rdo-full.yml").write_text("import:\n- rdo.yml\n- deps.yml\n")
    (tmp_path / "rdo.yml").write_text(RDO_YML)
    (tmp_path / "deps.yml").write_text(DEPS_YML)
    return tmp_path


def test_synthetic_old_shapes_resolve_like_distroinfo(synthetic: Path) -> None:
    db, raw = _both(synthetic)
    _assert_same_sections(db, raw)
    train = next(release for release in resolved_releases(db) if release["name"] == "train")
    assert (train["status"], train["branch"]) == ("eol", "train-eol")  # a release, likewise
    tags = _all_tags(raw)
    assert tags == ["dependency", "train", "ussuri"]
    for tag in [None, *tags, "victoria"]:
        _compare(db, raw, tag)


def test_synthetic_old_shapes_match_get_info(synthetic: Path) -> None:
    """What rdopkg and DLRN call: ``DistroInfo.get_info(apply_tag=...)``, every package."""
    db = load_database(synthetic / "rdo-full.yml")
    di = distroinfo_info.DistroInfo("rdo-full.yml", local_info=str(synthetic))
    for tag in (None, "dependency", "ussuri"):
        expected = di.get_info(apply_tag=tag)["packages"]
        assert [dict(package) for package in resolved_packages(db, tag)] == expected


def test_duplicate_with_different_conf_keeps_the_later_entry(synthetic: Path) -> None:
    db = load_database(synthetic / "rdo-full.yml")
    testing = {p.project: p for p in packages_for_release(db, None)}["python-sphinx-testing"]
    # distroinfo merges the second entry into the first: later scalars win, mappings merge.
    assert testing.raw["conf"] == "fedora-dependency"
    assert testing.distgit == "https://src.fedoraproject.org/git/rpms/python-sphinx-testing.git"
    assert testing.maintainers == ("someone@example.org",)
    assert set(testing.raw["buildsys-tags"]) == {
        "cloud8-openstack-train-el8-build",
        "cloud8-openstack-ussuri-el8-build",
    }
    assert [p.project for p in packages_for_release(db, "ussuri")] == [
        "nova",
        "python-sphinx-testing",
    ]
    assert testing.location.line == 37  # the entry that sets conf last
    # strict loading still refuses it, with both lines and what differs
    with pytest.raises(MetadataError) as refused:
        merge_documents([read_yaml_file(synthetic / "deps.yml")], strict=True)
    assert str(refused.value).endswith(
        "deps.yml:37: duplicate project 'python-sphinx-testing' in 'packages' "
        "(first at line 27): 'conf' differs"
    )


def test_dependency_without_upstream_loads_and_prints_without_it(synthetic: Path) -> None:
    db = load_database(synthetic / "rdo-full.yml")
    websupport = resolve_package(db, "python-sphinxcontrib-websupport")
    assert "upstream" not in websupport.raw
    assert websupport.upstream_url is None
    # a consumer that needs an upstream (the trunk builds from it) gets the metadata error
    with pytest.raises(MetadataError, match=r"deps.yml:22: .* has no 'upstream'"):
        _ = websupport.upstream
    printed = format_package(websupport.raw)
    assert printed.startswith("name: python-sphinxcontrib-websupport\nproject: ")
    assert "upstream" not in printed  # as rdopkg info prints it: no upstream line
    assert resolve_package(db, "python-sphinx").upstream == "https://github.com/sphinx-doc/sphinx"


def test_lint_judges_what_the_loader_accepts(synthetic: Path) -> None:
    found = [f"{p.location.path.name}:{p.location.line}: {p.message}" for p in lint(synthetic)]
    assert found == [
        "deps.yml:37: duplicate project 'python-sphinx-testing' in 'packages' "
        "(first at line 27): 'conf' differs",
        "rdo.yml:18: duplicate name 'train' in 'releases' (first at line 10): 'branch' differs",
    ]


# --- the older real snapshots (from a git mirror of rdoinfo, skipped without one) ------------


@pytest.mark.parametrize("name", sorted(REVISIONS))
def test_older_snapshot_matches_get_info(name: str, tmp_path: Path) -> None:
    path = rdoinfo_at(name, tmp_path)
    db = load_database(path / "rdo-full.yml")
    info = distroinfo_info.DistroInfo("rdo-full.yml", local_info=str(path)).get_info()
    assert [dict(package) for package in resolved_packages(db)] == info["packages"]
    packages = {package["project"]: package for package in info["packages"]}
    if name == "rdoinfo-2018":
        assert len(packages) == 851
        assert sum("upstream" not in package for package in packages.values()) == 505
        assert "upstream" not in packages["python-sphinxcontrib-websupport"]
    else:
        assert len(packages) == 1135
        assert packages["python-sphinx-testing"]["conf"] == "fedora-dependency"
        assert str(db.location("python-sphinx-testing")) == f"{path / 'deps.yml'}:2336"
