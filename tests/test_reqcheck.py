"""`conveyor reqcheck`: rdopkg's categories against a real spec and a git upstream."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from conveyor.cli import packaging
from conveyor.uc import UCError
from conveyor.uc.reqcheck import (
    check,
    format_reqcheck,
    load_reqcheck_inputs,
    parse_requirements,
    rpm_requires,
    spec_requires,
)
from conveyor.uc.reqoverride import load_overrides, overrides_for

SPEC = """\
%global pypi_name osc-lib
Name:           python-%{pypi_name}
Version:        3.0.0
Release:        1%{?dist}
Summary:        OpenStack command-line library
License:        Apache-2.0
URL:            https://opendev.org/openstack/osc-lib
Source0:        %{pypi_name}-%{version}.tar.gz
BuildArch:      noarch

%description
library

%package -n python3-%{pypi_name}
Summary:        library
Requires:       python3-babel >= 2.3.4
Requires:       python3-cliff >= 2.8.0
Requires:       python3-keystoneauth1
Requires:       python3-six >= 1.10.0
Requires:       python3-simplejson
Requires(post): coreutils

%description -n python3-%{pypi_name}
library

%package -n python3-%{pypi_name}-tests
Summary:        tests
Requires:       python3-%{pypi_name} = %{version}-%{release}

%description -n python3-%{pypi_name}-tests
tests

%files -n python3-%{pypi_name}
%files -n python3-%{pypi_name}-tests
"""

OLD_REQS = "Babel>=2.3.4\nsimplejson>=3.5.1\ncliff>=2.8.0\n"
NEW_REQS = """\
# comment
Babel!=2.4.0,>=2.3.4 # BSD
cliff>=3.2.0  # Apache-2.0
keystoneauth1>=3.14.0
openstacksdk>=0.15.0
oslo.utils>=3.33.0;python_version>='3.8'
futures;python_version=='2.7'
"""


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True,
        capture_output=True,
    )


@pytest.fixture
def upstream(tmp_path: Path) -> Path:
    repo = tmp_path / "upstream"
    repo.mkdir()
    git(repo, "init", "-q")
    for tag, text in (("2.0.0", OLD_REQS), ("3.0.0", NEW_REQS)):
        (repo / "requirements.txt").write_text(text)
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", tag)
        git(repo, "tag", tag)
    return repo


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "python-osc-lib.spec"
    path.write_text(SPEC)
    return path


def test_categories(upstream: Path, spec: Path) -> None:
    inputs = load_reqcheck_inputs(
        spec=spec, ref=None, upstream=upstream, requirements=None, previous_ref="2.0.0"
    )
    result = check(*inputs)
    names = {
        cat: [(e.name, e.vers) for e in getattr(result, cat)]
        for cat in ("met", "any", "excess", "mismatch", "missing", "removed")
    }
    assert names == {
        "met": [("python-babel", ">= 2.3.4")],
        "any": [("python-keystoneauth1", ">= 3.14.0")],
        "excess": [("python-six", ">= 1.10.0")],
        "mismatch": [("python-cliff", ">= 3.2.0")],
        "missing": [("python-openstacksdk", ">= 0.15.0"), ("python-oslo-utils", ">= 3.33.0")],
        "removed": [("python-simplejson", "")],
    }
    text = format_reqcheck(result, "text")
    assert "MISMATCH:\n  python-cliff >= 3.2.0  (>= 2.8.0 in .spec)\n" in text
    assert "coreutils" not in text and "python-osc-lib" not in text
    assert "Requires:       python3-cliff >= 3.2.0" in format_reqcheck(result, "spec")
    data = json.loads(format_reqcheck(result, "json"))
    assert data["any"] == [{"name": "python-keystoneauth1", "vers": ">= 3.14.0"}]


def test_spec_that_does_not_parse(tmp_path: Path) -> None:
    bad = tmp_path / "bad.spec"
    bad.write_text("Name: x\nVersion: 1\n%if\n")
    with pytest.raises(UCError, match=r"bad\.spec: cannot parse spec: .*line 3"):
        spec_requires(bad)


def test_bad_requirement_line() -> None:
    with pytest.raises(UCError, match=r"req\.txt:2: invalid requirement"):
        parse_requirements("a>=1\nb>>=2\n", "req.txt")


def test_unknown_ref_is_a_clear_error(upstream: Path, spec: Path) -> None:
    with pytest.raises(UCError, match=r"requirements\.txt at '9\.9\.9'"):
        load_reqcheck_inputs(spec=spec, ref="9.9.9", upstream=upstream, requirements=None)


def test_cli(upstream: Path, spec: Path) -> None:
    app = typer.Typer()
    packaging.register(app)
    runner = CliRunner()
    args = ["reqcheck", "--spec", str(spec), "--upstream", str(upstream)]
    result = runner.invoke(app, [*args, "-o", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["mismatch"][0]["name"] == "python-cliff"
    result = runner.invoke(app, [*args, "-o", "xml"])
    assert result.exit_code == 2


@pytest.mark.skipif(not shutil.which("rpmbuild"), reason="rpmbuild is needed")
def test_generated_requires_of_a_built_package(tmp_path: Path) -> None:
    spec = tmp_path / "gen.spec"
    spec.write_text(
        "Name: python3-gen\nVersion: 1.0\nRelease: 1\nSummary: s\nLicense: MIT\n"
        "BuildArch: noarch\nRequires: python3dist(cliff) >= 4.9\n"
        "Requires: python3dist(oslo-utils)\n%description\nd\n%files\n"
    )
    top = tmp_path / "rpmbuild"
    subprocess.run(
        ["rpmbuild", "-bb", "--quiet", "--define", f"_topdir {top}", str(spec)],
        check=True,
        capture_output=True,
    )
    built = top / "RPMS" / "noarch" / "python3-gen-1.0-1.noarch.rpm"
    have = rpm_requires(built)
    assert {(d.name, d.vers) for d in have} == {
        ("python-cliff", ">= 4.9"),
        ("python-oslo-utils", ""),
    }
    result = check(parse_requirements("cliff>=4.9\noslo.utils>=7.0\n", "r"), have)
    assert [e.name for e in result.met] == ["python-cliff"]
    assert [e.name for e in result.any] == ["python-oslo-utils"]


# --- -O/--override ---------------------------------------------------------------------------

OVERRIDES = """\
packages:
  all:
    - name: python-six              # ignored everywhere: not EXCESS any more
    - name: python-cliff
      version: ">= 2.0.0"
  python-osc-lib:
    - name: python3-cliff           # the package's own entry wins over all's
      version: "2.8.0"              # a bare version means >=
    - name: python-openstacksdk
      version: ""                   # empty: ignored too
  python-other:
    - name: python-babel
      version: ">= 9"
