"""`conveyor uc-report`: UC parsing, name mapping, repository metadata, RPM ordering."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from conveyor.cli import packaging
from conveyor.uc import (
    ProviderIndex,
    UCError,
    add_nvr_list,
    add_repository,
    build_report,
    load_constraints,
    package_candidates,
    parse_constraints,
    summary,
    to_csv,
)
from conveyor.uc.report import compare

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
RDOINFO = DATA / "rdoinfo-2cdac3d7e"
REQUIREMENTS = DATA / "openstack-requirements-335367772"
needs_data = pytest.mark.skipif(not RDOINFO.is_dir(), reason="shared/data is absent")
needs_rpmbuild = pytest.mark.skipif(
    not (shutil.which("rpmbuild") and shutil.which("createrepo_c")),
    reason="rpmbuild and createrepo_c are needed",
)

SPEC = """\
Name: {name}
Version: {version}
Release: 1.el9s
Summary: test package
License: MIT
BuildArch: noarch
{provides}
%description
test package

%files
"""


def build_rpm(work: Path, name: str, version: str, dist: str | None) -> Path:
    provides = f"Provides: python3dist({dist}) = {version}" if dist else ""
    spec = work / f"{name}-{version}.spec"
    spec.write_text(SPEC.format(name=name, version=version, provides=provides))
    top = work / "rpmbuild"
    subprocess.run(
        ["rpmbuild", "-bb", "--quiet", "--define", f"_topdir {top}", str(spec)],
        check=True,
        capture_output=True,
    )
    return top / "RPMS" / "noarch" / f"{name}-{version}-1.el9s.noarch.rpm"


def make_repo(path: Path, rpms: list[Path]) -> Path:
    path.mkdir(parents=True)
    for rpm in rpms:
        shutil.copy(rpm, path)
    subprocess.run(["createrepo_c", "--quiet", str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if not (shutil.which("rpmbuild") and shutil.which("createrepo_c")):
        pytest.skip("rpmbuild and createrepo_c are needed")
    work = tmp_path_factory.mktemp("rpms")
    main = make_repo(
        work / "main",
        [
            build_rpm(work, "python3-foo", "1.2.3", "foo"),
            build_rpm(work, "python3-oslo-config", "9.6.0", "oslo-config"),
            build_rpm(work, "python3-bar", "2.0.1", "bar"),
        ],
    )
    extra = make_repo(
        work / "extra",
        [
            build_rpm(work, "python3-foo", "1.2.2", "foo"),
            build_rpm(work, "python3-chardet", "6.0.0~post1", "chardet"),
        ],
    )
    return main, extra


UC = """\
# a comment
foo===1.2.3
oslo.config===9.7.0
bar===1.5
chardet===6.0.0.post1;python_version=='3.9'
chardet===7.0;python_version=='3.12'
missing-one===0.1
"""


def test_markers_are_evaluated_not_cut() -> None:
    pins = parse_constraints(UC, "uc.txt", python_version="3.9")
    chardet = [p for p in pins if p.name == "chardet"]
    assert [(p.version, p.line) for p in chardet] == [("6.0.0.post1", 5)]
    pins = parse_constraints(UC, "uc.txt", python_version="3.12")
    assert [p.version for p in pins if p.name == "chardet"] == ["7.0"]
    text = "a===1;python_version>='3.10' and sys_platform=='linux'\n"
    assert parse_constraints(text, python_version="3.9") == []
    assert len(parse_constraints(text, python_version="3.11")) == 1


@pytest.mark.parametrize(
    "line",
    ["foo==1.0", "foo>=1", "===1.0", "foo===", "foo bar===1", "foo===1;python_version=="],
)
def test_bad_uc_line_is_a_clear_error(line: str) -> None:
    with pytest.raises(UCError, match=r"^uc\.txt:2: "):
        parse_constraints(f"ok===1\n{line}\n", "uc.txt")


def test_rpm_ordering() -> None:
    assert compare("1.2.3", "1.2.3") == "equal"
    assert compare("1.10", "1.9") == "lower"
    assert compare("1.2", "1.10") == "greater"
    assert compare("1.0", "1.0~rc1") == "lower"


def test_name_mapping() -> None:
    assert package_candidates("oslo.config")[0] == "python-oslo-config"
    assert package_candidates("PyJWT")[0] == "python-jwt"
    assert package_candidates("nova")[0] == "openstack-nova"
    assert package_candidates("python-glanceclient")[0] == "python-glanceclient"
    assert package_candidates("foo", {"foo": "bar-baz"})[0] == "bar-baz"


@needs_rpmbuild
def test_report_from_real_repositories(repos: tuple[Path, Path], tmp_path: Path) -> None:
    main, extra = repos
    index = ProviderIndex()
    add_repository(index, f"rdo,{main}")
    add_repository(index, str(extra))
    pins = parse_constraints(UC, "uc.txt")
    rows = build_report("epoxy", pins, index)
    by_name = {r.modname: r for r in rows}
    assert by_name["foo"].cells() == (
        "epoxy", "foo", "1.2.3", "python3-foo", "1.2.3", "rdo", "equal",
    )  # fmt: skip
    assert by_name["foo"].others == ("extra",)
    assert by_name["oslo.config"].status == "lower"
    assert by_name["oslo.config"].pkgname == "python3-oslo-config"
    assert by_name["bar"].status == "greater"
    assert by_name["chardet"].pkgvers == "6.0.0~post1"
    assert by_name["missing-one"].cells()[3:] == ("", "", "", "missing")
    assert summary(rows) == {"equal": 1, "lower": 2, "greater": 1, "missing": 1}
    assert to_csv(rows[:1]) == "epoxy,foo,1.2.3,python3-foo,1.2.3,rdo,equal\n"


@needs_rpmbuild
def test_cli_uc_report(repos: tuple[Path, Path], tmp_path: Path) -> None:
    main, _ = repos
    uc = tmp_path / "uc.txt"
    uc.write_text(UC)
    app = typer.Typer()
    packaging.register(app)
    runner = CliRunner()
    args = ["uc-report", "--release", "epoxy", "--uc", str(uc), "--repo", str(main)]
    result = runner.invoke(app, [*args, "-s", "lower"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "epoxy,oslo.config,9.7.0,python3-oslo-config,9.6.0,main,lower"
    ]
    result = runner.invoke(app, [*args, "--json"])
    data = json.loads(result.stdout)
    assert data["summary"] == {"equal": 1, "lower": 1, "greater": 1, "missing": 2}
    assert data["rows"][0]["ModName"] == "foo"
    uc.write_text("foo===1\nfoo>=2\n")
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert f"{uc}:2: expected 'name===version" in result.output


def test_missing_repository_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UCError, match=r"no repodata/repomd\.xml"):
        add_repository(ProviderIndex(), str(tmp_path))


def test_bad_nvr_list(tmp_path: Path) -> None:
    nvrs = tmp_path / "list.txt"
    nvrs.write_text("python-foo-1.0-1.el9s\nnot an nvr\n")
    with pytest.raises(UCError, match=r"list\.txt:2: not an NVR"):
        add_nvr_list(ProviderIndex(), nvrs)


@needs_data
def test_real_uc_against_epoxy_release_tag() -> None:
    pins = load_constraints(REQUIREMENTS / "stable-2025.1" / "upper-constraints.txt")
    assert 550 < len(pins) < 600
    index = ProviderIndex()
    add_nvr_list(index, RDOINFO / "buildsys-tags" / "cloud9s-openstack-epoxy-release.yml")
    rows = build_report("epoxy", pins, index)
    counts = summary(rows)
    assert sum(counts.values()) == len(pins)
    assert counts["equal"] > 150 and counts["lower"] > 100
    by_name = {r.modname: r for r in rows}
    assert by_name["oslo.config"].pkgname == "python-oslo-config"
    assert by_name["oslo.config"].source == "cloud9s-openstack-epoxy-release"
    assert by_name["PasteDeploy"].pkgname == "python-paste-deploy"


@needs_data
def test_real_uc_markers_keep_post_releases() -> None:
    pins = load_constraints(REQUIREMENTS / "upper-constraints.txt")
    assert {p.name: p.version for p in pins}["chardet"] == "6.0.0.post1"
    stable = load_constraints(REQUIREMENTS / "stable-2025.2" / "upper-constraints.txt", "3.12")
    assert len({p.key for p in stable}) == len(stable)


RELEASES = DATA / "openstack-releases-02df7c9a3"


@needs_data
def test_release_status_epoxy() -> None:
    from conveyor.metadata import load_database, packages_for_tag
    from conveyor.uc.releases import buildsys_nvrs, newest_releases, release_status

    db = load_database(RDOINFO / "rdo-full.yml")
    rows = release_status(
        packages_for_tag(db, "epoxy"),
        newest_releases(RELEASES, "epoxy"),
        buildsys_nvrs(RDOINFO, "epoxy"),
    )
    by_project = {r.project: r for r in rows}
    glance = by_project["glanceclient"]
    assert (glance.repo, glance.upstream_release, glance.source_branch, glance.state) == (
        "openstack/python-glanceclient", "4.8.0", "4.8.0", "ok",
    )  # fmt: skip
    assert glance.nvrs["cloud9s-openstack-epoxy-release"] == "python-glanceclient-4.8.0-1.el9s"
    states = {r.state for r in rows}
    assert {"ok", "unpinned", "no-release", "pin-differs"} <= states


@needs_data
def test_cli_release_status() -> None:
    app = typer.Typer()
    packaging.register(app)
    runner = CliRunner()
    args = ["release-status", "--releases", str(RELEASES), "--info", str(RDOINFO)]
    result = runner.invoke(app, [*args, "--series", "epoxy", "--json"])
    assert result.exit_code == 0, result.output
    assert any(r["project"] == "glanceclient" for r in json.loads(result.stdout))
    result = runner.invoke(app, [*args, "--series", "nope"])
    assert result.exit_code == 2
    assert "unknown series 'nope'" in result.output
