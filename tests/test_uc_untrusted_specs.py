"""`conveyor reqcheck` and its autosync read untrusted distgit specs: a spec's shell code
(`%(...)`, also rebuilt through `%{expand:%%(...)}`, which specfile's sanitizer lets through)
never runs in conveyor's process (issue 11, defect 6)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from conveyor.builders import bwrap
from conveyor.cli import packaging
from conveyor.uc.reqcheck import CheckEntry, CheckResult, read_spec
from conveyor.uc.specsync import SpecChange, autosync

SANDBOX = bwrap.problem()
needs_sandbox = pytest.mark.skipif(SANDBOX is not None, reason=f"no sandbox: {SANDBOX}")

SPEC = """\
%global pypi_name osc-lib
%global shell %(touch {plain})
%global rebuilt %{{expand:%%(touch {expand})}}
Name:           python-%{{pypi_name}}
Version:        3.0.0
Release:        1%{{?dist}}
Summary:        OpenStack command-line library %(touch {plain})
License:        Apache-2.0
Source0:        %{{pypi_name}}-%{{version}}.tar.gz
BuildArch:      noarch

%description
library %{{expand:%%(touch {expand})}}

%package -n python3-%{{pypi_name}}
Summary:        library
Requires:       python3-babel >= 2.3.4
Requires:       python3-cliff >= 2.8.0

%description -n python3-%{{pypi_name}}
library

%files -n python3-%{{pypi_name}}
"""


@pytest.fixture
def markers(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "plain-marker", tmp_path / "expand-marker"


@pytest.fixture
def spec(tmp_path: Path, markers: tuple[Path, Path]) -> Path:
    path = tmp_path / "python-osc-lib.spec"
    path.write_text(SPEC.format(plain=markers[0], expand=markers[1]))
    return path


def _no_markers(markers: tuple[Path, Path]) -> None:
    assert [m for m in markers if m.exists()] == []


def test_the_spec_runs_shell_when_trusted(spec: Path, markers: tuple[Path, Path]) -> None:
    """The test's premise: rpm itself would run both snippets."""
    subprocess.run(["rpmspec", "-P", str(spec)], capture_output=True, check=False)
    assert all(m.exists() for m in markers)


@needs_sandbox
def test_reqcheck_reads_without_running_shell(spec: Path, markers: tuple[Path, Path]) -> None:
    name, version, deps = read_spec(spec)
    _no_markers(markers)
    assert (name, version) == ("python-osc-lib", "3.0.0")
    assert {(d.name, d.vers) for d in deps} == {
        ("python-babel", ">= 2.3.4"),
        ("python-cliff", ">= 2.8.0"),
    }


@needs_sandbox
def test_autosync_edits_without_running_shell(spec: Path, markers: tuple[Path, Path]) -> None:
    result = CheckResult(
        mismatch=[CheckEntry("python-cliff", ">= 3.2.0", ">= 2.8.0")],
        missing=[CheckEntry("python-six", ">= 1.10.0")],
    )
    changes = autosync(spec, result)
    _no_markers(markers)
    assert changes == [
        SpecChange("~", "python-cliff", ">= 3.2.0"),
        SpecChange("+", "python-six", ">= 1.10.0"),
    ]
    text = spec.read_text()
    assert (
        "Requires:       python3-babel >= 2.3.4\n"
        "Requires:       python3-cliff >= 3.2.0\n"
        "Requires:       python3-six >= 1.10.0\n"
    ) in text
    # Only the Requires changed: the spec's own macros are kept as written.
    assert "%{expand:%%(touch" in text and "%global shell %(touch" in text
    _no_markers(markers)


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True,
        capture_output=True,
    )


@needs_sandbox
def test_reqcheck_command_with_autosync(
    spec: Path, markers: tuple[Path, Path], tmp_path: Path
) -> None:
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    _git(upstream, "init", "-q")
    (upstream / "requirements.txt").write_text("Babel>=2.3.4\ncliff>=3.2.0\n")
    _git(upstream, "add", "-A")
    _git(upstream, "commit", "-qm", "3.0.0")
    _git(upstream, "tag", "3.0.0")
    app = typer.Typer()
    packaging.register(app)
    args = ["reqcheck", "--spec", str(spec), "--upstream", str(upstream), "-a"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    _no_markers(markers)
    assert "~ python-cliff >= 3.2.0" in result.stderr
    assert "Requires:       python3-cliff >= 3.2.0\n" in spec.read_text()


def test_without_sandbox_shell_expansion_is_sanitized(
    spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where bubblewrap cannot run, the spec is read sanitized in-process: plain `%(...)` is
    removed. (`%{expand:%%(...)}` gets past the sanitizer: only the sandbox stops it.)"""
    monkeypatch.setattr(bwrap, "problem", lambda: "no sandbox in this test")
    marker = tmp_path / "fallback-marker"
    text = SPEC.format(plain=marker, expand=tmp_path / "unused")
    spec.write_text("".join(line for line in text.splitlines(True) if "expand" not in line))
    name, _, deps = read_spec(spec)
    assert name == "python-osc-lib" and len(deps) == 2
    assert not marker.exists()