"""


def _run(app_args: list[str]) -> Result:
    app = typer.Typer()
    packaging.register(app)
    return CliRunner().invoke(app, app_args)


def test_overrides(upstream: Path, spec: Path, tmp_path: Path) -> None:
    path = tmp_path / "overrides.yml"
    path.write_text(OVERRIDES)
    table = load_overrides(path)
    assert overrides_for(table, "python-osc-lib")["python-cliff"].vers == ">= 2.8.0"
    assert overrides_for(table, "python-glance")["python-cliff"].vers == ">= 2.0.0"
    inputs = load_reqcheck_inputs(
        spec=spec,
        ref="3.0.0",
        upstream=upstream,
        requirements=None,
        previous_ref="2.0.0",
        overrides=table,
    )
    result = check(*inputs)
    assert [(e.name, e.vers, e.overridden_from) for e in result.met] == [
        ("python-babel", ">= 2.3.4", None),  # python-other's override does not apply
        ("python-cliff", ">= 2.8.0", ">= 3.2.0"),
    ]
    assert result.excess == [] and result.mismatch == []
    assert [e.name for e in result.missing] == ["python-oslo-utils"]
    text = format_reqcheck(result)
    assert (
        "  python-cliff >= 2.8.0  (>= 2.8.0 in .spec)  "
        "(has been overridden; >= 3.2.0 in requirements.txt)\n"
    ) in text
    assert "python-six" not in text and "python-openstacksdk" not in text
    data = json.loads(format_reqcheck(result, "json"))
    assert data["met"][1] == {
        "name": "python-cliff",
        "vers": ">= 2.8.0",
        "overridden_from": ">= 3.2.0",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("packages: [oops\n", r"o\.yml:2: malformed YAML"),
        ("  foo:\n    - name: python-x\n", r"o\.yml: expected only a 'packages:' mapping"),
        ("packages:\n  foo: python-x\n", r"o\.yml:2: foo: expected a list"),
        ("packages:\n  foo:\n    - version: '1'\n", r"o\.yml:2: entry needs a package 'name'"),
        ("packages:\n  foo:\n    - {name: x, vers: '1'}\n", r"o\.yml:2: unknown key\(s\) vers"),
        ("packages:\n  foo:\n    - {name: x, version: 1.2}\n", r"o\.yml:2: x: quote the version"),
        ("packages:\n  foo:\n    - {name: x, version: '<< 1'}\n", r"o\.yml:2: x: version '<< 1'"),
        ("packages:\n  foo:\n    - python-x\n", r"o\.yml:2: expected an entry"),
        ("packages: {}\nother: 1\n", r"o\.yml: expected only a 'packages:' mapping"),
    ],
)
def test_bad_override_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "o.yml"
    path.write_text(text)
    with pytest.raises(UCError, match=message):
        load_overrides(path)


def test_cli_bad_override_file(upstream: Path, spec: Path, tmp_path: Path) -> None:
    base = ["reqcheck", "--spec", str(spec), "--upstream", str(upstream)]
    result = _run([*base, "-O", str(tmp_path / "absent.yml")])
    assert result.exit_code == 2
    assert "absent.yml: cannot read override file" in result.stderr
    bad = tmp_path / "bad.yml"
    bad.write_text("  foo:\n    - name: python-sqlachemy\n      version: '1.2.0'\n")
    before = spec.read_text()
    result = _run([*base, "-O", str(bad), "-a"])
    assert result.exit_code == 2
    assert "bad.yml: expected only a 'packages:' mapping" in result.stderr
    assert result.stdout == "" and spec.read_text() == before


def test_cli_override_applies(upstream: Path, spec: Path, tmp_path: Path) -> None:
    path = tmp_path / "overrides.yml"
    path.write_text(OVERRIDES)
    base = ["reqcheck", "--spec", str(spec), "--upstream", str(upstream)]
    result = _run([*base, "-O", str(path), "-o", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["met"][1]["overridden_from"] == ">= 3.2.0"


# --- -S/--strict ------------------------------------------------------------------------------


def test_strict_fails_on_missing_or_mismatch_only(
    upstream: Path, spec: Path, tmp_path: Path
) -> None:
    base = ["reqcheck", "--spec", str(spec), "--upstream", str(upstream)]
    result = _run([*base, "-S"])
    assert result.exit_code == 1
    assert "MISMATCH:" in result.stdout and "MISSING:" in result.stdout
    assert "strict: MISSING and MISMATCH" in result.stderr
    # ANY (unversioned in the spec) and EXCESS are tolerated, as rdopkg does
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("Babel>=2.3.4\ncliff>=2.8.0\nkeystoneauth1>=3.14.0\n")
    result = _run([*base, "--requirements", str(reqs), "-S"])
    assert result.exit_code == 0, result.output
    assert "ANY:" in result.stdout and "EXCESS:" in result.stdout
    reqs.write_text("Babel>=2.3.4\ncliff>=3.0\n")
    assert _run([*base, "--requirements", str(reqs), "-S"]).exit_code == 1
    assert _run([*base, "--requirements", str(reqs)]).exit_code == 0


def test_bad_python_version(upstream: Path, spec: Path) -> None:
    result = _run(["reqcheck", "--spec", str(spec), "--upstream", str(upstream), "-p", "3"])
    assert result.exit_code == 2
    assert "python version '3' is not X.Y" in result.stderr


# --- -a/--autosync ----------------------------------------------------------------------------


def test_autosync(upstream: Path, spec: Path) -> None:
    base = ["reqcheck", "--spec", str(spec), "--upstream", str(upstream)]
    result = _run([*base, "-a", "--previous-ref", "2.0.0"])
    assert result.exit_code == 0, result.output
    assert "MISMATCH:" in result.stdout  # the report is of the spec as it was
    assert result.stderr.splitlines() == [
        "~ python-cliff >= 3.2.0",
        "- python-simplejson",
        "+ python-openstacksdk >= 0.15.0",
        "+ python-oslo-utils >= 3.33.0",
        f"edited {spec}",
    ]
    text = spec.read_text()
    assert (
        "Requires:       python3-babel >= 2.3.4\n"
        "Requires:       python3-cliff >= 3.2.0\n"
        "Requires:       python3-keystoneauth1\n"
        "Requires:       python3-six >= 1.10.0\n"
        "Requires:       python3-openstacksdk >= 0.15.0\n"
        "Requires:       python3-oslo-utils >= 3.33.0\n"
        "Requires(post): coreutils\n"
    ) in text
    assert "simplejson" not in text
    assert "Requires:       python3-%{pypi_name} = %{version}-%{release}\n" in text
    result = _run([*base, "-S", "--previous-ref", "2.0.0", "-o", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["mismatch"] == data["missing"] == data["removed"] == []
    assert [e["name"] for e in data["excess"]] == ["python-six"]


def test_autosync_keeps_macros_and_false_branches(tmp_path: Path) -> None:
    spec = tmp_path / "python-foo.spec"
    spec.write_text(
        "%global sname foo\nName: python-foo\nVersion: 1.0\nRelease: 1\nSummary: s\n"
        "License: MIT\nBuildArch: noarch\n%if 0%{?rhel} > 99\nRequires: python3-bar >= 0.1\n"
        "%else\nRequires: python3-bar >= 1.0\n%endif\n"
        "Requires: python3dist(%{sname}-lib) >= 1\n%description\nd\n%files\n"
    )
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("bar>=2.0\nfoo-lib>=3\nnew_dep>=0.5\n")
    result = _run(["reqcheck", "--spec", str(spec), "--requirements", str(reqs), "-a"])
    assert result.exit_code == 0, result.output
    text = spec.read_text()
    assert "Requires: python3-bar >= 0.1\n%else\nRequires: python3-bar >= 2.0\n" in text
    assert "Requires: python3dist(%{sname}-lib) >= 3\n" in text
    assert text.endswith("Requires: python3dist(new-dep) >= 0.5\n%description\nd\n%files\n")


def test_autosync_refuses_and_leaves_the_spec(tmp_path: Path) -> None:
    spec = tmp_path / "python-foo.spec"
    spec.write_text(
        "Name: python-foo\nVersion: 1.0\nRelease: 1\nSummary: s\nLicense: MIT\n"
        "Requires: python3-bar >= 1.0, python3-baz\n%description\nd\n%files\n"
    )
    before = spec.read_bytes()
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("bar>=2.0\nbaz\nqux\n")
    result = _run(["reqcheck", "--spec", str(spec), "--requirements", str(reqs), "-a"])
    assert result.exit_code == 2
    assert "cannot autosync, spec left unchanged" in result.stderr
    assert "'Requires: python3-bar >= 1.0, python3-baz' lists several requires" in result.stderr
    assert result.stdout == ""
    assert spec.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["python-foo.spec", "requirements.txt"]
    # no Python Requires to add a missing one next to
    spec.write_text("Name: python-foo\nVersion: 1.0\nRelease: 1\nSummary: s\nLicense: MIT\n"
                    "%description\nd\n%files\n")  # fmt: skip
    result = _run(["reqcheck", "--spec", str(spec), "--requirements", str(reqs), "-a"])
    assert result.exit_code == 2
    assert "no Python Requires to add the missing ones next to" in result.stderr


def test_autosync_needs_a_spec(tmp_path: Path) -> None:
    result = _run(["reqcheck", "--rpm", str(tmp_path / "x.rpm"), "-a"])
    assert result.exit_code == 2
    assert "--autosync edits a spec" in result.stderr


def test_autosync_with_strict_passes_once_synced(upstream: Path, spec: Path) -> None:
    # rdopkg counts what -a fixed as MET: -S fails only on what is left
    base = ["reqcheck", "--spec", str(spec), "--upstream", str(upstream), "-S"]
    result = _run([*base, "-a"])
    assert result.exit_code == 0, result.output
    assert "MISMATCH:" in result.stdout and f"edited {spec}" in result.stderr
    assert "strict:" not in result.stderr
    assert _run(base).exit_code == 0


def test_autosync_keeps_upper_bounds(tmp_path: Path) -> None:
    spec = tmp_path / "python-foo.spec"
    spec.write_text(
        "Name: python-foo\nVersion: 1.0\nRelease: 1\nSummary: s\nLicense: MIT\n"
        "Requires: python3-bar >= 1.0\nRequires: python3-bar < 3.0\n%description\nd\n%files\n"
    )
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("bar>=2.0\n")
    result = _run(["reqcheck", "--spec", str(spec), "--requirements", str(reqs), "-a"])
    assert result.exit_code == 0, result.output
    assert "Requires: python3-bar >= 2.0\nRequires: python3-bar < 3.0\n" in spec.read_text()
    # only a cap to edit: refused rather than turned into a minimum
    spec.write_text(
        "Name: python-foo\nVersion: 1.0\nRelease: 1\nSummary: s\nLicense: MIT\n"
        "Requires: python3-bar < 3.0\n%description\nd\n%files\n"
    )
    before = spec.read_bytes()
    result = _run(["reqcheck", "--spec", str(spec), "--requirements", str(reqs), "-a"])
    assert result.exit_code == 2
    assert "no Requires line without an upper bound for python-bar" in result.stderr
    assert spec.read_bytes() == before


def test_override_file_too_large(tmp_path: Path) -> None:
    path = tmp_path / "o.yml"
    path.write_text("packages:\n" + "#" * 1_000_001 + "\n")
    with pytest.raises(UCError, match=r"o\.yml: larger than 1000000 bytes"):
        load_overrides(path)
