"""rpm-packaging style distgits: a `<name>.spec.j2` rendered with renderspec, as DLRN does."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from tests.support import build_target

from conveyor.builders import bwrap
from conveyor.builders import renderspec as rs
from conveyor.builders.renderspec import render_spec
from conveyor.builders.spec import SpecError, prepare_spec
from conveyor.domain.builds import BuildJob, Mirrors
from conveyor.domain.version import BuildVersion
from conveyor.trunk import buildjob

TEMPLATE = """\
{% set pypi_name = 'foo' %}
{% set upstream_version = upstream_version('1.2.3') %}
Name:           {{ py2name() }}
Version:        {{ py2rpmversion() }}
Release:        1
Summary:        Foo
License:        {{ license('Apache-2.0') }}
Source0:        {{ pypi_name }}-{{ upstream_version }}.tar.gz
BuildArch:      noarch
{% block build_requires %}{% endblock %}
Requires:       {{ py3('oslo.config') }}
Requires:       {{ py2pkg('oslo.log', py_versions='py3') }}

%description
Foo.

%files
"""


def template(folder: Path, text: str = TEMPLATE, name: str = "python-foo.spec.j2") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def test_a_template_renders_with_rdo_package_names(tmp_path):
    spec = render_spec(template(tmp_path))
    assert spec == tmp_path / "python-foo.spec"
    text = spec.read_text()
    assert "Name:           python-foo\n" in text
    assert "Version:        1.2.3\n" in text
    assert "Requires:       python3-oslo-config\n" in text
    assert "Requires:       python3-oslo-log\n" in text
    assert "BuildRequires:  python-setuptools\n" in text  # renderspec's fedora style block
    assert "%global rdo 1" in text


def test_requirements_and_epochs_are_used_when_given(tmp_path):
    path = template(tmp_path, "Requires: {{ py2pkg('oslo.config', py_versions='py3') }}\n")
    spec = render_spec(path, epochs={"oslo.config": 2}, requirements={"oslo.config": "5.2.0"})
    assert spec.read_text().endswith("\nRequires: python3-oslo-config >= 2:5.2.0\n")


def test_the_fallback_without_bubblewrap_renders_the_same(tmp_path, monkeypatch):
    expected = render_spec(template(tmp_path / "a")).read_text()
    monkeypatch.setattr(bwrap, "problem", lambda: "no bubblewrap here")
    assert render_spec(template(tmp_path / "b")).read_text() == expected


@pytest.mark.skipif(bwrap.problem() is not None, reason="bubblewrap cannot run here")
def test_the_worker_runs_in_the_sandbox():
    command, sandbox = rs._worker_command()
    assert sandbox is not None
    assert command[-1].endswith(rs._WORKER_CODE)


@pytest.mark.parametrize("bubblewrap", [True, False])
@pytest.mark.parametrize(
    "escape",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__.os.system('touch {marker}') }}",
        "{% include '{secret}' %}",
    ],
)
def test_a_template_that_tries_to_escape_fails_and_leaves_the_host_alone(
    tmp_path, monkeypatch, escape, bubblewrap
):
    if bubblewrap and bwrap.problem() is not None:
        pytest.skip("bubblewrap cannot run here")
    if not bubblewrap:
        monkeypatch.setattr(bwrap, "problem", lambda: "no bubblewrap here")
    marker = tmp_path / "escaped"
    secret = tmp_path / "secret"
    (tmp_path / "secret.spec.j2").write_text("SECRET CONTENT\n")
    text = "Name: x\n" + escape.replace("{marker}", str(marker)).replace("{secret}", str(secret))
    path = template(tmp_path / "distgit", text, "x.spec.j2")
    with pytest.raises(SpecError, match=r"x\.spec\.j2: cannot render the spec template: ") as err:
        render_spec(path)
    assert "unsafe" in str(err.value) or "secret" in str(err.value)
    assert not marker.exists()
    assert not (tmp_path / "distgit" / "x.spec").exists()
    assert "SECRET" not in str(err.value)


def test_a_template_error_is_named(tmp_path):
    path = template(tmp_path, "Name: {{ upstream_version() }}\n", "x.spec.j2")
    with pytest.raises(
        SpecError, match=r"x\.spec\.j2: cannot render the spec template: .*pypi_name"
    ):
        render_spec(path)


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def _job(tmp_path: Path, files: dict[str, str]) -> BuildJob:
    repo = tmp_path / "distgit-repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "rpm-master")
    for name, text in files.items():
        (repo / name).write_text(text)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "packaging")
    git_dir = repo / ".git"
    return BuildJob(
        target=build_target("python-foo"),
        mirrors=Mirrors(git_dir, git_dir),
        commit_hash="a" * 40,
        dt_commit=0,
        commit_branch="master",
        distro_hash=_git(repo, "rev-parse", "HEAD"),
        dt_distro=0,
    )


def test_a_build_job_renders_a_template_distgit_and_prepares_its_spec(tmp_path):
    job = _job(tmp_path, {"python-foo.spec.j2": TEMPLATE, "README": "x\n"})
    sources = tmp_path / "SOURCES"
    sources.mkdir()
    spec = buildjob._distgit_sources(job, sources, 60.0)
    assert spec == sources / "python-foo.spec"
    version = BuildVersion("1.2.4", "0.20260101000000.aaaaaaa", "1.2.4.dev1")
    prepared = prepare_spec(spec, version, "foo-1.2.4.dev1.tar.gz", keep_changelog=False)
    assert prepared.name == "python-foo"
    text = spec.read_text()
    assert "Requires:       python3-oslo-config" in text
    assert "foo-1.2.4.dev1.tar.gz" in text


def test_a_distgit_with_two_templates_is_refused(tmp_path):
    job = _job(tmp_path, {"a.spec.j2": TEMPLATE, "b.spec.j2": TEMPLATE})
    sources = tmp_path / "SOURCES"
    sources.mkdir()
    with pytest.raises(SpecError, match=r"expected one \.spec file, found 0"):
        buildjob._distgit_sources(job, sources, 60.0)


def test_build_order_reads_the_dependencies_of_a_template_distgit(tmp_path):
    # `build_order = "dependencies"` reads specs before anything builds: a template distgit
    # is rendered for it too, instead of losing its place in the order.
    from conveyor.trunk.ordering import SpecDepsCache, SpecSource, read_dependencies

    needs_oslo = TEMPLATE.replace(
        "{% block build_requires %}{% endblock %}", "BuildRequires:  {{ py3('oslo.config') }}"
    )
    job = _job(tmp_path, {"python-foo.spec.j2": needs_oslo})
    reading = read_dependencies(
        [SpecSource.of_job(job)], SpecDepsCache(tmp_path / "cache"), 60.0, parallel=1
    )
    assert reading.unreadable == {}
    deps = reading.deps["python-foo"]
    assert "python3-oslo-config" in deps.build_requires
    assert "python3-oslo-config" in deps.requires
