"""`conveyor reqcheck`: rdopkg's categories against a real spec and a git upstream."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

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
