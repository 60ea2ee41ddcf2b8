"""Dependency order: specs read with the real rpmspec, from real distgit repositories."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests.support import build_target

from conveyor.builders import deps as deps_module
from conveyor.builders.deps import SpecDeps, SpecDepsError, dependency_names, read_spec_deps
from conveyor.config import load_config
from conveyor.domain.builds import BuildJob, BuildTarget, Mirrors
from conveyor.domain.depgraph import DependencyGraph
from conveyor.domain.names import check_extended_hash
from conveyor.domain.paths import hash_dir_name
from conveyor.metadata.targets import load_targets
from conveyor.trunk import ordering
from conveyor.trunk.ordering import (
    Rebuild,
    SpecDepsCache,
    SpecSource,
    VersionChange,
    plan_build_order,
    plan_rebuilds,
    version_changes,
    version_from_artifacts,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
example = importlib.import_module("examples.distribution")

needs_rpmspec = pytest.mark.skipif(
    shutil.which("rpmspec") is None, reason="rpmspec is not installed"
)

HEADER = """\
Version: XXX
Release: XXX
Summary: test
License: MIT
"""


def spec_file(tmp_path: Path, text: str, name: str = "test.spec") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=T", "-c", "user.email=t@example.org", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def distgit(root: Path, files: dict[str, str]) -> tuple[Path, str]:
    """A distgit repository holding `files`; returns its git dir and commit."""
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "rpm-master")
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "packaging")
    return root / ".git", git(root, "rev-parse", "HEAD")


def target(name: str, distgit_path: str | None = None) -> BuildTarget:
    return build_target(name, distgit_path=distgit_path)


def job(t: BuildTarget, git_dir: Path, distro_hash: str, commit: str = "a" * 40) -> BuildJob:
    return BuildJob(
        target=t,
        mirrors=Mirrors(git_dir, git_dir),
        commit_hash=commit,
        dt_commit=0,
        commit_branch="master",
        distro_hash=distro_hash,
        dt_distro=0,
    )


def simple_spec(name: str, build_requires: str = "", requires: str = "") -> str:
    lines = [f"Name: {name}", HEADER]
    lines += [f"BuildRequires: {br}" for br in build_requires.split()]
    lines += [f"Requires: {r}" for r in requires.split()]
    return "\n".join(lines) + "\n%description\nx\n%files\n"


# --- reading a spec -----------------------------------------------------------------------------


@needs_rpmspec
def test_subpackages_macros_conditionals_and_rich_dependencies(tmp_path):
    spec = spec_file(
        tmp_path,
        """\
%global pypi_name foo
%global with_doc 1
Name: python-%{pypi_name}
"""
        + HEADER
        + """\
BuildRequires: python3-devel, python3dist(setuptools) >= 40 python3-pbr
BuildRequires: (python3-a >= 1 or python3dist(b))
%if 0%{?repo_bootstrap} == 0
BuildRequires: python3-only-when-not-bootstrapping
%endif
%if 0%{?dlrn}
BuildRequires: only-under-dlrn
%endif

%description
main package without %files: never built

%package -n python3-%{pypi_name}
Summary: lib
Requires: python3-bar >= 1.0
Requires(post): systemd
Provides: python3dist(%{pypi_name}) = %{version}
%description -n python3-%{pypi_name}
x

%if 0%{?with_doc}
%package doc
Summary: docs
Requires: python3-%{pypi_name} = %{version}-%{release}
%description doc
x
%endif

