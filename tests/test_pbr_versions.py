"""Versions exactly as pbr computes them, judged by the real pbr.

Each test builds a small git repository with a shape real OpenStack histories have (tags on
merge commits, a release and its candidate on one commit, `Sem-Ver:` footers, side branches
dated before the tag…), asks pbr in a subprocess for the version (DLRN runs `setup.py
--version`), and checks that conveyor computes the same from git alone, through the function
the build and `run --dry-run` share (`conveyor.trunk.versions.source_version`).

Optionally, when the search tool's mirrors of real OpenStack repositories are present
(`/work/.mirror/openstack+<name>/repo`, or `$CONVEYOR_REAL_MIRRORS`), their histories are
compared too; those tests skip otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.support import build_target

from conveyor.config import Config
from conveyor.domain.builds import BuildJob, Mirrors
from conveyor.sources import git as conveyor_git
from conveyor.trunk.buildjob import _prepare
from conveyor.trunk.versions import SourceVersion, source_version

EPOCH = 1_700_000_000
STARTED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
SETUP_PY = "import setuptools\n\nsetuptools.setup(setup_requires=['pbr'], pbr=True)\n"
REAL_MIRRORS = Path(os.environ.get("CONVEYOR_REAL_MIRRORS", "/work/.mirror"))


def _clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("GIT_") and k not in ("PBR_VERSION", "OSLO_PACKAGE_VERSION")
    }
    env.update(GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1", **extra)
    return env


def run_git(path: Path, *args: str, when: int = EPOCH) -> str:
    stamp = f"@{when} +0000"
    env = _clean_env(
        GIT_AUTHOR_NAME="A",
        GIT_AUTHOR_EMAIL="a@example.org",
        GIT_COMMITTER_NAME="A",
        GIT_COMMITTER_EMAIL="a@example.org",
        GIT_AUTHOR_DATE=stamp,
        GIT_COMMITTER_DATE=stamp,
    )
    done = subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


class Repo:
    """An upstream pbr project; every commit and tag gets an explicit, increasing date unless
    told otherwise."""

    def __init__(self, path: Path, name: str = "python-foo", version: str | None = None) -> None:
        self.path = path
        self.name = name
        self.clock = EPOCH
        self.commits = 0
        path.mkdir(parents=True)
        self.git("init", "-q", "-b", "master")
        setup_cfg = f"[metadata]\nname = {name}\nsummary = a pbr project\n"
        if version is not None:
            setup_cfg += f"version = {version}\n"
        (path / "setup.cfg").write_text(setup_cfg, encoding="utf-8")
        (path / "setup.py").write_text(SETUP_PY, encoding="utf-8")
        self.commit("Initial commit")

    def git(self, *args: str, when: int | None = None) -> str:
        return run_git(self.path, *args, when=self.clock if when is None else when)

    def tick(self, when: int | None) -> int:
        if when is None:
            self.clock += 60
            return self.clock
        return when

    def commit(self, message: str, when: int | None = None) -> str:
        stamp = self.tick(when)
        # One new file per commit: branches never conflict when merged.
        self.commits += 1
        (self.path / f"change-{self.commits}.txt").write_text(message, encoding="utf-8")
        self.git("add", "-A", when=stamp)
        self.git("commit", "-q", "-m", message, when=stamp)
        return self.head()

    def tag(self, name: str, *, annotated: bool = True, when: int | None = None) -> None:
        stamp = self.tick(when)
        if annotated:
            self.git("tag", "-a", "-m", f"Release {name}", name, when=stamp)
        else:
            self.git("tag", name, when=stamp)

    def merge(self, branch: str, message: str, when: int | None = None) -> str:
        stamp = self.tick(when)
        self.git("merge", "-q", "--no-ff", "-m", message, branch, when=stamp)
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    def pbr(self, *, setup_py: bool = False) -> str:
        """pbr's own answer at HEAD: `setup.py --version` as DLRN runs it, or the function it
        calls, with setup.cfg's version as pbr's target."""
        return pbr_version(self.path, self.name, setup_py=setup_py)

    def conveyor(self, commit: str | None = None, tmp: Path | None = None) -> SourceVersion:
        job = job_for(self.path / ".git", f"file://{self.path}", commit or self.head())
        return source_version(job, Config(datadir=tmp or self.path.parent / "data"), STARTED)


def job_for(git_dir: Path, url: str, commit: str, distgit: Path | None = None) -> BuildJob:
    return BuildJob(
        target=build_target("python-foo", upstream=url),
        mirrors=Mirrors(upstream=git_dir, distgit=distgit or git_dir),
        commit_hash=commit,
        dt_commit=0,
        commit_branch="master",
        distro_hash="0" * 40,
        dt_distro=0,
    )


def pbr_version(where: Path, name: str, *, setup_py: bool = False) -> str:
    env = _clean_env(GIT_CEILING_DIRECTORIES=str(where.parent))
    if setup_py:
        command = [sys.executable, "setup.py", "-q", "--version"]
    else:
        script = (
            "import configparser, pbr.packaging\n"
            "cfg = configparser.ConfigParser(); cfg.read('setup.cfg')\n"
            "pre = cfg.get('metadata', 'version', fallback=None)\n"
            f"print(pbr.packaging.get_version({name!r}, pre_version=pre))\n"
        )
        command = [sys.executable, "-c", script]
    done = subprocess.run(command, cwd=where, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def pbr_versions_along(where: Path, name: str, commits: list[str]) -> list[str]:
    """pbr's answer at each of `commits`, checked out in turn, from one interpreter (pbr keeps
    nothing between calls: each reads git again); the checkout is left at the last one."""
    script = (
        "import configparser, subprocess, sys, pbr.packaging\n"
        "for commit in sys.argv[1:]:\n"
        "    subprocess.run(['git', 'checkout', '-q', '--detach', commit], check=True)\n"
        "    cfg = configparser.ConfigParser(); cfg.read('setup.cfg')\n"
        "    pre = cfg.get('metadata', 'version', fallback=None)\n"
        f"    print('pbr:', pbr.packaging.get_version({name!r}, pre_version=pre), flush=True)\n"
    )
    env = _clean_env(GIT_CEILING_DIRECTORIES=str(where.parent))
    command = [sys.executable, "-c", script, *commits]
    done = subprocess.run(command, cwd=where, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    versions = [line[5:] for line in done.stdout.splitlines() if line.startswith("pbr: ")]
    assert len(versions) == len(commits), done.stdout
    return versions


def same_as_pbr(repo: Repo, expected: str) -> None:
    ours = repo.conveyor().version.upstream_version
    assert (ours, repo.pbr()) == (expected, expected)


# --- history shapes -----------------------------------------------------------------------------


def test_no_tag_counts_from_zero(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "foo")
    same_as_pbr(repo, "0.0.0")
    repo.commit("Second")
    repo.commit("Third")
    same_as_pbr(repo, "0.0.1.dev2")
    repo.commit("Add an API\n\nSem-Ver: feature\n")
    same_as_pbr(repo, "0.1.0.dev3")


def test_commits_after_a_tag(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "foo")
    repo.tag("1.2.3")
    same_as_pbr(repo, "1.2.3")
    repo.commit("Fix")
    repo.commit("Fix again")
    same_as_pbr(repo, "1.2.4.dev2")
    assert repo.conveyor().version.version == "1.2.4"


def test_lightweight_short_and_v_prefixed_tags(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "foo")
    repo.tag("v1.0", annotated=False)
    same_as_pbr(repo, "1.0.0")
    repo.commit("Fix")
    same_as_pbr(repo, "1.0.1.dev1")


def test_tags_on_merge_commits(tmp_path: Path) -> None:
    # OpenStack's release bot tags Zuul's merge commits.
    repo = Repo(tmp_path / "foo")
    repo.git("checkout", "-q", "-b", "change1")
    repo.commit("Add a feature")
    repo.git("checkout", "-q", "master")
    repo.merge("change1", 'Merge "Add a feature"')
    repo.tag("2.0.0")
    same_as_pbr(repo, "2.0.0")
    repo.git("checkout", "-q", "-b", "change2")
    repo.commit("Fix a bug")
    repo.git("checkout", "-q", "master")
    repo.merge("change2", 'Merge "Fix a bug"')
    same_as_pbr(repo, "2.0.1.dev2")


def test_side_branch_dated_before_the_tag_counts_in_log_order(tmp_path: Path) -> None:
    # oslo.config's shape: a change written before the release and merged after it. git log
    # lists it after the tagged commit (it is older), so pbr does not count it; git describe
    # would (dev2).
    repo = Repo(tmp_path / "foo")
    base = repo.head()
    repo.commit("Prepare release")
    repo.tag("10.6.0")
    repo.git("checkout", "-q", "-b", "old-change", base)
    repo.commit("A change written long ago", when=EPOCH + 30)
    repo.git("checkout", "-q", "master")
    repo.merge("old-change", 'Merge "A change written long ago"')
    assert conveyor_git.describe(repo.path / ".git", repo.head(), 30) == ("10.6.0", 2)
    same_as_pbr(repo, "10.6.1.dev1")


def test_newer_lower_tag_merged_in_wins_as_in_pbr(tmp_path: Path) -> None:
    # pbr takes the first tagged commit git log lists, not the highest tag reachable.
    repo = Repo(tmp_path / "foo")
    base = repo.head()
    repo.commit("Release")
    repo.tag("2.0.0")
    repo.git("checkout", "-q", "-b", "stable", base)
    repo.commit("Backport")
    repo.tag("1.5.0")
    repo.git("checkout", "-q", "master")
    repo.merge("stable", "Merge stable")
    same_as_pbr(repo, "1.5.1.dev1")


def test_release_and_candidate_on_one_commit(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "foo")
    repo.commit("Prepare")
    repo.tag("3.0.0.0rc1")
    same_as_pbr(repo, "3.0.0.0rc1")
    repo.tag("3.0.0")  # later, on the same commit, as the release process does
    same_as_pbr(repo, "3.0.0")
    repo.commit("Fix")
    same_as_pbr(repo, "3.0.1.dev1")


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("4.0.0.0rc1", "4.0.0.0rc2.dev1"),
        ("4.0.0rc1", "4.0.0.0rc2.dev1"),
        ("4.0.0.0b2", "4.0.0.0b3.dev1"),
    ],
)
def test_commits_after_a_prerelease(tmp_path: Path, tag: str, expected: str) -> None:
    repo = Repo(tmp_path / "foo")
    repo.tag(tag)
    repo.commit("Fix")
    same_as_pbr(repo, expected)
    assert repo.conveyor().version.version == "4.0.0"


@pytest.mark.parametrize(
    ("footer", "expected"),
    [
        ("Sem-Ver: feature", "1.3.0.dev2"),
        ("Sem-Ver: deprecation", "1.3.0.dev2"),
        ("Sem-Ver: api-break", "2.0.0.dev2"),
        ("Sem-Ver: bugfix", "1.2.4.dev2"),
        ("sem-ver: API-Break, feature", "2.0.0.dev2"),
        ("Sem-Ver: something-else", "1.2.4.dev2"),
    ],
)
def test_sem_ver_footers(tmp_path: Path, footer: str, expected: str) -> None:
    repo = Repo(tmp_path / "foo")
    repo.tag("1.2.3")
    repo.commit(f"Update master for stable/2026.1\n\n{footer}\nChange-Id: I0123\n")
    repo.commit("Fix")
    same_as_pbr(repo, expected)


def test_sem_ver_footer_before_the_tag_does_not_count(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "foo")
    repo.commit("Big change\n\nSem-Ver: api-break\n")
    repo.tag("1.2.3")
    repo.commit("Fix")
    same_as_pbr(repo, "1.2.4.dev1")


def test_sem_ver_footer_on_a_merged_side_branch_counts(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "foo")
    repo.tag("1.2.3")
    repo.git("checkout", "-q", "-b", "change")
    repo.commit("New API\n\nSem-Ver: feature\n")
    repo.git("checkout", "-q", "master")
    repo.merge("change", 'Merge "New API"')
    same_as_pbr(repo, "1.3.0.dev2")


def test_sem_ver_after_a_dashed_tag_is_lost_as_in_pbr(tmp_path: Path) -> None:
    # pbr reads 1.2.0-rc1 as 1.2.0.rc1 and asks git for "1.2.0.rc1..HEAD", which fails.
    repo = Repo(tmp_path / "foo")
    repo.tag("1.2.0-rc1")
    repo.commit("New API\n\nSem-Ver: feature\n")
    same_as_pbr(repo, "1.2.0.0rc2.dev1")


def test_tags_pbr_cannot_read_are_passed_over(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "foo")
    repo.tag("1.0.0")
    repo.commit("Fix")
    repo.tag("juno-eol")
    repo.tag("private-foo", annotated=False)
    repo.tag("r9.9.9", annotated=False)
    repo.commit("Fix again")
    same_as_pbr(repo, "1.0.1.dev2")


@pytest.mark.parametrize(
    ("target", "footer", "expected"),
    [
        ("2.0.0", "", "2.0.0.dev1"),
        ("1.2.4", "", "1.2.4.dev1"),
        ("1.3.0", "Sem-Ver: feature", "1.3.0.dev1"),
    ],
)
def test_setup_cfg_version_is_pbrs_target(
    tmp_path: Path, target: str, footer: str, expected: str
) -> None:
    repo = Repo(tmp_path / "foo", version=target)
    repo.tag("1.2.3")
    repo.commit(f"Change\n\n{footer}\n")
    same_as_pbr(repo, expected)


def test_history_above_setup_cfg_version_fails_as_pbr_fails(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "foo", version="1.2.3")
    repo.tag("1.2.3")
    repo.commit("Change")
    with pytest.raises(ValueError, match="requires a target version"):
        repo.conveyor()
    env = _clean_env(GIT_CEILING_DIRECTORIES=str(repo.path.parent))
    done = subprocess.run(
        [sys.executable, "-c", "import pbr.packaging as p; p.get_version('python-foo', '1.2.3')"],
        cwd=repo.path,
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode != 0 and "requires a target version" in done.stderr


def test_setup_py_version_as_dlrn_runs_it(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "foo")
    repo.tag("4.11.0")
    repo.commit("Update master for stable/2026.1\n\nSem-Ver: feature\n")
    for n in range(5):
        repo.commit(f"Change {n}")
    assert repo.pbr(setup_py=True) == "4.12.0.dev6"
    planned = repo.conveyor().version
    assert (planned.version, planned.upstream_version) == ("4.12.0", "4.12.0.dev6")
    assert planned.release == f"0.20260102030405.{repo.head()[:7]}"


def test_every_commit_of_a_history_matches_pbr(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "foo")
    commits = [repo.head()]
    for step in range(12):
        if step == 3:
            repo.tag("0.1.0")
        if step == 6:
            repo.git("checkout", "-q", "-b", f"side{step}", commits[-3])
            repo.commit("Side work\n\nSem-Ver: feature\n", when=EPOCH + step)
            repo.git("checkout", "-q", "master")
            repo.merge(f"side{step}", "Merge side work")
        if step == 9:
            repo.tag("0.2.0.0rc1")
        commits.append(repo.commit(f"Step {step}"))
    ours = []
    for commit in commits:
        repo.git("checkout", "-q", "--detach", commit)
        ours.append(repo.conveyor(commit).version.upstream_version)
    # pbr's answers from one interpreter: fifteen interpreters cost seconds, not the judge.
    assert dict(zip(commits, ours, strict=True)) == dict(
        zip(commits, pbr_versions_along(repo.path, repo.name, commits), strict=True)
    )


# --- what the build gets: a tarball pbr can read without git ------------------------------------

SPEC = """Name: {name}
Version: XXX
Release: XXX
Summary: test
License: ASL 2.0
Source0: placeholder.tar.gz
BuildArch: noarch

