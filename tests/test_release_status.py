"""`conveyor release-status`: states, filters and bad input, on small data and on real data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from conveyor.cli import packaging
from conveyor.metadata import load_database, packages_for_release
from conveyor.uc import UCError
from conveyor.uc.releases import (
    buildsys_nvrs,
    compile_pattern,
    filter_status,
    newest_releases,
    release_status,
    state_counts,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
RDOINFO = DATA / "rdoinfo-2cdac3d7e"
RELEASES = DATA / "openstack-releases-02df7c9a3"
needs_data = pytest.mark.skipif(
    not (RDOINFO.is_dir() and RELEASES.is_dir()), reason="shared/data is absent"
)

RDO_YML = """\
releases:
- name: epoxy
  status: maintained
  branch: epoxy-rdo
  repos:
  - name: el9s
    buildsys: cbs/cloud9s-openstack-epoxy-el9s
package-default:
  name: python-%(project)s
  upstream: https://opendev.org/openstack/%(project)s
  maintainers:
  - rel@example.org
package-configs:
  lib: {}
packages:
- {project: alpha, conf: lib, tags: {epoxy: {source-branch: 1.2.0}}}
- {project: beta, conf: lib, tags: {epoxy: {source-branch: 2.1.0}}}
- {project: gamma, conf: lib, tags: {epoxy: {source-branch: 3.0.0}}}
- {project: delta, conf: lib, tags: {epoxy: {source-branch: 5.0.0}}}
- {project: eps, conf: lib, tags: {epoxy: {source-branch: master}}}
- {project: zeta, conf: lib, tags: {epoxy: null}}
- {project: eta, conf: lib, tags: {epoxy: {source-branch: 7.0.0.0rc1}}}
- {project: theta, conf: lib, tags: {epoxy: null}}
- project: iota
  conf: lib
  upstream: https://github.com/example/iota
  tags: {epoxy: null}
