"""The example distribution generator: layout, metadata, git histories and real spec builds;
its dependencies repository (deps_url), and `make demo` installing with both .repo files."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from conveyor.builders.buildrepos import parse_repo_file
from conveyor.config import load_config

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
example = importlib.import_module("examples.distribution")

needs_rpmbuild = pytest.mark.skipif(shutil.which("rpmbuild") is None, reason="needs rpmbuild")
needs_deps_tools = pytest.mark.skipif(
    not (shutil.which("rpmbuild") and shutil.which("createrepo_c")),
    reason="needs rpmbuild and createrepo_c",
)
needs_dnf = pytest.mark.skipif(shutil.which("dnf") is None, reason="needs dnf")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return example.generate(tmp_path_factory.mktemp("dist") / "root")


@pytest.fixture(scope="module")
def deps_dist(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return example.generate(tmp_path_factory.mktemp("deps") / "root", deps=True)


def resolve_packages(metadata: Path, tag: str) -> list[dict[str, Any]]:
    """distroinfo's layering: default, then conf, then entry, then the tag's override."""
    info = yaml.safe_load(metadata.read_text(encoding="utf-8"))
    resolved = []
    for entry in info["packages"]:
        if tag not in entry.get("tags", {}):
            continue
        package = dict(info["package-default"])
        package.update(info["package-configs"][entry["conf"]])
        package.update(entry)
        package.update(entry["tags"][tag] or {})
        resolved.append({k: v % package if isinstance(v, str) else v for k, v in package.items()})
    return resolved


def url_path(url: str) -> Path:
    assert url.startswith("file:///"), url
    return Path(url.removeprefix("file://"))


def trunk_version(upstream: Path) -> tuple[str, str]:
    """(RPM Version, upstream_version) as a trunk build after the last tag would get them."""
    tag, count, _ = git(upstream, "describe", "--tags", "--long").rsplit("-", 2)
    version = tag.lstrip("vV")
    if count == "0":
        return version, version
    parts = version.split(".")
    bumped = ".".join([*parts[:-1], str(int(parts[-1]) + 1)])
    return bumped, f"{bumped}.dev{count}"


def rpmbuild(dist: Any, package: str, topdir: Path) -> subprocess.CompletedProcess[str]:
    project = dist.projects[package]
    upstream = dist.upstreams[project]
    version, upstream_version = trunk_version(upstream)
    release = "0.20260101000000." + git(upstream, "rev-parse", "--short=7", "HEAD")
    for sub in ("SOURCES", "SPECS"):
        (topdir / sub).mkdir(parents=True, exist_ok=True)
    prefix = f"{upstream.name}-{upstream_version}"
    git(
        upstream,
        "archive",
        "--format=tar.gz",
        f"--prefix={prefix}/",
        "-o",
        str(topdir / "SOURCES" / f"{prefix}.tar.gz"),
        "HEAD",
    )
    spec = (dist.distgits[project] / f"{package}.spec").read_text(encoding="utf-8")
    spec = re.sub(r"^Version:(\s+)XXX$", rf"Version:\g<1>{version}", spec, flags=re.M)
    spec = re.sub(r"^Release:(\s+)XXX$", rf"Release:\g<1>{release}", spec, flags=re.M)
    spec_path = topdir / "SPECS" / f"{package}.spec"
    spec_path.write_text(spec, encoding="utf-8")
    return subprocess.run(
        [
            "rpmbuild",
            "-ba",
            "--nodeps",
            "--define",
            f"_topdir {topdir}",
            "--define",
            f"upstream_version {upstream_version}",
            str(spec_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_description(dist: Any) -> None:
    assert dist.root.is_absolute()
    assert dist.config == dist.root / "conveyor.toml"
    assert dist.metadata == dist.root / "rdoinfo" / "rdo.yml"
    assert len(dist.packages) == 8
    assert dist.failing_package == "example-broken"
    assert dist.dependency == ("python-exampleclient", "python-examplelib")
    assert set(dist.projects.values()) == set(dist.upstreams) == set(dist.distgits)
    assert dist.branches["exampledashboard"] == "main"
    hash(dist)


def test_config_loads(dist: Any) -> None:
    config = load_config(dist.config)
    assert config.datadir == dist.root / "data"
    assert config.baseurl == f"file://{dist.root}/data/repos"
    assert config.workers == 2
    assert config.metadata.path == dist.metadata
    assert config.metadata.release == "master"


def test_metadata_resolves_to_generated_repos(dist: Any) -> None:
    info = yaml.safe_load(dist.metadata.read_text(encoding="utf-8"))
    (release,) = info["releases"]
    assert release["name"] == "master"
    assert release["status"] == "development"
    assert release["branch"] == "rpm-master"
    assert release["repos"][0]["name"] == "el9s"
    components = {c["name"] for c in info["components"]}

    packages = resolve_packages(dist.metadata, "master")
    assert [p["name"] for p in packages] == list(dist.packages)
    for package in packages:
        assert package["maintainers"]
        assert all("@" in m for m in package["maintainers"])
        assert package.get("component", "common") in components
        upstream = url_path(package["upstream"])
        distgit = url_path(package["master-distgit"])
        assert upstream == dist.upstreams[package["project"]]
        assert distgit == dist.distgits[package["project"]]
        assert (upstream / ".git").is_dir()
        assert git(distgit, "symbolic-ref", "--short", "HEAD") == "rpm-master"
        assert (distgit / f"{package['name']}.spec").is_file()
        branch = package.get("source-branch", "master")
        assert git(upstream, "symbolic-ref", "--short", "HEAD") == branch
    assert sum("component" in entry for entry in info["packages"]) == 1


def test_upstream_histories(dist: Any) -> None:
    past_last_tag = 0
    for project, upstream in dist.upstreams.items():
        tags = git(upstream, "tag").split()
        assert len(tags) >= 1, project
        assert int(git(upstream, "rev-list", "--count", "HEAD")) >= 2
        _, count, _ = git(upstream, "describe", "--tags", "--long").rsplit("-", 2)
        past_last_tag += int(count) > 0
    assert past_last_tag >= 5
    assert "v2.3.0" in git(dist.upstreams["examplecli"], "tag").split()
    assert git(dist.upstreams["examplelib"], "cat-file", "-t", "1.1.0") == "tag"
    assert trunk_version(dist.upstreams["examplelib"]) == ("1.1.1", "1.1.1.dev2")


def test_specs_follow_trunk_conventions(dist: Any) -> None:
    requiring = []
    for package in dist.packages:
        spec = (dist.distgits[dist.projects[package]] / f"{package}.spec").read_text()
        lines = spec.splitlines()
        assert lines[0] == "%{!?upstream_version: %global upstream_version %{version}}"
        for field in ("Version", "Release"):
            assert re.search(rf"^{field}:\s+XXX$", spec, re.M), (package, field)
        assert re.search(rf"^Name:\s+{re.escape(package)}$", spec, re.M)
        assert re.search(r"^Source0:.*-%\{upstream_version\}\.tar\.gz$", spec, re.M)
        assert "BuildRequires" not in spec
        assert "%check" not in spec
        if "Requires:" in spec:
            requiring.append(package)
    assert requiring == [dist.dependency[0]]


def test_reproducible_hashes(dist: Any, tmp_path: Path) -> None:
    again = example.generate(tmp_path / "again")
    for project in dist.upstreams:
        assert git(again.upstreams[project], "rev-parse", "HEAD") == git(
            dist.upstreams[project], "rev-parse", "HEAD"
        )
        assert git(again.distgits[project], "rev-parse", "HEAD") == git(
            dist.distgits[project], "rev-parse", "HEAD"
        )


def test_generate_twice_returns_existing(tmp_path: Path) -> None:
    first = example.generate(tmp_path / "root")
    stamp = first.metadata.stat().st_mtime_ns
    heads = {p: git(u, "rev-parse", "HEAD") for p, u in first.upstreams.items()}
    assert example.generate(tmp_path / "root") == first
    assert first.metadata.stat().st_mtime_ns == stamp
    assert {p: git(u, "rev-parse", "HEAD") for p, u in first.upstreams.items()} == heads


def test_refuses_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine\n")
    with pytest.raises(example.DistributionError, match="not empty"):
        example.generate(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_refuses_root_needing_url_escaping(tmp_path: Path) -> None:
    with pytest.raises(example.DistributionError, match="URL escaping"):
        example.generate(tmp_path / "with space")
    assert not (tmp_path / "with space").exists()


def test_add_upstream_commit_needs_generated_root(tmp_path: Path) -> None:
    with pytest.raises(example.DistributionError, match="no generated distribution"):
        example.add_upstream_commit(tmp_path, "examplelib", "x")


def test_add_upstream_commit(tmp_path: Path) -> None:
    dist = example.generate(tmp_path / "root")
    upstream = dist.upstreams["exampledashboard"]
    before = git(upstream, "rev-parse", "HEAD")
    new = example.add_upstream_commit(dist.root, "exampledashboard", "Fix the panels")
    assert new == git(upstream, "rev-parse", "main") != before
    assert git(upstream, "rev-parse", f"{new}^") == before
    assert git(upstream, "log", "-1", "--format=%s") == "Fix the panels"
    assert int(git(upstream, "log", "-1", "--format=%ct", new)) > int(
        git(upstream, "log", "-1", "--format=%ct", before)
    )
    assert git(upstream, "status", "--porcelain") == ""
    with pytest.raises(example.DistributionError, match="unknown project"):
        example.add_upstream_commit(dist.root, "nova", "x")


def test_runs_as_script(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "examples" / "distribution.py"), str(tmp_path / "r")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "example-broken" in result.stdout
    assert (tmp_path / "r" / "conveyor.toml").is_file()


@pytest.mark.slow
@needs_rpmbuild
def test_good_spec_builds(dist: Any, tmp_path: Path) -> None:
    dependent, dependency = dist.dependency
    result = rpmbuild(dist, dependent, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    (rpm,) = (tmp_path / "RPMS" / "noarch").glob(f"{dependent}-1.0.1-0.*.noarch.rpm")
    assert list((tmp_path / "SRPMS").glob(f"{dependent}-1.0.1-0.*.src.rpm"))
    requires = subprocess.run(
        ["rpm", "-qp", "--requires", str(rpm)], check=True, capture_output=True, text=True
    ).stdout.split()
    assert dependency in requires
    files = subprocess.run(
        ["rpm", "-qpl", str(rpm)], check=True, capture_output=True, text=True
    ).stdout.split()
    assert "/usr/bin/example" in files
    assert f"/usr/share/{dependent}/README.md" in files


@pytest.mark.slow
@needs_rpmbuild
def test_broken_spec_fails(dist: Any, tmp_path: Path) -> None:
    result = rpmbuild(dist, dist.failing_package, tmp_path)
    assert result.returncode != 0
    assert "failing on purpose" in result.stdout + result.stderr


# --- the dependencies repository (deps_url) -----------------------------------------------------


def test_deps_are_opt_in(dist: Any) -> None:
    assert dist.deps_repo is None and dist.deps_dependency is None
    assert not (dist.root / "deps").exists()
    assert load_config(dist.config).deps_url == ""
    with pytest.raises(example.DistributionError, match="without a dependencies repository"):
        example.generate(dist.root, deps=True)
    assert not (dist.root / "deps").exists()


@pytest.mark.slow
@needs_deps_tools
def test_deps_repository_and_config(deps_dist: Any, dist: Any) -> None:
    root = deps_dist.root
    assert deps_dist.deps_repo == root / "deps" / "example-deps.repo"
    assert deps_dist.deps_dependency == ("python-examplelib", "example-runtime")
    raw = tomllib.loads(deps_dist.config.read_text(encoding="utf-8"))
    assert raw["deps_url"] == "deps/example-deps.repo"  # top level, relative to the file
    assert load_config(deps_dist.config).deps_url == str(deps_dist.deps_repo)

    text = deps_dist.deps_repo.read_text(encoding="utf-8")
    (section,) = parse_repo_file(text, "example-deps.repo")  # as conveyor checks it
    assert section.id == "example-deps"
    assert section.option("baseurl") == (root / "deps" / "repo").as_uri()
    assert (section.option("enabled"), section.option("gpgcheck")) == ("1", "0")
    repo = root / "deps" / "repo"
    assert (repo / "repodata" / "repomd.xml").is_file()
    (rpm,) = repo.glob("*.rpm")
    assert rpm.name == "example-runtime-1.0-1.noarch.rpm"
    query = ["rpm", "-qp", "--qf", "[%{FILENAMES}\n]", str(rpm)]
    files = subprocess.run(query, check=True, capture_output=True, text=True).stdout.split()
    assert "/usr/share/example-runtime/VERSION" in files
    requires = subprocess.run(
        ["rpm", "-qp", "--requires", str(rpm)], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    assert all(r.startswith("rpmlib(") for r in requires)  # installable into an empty root


@pytest.mark.slow
@needs_deps_tools
def test_deps_requirement_is_one_distgit_commit(deps_dist: Any, dist: Any) -> None:
    user, needed = deps_dist.deps_dependency
    project = deps_dist.projects[user]
    distgit = deps_dist.distgits[project]
    spec = (distgit / f"{user}.spec").read_text(encoding="utf-8")
    assert re.search(rf"^Requires:\s+{needed}$", spec, re.M)
    assert git(distgit, "log", "-1", "--format=%s") == f"Require {needed}"
    # The commit before it, and every other repository, are those of the plain distribution.
    assert git(distgit, "rev-parse", "HEAD^") == git(dist.distgits[project], "rev-parse", "HEAD")
    for other in deps_dist.distgits:
        assert git(deps_dist.upstreams[other], "rev-parse", "HEAD") == git(
            dist.upstreams[other], "rev-parse", "HEAD"
        )
        if other != project:
            assert git(deps_dist.distgits[other], "rev-parse", "HEAD") == git(
                dist.distgits[other], "rev-parse", "HEAD"
            )


@pytest.mark.slow
@needs_deps_tools
def test_deps_generation_is_idempotent(deps_dist: Any) -> None:
    repo = deps_dist.root / "deps" / "repo"
    made = [*repo.glob("*.rpm"), repo / "repodata" / "repomd.xml", deps_dist.deps_repo]
    stamps = [path.stat().st_mtime_ns for path in made]
    assert example.generate(deps_dist.root, deps=True) == deps_dist
    assert example.generate(deps_dist.root) == deps_dist  # described, nothing built
    assert [path.stat().st_mtime_ns for path in made] == stamps
    # What is missing is made again.
    shutil.rmtree(repo / "repodata")
    assert example.make_deps_repo(deps_dist.root) == deps_dist.deps_repo
    assert (repo / "repodata" / "repomd.xml").is_file()