%description
test

%prep
%setup -q -n {folder}-%{{upstream_version}}

%build

%install

%files

%changelog
* Thu Jan 01 2026 A <a@example.org> - 1.0.0-1
- old
"""


def distgit(path: Path, name: str, folder: str) -> tuple[Path, str]:
    """A distgit holding one spec that unpacks `<folder>-%{upstream_version}`."""
    path.mkdir(parents=True)
    run_git(path, "init", "-q", "-b", "rpm-master")
    (path / f"{name}.spec").write_text(SPEC.format(name=name, folder=folder), encoding="utf-8")
    run_git(path, "add", "-A")
    run_git(path, "commit", "-q", "-m", "spec")
    return path / ".git", run_git(path, "rev-parse", "HEAD")


def prepared_sources(tmp_path: Path, upstream: Repo, name: str, folder: str) -> tuple[Path, str]:
    """Runs the build's own `_prepare` on HEAD of `upstream`: (SOURCES, upstream version)."""
    distgit_dir, distro_hash = distgit(tmp_path / "distgit", name, folder)
    job = BuildJob(
        target=build_target(name, upstream=f"file://{upstream.path}"),
        mirrors=Mirrors(upstream=upstream.path / ".git", distgit=distgit_dir),
        commit_hash=upstream.head(),
        dt_commit=0,
        commit_branch="master",
        distro_hash=distro_hash,
        dt_distro=0,
    )
    sources = tmp_path / "SOURCES"
    sources.mkdir()
    _spec, version = _prepare(job, Config(datadir=tmp_path / "data"), sources, STARTED)
    return sources, version.upstream_version


