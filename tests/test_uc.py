"""`conveyor uc-report`: UC parsing, name mapping, repository metadata, RPM ordering."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from conveyor.cli import packaging
from conveyor.uc import (
    ProviderIndex,
    UCError,
    add_nvr_list,
    add_repo_file,
    add_repository,
    build_report,
    load_constraints,
    load_name_map,
    package_candidates,
    parse_constraints,
    source_counts,
    summary,
    to_csv,
)
from conveyor.uc.repofile import parse_repo_file, repo_variables
from conveyor.uc.versions import compare, rpm_form

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


# --- pre-releases as RDO packages them ----------------------------------------------------


@pytest.mark.parametrize(
    ("upstream", "rpm_version"),
    [
        ("1.2.0.0rc1", "1.2.0~rc1"),  # pbr's form, as OpenStack tags RCs
        ("1.2.0rc1", "1.2.0~rc1"),
        ("31.0.0.0b2", "31.0.0~b2"),
        ("1.0rc1", "1.0~rc1"),  # only a fourth .0 is pbr's: 1.0 keeps its .0
        ("2.0.dev3", "2.0~dev3"),
        ("1.2.3", "1.2.3"),
        ("6.0.0.post1", "6.0.0.post1"),
        ("not-a-version", "not-a-version"),
    ],
)
def test_rpm_form_of_upstream_versions(upstream: str, rpm_version: str) -> None:
    assert rpm_form(upstream) == rpm_version


def test_rc_pins_compare_equal_to_rc_packages() -> None:
    assert compare("1.2.0.0rc1", "1.2.0~rc1") == "equal"
    assert compare("1.2.0rc1", "1.2.0~rc1") == "equal"
    assert compare("1.2.0.0rc2", "1.2.0~rc1") == "lower"
    assert compare("1.2.0", "1.2.0~rc1") == "lower"  # the final is newer than its RC
    assert compare("1.2.0.0rc1", "1.2.0") == "greater"
    # RDO's milestone form: Version 31.0.0, Release 0.1.0rc1
    assert compare("31.0.0.0rc1", "31.0.0", "0.1.0rc1.el9s") == "equal"
    assert compare("31.0.0", "31.0.0", "0.1.0rc1.el9s") == "lower"
    # a DLRN trunk Release whose hash starts with 0b is not a milestone
    assert compare("4.11.1", "4.11.1", "0.20260422174943.0b01234.el9s") == "equal"


def test_rc_pin_against_nvr_lists(tmp_path: Path) -> None:
    nvrs = tmp_path / "tag.txt"
    nvrs.write_text("python-rcpkg-2.0.0~rc1-1.el9s\nopenstack-nova-31.0.0-0.1.0rc1.el9s\n")
    index = ProviderIndex()
    add_nvr_list(index, nvrs)
    uc = "rcpkg===2.0.0.0rc1\nnova===31.0.0.0rc1\n"
    rows = build_report("flamingo", parse_constraints(uc), index)
    assert [(r.pkgname, r.pkgvers, r.status) for r in rows] == [
        ("python-rcpkg", "2.0.0~rc1", "equal"),
        ("openstack-nova", "31.0.0", "equal"),
    ]


# --- --name-map ---------------------------------------------------------------------------


def test_name_map_overrides_the_mapping(tmp_path: Path) -> None:
    nvrs = tmp_path / "tag.txt"
    nvrs.write_text("python-weird-1.0-1.el9s\npython-foo-1.0-1.el9s\npython-foo-ng-2.0-1.el9s\n")
    index = ProviderIndex()
    add_nvr_list(index, nvrs)
    pins = parse_constraints("Some_Module===1.0\nfoo===2.0\n")
    rows = build_report("epoxy", pins, index)
    assert [r.status for r in rows] == ["missing", "lower"]
    table = tmp_path / "names.txt"
    table.write_text("# module  package\nsome.module  python-weird\nfoo python-foo-ng  # renamed\n")
    rows = build_report("epoxy", pins, index, load_name_map(table))
    assert [(r.pkgname, r.status) for r in rows] == [
        ("python-weird", "equal"),
        ("python-foo-ng", "equal"),
    ]


def test_name_map_as_yaml(tmp_path: Path) -> None:
    table = tmp_path / "names.yml"
    table.write_text("horizon: python-django-horizon\nPyYAML: python-pyyaml\n")
    assert load_name_map(table) == {
        "horizon": "python-django-horizon",
        "PyYAML": "python-pyyaml",
    }
    table.write_text("horizon: [python-django-horizon]\n")
    with pytest.raises(UCError, match=r"names\.yml:1: invalid package name"):
        load_name_map(table)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a python-a\nb python-b extra\n", r"names\.txt:2: expected 'module package'"),
        ("a python-a\nlonely\n", r"names\.txt:2: expected 'module package'"),
        (
            "a python-a\nA_ python-b\nA. python-c\n",
            r"names\.txt:3: A\. is already mapped on line 2",
        ),
        ("a python-a\nb pyth<on\n", r"names\.txt:2: invalid package name 'pyth<on'"),
        ("-a python-a\n", r"names\.txt:1: invalid module name '-a'"),
    ],
)
def test_bad_name_map_line(tmp_path: Path, text: str, message: str) -> None:
    table = tmp_path / "names.txt"
    table.write_text(text)
    with pytest.raises(UCError, match=message):
        load_name_map(table)


def test_unreadable_name_map(tmp_path: Path) -> None:
    with pytest.raises(UCError, match=r"nope\.txt: cannot read"):
        load_name_map(tmp_path / "nope.txt")


# --- .repo files ---------------------------------------------------------------------------


def test_repo_file_sections(tmp_path: Path) -> None:
    text = """\