%files -n python3-%{pypi_name}
%if 0%{?with_doc}
%files doc
%endif
""",
    )
    deps = read_spec_deps(spec)
    assert deps.name == "python-foo"
    assert deps.packages == {"python3-foo", "python-foo-doc"}
    own = {"python3-foo", "python-foo-doc", "python3dist(foo)"}
    assert own <= deps.provides
    # An arch package also provides `name(<isa>)`, what `Requires: foo%{?_isa}` asks for.
    assert all(p.startswith(("python3-foo(", "python-foo-doc(")) for p in deps.provides - own)
    assert deps.build_requires == {
        "python3-devel",
        "python3dist(setuptools)",
        "python3-pbr",
        "python3-a",
        "python3dist(b)",
    }
    assert deps.requires == {"python3-bar", "systemd", "python3-foo"}
    with_dlrn = read_spec_deps(spec, {"dlrn": "1", "repo_bootstrap": "0"})
    assert {"only-under-dlrn", "python3-only-when-not-bootstrapping"} <= with_dlrn.build_requires


@needs_rpmspec
def test_an_unparsable_spec_is_an_error_naming_it(tmp_path):
    spec = spec_file(tmp_path, "Name: x\n" + HEADER + "BuildRequires: %{undefined_macro}\n")
    with pytest.raises(SpecDepsError, match=r"test\.spec: rpmspec cannot parse it: error:"):
        read_spec_deps(spec)
    with pytest.raises(SpecDepsError, match=r"missing\.spec"):
        read_spec_deps(tmp_path / "missing.spec")


@needs_rpmspec
def test_a_spec_that_hangs_is_stopped(tmp_path):
    spec = spec_file(tmp_path, "%global slow %(sleep 30)\nName: x\n" + HEADER)
    with pytest.raises(SpecDepsError, match="timed out"):
        read_spec_deps(spec, timeout=0.5)


def test_missing_rpmspec_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(deps_module, "RPMSPEC", "no-such-rpmspec-here")
    with pytest.raises(SpecDepsError, match="Debian package 'rpm'"):
        read_spec_deps(spec_file(tmp_path, "Name: x\n"))


@pytest.mark.parametrize(
    ("dependency", "names"),
    [
        ("python3-foo", ("python3-foo",)),
        ("python3dist(foo)", ("python3dist(foo)",)),
        ("rpmlib(CompressedFileNames)", ()),
        ("(a or b)", ("a", "b")),
        ("(python3dist(x) >= 1.0 with python3dist(x) < 2)", ("python3dist(x)", "python3dist(x)")),
        (
            "(/usr/lib64/q.so if (filesystem(x86-64) or filesystem(ppc-64)))",
            ("/usr/lib64/q.so", "filesystem(x86-64)", "filesystem(ppc-64)"),
        ),
        ("((a and b) unless c)", ("a", "b", "c")),
    ],
)
def test_dependency_names(dependency, names):
    assert dependency_names(dependency) == names


def test_spec_deps_json_round_trip():
    deps = SpecDeps("a", frozenset({"a"}), frozenset({"a", "b"}), frozenset(), frozenset({"c"}))
    assert SpecDeps.from_json(json.loads(json.dumps(deps.to_json()))) == deps
    with pytest.raises(ValueError, match="provides"):
        SpecDeps.from_json({**deps.to_json(), "provides": "a"})


# --- ordering jobs ------------------------------------------------------------------------------


@needs_rpmspec
def test_example_distribution_client_after_its_library(tmp_path):
    dist = example.generate(tmp_path / "d")
    config = load_config(dist.config)
    jobs = []
    for t in load_targets(config):
        repo = dist.distgits[t.project]
        jobs.append(job(t, repo / ".git", git(repo, "rev-parse", "refs/heads/rpm-master")))
    plan = plan_build_order(jobs, tmp_path / "cache")
    names = [[j.target.name for j in layer] for layer in plan.layers]
    dependent, dependency = dist.dependency
    assert dependency in names[0] and names[1] == [dependent]
    assert sorted(n for layer in names for n in layer) == sorted(dist.packages)
    assert plan.cycles == () and plan.unreadable == {}
    assert plan.graph.runtime[dependent] == {dependency}


@needs_rpmspec
def test_a_cycle_is_reported_and_both_still_build(tmp_path, caplog):
    a_git, a_hash = distgit(tmp_path / "a", {"a.spec": simple_spec("a", requires="b")})
    b_git, b_hash = distgit(tmp_path / "b", {"b.spec": simple_spec("b", build_requires="a")})
    c_git, c_hash = distgit(tmp_path / "c", {"c.spec": simple_spec("c", build_requires="b")})
    jobs = [
        job(target("c"), c_git, c_hash),
        job(target("a"), a_git, a_hash, "1" * 40),
        job(target("a"), a_git, a_hash, "2" * 40),
        job(target("b"), b_git, b_hash),
    ]
    plan = plan_build_order(jobs, tmp_path / "cache")
    assert plan.cycles == (("a", "b"),)
    assert "dependency cycle, built in one layer: a, b" in caplog.text
    layered = [[(j.target.name, j.commit_hash[0]) for j in layer] for layer in plan.layers]
    assert layered == [[("a", "1"), ("a", "2"), ("b", "a")], [("c", "a")]]


@needs_rpmspec
def test_specs_are_chosen_as_a_build_chooses_them_and_cached(tmp_path, monkeypatch):
    repo, commit = distgit(
        tmp_path / "mono",
        {
            "pkgs/lib/lib.spec": simple_spec("lib"),
            "pkgs/lib/other.spec": simple_spec("other"),
            "pkgs/app/app-renamed.spec": simple_spec("app", build_requires="lib"),
        },
    )
    jobs = [
        job(target("app", "pkgs/app/"), repo, commit),
        job(target("lib", "pkgs/lib"), repo, commit),
    ]
    cache = tmp_path / "cache"
    first = plan_build_order(jobs, cache)
    assert [[j.target.name for j in layer] for layer in first.layers] == [["lib"], ["app"]]
    files = sorted(p.name for p in cache.iterdir())
    assert len(files) == 2 and all(f.startswith(f"{commit}_") for f in files)

    def no_rpmspec(*args, **kwargs):
        raise AssertionError("rpmspec must not run for a cached distgit commit")

    monkeypatch.setattr(ordering, "read_spec_deps", no_rpmspec)
    second = plan_build_order(jobs, cache)
    assert second.layers == first.layers

    # Other defines (or a damaged file) mean the cached answer is not used.
    source = SpecSource.of_job(jobs[1])
    assert SpecDepsCache(cache, {"repo_bootstrap": "0"}).get(source) is None
    (cache / source.cache_name()).write_text("{not json")
    assert SpecDepsCache(cache).get(source) is None


@needs_rpmspec
def test_an_unreadable_spec_goes_first_and_is_reported(tmp_path):
    repo, commit = distgit(
        tmp_path / "two", {"x.spec": simple_spec("x"), "y.spec": simple_spec("y")}
    )
    good_git, good_hash = distgit(tmp_path / "good", {"good.spec": simple_spec("good")})
    jobs = [job(target("both"), repo, commit), job(target("good"), good_git, good_hash)]
    plan = plan_build_order(jobs, tmp_path / "cache")
    assert [[j.target.name for j in layer] for layer in plan.layers] == [["both", "good"]]
    assert "expected one .spec file, found 2" in plan.unreadable["both"]


@needs_rpmspec
def test_packages_not_built_this_cycle_still_carry_the_order(tmp_path):
    specs = {
        "app": simple_spec("app", build_requires="middle"),
        "middle": simple_spec("middle", requires="base"),
        "base": simple_spec("base"),
    }
    repos = {n: distgit(tmp_path / n, {f"{n}.spec": s}) for n, s in specs.items()}
    jobs = [job(target(n), *repos[n]) for n in ("app", "base")]
    others = [SpecSource("middle", *repos["middle"])]
    plan = plan_build_order(jobs, tmp_path / "cache", others)
    assert [[j.target.name for j in layer] for layer in plan.layers] == [["base"], ["app"]]


# --- rebuilds of reverse dependencies -----------------------------------------------------------


def test_rebuilds_follow_build_roots_skip_fresh_builds_and_never_cascade():
    graph = DependencyGraph.of(
        [],
        build={"client": ["lib"], "docs": ["framework"], "app": ["client"], "fresh": ["lib"]},
        runtime={"framework": ["lib"], "plugin": ["lib"]},
    )
    changes = version_changes(
        {"lib": "1.1.1", "framework": "2.0", "new": None},
        {"lib": "1.2.0", "framework": "2.0", "new": "0.1", "fresh": "3.0"},
    )
    assert changes == [VersionChange("lib", "1.1.1", "1.2.0")]
    rebuilds = plan_rebuilds(graph, changes, built={"lib", "fresh"})
    assert [r.package for r in rebuilds] == ["client", "docs"]  # not plugin, app, fresh
    assert all(r.triggers == (changes[0],) for r in rebuilds)


def test_a_rebuild_has_a_stable_dlrn_shaped_extended_hash():
    change = VersionChange("lib", "1.1.1", "1.2.0")
    rebuild = Rebuild("client", (change,))
    ext = rebuild.extended_hash
    assert ext == Rebuild("client", (change,)).extended_hash
    assert ext != Rebuild("client", (VersionChange("lib", "1.2.0", "1.3.0"),)).extended_hash
    assert check_extended_hash(ext) == ext and len(ext) == 40
    assert hash_dir_name("c" * 40, "d" * 40, ext) == f"{'c' * 40}_{'d' * 8}_{ext[:8]}"


def test_version_from_artifacts():
    artifacts = (
        "repos/ab/cd/x_y/python-lib-1.2.0-0.20260101.abc1234.noarch.rpm,"
        "repos/ab/cd/x_y/python-lib-1.2.0-0.20260101.abc1234.src.rpm"
    )
    assert version_from_artifacts(artifacts) == "1.2.0"
    assert version_from_artifacts(None) is None
    assert version_from_artifacts("repos/a/b.noarch.rpm") is None