def extract(tarball: Path, into: Path) -> list[str]:
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
        for member in tar.getmembers():
            assert not member.name.startswith("/") and ".." not in member.name.split("/")
        tar.extractall(into)
    return names


def test_tarball_carries_pkg_info_pbr_reads_without_git(tmp_path: Path) -> None:
    upstream = Repo(tmp_path / "python-foo")
    upstream.tag("1.2.3")
    upstream.commit("New API\n\nSem-Ver: feature\n")
    sources, version = prepared_sources(tmp_path, upstream, "python-foo", "python-foo")
    assert version == "1.3.0.dev1"
    tarball = sources / f"python-foo-{version}.tar.gz"
    names = extract(tarball, tmp_path / "x")
    assert f"python-foo-{version}/PKG-INFO" in names
    assert not any("/.git/" in n for n in names)
    folder = tmp_path / "x" / f"python-foo-{version}"
    info = (folder / "PKG-INFO").read_text(encoding="utf-8")
    assert "Name: python-foo\n" in info and f"Version: {version}\n" in info
    # No git anywhere above: pbr must take the version from PKG-INFO.
    assert pbr_version(folder, "python-foo", setup_py=True) == version
    assert pbr_version(folder, "python-foo") == version
    # Without PKG-INFO, pbr has nothing: this is what a bare `git archive` gave the build.
    (folder / "PKG-INFO").unlink()
    env = _clean_env(GIT_CEILING_DIRECTORIES=str(folder.parent))
    done = subprocess.run(
        [sys.executable, "setup.py", "-q", "--version"],
        cwd=folder,
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode != 0
    assert "Versioning for this project requires either an sdist tarball" in done.stderr


def test_project_without_pbr_metadata_gets_no_pkg_info(tmp_path: Path) -> None:
    upstream = Repo(tmp_path / "plain")
    (upstream.path / "setup.cfg").unlink()
    upstream.commit("No setup.cfg")
    planned = upstream.conveyor()
    assert planned.extra_files == {}
    assert planned.folder == f"plain-{planned.version.upstream_version}"


# --- Puppet modules: version and folder from metadata.json, as DLRN ------------------------------


def puppet_repo(path: Path, name: str, version: str) -> Repo:
    repo = Repo(path)  # it keeps setup.py and setup.cfg: metadata.json wins, as in DLRN
    metadata = {"name": name, "version": version, "author": "OpenStack", "dependencies": []}
    (repo.path / "metadata.json").write_text(json.dumps(metadata, indent=2), encoding="utf-8")
    repo.commit("Add metadata.json")
    return repo


def test_puppet_module_version_and_folder(tmp_path: Path) -> None:
    repo = puppet_repo(tmp_path / "puppet-nova", "openstack-nova", "28.0.0")
    repo.tag("28.0.0")
    planned = repo.conveyor()
    assert (planned.version.upstream_version, planned.folder) == ("28.0.0", "openstack-nova-28.0.0")
    assert planned.extra_files == {}
    repo.commit("Fix")
    repo.commit("Fix again")
    planned = repo.conveyor()
    # Past the tag and still at its version: DLRN bumps the last component.
    assert planned.version.upstream_version == "28.0.1"
    assert planned.version.version == "28.0.1"
    assert planned.folder == "openstack-nova-28.0.1"


def test_puppet_module_not_from_openstack_is_named_after_its_repository(tmp_path: Path) -> None:
    repo = puppet_repo(tmp_path / "puppet-dns", "theforeman-dns", "9.1.0")
    planned = repo.conveyor()
    assert planned.folder == "puppet-dns-9.1.0"


def test_puppet_module_without_version_fails_like_dlrn(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "puppet-x")
    (repo.path / "metadata.json").write_text('{"name": "openstack-x"}', encoding="utf-8")
    repo.commit("metadata")
    with pytest.raises(ValueError, match="version"):
        repo.conveyor()


@pytest.mark.skipif(shutil.which("rpmbuild") is None, reason="rpmbuild is not installed")
def test_puppet_spec_setup_finds_the_module_folder(tmp_path: Path) -> None:
    repo = puppet_repo(tmp_path / "puppet-nova", "openstack-nova", "28.0.0")
    repo.tag("28.0.0")
    repo.commit("Fix")
    sources, version = prepared_sources(tmp_path, repo, "puppet-nova", "openstack-nova")
    assert version == "28.0.1"
    (tarball,) = sources.glob("*.tar.gz")
    assert tarball.name == "openstack-nova-28.0.1.tar.gz"
    done = subprocess.run(
        [
            "rpmbuild",
            "-bp",
            "--nodeps",
            "--define",
            f"_topdir {tmp_path / 'top'}",
            "--define",
            f"_sourcedir {sources}",
            str(sources / "puppet-nova.spec"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "top" / "BUILD" / "openstack-nova-28.0.1" / "metadata.json").is_file()


# --- real OpenStack histories, when their mirrors are at hand ------------------------------------


def real_mirror(name: str) -> Path:
    path = REAL_MIRRORS / f"openstack+{name}" / "repo"
    if not (path / "HEAD").is_file():
        pytest.skip(f"no mirror of openstack/{name} at {path}")
    return path


@pytest.mark.parametrize(
    ("name", "package", "commit", "expected"),
    [
        # The measurements of issue 11: pbr's answers, where conveyor used to differ.
        (
            "python-glanceclient",
            "python-glanceclient",
            "0b06bb41ca9e24bf52ffb7c7a383b523208a106a",
            "4.12.0.dev6",
        ),
        ("aodh", "aodh", "a52eaa00", "22.1.0.dev64"),
        ("oslo.config", "oslo.config", "57da8d31", "10.6.1.dev3"),
    ],
)
def test_real_openstack_history(
    tmp_path: Path, name: str, package: str, commit: str, expected: str
) -> None:
    mirror = real_mirror(name)
    try:
        full = conveyor_git.run_git(["rev-parse", "--verify", f"{commit}^{{commit}}"], mirror)
    except conveyor_git.GitError:
        pytest.skip(f"commit {commit} is not in the mirror of {name}")
    full = full.strip()
    job = job_for(mirror, f"https://opendev.org/openstack/{name}", full)
    planned = source_version(job, Config(datadir=tmp_path / "data"), STARTED)
    assert planned.version.upstream_version == expected
    # And pbr itself, in a clone checked out at that commit.
    clone = tmp_path / name
    subprocess.run(
        ["git", "clone", "-q", "--no-checkout", str(mirror), str(clone)],
        check=True,
        env=_clean_env(),
    )
    subprocess.run(
        ["git", "-C", str(clone), "update-ref", "--no-deref", "HEAD", full],
        check=True,
        env=_clean_env(),
    )
    script = f"import pbr.packaging; print(pbr.packaging.get_version({package!r}))"
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=clone,
        capture_output=True,
        text=True,
        env=_clean_env(),
    )
    assert done.stdout.strip() == expected, done.stderr


def test_real_puppet_module(tmp_path: Path) -> None:
    mirror = real_mirror("puppet-nova")
    commit = "9e0b09f0"
    try:
        full = conveyor_git.run_git(["rev-parse", "--verify", f"{commit}^{{commit}}"], mirror)
    except conveyor_git.GitError:
        pytest.skip(f"commit {commit} is not in the mirror of puppet-nova")
    job = job_for(mirror, "https://opendev.org/openstack/puppet-nova", full.strip())
    planned = source_version(job, Config(datadir=tmp_path / "data"), STARTED)
    # metadata.json says 28.0.0, five commits after tag 28.0.0.
    assert planned.folder == "openstack-nova-28.0.1"