# comment
[rdo-$basearch]
name=RDO
baseurl=http://mirror.example/centos$releasever/$basearch/,
  file:///srv/rdo/${basearch}
enabled=1
gpgcheck=0

[off]
baseurl=file:///nowhere
enabled=0

[implicit-on]
baseurl=/srv/deps
"""
    sections = parse_repo_file(text, "x.repo", repo_variables("centos9"))
    assert [(s.ident, s.baseurls) for s in sections] == [
        ("rdo-x86_64", ("http://mirror.example/centos9/x86_64/", "file:///srv/rdo/x86_64")),
        ("implicit-on", ("/srv/deps",)),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("baseurl=/srv/x\n", r"x\.repo: not a \.repo file: .*no section headers"),
        ("", r"x\.repo: not a \.repo file: no \[repository\] section"),
        ("[a]\nbaseurl=/x\n[a]\nbaseurl=/y\n", r"x\.repo: not a \.repo file: .*already exists"),
        ("[a]\nbaseurl /x\n", r"x\.repo: not a \.repo file"),
        ("[a]\nbaseurl=/x\nenabled=maybe\n", r"x\.repo \[a\]: enabled='maybe' is not 0/1"),
        ("[a]\nmirrorlist=http://m/\n", r"x\.repo \[a\]: no baseurl \(mirrorlist not supported\)"),
        ("[a]\nbaseurl=/x/$nope\n", r"x\.repo \[a\]: unknown variable \$nope"),
        ("[a]\nbaseurl=relative/dir\n", r"x\.repo \[a\]: baseurl 'relative/dir' is not absolute"),
        ("[a]\nbaseurl=ftp://h/x\n", r"x\.repo \[a\]: baseurl 'ftp://h/x': unsupported scheme"),
        ("[a]\nbaseurl=/x\nenabled=0\n", r"x\.repo: no enabled repository"),
        ("[a b]\nbaseurl=/x\n", r"x\.repo \[a b\]: invalid repository id"),
    ],
)
def test_malformed_repo_file(text: str, message: str) -> None:
    with pytest.raises(UCError, match=message):
        parse_repo_file(text, "x.repo", repo_variables())


def test_unreadable_repo_file(tmp_path: Path) -> None:
    with pytest.raises(UCError, match=r"missing\.repo: cannot read"):
        add_repo_file(ProviderIndex(), str(tmp_path / "missing.repo"))
    binary = tmp_path / "binary.repo"
    binary.write_bytes(b"\xff\xfe[a]\n")
    with pytest.raises(UCError, match=r"binary\.repo: not a \.repo file"):
        add_repo_file(ProviderIndex(), str(binary))


@needs_rpmbuild
def test_repo_file_local(repos: tuple[Path, Path], tmp_path: Path) -> None:
    main, extra = repos
    repo_file = tmp_path / "rdo.repo"
    repo_file.write_text(
        f"[rdo]\nbaseurl={tmp_path}/no-such-mirror file://{main}\n"
        f"[deps]\nbaseurl={extra}\nenabled=1\n"
        f"[debug]\nbaseurl={tmp_path}/nothing-here\nenabled=0\n"
    )
    index = ProviderIndex()
    add_repo_file(index, str(repo_file))
    assert index.sources == ["rdo", "deps"]
    assert index.locations["rdo"] == f"file://{main}"  # the mirror that answered
    rows = build_report("epoxy", parse_constraints(UC), index)
    by_name = {r.modname: r for r in rows}
    assert (by_name["foo"].source, by_name["foo"].others) == ("rdo", ("deps",))
    assert by_name["chardet"].source == "deps"


@needs_rpmbuild
def test_repo_file_whose_mirrors_all_fail(tmp_path: Path, repos: tuple[Path, Path]) -> None:
    main, _ = repos
    repo_file = tmp_path / "bad.repo"
    repo_file.write_text(f"[ok]\nbaseurl={main}\n[broken]\nbaseurl={tmp_path}/a {tmp_path}/b\n")
    index = ProviderIndex()
    with pytest.raises(UCError, match=r"bad\.repo \[broken\]: no baseurl could be read: .*/a: no"):
        add_repo_file(index, str(repo_file))
    assert index.sources == [] and not index.by_name  # nothing half-added


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A loopback HTTP server over a scratch directory."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@needs_rpmbuild
def test_repo_file_over_http(repos: tuple[Path, Path], http_root: tuple[Path, str]) -> None:
    main, extra = repos
    root, url = http_root
    shutil.copytree(main, root / "el9s" / "x86_64" / "main")
    (root / "rdo.repo").write_text(
        f"[rdo-main]\nbaseurl={url}/el${{releasever}}s/$basearch/main\n[local]\nbaseurl={extra}\n"
    )
    index = ProviderIndex()
    add_repo_file(index, f"{url}/rdo.repo", repo_variables("centos9"))
    assert index.sources == ["rdo-main", "local"]
    assert "python3-oslo-config" in index.by_name
    with pytest.raises(UCError, match=r"/nope\.repo: cannot read: HTTP Error 404"):
        add_repo_file(index, f"{url}/nope.repo")


def test_rows_per_source() -> None:
    index = ProviderIndex()
    index.sources = ["a", "b", "c"]
    rows = build_report("x", parse_constraints("m===1\n"), index)
    assert source_counts(rows, index.sources) == {"a": 0, "b": 0, "c": 0}


@needs_rpmbuild
def test_cli_repo_files_and_report_uc_options(repos: tuple[Path, Path], tmp_path: Path) -> None:
    main, extra = repos
    uc = tmp_path / "uc.txt"
    uc.write_text(UC)
    repos_dir = tmp_path / "yum.repos.d"
    repos_dir.mkdir()
    (repos_dir / "a.repo").write_text(f"[rdo]\nbaseurl={main}\n")
    (repos_dir / "b.repo").write_text(f"[deps]\nbaseurl=file://{extra}\n")
    (repos_dir / "ignored.txt").write_text("not a repo file")
    app = typer.Typer()
    packaging.register(app)
    runner = CliRunner()
    args = ["uc-report", "-r", "epoxy", "--uc", str(uc), "-R", str(repos_dir)]
    result = runner.invoke(app, [*args, "-S", "-v", "-s", "equal", "-s", "missing"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "epoxy,foo,1.2.3,python3-foo,1.2.3,rdo,equal,deps",
        "epoxy,missing-one,0.1,,,,missing,",
    ]
    assert "rdo: 1 rows" in result.stderr and "deps: 0 rows" in result.stderr
    result = runner.invoke(app, [*args, "-S", "-s", "greater"])
    assert result.stdout == "epoxy,bar,1.5,python3-bar,2.0.1,rdo,greater,None\n"
    result = runner.invoke(app, [*args, "--json", "-s", "lower"])
    assert json.loads(result.stdout)["sources"] == {"rdo": 1, "deps": 1}
    # a .repo file given to --repo, with an explicit distro for $releasever
    result = runner.invoke(
        app, ["uc-report", "-r", "x", "--uc", str(uc), "--repo", str(repos_dir / "a.repo")]
    )
    assert result.exit_code == 0, result.output
    assert "python3-oslo-config" in result.stdout


@needs_rpmbuild
def test_cli_rc_pin_against_rc_rpm(tmp_path: Path) -> None:
    work = tmp_path / "rpms"
    work.mkdir()
    repo = make_repo(tmp_path / "rc", [build_rpm(work, "python3-rcpkg", "2.0.0~rc1", "rcpkg")])
    uc = tmp_path / "uc.txt"
    uc.write_text("rcpkg===2.0.0.0rc1\n")
    app = typer.Typer()
    packaging.register(app)
    result = CliRunner().invoke(
        app, ["uc-report", "-r", "gazpacho", "--uc", str(uc), "--repo", f"rc,{repo}"]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == "gazpacho,rcpkg,2.0.0.0rc1,python3-rcpkg,2.0.0~rc1,rc,equal\n"


@pytest.mark.parametrize(
    ("extra_args", "message"),
    [
        (["--name-map", "{tmp}/names.txt"], "names.txt:2: expected 'module package'"),
        (["--repo", "{tmp}/broken.repo"], "broken.repo: not a .repo file"),
        (["--repo", "{tmp}/absent.repo"], "absent.repo: cannot read"),
        (["--repo", "id,{tmp}/broken.repo"], "a .repo file names its own repository ids"),
        (["-R", "{tmp}/empty"], "empty: no .repo files"),
        (["-R", "{tmp}/absent-dir"], "absent-dir: not a directory"),
        (["--distro", "centos6"], "unknown distro 'centos6'"),
        (["--python-version", "three"], "python version 'three' is not X.Y"),
    ],
)
def test_cli_uc_report_bad_input(tmp_path: Path, extra_args: list[str], message: str) -> None:
    uc = tmp_path / "uc.txt"
    uc.write_text("foo===1.0\n")
    nvrs = tmp_path / "nvrs.txt"
    nvrs.write_text("python-foo-1.0-1.el9s\n")
    (tmp_path / "names.txt").write_text("foo python-foo\nbar\n")
    (tmp_path / "broken.repo").write_text("baseurl=/x\n")
    (tmp_path / "empty").mkdir()
    app = typer.Typer()
    packaging.register(app)
    args = ["uc-report", "-r", "x", "--uc", str(uc), "--nvr-list", str(nvrs)]
    extra = [a.format(tmp=tmp_path) for a in extra_args]
    result = CliRunner().invoke(app, [*args, *extra])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert result.stdout == ""  # no half report


def test_name_map_yaml_maps_a_module_once(tmp_path: Path) -> None:
    table = tmp_path / "names.yaml"
    table.write_text("PyYAML: python-pyyaml\npyyaml: python3-pyyaml\n")
    with pytest.raises(UCError, match=r"names\.yaml:2: pyyaml is already mapped on line 1"):
        load_name_map(table)
    table.write_text("- a\n- b\n")
    with pytest.raises(UCError, match=r"names\.yaml: top level must be a mapping"):
        load_name_map(table)


def test_name_map_too_large(tmp_path: Path) -> None:
    table = tmp_path / "names.txt"
    table.write_text("# padding\n" * 200_000)
    with pytest.raises(UCError, match=r"names\.txt: larger than 1000000 bytes"):
        load_name_map(table)


def test_name_map_to_an_absent_package_falls_back(tmp_path: Path) -> None:
    nvrs = tmp_path / "tag.txt"
    nvrs.write_text("python-foo-bar-2.0-1.el9s\npython-baz-1.0-1.el9s\n")
    index = ProviderIndex()
    add_nvr_list(index, nvrs)
    pins = parse_constraints("Foo_Bar===2.0\nqux===1.0\n")
    table = {"foo.bar": "python-gone", "QUX": "python-baz"}  # keys in any spelling
    rows = build_report("x", pins, index, table)
    assert [(r.pkgname, r.status) for r in rows] == [
        ("python-foo-bar", "equal"),
        ("python-baz", "equal"),
    ]


def test_unknown_distro_for_repo_variables() -> None:
    with pytest.raises(UCError, match=r"unknown distro 'centos6'; expected one of centos8"):
        repo_variables("centos6")
