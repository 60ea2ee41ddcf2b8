"""rdopkg-shaped queries: filters, find, layouts (checked byte for byte against rdopkg 1.8.0
output on the real data), and the `info` / `findpkg` / `release` commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from conveyor.metadata import load_database
from conveyor.metadata.query import (
    FilterError,
    filter_packages,
    find_package,
    format_package,
    format_packages,
    format_release,
    format_summary,
    parse_filters,
    resolved_packages,
    resolved_releases,
    select_releases,
    strip_project_url,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
HEAD = DATA / "rdoinfo-2cdac3d7e"

PKG: dict[str, Any] = {
    "name": "python-x",
    "project": "x",
    "conf": "lib",
    "upstream": "https://opendev.org/openstack/x",
    "maintainers": ["a@example.com", "kkula@example.com"],
    "tags": {"flamingo": None, "epoxy": {"source-branch": "1.0"}},
    "component": "common",
    "zz": None,
}


def test_parse_filters() -> None:
    filters = parse_filters(["nova", "conf:client", "conf:lib", "component:~common"])
    assert [(f.attr, f.pattern.pattern, f.negate) for f in filters] == [
        ("name", "nova", False),
        ("conf", "lib", False),  # the same attribute twice: the last wins
        ("component", "common", True),
    ]
    with pytest.raises(FilterError, match="invalid regular expression"):
        parse_filters(["name:("])
    with pytest.raises(FilterError, match="missing attribute"):
        parse_filters([":x"])


@pytest.mark.parametrize(
    ("filters", "matches"),
    [
        (["maintainers:kkula"], True),
        (["maintainers:nobody"], False),
        (["tags:^flamingo$"], True),
        (["tags:^flam$"], False),
        (["conf:li", "name:^python-"], True),
        (["component:~common"], False),
        (["component:~net"], True),
        (["missing:.*"], False),
        (["missing:~x"], False),
        (["x"], True),
    ],
)
def test_filter_semantics(filters: list[str], matches: bool) -> None:
    assert bool(filter_packages([PKG], parse_filters(filters))) is matches


def test_format_package_layout() -> None:
    assert format_package(PKG) == (
        "name: python-x\n"
        "project: x\n"
        "conf: lib\n"
        "upstream: https://opendev.org/openstack/x\n"
        "component: common\n"
        "tags:\n"
        "  epoxy:\n"
        "    source-branch: '1.0'\n"
        "  flamingo: null\n"
        "zz: null\n"
        "maintainers: \n"
        "- a@example.com\n"
        "- kkula@example.com"
    )
    assert format_packages([]) == "No packages match your filter."
    assert format_packages([PKG, PKG]).startswith("2 packages found:\n\nname: python-x\n")


def test_find_package() -> None:
    other: dict[str, Any] = {
        "name": "openstack-nova",
        "project": "nova",
        "upstream": "git://x/openstack/nova",
    }
    packages = [PKG, other]
    assert find_package(packages, "openstack-nova") is other
    assert find_package(packages, "NOVA".lower()) is other
    assert find_package(packages, "https://opendev.org/openstack/x.git") is PKG
    assert find_package(packages, "https://git.sample.org/foo/nova-distgit.git") is other
    assert find_package(packages, "ython-") is PKG
    assert find_package(packages, "ython-", strict=True) is None
    assert find_package(packages, "zzz") is None
    assert strip_project_url("https://opendev.org/openstack/nova-distgit.git") == (
        "opendev.org/openstack/nova"
    )


def test_releases() -> None:
    releases = [
        {
            "name": "b",
            "status": "development",
            "branch": "m",
            "identifier": "2025.2",
            "upstream_branch": "master",
            "repos": [{"name": "el9s"}, {"name": "el10s"}],
        },
        {"name": "a", "status": "eol", "branch": "m", "repos": [{"name": "el8"}]},
    ]
    assert format_release(releases[0]) == (
        "name: b\nstatus: development\nbranch: m\nidentifier: 2025.2\n"
        "upstream_branch: master\nsource_branch: stable/2025.2\nrepos: el9s, el10s"
    )
    assert format_release(releases[1]).endswith(
        "upstream_branch: stable/a\nsource_branch: stable/a\nrepos: el8"
    )
    assert select_releases(releases, status="eol") == [releases[1]]
    assert select_releases(releases, name="b") == [releases[0]]
    assert select_releases(releases, repo="el8") == [releases[1]]


@pytest.fixture(scope="module")
def head_rdo() -> Path:
    if not (HEAD / "rdo.yml").is_file():
        pytest.skip(f"{HEAD} not present")
    return HEAD / "rdo.yml"


@pytest.mark.parametrize(
    ("filters", "count"),
    [
        (["maintainers:kkula"], 10),
        (["conf:client"], 42),
        (["tags:^under-review$"], 7),
        (["tags:^flamingo$"], 249),
        (["conf:client", "maintainers:jcapitao"], 8),
        (["conf:rpmfactory", "component:~common"], 317),
    ],
)
def test_counts_on_real_data(head_rdo: Path, filters: list[str], count: int) -> None:
    packages = resolved_packages(load_database(head_rdo))
    assert len(filter_packages(packages, parse_filters(filters))) == count


def test_summary_on_real_data(head_rdo: Path) -> None:
    db = load_database(head_rdo.parent)
    text = format_summary(resolved_releases(db), resolved_packages(db))
    assert text.startswith(
        "releases & repos:\n"
        "  flamingo in development phase \n"
        "    el9s built in cbs/cloud9s-openstack-flamingo-el9s from rpm-master branch\n"
    )
    assert "\n\n1369 packages defined:\n  95 using rpmfactory-puppet config\n" in text
    assert text.endswith("  803 using fedora-dependency config")


def test_tag_applies_overrides(head_rdo: Path) -> None:
    db = load_database(head_rdo.parent)
    glance = find_package(resolved_packages(db, "flamingo-uc"), "glanceclient")
    assert glance is not None and glance["source-branch"] == "4.9.0"
    text = format_package(glance)
    assert text.startswith(
        "name: python-glanceclient\nproject: glanceclient\nconf: rpmfactory-client\n"
        "upstream: https://opendev.org/openstack/python-glanceclient\n"
        "patches: http://review.rdoproject.org/r/openstack/glanceclient.git\n"
        "distgit: https://github.com/rdo-packages/glanceclient-distgit.git\n"
        "buildsys-tags:\n  cloud7-openstack-train-release: python-glanceclient-2.17.1-1.el7\n"
    )
    assert "\nsource-branch: 4.9.0\n" in text
    assert text.endswith("maintainers: \n- jcapitao@redhat.com\n- kkula@redhat.com")


def _app() -> typer.Typer:
    from conveyor.cli import metadata

    app = typer.Typer()
    metadata.register(app)
    return app


def test_cli(head_rdo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    runner = CliRunner()
    local = str(head_rdo.parent)
    result = runner.invoke(
        _app(), ["info", "-l", local, "-i", "rdo.yml", "conf:client", "maintainers:jcapitao"]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("8 packages found:\n\nname: python-")
    result = runner.invoke(
        _app(), ["info", "-l", local, "--json", "-t", "flamingo-uc", "project:^glanceclient$"]
    )
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert [p["name"] for p in listed] == ["python-glanceclient"]
    assert listed[0]["source-branch"] == "4.9.0"
    assert (tmp_path / "conveyor" / "metadata").is_dir()  # the parse cache was used
    result = runner.invoke(_app(), ["info", "-l", local, "name:("])
    assert result.exit_code == 2
    result = runner.invoke(_app(), ["info", "-l", local])
    assert result.stdout.startswith("releases & repos:\n")
    assert "Supply regex filter(s)" in result.stdout
    result = runner.invoke(
        _app(), ["findpkg", "-l", local, "https://opendev.org/openstack/oslo.config"]
    )
    assert result.exit_code == 0 and result.stdout.startswith("name: python-oslo-config\n")
    result = runner.invoke(_app(), ["findpkg", "-l", local, "no-such-thing-at-all"])
    assert result.exit_code == 1
    result = runner.invoke(_app(), ["release", "-l", local, "-s", "maintained"])
    assert result.stdout == "epoxy\ndalmatian\ncaracal\nbobcat\n"
    result = runner.invoke(_app(), ["release", "-l", local, "-r", "flamingo"])
    assert result.stdout.endswith("source_branch: stable/2025.2\nrepos: el9s, el10s\n")