- {project: kappa, conf: lib, tags: {flamingo: null}}
"""

NVRS = {
    "alpha": "python-alpha-1.2.0-1.el9s",
    "beta": "python-beta-2.0.0-1.el9s",
    "gamma": "python-gamma-3.0.0-1.el9s",
    "zeta": "python-zeta-6.1.0-1.el9s",
    "eta": "python-eta-7.0.0~rc1-1.el9s",
}

RELEASED = {
    "alpha": ["1.1.0", "1.2.0"],
    "beta": ["2.0.0", "2.1.0"],
    "gamma": ["3.0.0", "3.0.1"],
    "delta": ["4.0.0"],
    "eps": ["1.0.0"],
    "zeta": ["6.1.0"],
    "eta": ["7.0.0.0rc1"],
}


@pytest.fixture
def data(tmp_path: Path) -> tuple[Path, Path]:
    info = tmp_path / "rdoinfo"
    (info / "buildsys-tags").mkdir(parents=True)
    (info / "rdo.yml").write_text(RDO_YML)
    lines = ["packages:"]
    for project, nvr in NVRS.items():
        lines += [f"- project: {project}", "  buildsys-tags:"]
        lines.append(f"    cloud9s-openstack-epoxy-release: {nvr}")
    (info / "buildsys-tags" / "cloud9s-openstack-epoxy-release.yml").write_text(
        "\n".join(lines) + "\n"
    )
    releases = tmp_path / "releases"
    (releases / "data").mkdir(parents=True)
    (releases / "data" / "series_status.yaml").write_text(
        "- name: flamingo\n  release-id: 2025.2\n  status: development\n"
        "- name: epoxy\n  release-id: 2025.1\n  status: maintained\n"
    )
    deliverables = releases / "deliverables" / "epoxy"
    deliverables.mkdir(parents=True)
    for project, versions in RELEASED.items():
        body = "team: t\ntype: library\nreleases:\n"
        for version in versions:
            body += f"- version: {version}\n  projects:\n  - repo: openstack/{project}\n"
            body += "    hash: 0123456789abcdef0123456789abcdef01234567\n"
        (deliverables / f"{project}.yaml").write_text(body)
    return info, releases


def test_states(data: tuple[Path, Path]) -> None:
    info, releases = data
    rows = release_status(
        packages_for_release(load_database(info / "rdo.yml"), "epoxy"),
        newest_releases(releases, "epoxy"),
        buildsys_nvrs(info, "epoxy"),
    )
    assert {r.project: r.state for r in rows} == {
        "alpha": "ok",
        "beta": "to-build",  # pinned to 2.1.0, only 2.0.0 built
        "gamma": "pin-older",
        "delta": "pin-newer",
        "eps": "pin-ref",
        "zeta": "ok",  # follows the branch; its newest release is built
        "eta": "ok",  # 7.0.0.0rc1 built as 7.0.0~rc1
        "theta": "no-release",
        "iota": "not-opendev",
    }
    assert state_counts(rows) == {
        "ok": 3,
        "to-build": 1,
        "pin-older": 1,
        "pin-newer": 1,
        "pin-ref": 1,
        "no-release": 1,
        "not-opendev": 1,
    }
    assert [r.project for r in filter_status(rows, compile_pattern("^(al|be)"))] == [
        "alpha",
        "beta",
    ]
    assert [r.project for r in filter_status(rows, compile_pattern("python-z"))] == ["zeta"]
    assert [r.project for r in filter_status(rows, None, ["pin-ref", "no-release"])] == [
        "eps",
        "theta",
    ]
    with pytest.raises(UCError, match=r"unknown state pin-differs; expected one of ok, "):
        filter_status(rows, None, ["pin-differs"])
    with pytest.raises(UCError, match=r"invalid regular expression '\(alpha'"):
        compile_pattern("(alpha")


def _run(info: Path, releases: Path, *args: str) -> Result:
    app = typer.Typer()
    packaging.register(app)
    base = ["release-status", "--releases", str(releases), "--info", str(info)]
    return CliRunner().invoke(app, [*base, "--series", "epoxy", *args])


def test_cli_filters(data: tuple[Path, Path]) -> None:
    info, releases = data
    result = _run(info, releases, "--needs-action")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "epoxy (2025.1): maintained, 9 packages (ok 3, to-build 1, pin-older 1, pin-newer 1, "
        "pin-ref 1, no-release 1, not-opendev 1); 3 shown"
    )
    assert [line.split()[:2] for line in lines[1:]] == [
        ["to-build", "beta"],
        ["pin-newer", "delta"],
        ["pin-older", "gamma"],
    ]
    assert "release=3.0.1 pin=3.0.0 cloud9s-openstack-epoxy-release=python-gamma-3.0.0" in lines[3]
    result = _run(info, releases, "--json", "-p", "^[a-e]", "-s", "ok", "-s", "to-build")
    assert result.exit_code == 0, result.output
    assert [(r["project"], r["state"]) for r in json.loads(result.stdout)] == [
        ("alpha", "ok"),
        ("beta", "to-build"),
        ("eta", "ok"),
    ]
    result = _run(info, releases, "--json", "-p", "nothing-matches")
    assert json.loads(result.stdout) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-p", "(alpha"], "invalid regular expression '(alpha'"),
        (["-p", "*"], "invalid regular expression '*'"),
        (["-s", "pin-differs"], "unknown state pin-differs"),
        (["--series", "nope"], "unknown series 'nope'"),
    ],
)
def test_cli_bad_input(data: tuple[Path, Path], args: list[str], message: str) -> None:
    info, releases = data
    result = _run(info, releases, "--json", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""


@needs_data
def test_release_status_epoxy() -> None:
    db = load_database(RDOINFO / "rdo-full.yml")
    rows = release_status(
        packages_for_release(db, "epoxy"),
        newest_releases(RELEASES, "epoxy"),
        buildsys_nvrs(RDOINFO, "epoxy"),
    )
    by_project = {r.project: r for r in rows}
    glance = by_project["glanceclient"]
    assert (glance.repo, glance.upstream_release, glance.source_branch, glance.state) == (
        "openstack/python-glanceclient", "4.8.0", "4.8.0", "ok",
    )  # fmt: skip
    assert glance.nvrs["cloud9s-openstack-epoxy-release"] == "python-glanceclient-4.8.0-1.el9s"
    # the reference's counts for epoxy: 12 pins older than the newest release, 49 packages
    # without a release in the series
    counts = state_counts(rows)
    assert (counts["pin-older"], counts["no-release"]) == (12, 49)
    assert by_project["oslo-config"].state == "pin-older"  # 9.7.1 pinned, 9.7.2 released
    assert by_project["nova"].state == "to-build"  # follows stable; 31.3.1 not in CBS
    assert by_project["cloudkitty-tempest-plugin"].state == "pin-ref"  # master


@needs_data
def test_cli_release_status() -> None:
    app = typer.Typer()
    packaging.register(app)
    runner = CliRunner()
    args = ["release-status", "--releases", str(RELEASES), "--info", str(RDOINFO)]
    result = runner.invoke(app, [*args, "--series", "epoxy", "--json"])
    assert result.exit_code == 0, result.output
    assert any(r["project"] == "glanceclient" for r in json.loads(result.stdout))
    result = runner.invoke(app, [*args, "--series", "epoxy", "--needs-action", "-p", "^oslo"])
    assert result.exit_code == 0, result.output
    states = {line.split()[0] for line in result.stdout.splitlines()[1:]}
    assert states <= {"to-build", "pin-older", "pin-newer"} and "pin-older" in states
    result = runner.invoke(app, [*args, "--series", "nope"])
    assert result.exit_code == 2
    assert "unknown series 'nope'" in result.output


@pytest.mark.parametrize(
    ("pin", "nvr", "state"),
    [
        ("1.2", "python-x-1.2.0-1.el9s", "ok"),  # 1.2 and 1.2.0 are one release
        ("v1.2.0", "python-x-1.1.0-1.el9s", "to-build"),
        ("1.2.0.0rc1", "python-x-1.2.0~rc1-1.el9s", "pin-older"),  # the final is out
        ("0123abc", "", "pin-ref"),  # a commit
        ("stable/2025.1", "", "pin-ref"),
    ],
)
def test_pin_states(pin: str, nvr: str, state: str) -> None:
    from conveyor.uc.releases import _state

    nvrs = {"cloud9s-openstack-epoxy-release": nvr} if nvr else {}
    assert _state("openstack/x", "1.2.0", pin, nvrs) == state


def test_cli_info_without_a_database(data: tuple[Path, Path], tmp_path: Path) -> None:
    _, releases = data
    empty = tmp_path / "empty"
    empty.mkdir()
    result = _run(empty, releases)
    assert result.exit_code == 2
    assert "neither rdo-full.yml nor rdo.yml" in result.stderr
    assert result.stdout == ""


def test_with_a_builder_the_report_says_what_is_left_before_ga(
    data: tuple[Path, Path], tmp_path: Path
) -> None:
    from conveyor.store.database import Database
    from conveyor.tags.state import record_version

    info, releases = data
    config = tmp_path / "conveyor.toml"
    config.write_text(f'datadir = "{tmp_path / "builder"}"\n\n[metadata]\nrelease = "epoxy"\n')
    db = Database(f"sqlite:///{tmp_path / 'builder' / 'commits.sqlite'}")
    applied = {
        "cloud9s-openstack-epoxy-candidate": {"python-alpha": NVRS["alpha"]},
        "cloud9s-openstack-epoxy-release": {"python-zeta": NVRS["zeta"]},
        "cloud9s-openstack-dalmatian-release": {"python-eta": NVRS["eta"]},  # another series
    }
    with db.transaction() as session:
        for tag, content in applied.items():
            record_version(session, tag, content, content, [], "rel", "seed")
    db.close()
    result = _run(info, releases, "--json", "--config", str(config))
    assert result.exit_code == 0, result.output
    todo = {r["project"]: r["todo"] for r in json.loads(result.stdout)}
    assert todo == {
        "alpha": "propose --to testing",  # built and in candidate
        "beta": "release-build",
        "gamma": "release-pins",
        "delta": "check the pin",
        "eps": "",
        "zeta": "done",  # in the release tag
        "eta": "tags apply",  # declared, not applied in this series' tags
        "theta": "",
        "iota": "",
    }
    rows = {r["project"]: r for r in json.loads(result.stdout)}
    assert rows["alpha"]["applied"] == {"cloud9s-openstack-epoxy-candidate": NVRS["alpha"]}
    text = _run(info, releases, "-p", "^alpha$", "--config", str(config)).stdout
    assert "todo: propose --to testing" in text
