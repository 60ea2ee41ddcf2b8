"""Generate a small, realistic example distribution for conveyor.

`generate(root)` creates, under `root`:

* `upstream/<basename>/`: eight upstream git repositories with tagged, reproducible histories;
* `distgit/<project>-distgit/`: one distgit per project, branch `rpm-master`, holding
  `<package name>.spec` written the way RDO writes trunk specs;
* `rdoinfo/rdo.yml`: the rdoinfo-format metadata tying them together (tag `master`);
* `conveyor.toml`: a configuration that builds all of it into `data/`.

`generate(root, deps=True)` adds what RDO's delorean-deps.repo stands for: `deps/repo/`, a
repository (made with rpmbuild and createrepo_c) of a package the trunk does not build,
`deps/example-deps.repo` listing it, `deps_url` naming that file in `conveyor.toml` (and
`[tags] lookaside` its folder, for the buildsys tags' closure gate), and a distgit commit
making one trunk package require it.

Two functions then play the people around a trunk:

* `add_promotion_criteria(root)`: the master builder's promotion criteria (`promotions.yaml`,
  named by `promotion_criteria` in `conveyor.toml`): `current-passed-ci` follows `consistent`
  once the CI job `example-ci` passed, and a release's GA waits for `example-stable-ci`;
* `add_release(root, series)`: upstream's release team and the rdoinfo reviewer opening a
  release: a `stable/<series>` branch in every upstream at its newest release, the release in
  rdoinfo (its branches and buildsys tags, every package tagged), and an
  openstack/releases-like tree `releases/` (`data/series_status.yaml`,
  `deliverables/<series>/<repo>.yaml`).

Every URL is a `file://` URL, so nothing needs the network. Run it as
`python examples/distribution.py [--deps] [--criteria] [--release SERIES] ROOT`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

__all__ = [
    "Distribution",
    "DistributionError",
    "Release",
    "add_promotion_criteria",
    "add_release",
    "add_upstream_commit",
    "find_release",
    "generate",
    "main",
    "make_deps_repo",
]

MARKER_NAME = ".conveyor-example-distribution"
_MARKER_TEXT = "conveyor example distribution, format 1\n"
# A distinct marker, so that a rerun knows the distgits and conveyor.toml expect deps/.
_MARKER_TEXT_DEPS = "conveyor example distribution, format 1, with a dependencies repository\n"

# The dependencies repository: one package the trunk does not build but an install needs.
DEPS_PACKAGE = "example-runtime"
DEPS_REPO_ID = "example-deps"
DEPS_REPO_FILE = f"deps/{DEPS_REPO_ID}.repo"
# The buildsys tags' closure gate needs it too: CBS tags see the builds of RDO's deps.
_TAGS_LOOKASIDE = (
    "\n[tags]\n"
    "# What the buildsys tags' closure gate counts on besides a tag: the dependencies\n"
    "# repository, as CBS tags inherit the builds RDO's deps repositories hold.\n"
    'lookaside = ["deps/repo"]\n'
)
_DEPS_VERSION = "1.0"
_DEPS_RELEASE = "1"

RELEASE_TAG = "master"
DISTGIT_BRANCH = "rpm-master"

# The master builder's promotion criteria (add_promotion_criteria): the CI job that promotes
# `consistent` to PROMOTED_LABEL, and the one a release's -testing buildsys tag needs for GA.
CRITERIA_FILE = "promotions.yaml"
PROMOTED_LABEL = "current-passed-ci"
CI_JOB = "example-ci"
RELEASE_CI_JOB = "example-stable-ci"

# A release (add_release): the openstack/releases-like tree, and who tags for upstream.
RELEASES_DIR = "releases"
_RELEASE_TEAM = ("Example Release Team", "release-team@example.org")
_SERIES_NAME = re.compile(r"[a-z][a-z0-9]{1,30}")
# openstack/releases' `type` of each deliverable, by rdoinfo conf.
_DELIVERABLE_TYPES = {
    "example-lib": "library",
    "example-client": "client-library",
    "example-core": "service",
    "example-tool": "other",
}

_EPOCH = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
_COMMIT_STEP = timedelta(hours=3)
_PEOPLE = {
    "alice": ("Alice Example", "alice@example.org"),
    "bob": ("Bob Example", "bob@example.org"),
    "carol": ("Carol Example", "carol@example.org"),
    "dave": ("Dave Example", "dave@example.org"),
}
# Options that would otherwise come from the caller's or the system's git configuration.
_GIT_OPTIONS = (
    "-c",
    "user.name=Conveyor Examples",
    "-c",
    "user.email=examples@example.org",
    "-c",
    "init.templateDir=",
    "-c",
    "commit.gpgSign=false",
    "-c",
    "tag.gpgSign=false",
    "-c",
    "core.autocrlf=false",
    "-c",
    "core.fileMode=true",
    "-c",
    "gc.auto=0",
    "-c",
    "maintenance.auto=false",
)


class DistributionError(Exception):
    """The example distribution cannot be generated or changed; the message says why."""


@dataclass(frozen=True)
class _Project:
    project: str
    conf: str
    name: str
    basename: str
    module: str
    command: str
    summary: str
    features: tuple[str, ...]
    # (index of the commit in the history, tag name); commit 0 is the initial commit.
    tags: tuple[tuple[int, str], ...]
    maintainers: tuple[str, ...]
    branch: str = "master"
    annotated_tags: bool = True
    upstream_in_entry: bool = False
    component: str | None = None
    requires: tuple[str, ...] = ()
    # Required only by a distribution generated with a dependencies repository.
    deps_requires: tuple[str, ...] = ()
    changelog_entry: bool = False
    broken: bool = False


_PROJECTS: tuple[_Project, ...] = (
    _Project(
        project="examplelib",
        conf="example-lib",
        name="python-examplelib",
        basename="examplelib",
        module="examplelib",
        command="examplelib-greet",
        summary="Shared helpers of the example distribution",
        features=("greet", "farewell", "shout", "whisper"),
        tags=((1, "1.0.0"), (2, "1.1.0")),
        maintainers=("alice",),
        deps_requires=(DEPS_PACKAGE,),
    ),
    _Project(
        project="exampleclient",
        conf="example-client",
        name="python-exampleclient",
        basename="python-exampleclient",
        module="exampleclient",
        command="example",
        summary="Client library and command-line tool for the example service",
        features=("connect", "list_items", "show_item"),
        tags=((1, "0.9.0"), (2, "1.0.0")),
        maintainers=("bob", "alice"),
        annotated_tags=False,
        requires=("python-examplelib",),
    ),
    _Project(
        project="exampleservice",
        conf="example-core",
        name="openstack-exampleservice",
        basename="exampleservice",
        module="exampleservice",
        command="exampleservice-api",
        summary="The example service",
        features=("serve", "health", "metrics", "shutdown"),
        tags=((1, "2.0.0"), (2, "2.1.0")),
        maintainers=("carol",),
        component="common",
        changelog_entry=True,
    ),
    _Project(
        project="example-config",
        conf="example-lib",
        name="python-example-config",
        basename="example.config",
        module="example_config",
        command="example-config-validate",
        summary="Configuration file parsing for the example distribution",
        features=("load", "merge", "validate"),
        tags=((1, "3.0.0"), (2, "3.1.0")),
        maintainers=("dave",),
        upstream_in_entry=True,
    ),
    _Project(
        project="examplecli",
        conf="example-tool",
        name="examplecli",
        basename="examplecli",
        module="examplecli",
        command="examplecli",
        summary="Operator command line of the example distribution",
        features=("run", "status", "version"),
        tags=((1, "v2.2.0"), (2, "v2.3.0")),
        maintainers=("alice", "dave"),
    ),
    _Project(
        project="exampledashboard",
        conf="example-core",
        name="openstack-exampledashboard",
        basename="exampledashboard",
        module="exampledashboard",
        command="exampledashboard-manage",
        summary="Web dashboard of the example service",
        features=("index", "panels", "themes"),
        tags=((1, "0.1.0"), (2, "0.2.0")),
        maintainers=("carol", "bob"),
        branch="main",
    ),
    _Project(
        project="exampleplugin",
        conf="example-lib",
        name="python-exampleplugin",
        basename="exampleplugin",
        module="exampleplugin",
        command="exampleplugin-list",
        summary="Plugin loader of the example service",
        features=("register", "discover"),
        tags=((1, "0.5.0"), (2, "1.0.0")),
        maintainers=("bob",),
    ),
    _Project(
        project="example-broken",
        conf="example-tool",
        name="example-broken",
        basename="example-broken",
        module="example_broken",
        command="example-broken",
        summary="A package whose build always fails",
        features=("frobnicate",),
        tags=((0, "0.1.0"),),
        maintainers=("dave",),
        broken=True,
    ),
)
_BY_PROJECT = {p.project: p for p in _PROJECTS}


@dataclass(frozen=True)
class Distribution:
    """What `generate` created; mappings are keyed by rdoinfo project."""

    root: Path
    config: Path
    metadata: Path
    packages: tuple[str, ...]
    failing_package: str
    # (dependent, dependency): the only runtime `Requires:` between example packages.
    dependency: tuple[str, str]
    upstreams: Mapping[str, Path] = field(hash=False)
    distgits: Mapping[str, Path] = field(hash=False)
    branches: Mapping[str, str] = field(hash=False)
    # package name -> project
    projects: Mapping[str, str] = field(hash=False)
    # Generated with deps=True: the .repo file `deps_url` names, and (trunk package, package
    # of that repository) for the `Requires:` that makes installs need it.
    deps_repo: Path | None = None
    deps_dependency: tuple[str, str] | None = None


@dataclass(frozen=True)
class Release:
    """What `add_release` created (or `find_release` found): one rdoinfo release of the
    distribution and its upstream release data; mappings are keyed by rdoinfo project."""

    root: Path
    series: str
    release_id: str
    # rdoinfo's `branch` (the distgits') and `upstream_branch`.
    distgit_branch: str
    upstream_branch: str
    buildsys: str
    # <family>-candidate, <family>-testing, <family>-release: CBS's stages, in order.
    family: str
    # The openstack/releases-like tree: data/series_status.yaml, deliverables/<series>/.
    releases: Path
    # The series' release of each project: its version (a git tag of its upstream) and commit.
    versions: Mapping[str, str] = field(hash=False)
    hashes: Mapping[str, str] = field(hash=False)

    @property
    def buildsys_tags(self) -> tuple[str, str, str]:
        return (self.candidate_tag, self.testing_tag, self.release_tag)

    @property
    def candidate_tag(self) -> str:
        return f"{self.family}-candidate"

    @property
    def testing_tag(self) -> str:
        return f"{self.family}-testing"

    @property
    def release_tag(self) -> str:
        return f"{self.family}-release"


def generate(root: Path, *, deps: bool = False) -> Distribution:
    """Create the distribution under `root`, or describe the one already generated there.

    `deps` adds the dependencies repository (see `make_deps_repo`); it needs rpmbuild and
    createrepo_c, so it is opt-in. A rerun with `deps` remakes whatever of it is missing.
    """
    root = _checked_root(root)
    if (root / MARKER_NAME).exists():
        has_deps = _check_marker(root)
        if deps and not has_deps:
            raise DistributionError(
                f"{root}: generated without a dependencies repository; remove it, or "
                "generate into an empty or missing directory"
            )
        if deps:
            make_deps_repo(root)
            _ensure_tags_lookaside(root)
        return _describe(root, has_deps)
    if root.exists():
        if not root.is_dir():
            raise DistributionError(f"{root}: not a directory")
        if any(root.iterdir()):
            raise DistributionError(
                f"{root}: directory is not empty and holds no generated distribution "
                f"(no {MARKER_NAME}); choose an empty or missing directory"
            )
    else:
        root.mkdir(parents=True)
    try:
        for index, project in enumerate(_PROJECTS):
            _make_upstream(root, index, project)
            _make_distgit(root, index, project, deps=deps)
        _write_metadata(root)
        _write_config(root, deps=deps)
        if deps:
            make_deps_repo(root)
        # Written last: its presence means the whole generation succeeded.
        marker = _MARKER_TEXT_DEPS if deps else _MARKER_TEXT
        (root / MARKER_NAME).write_text(marker, encoding="utf-8")
    except BaseException:
        # The root was empty, so everything in it is ours; a half-made one would be refused later.
        for child in root.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        raise
    return _describe(root, deps)


def add_upstream_commit(root: Path, project: str, message: str) -> str:
    """Commit a change to `project`'s upstream on its default branch; return the new hash."""
    root = _checked_root(root)
    _check_marker(root)
    spec = _BY_PROJECT.get(project)
    if spec is None:
        known = ", ".join(sorted(_BY_PROJECT))
        raise DistributionError(f"unknown project {project!r} (known: {known})")
    if not message.strip():
        raise DistributionError("the commit message is empty")
    repo = _upstream_dir(root, spec)
    branch = _git(repo, "symbolic-ref", "--short", "HEAD")
    if branch != spec.branch:
        raise DistributionError(f"{repo}: checked out {branch!r}, expected {spec.branch!r}")
    # One step after HEAD keeps commit dates increasing and the new hash reproducible.
    last = int(_git(repo, "log", "-1", "--format=%ct"))
    when = datetime.fromtimestamp(last, UTC) + _COMMIT_STEP
    with (repo / "CHANGES.md").open("a", encoding="utf-8") as changes:
        changes.write(f"- {message.strip().splitlines()[0]}\n")
    _git(repo, "add", "CHANGES.md")
    _commit(repo, message, spec.maintainers[0], when)
    return _git(repo, "rev-parse", "HEAD")


def fix_broken_package(root: Path) -> str:
    """Commit a distgit fix for the package that fails to build; return the new distgit hash.

    The upstream source does not change, so the trunk rebuilds the last source commit with the
    new distro hash.
    """
    root = _checked_root(root)
    deps = _check_marker(root)
    (broken,) = (p for p in _PROJECTS if p.broken)
    repo = _distgit_dir(root, broken)
    last = int(_git(repo, "log", "-1", "--format=%ct"))
    when = datetime.fromtimestamp(last, UTC) + _COMMIT_STEP
    # The whole spec is rewritten, so it keeps whatever `Requires:` its history added.
    fixed = _spec(replace(broken, broken=False), with_deps=deps)
    _write_files(repo, {f"{broken.name}.spec": fixed}, frozenset())
    _git(repo, "add", "-A")
    _commit(repo, f"Fix the build of {broken.name}", broken.maintainers[0], when)
    return _git(repo, "rev-parse", "HEAD")


def _checked_root(root: Path) -> Path:
    root = Path(root).expanduser().resolve()
    # rdoinfo %-formats every string and git does not decode file:// URLs, so the path must be
    # usable verbatim in a URL.
    if root.as_uri() != f"file://{root}":
        raise DistributionError(
            f"{root}: the path must not need URL escaping "
            "(use letters, digits, '/', '.', '_', '-' and '~' only)"
        )
    return root


def _check_marker(root: Path) -> bool:
    """Whether the distribution at `root` has a dependencies repository."""
    marker = root / MARKER_NAME
    try:
        text = marker.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DistributionError(
            f"{root}: no generated distribution ({MARKER_NAME} missing)"
        ) from None
    if text not in (_MARKER_TEXT, _MARKER_TEXT_DEPS):
        raise DistributionError(f"{marker}: generated by an incompatible version; regenerate")
    return text == _MARKER_TEXT_DEPS


def _describe(root: Path, deps: bool) -> Distribution:
    (broken,) = (p for p in _PROJECTS if p.broken)
    (dependent,) = (p for p in _PROJECTS if p.requires)
    (deps_user,) = (p for p in _PROJECTS if p.deps_requires)
    return Distribution(
        root=root,
        config=root / "conveyor.toml",
        metadata=root / "rdoinfo" / "rdo.yml",
        packages=tuple(p.name for p in _PROJECTS),
        failing_package=broken.name,
        dependency=(dependent.name, dependent.requires[0]),
        upstreams=MappingProxyType({p.project: _upstream_dir(root, p) for p in _PROJECTS}),
        distgits=MappingProxyType({p.project: _distgit_dir(root, p) for p in _PROJECTS}),
        branches=MappingProxyType({p.project: p.branch for p in _PROJECTS}),
        projects=MappingProxyType({p.name: p.project for p in _PROJECTS}),
        deps_repo=root / DEPS_REPO_FILE if deps else None,
        deps_dependency=(deps_user.name, deps_user.deps_requires[0]) if deps else None,
    )


def _upstream_dir(root: Path, project: _Project) -> Path:
    return root / "upstream" / project.basename


def _distgit_dir(root: Path, project: _Project) -> Path:
    return root / "distgit" / f"{project.project}-distgit"


# --- git ----------------------------------------------------------------------------------------


def _git(repo: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    # A fresh environment: no inherited GIT_DIR & co, no ~/.gitconfig, no system config.
    full_env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "LC_ALL": "C",
        "TZ": "UTC",
        **(env or {}),
    }
    try:
        result = subprocess.run(
            ["git", *_GIT_OPTIONS, "-C", str(repo), *args],
            check=True,
            capture_output=True,
            text=True,
            env=full_env,
        )
    except subprocess.CalledProcessError as exc:
        raise DistributionError(
            f"{repo}: git {' '.join(args)} failed: {exc.stderr.strip()}"
        ) from None
    return result.stdout.strip()


def _identity(person: str, when: datetime) -> dict[str, str]:
    name, email = _PEOPLE[person]
    stamp = when.isoformat()
    return {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_AUTHOR_DATE": stamp,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
        "GIT_COMMITTER_DATE": stamp,
    }


def _init(repo: Path, branch: str) -> None:
    repo.mkdir(parents=True)
    _git(repo, "-c", f"init.defaultBranch={branch}", "init", "-q")


def _commit(repo: Path, message: str, person: str, when: datetime) -> None:
    _git(repo, "commit", "-q", "--no-verify", "-m", message, env=_identity(person, when))


def _write_files(repo: Path, files: Mapping[str, str], executable: frozenset[str]) -> None:
    for relpath, text in files.items():
        path = repo / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        path.chmod(0o755 if relpath in executable else 0o644)


# --- upstream repositories ----------------------------------------------------------------------


def _make_upstream(root: Path, index: int, project: _Project) -> None:
    repo = _upstream_dir(root, project)
    _init(repo, project.branch)
    tags = dict(project.tags)
    start = _EPOCH + timedelta(days=index)
    people = sorted(_PEOPLE)
    script = f"bin/{project.command}"
    for step in range(len(project.features) + 1):
        when = start + step * _COMMIT_STEP
        person = people[(index + step) % len(people)]
        files = _upstream_files(project, project.features[:step])
        _write_files(repo, files, frozenset({script}))
        _git(repo, "add", "-A")
        message = "Initial commit" if step == 0 else f"Add {project.features[step - 1]}()"
        _commit(repo, message, person, when)
        tag = tags.get(step)
        if tag is None:
            continue
        if project.annotated_tags:
            _git(repo, "tag", "-a", "-m", f"Release {tag}", tag, env=_identity(person, when))
        else:
            _git(repo, "tag", tag)


def _upstream_files(project: _Project, features: Sequence[str]) -> dict[str, str]:
    listed = "".join(f"* `{project.module}.{f}()`\n" for f in features) or "* nothing yet\n"
    readme = (
        f"# {project.basename}\n\n{project.summary}.\n\n"
        f"## Usage\n\n    {project.command} [SUBJECT]\n\n## API\n\n{listed}"
    )
    functions = "".join(
        f'\n\ndef {f}(subject: str = "world") -> str:\n'
        f'    return f"{project.module}.{f}: {{subject}}"\n'
        for f in features
    )
    script = (
        "#!/bin/sh\n"
        f"# {project.command}: command-line entry point of {project.basename}.\n"
        "set -eu\n"
        f'echo "{project.command}: ${{1:-hello}}"\n'
    )
    return {
        "README.md": readme,
        "LICENSE": (
            f"{project.basename} is licensed under the Apache License, Version 2.0;\n"
            "see https://www.apache.org/licenses/LICENSE-2.0\n"
        ),
        "CHANGES.md": "# Changes\n\n",
        f"{project.module}/__init__.py": f'"""{project.summary}."""\n{functions}',
        f"bin/{project.command}": script,
    }


# --- distgit repositories -----------------------------------------------------------------------


def _make_distgit(root: Path, index: int, project: _Project, *, deps: bool) -> None:
    repo = _distgit_dir(root, project)
    _init(repo, DISTGIT_BRANCH)
    history = [(f"Initial packaging of {project.name}", _spec(project, with_requires=False))]
    if project.requires:
        history.append((f"Require {', '.join(project.requires)}", _spec(project)))
    # A commit of its own, as a packager adds a new dependency: the other distgits (and all
    # hashes before it) stay those of the distribution without deps.
    if deps and project.deps_requires:
        message = f"Require {', '.join(project.deps_requires)}"
        history.append((message, _spec(project, with_deps=True)))
    start = _EPOCH + timedelta(days=31 + index)
    for step, (message, spec) in enumerate(history):
        _write_files(repo, {f"{project.name}.spec": spec}, frozenset())
        _git(repo, "add", "-A")
        _commit(repo, message, project.maintainers[0], start + step * _COMMIT_STEP)


def _spec(project: _Project, *, with_requires: bool = True, with_deps: bool = False) -> str:
    names = (project.requires if with_requires else ()) + (
        project.deps_requires if with_deps else ()
    )
    requires = "".join(f"Requires:       {r}\n" for r in names)
    if project.broken:
        build = (
            "# This package exists to give conveyor's examples one build that always fails.\n"
            f'echo "{project.name}: failing on purpose" >&2\n'
            "exit 1\n"
        )
    else:
        build = f"sh -n bin/{project.command}\n"
    changelog = ""
    if project.changelog_entry:
        _, last_tag = project.tags[-1]
        changelog = (
            "* Thu Jan 01 2026 RDO <dev@lists.rdoproject.org> "
            f"{last_tag.lstrip('v')}-1\n- Update to {last_tag.lstrip('v')}\n"
        )
    return f"""\
%{{!?upstream_version: %global upstream_version %{{version}}}}
%global sname {project.basename}

Name:           {project.name}
Version:        XXX
Release:        XXX
Summary:        {project.summary}

License:        ASL 2.0
URL:            https://opendev.example.org/example/%{{sname}}
Source0:        %{{sname}}-%{{upstream_version}}.tar.gz
BuildArch:      noarch
# Installable into an empty --installroot: no generated dependency on /bin/sh.
AutoReq:        no
{requires}
%description
{project.summary}.
Part of the conveyor example distribution.

%prep
%setup -q -n %{{sname}}-%{{upstream_version}}

%build
{build}
%install
install -d -m 0755 %{{buildroot}}%{{_datadir}}/%{{name}}
cp -pr README.md {project.module} %{{buildroot}}%{{_datadir}}/%{{name}}/
install -D -m 0755 bin/{project.command} %{{buildroot}}%{{_bindir}}/{project.command}

%files
%license LICENSE
%doc README.md CHANGES.md
%{{_bindir}}/{project.command}
%{{_datadir}}/%{{name}}/

%changelog
{changelog}"""


# --- dependencies repository -------------------------------------------------------------------


def make_deps_repo(root: Path) -> Path:
    """Make `deps/repo/` (one package the trunk does not build, as RDO's deps repositories hold
    what trunk needs from elsewhere) and `deps/example-deps.repo` listing it; return that file.

    Only what is missing is made again, so a rerun on the same root changes nothing.
    """
    root = _checked_root(root)
    repo = root / "deps" / "repo"
    rpm = repo / f"{DEPS_PACKAGE}-{_DEPS_VERSION}-{_DEPS_RELEASE}.noarch.rpm"
    built = False
    if not rpm.is_file():
        _build_deps_rpm(rpm)
        built = True
    if built or not (repo / "repodata" / "repomd.xml").is_file():
        _run_tool(["createrepo_c", "--quiet", str(repo)])
    path = root / DEPS_REPO_FILE
    text = (
        "# Packages the example trunk does not build but its installs need\n"
        "# (examples/distribution.py; what RDO's delorean-deps.repo is to RDO trunk).\n"
        f"[{DEPS_REPO_ID}]\n"
        f"name={DEPS_REPO_ID}\n"
        f"baseurl={repo.as_uri()}\n"
        "enabled=1\n"
        "gpgcheck=0\n"
    )
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
    return path


def _build_deps_rpm(rpm: Path) -> None:
    """Build the package with rpmbuild in a scratch _topdir, then move it to `rpm`."""
    rpm.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="conveyor-example-deps-") as scratch:
        topdir = Path(scratch)
        spec = topdir / f"{DEPS_PACKAGE}.spec"
        spec.write_text(_deps_spec(), encoding="utf-8")
        _run_tool(["rpmbuild", "-bb", "--quiet", "--define", f"_topdir {topdir}", str(spec)])
        built = topdir / "RPMS" / "noarch" / rpm.name
        # Copied beside the target, then renamed: an interrupted run leaves no half RPM.
        partial = rpm.with_name(f".{rpm.name}.partial")
        shutil.copyfile(built, partial)
        partial.replace(rpm)


def _deps_spec() -> str:
    return f"""\
Name:           {DEPS_PACKAGE}
Version:        {_DEPS_VERSION}
Release:        {_DEPS_RELEASE}
Summary:        Runtime data the example distribution needs but does not build
License:        ASL 2.0
BuildArch:      noarch
# Installable into an empty --installroot: no generated dependency on /bin/sh.
AutoReq:        no

%description
Runtime data of the conveyor example distribution, shipped by its dependencies
repository (like RDO's delorean-deps.repo) rather than built by its trunk.

%install
install -d -m 0755 %{{buildroot}}%{{_datadir}}/{DEPS_PACKAGE}
echo "{DEPS_PACKAGE} {_DEPS_VERSION}" > %{{buildroot}}%{{_datadir}}/{DEPS_PACKAGE}/VERSION

%files
%{{_datadir}}/{DEPS_PACKAGE}/
"""


def _run_tool(command: Sequence[str]) -> None:
    try:
        subprocess.run(command, check=True, capture_output=True, text=True)
    except FileNotFoundError:
        raise DistributionError(f"{command[0]} is not installed") from None
    except subprocess.CalledProcessError as exc:
        output = (exc.stderr or exc.stdout or "").strip()
        raise DistributionError(f"{' '.join(command)} failed: {output}") from None


# --- metadata and configuration -----------------------------------------------------------------


def _write_metadata(root: Path) -> None:
    upstreams = (root / "upstream").as_uri()
    distgits = (root / "distgit").as_uri()
    packages: list[dict[str, object]] = []
    for project in _PROJECTS:
        entry: dict[str, object] = {"project": project.project, "conf": project.conf}
        if project.upstream_in_entry:
            entry["upstream"] = f"{upstreams}/{project.basename}"
        if project.component:
            entry["component"] = project.component
        entry["maintainers"] = [_PEOPLE[m][1] for m in project.maintainers]
        # The release builds upstream `master`; a project on another branch says so per tag.
        override = None if project.branch == "master" else {"source-branch": project.branch}
        entry["tags"] = {RELEASE_TAG: override}
        packages.append(entry)
    document = {
        "releases": [
            {
                "name": RELEASE_TAG,
                "status": "development",
                "branch": DISTGIT_BRANCH,
                "upstream_branch": "master",
                "repos": [
                    {
                        "name": "el9s",
                        "buildsys": "cbs/cloud9s-example-master-el9s",
                        "distrepos": [],
                    }
                ],
            }
        ],
        "package-default": {
            "name": "python-%(project)s",
            "upstream": f"{upstreams}/%(project)s",
            "master-distgit": f"{distgits}/%(project)s-distgit",
        },
        "package-configs": {
            "example-core": {"name": "openstack-%(project)s"},
            "example-lib": {"name": "python-%(project)s"},
            "example-client": {
                "name": "python-%(project)s",
                "upstream": f"{upstreams}/python-%(project)s",
                "component": "clients",
            },
            "example-tool": {"name": "%(project)s"},
        },
        "packages": packages,
        "components": [{"name": "clients"}, {"name": "common"}],
    }
    header = (
        "# rdoinfo metadata of the conveyor example distribution (examples/distribution.py).\n"
        "# Distgits are <root>/distgit/<project>-distgit; upstreams <root>/upstream/<repo>.\n"
    )
    body = yaml.safe_dump(document, sort_keys=False, default_flow_style=False, width=100)
    path = root / "rdoinfo" / "rdo.yml"
    path.parent.mkdir()
    path.write_text(header + body, encoding="utf-8")


def _write_config(root: Path, *, deps: bool) -> None:
    repos = (root / "data" / "repos").as_uri()
    deps_url = (
        "# What trunk does not build but installs need; published as repos/delorean-deps.repo.\n"
        f'deps_url = "{DEPS_REPO_FILE}"\n'
        if deps
        else ""
    )
    (root / "conveyor.toml").write_text(
        "# conveyor configuration of the example distribution (examples/distribution.py).\n"
        'datadir = "data"\n'
        f'baseurl = "{repos}"\n'
        "workers = 2\n"
        f"{deps_url}"
        "\n"
        "[metadata]\n"
        'path = "rdoinfo/rdo.yml"\n'
        f'release = "{RELEASE_TAG}"\n'
        f"{_TAGS_LOOKASIDE if deps else ''}",
        encoding="utf-8",
    )


def _ensure_tags_lookaside(root: Path) -> None:
    """A distribution generated with deps before `[tags] lookaside` was written gets it."""
    config = root / "conveyor.toml"
    text = config.read_text(encoding="utf-8")
    if "\n[tags]\n" not in text:
        _write_if_changed(config, text + _TAGS_LOOKASIDE)


# --- promotion criteria -------------------------------------------------------------------------


def add_promotion_criteria(root: Path) -> Path:
    """Write the master builder's promotion criteria, `promotions.yaml`, and name it in
    `conveyor.toml` (`promotion_criteria`); return its path.

    `current-passed-ci` is promoted from `consistent` once the CI job `example-ci` passed on
    it; the `release:` section names the job that must pass on a release's -testing buildsys
    tag before GA moves it to -release (`release-branch` copies the file to the stable
    builder). A rerun on the same root changes nothing.
    """
    root = _checked_root(root)
    _check_marker(root)
    config = root / "conveyor.toml"
    line = f'promotion_criteria = "{CRITERIA_FILE}"'
    try:
        text = config.read_text(encoding="utf-8")
    except OSError as exc:
        raise DistributionError(f"{config}: cannot read: {exc.strerror}") from None
    lines = text.splitlines()
    named = [entry for entry in lines if entry.startswith("promotion_criteria")]
    if named and named != [line]:
        raise DistributionError(f"{config}: promotion_criteria names another file: {named[0]}")
    head, separator, rest = text.partition("\n\n[metadata]\n")
    if not named and not separator:
        raise DistributionError(f"{config}: no [metadata] table after the top-level keys")
    path = root / CRITERIA_FILE
    _write_if_changed(path, _criteria_text())
    if not named:
        comment = "# `conveyor promote` and `conveyor serve` read the promotion criteria here.\n"
        _write_if_changed(config, f"{head}\n{comment}{line}{separator}{rest}")
    return path


def _criteria_text() -> str:
    return f"""\
# Promotion criteria of the example distribution's master builder (examples/distribution.py),
# reviewed in git as RDO reviews its promoter's configuration.
promotions:
  # The newest `consistent` repository on which {CI_JOB} voted success.
  {PROMOTED_LABEL}:
    candidate_label: consistent
    criteria: [{CI_JOB}]
# GA: the jobs that must pass on a release's -testing buildsys tag (its repository) before
# the builds move to -release. The stable builder's API takes the votes on the tag.
release:
  criteria: [{RELEASE_CI_JOB}]
"""


def _write_if_changed(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file and a rename, unless it holds it."""
    try:
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            return
        partial_file = path.with_name(f".{path.name}.partial")
        partial_file.write_text(text, encoding="utf-8")
        partial_file.replace(path)
    except OSError as exc:
        raise DistributionError(f"{path}: cannot write: {exc.strerror}") from None


# --- a release ----------------------------------------------------------------------------------


def add_release(root: Path, series: str, *, release_id: str | None = None) -> Release:
    """Open the release `series`, as upstream's release team and the rdoinfo reviewer do:

    * every upstream gets the branch `stable/<series>` at its newest release (the last of
      its tags); openstack/releases names versions without a `v`, and its release job pushes
      the tag it names, so an upstream that tags `v2.3.0` also gets `2.3.0`, same commit;
    * rdoinfo gets the release (status development, distgit branch `<series>-rdo`, upstream
      branch `stable/<series>`, its CBS target and buildsys tags
      `cloud9s-example-<series>-candidate|testing|release`) and every package the tag;
    * `releases/` gets what openstack/releases says of the series:
      `data/series_status.yaml` (the series in development, `release_id` default
      `2026.<n>`) and `deliverables/<series>/<repo>.yaml`, one release per upstream,
      `repo: upstream/<repo>` as `release-status` joins a `file://` upstream.

    Everything is checked before anything is written, and a failure undoes what was
    written: a release that exists already, or a branch or tag in the way, is a
    DistributionError and leaves the distribution as it was.
    """
    root = _checked_root(root)
    _check_marker(root)
    if series == RELEASE_TAG or not _SERIES_NAME.fullmatch(series):
        raise DistributionError(
            f"invalid series name {series!r}: 2 to 31 lowercase letters and digits, starting "
            f"with a letter, and not {RELEASE_TAG!r}"
        )
    metadata = root / "rdoinfo" / "rdo.yml"
    header, document = _read_metadata(metadata)
    releases = document.get("releases")
    if not isinstance(releases, list) or not isinstance(document.get("packages"), list):
        raise DistributionError(f"{metadata}: no `releases` or `packages` list")
    if any(isinstance(r, dict) and r.get("name") == series for r in releases):
        raise DistributionError(f"{metadata}: release {series!r} exists already")
    tree = root / RELEASES_DIR
    status_path = tree / "data" / "series_status.yaml"
    status = _read_series_status(status_path)
    if any(entry.get("name") == series for entry in status):
        raise DistributionError(f"{status_path}: series {series!r} exists already")
    deliverables = tree / "deliverables" / series
    if deliverables.exists():
        raise DistributionError(f"{deliverables} exists already")
    branch = f"stable/{series}"
    planned = [_plan_release(root, project, branch) for project in _PROJECTS]
    release_id = release_id or f"{_EPOCH.year}.{len(status) + 1}"
    release = _describe_release(
        root,
        series,
        release_id,
        {p.project: version for p, version, _, _ in planned},
        {p.project: commit for p, _, commit, _ in planned},
    )

    undo: list[Callable[[], object]] = []
    try:
        for project, version, commit, tag_to_make in planned:
            repo = _upstream_dir(root, project)
            if tag_to_make:
                # Tagged as of the release's commit, so that hashes stay reproducible.
                stamp = int(_git(repo, "log", "-1", "--format=%ct", commit))
                name, email = _RELEASE_TEAM
                team = {
                    "GIT_COMMITTER_NAME": name,
                    "GIT_COMMITTER_EMAIL": email,
                    "GIT_COMMITTER_DATE": datetime.fromtimestamp(stamp, UTC).isoformat(),
                }
                _git(
                    repo,
                    "tag",
                    "-a",
                    "-m",
                    f"{project.basename} {version}",
                    version,
                    commit,
                    env=team,
                )
                undo.append(partial(_git, repo, "tag", "-d", version))
            _git(repo, "branch", branch, commit)
            undo.append(partial(_git, repo, "branch", "-D", branch))
        made_tree = not tree.exists()
        deliverables.mkdir(parents=True)
        undo.append(partial(shutil.rmtree, tree if made_tree else deliverables))
        for project, version, commit, _ in planned:
            path = deliverables / f"{project.basename}.yaml"
            _write_if_changed(path, _deliverable_text(project, version, commit, branch))
        old_status = status_path.read_text(encoding="utf-8") if status_path.exists() else None
        entry = {"name": series, "release-id": release_id, "status": "development"}
        status_path.parent.mkdir(parents=True, exist_ok=True)
        _write_if_changed(status_path, _series_status_text([entry, *status]))
        if old_status is not None:
            undo.append(partial(_write_if_changed, status_path, old_status))
        elif not made_tree:
            undo.append(partial(status_path.unlink, missing_ok=True))
        _add_release_metadata(document, release)
        # Written last: rdoinfo naming the release is what `find_release` looks for.
        _write_if_changed(metadata, header + _dump_metadata(document))
    except BaseException:
        for action in reversed(undo):
            with contextlib.suppress(DistributionError, OSError):
                action()
        raise
    return release


def find_release(root: Path, series: str) -> Release | None:
    """The release `series` that `add_release` made in the distribution at `root`, or None
    when rdoinfo has no such release."""
    root = _checked_root(root)
    _check_marker(root)
    metadata = root / "rdoinfo" / "rdo.yml"
    _, document = _read_metadata(metadata)
    if not any(
        isinstance(r, dict) and r.get("name") == series for r in document.get("releases") or ()
    ):
        return None
    tree = root / RELEASES_DIR
    status_path = tree / "data" / "series_status.yaml"
    entry = next((s for s in _read_series_status(status_path) if s.get("name") == series), None)
    if entry is None:
        raise DistributionError(f"{status_path}: rdoinfo has release {series!r}, this does not")
    versions: dict[str, str] = {}
    hashes: dict[str, str] = {}
    for project in _PROJECTS:
        path = tree / "deliverables" / series / f"{project.basename}.yaml"
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            last = data["releases"][-1]
            versions[project.project] = str(last["version"])
            hashes[project.project] = str(last["projects"][0]["hash"])
        except (OSError, yaml.YAMLError, KeyError, IndexError, TypeError) as exc:
            raise DistributionError(f"{path}: not a deliverable of add_release: {exc}") from None
    return _describe_release(root, series, str(entry.get("release-id")), versions, hashes)


def _describe_release(
    root: Path,
    series: str,
    release_id: str,
    versions: Mapping[str, str],
    hashes: Mapping[str, str],
) -> Release:
    return Release(
        root=root,
        series=series,
        release_id=release_id,
        distgit_branch=f"{series}-rdo",
        upstream_branch=f"stable/{series}",
        buildsys=f"cbs/cloud9s-example-{series}-el9s",
        family=f"cloud9s-example-{series}",
        releases=root / RELEASES_DIR,
        versions=MappingProxyType(dict(versions)),
        hashes=MappingProxyType(dict(hashes)),
    )


def _plan_release(root: Path, project: _Project, branch: str) -> tuple[_Project, str, str, bool]:
    """(project, version, commit, whether the tag `version` is to be made) of the project's
    newest release; a branch or tag in the way is a DistributionError."""
    repo = _upstream_dir(root, project)
    _, newest = project.tags[-1]
    version = newest.removeprefix("v")
    commit = _ref_commit(repo, f"refs/tags/{newest}")
    if commit is None:
        raise DistributionError(f"{repo}: no tag {newest}, the project's newest release")
    if _git(repo, "branch", "--list", branch):
        raise DistributionError(f"{repo}: branch {branch} exists already")
    tagged = _ref_commit(repo, f"refs/tags/{version}")
    if tagged is not None and tagged != commit:
        raise DistributionError(f"{repo}: tag {version} names {tagged[:8]}, not {newest}")
    return project, version, commit, tagged is None


def _ref_commit(repo: Path, ref: str) -> str | None:
    try:
        return _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except DistributionError:
        return None


def _read_metadata(path: Path) -> tuple[str, dict[str, Any]]:
    """(the leading comment lines, the document) of the generated rdo.yml."""
    try:
        text = path.read_text(encoding="utf-8")
        document = yaml.safe_load(text)
    except (OSError, yaml.YAMLError) as exc:
        raise DistributionError(f"{path}: cannot read: {exc}") from None
    if not isinstance(document, dict):
        raise DistributionError(f"{path}: not a mapping")
    lines = text.splitlines(keepends=True)
    header = "".join(line for line in lines[: _comment_lines(lines)])
    return header, document


def _comment_lines(lines: Sequence[str]) -> int:
    count = 0
    for line in lines:
        if not line.startswith("#"):
            break
        count += 1
    return count


def _dump_metadata(document: Mapping[str, object]) -> str:
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False, width=100)


def _add_release_metadata(document: dict[str, Any], release: Release) -> None:
    document["releases"].append(
        {
            "name": release.series,
            "status": "development",
            "branch": release.distgit_branch,
            "upstream_branch": release.upstream_branch,
            "repos": [
                {
                    "name": "el9s",
                    "buildsys": release.buildsys,
                    "buildsys-tags": list(release.buildsys_tags),
                }
            ],
        }
    )
    for entry in document["packages"]:
        # Every upstream has the release's branch: no per-package override.
        entry.setdefault("tags", {})[release.series] = None


def _read_series_status(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DistributionError(f"{path}: cannot read: {exc}") from None
    if not isinstance(data, list) or not all(isinstance(s, dict) for s in data):
        raise DistributionError(f"{path}: expected a list of series")
    return data


def _series_status_text(status: Sequence[Mapping[str, object]]) -> str:
    header = (
        "# The example distribution's series, newest first, as openstack/releases lists\n"
        "# them (examples/distribution.py).\n"
    )
    return header + yaml.safe_dump(list(status), sort_keys=False, default_flow_style=False)


def _deliverable_text(project: _Project, version: str, commit: str, branch: str) -> str:
    repo = f"upstream/{project.basename}"
    document = {
        "launchpad": project.basename,
        "release-model": "cycle-with-intermediary",
        "team": "example",
        "type": _DELIVERABLE_TYPES[project.conf],
        "repository-settings": {repo: {}},
        "releases": [{"version": version, "projects": [{"repo": repo, "hash": commit}]}],
        "branches": [{"name": branch, "location": version}],
    }
    header = f"# {project.basename}'s releases in the series (examples/distribution.py).\n"
    return header + yaml.safe_dump(document, sort_keys=False, default_flow_style=False)


# --- command line -------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Generate conveyor's example distribution (upstreams, distgits, rdoinfo)."
    )
    parser.add_argument("root", type=Path, help="empty or missing directory to generate into")
    parser.add_argument(
        "--deps",
        action="store_true",
        help="add a dependencies repository and deps_url (needs rpmbuild and createrepo_c)",
    )
    parser.add_argument(
        "--criteria",
        action="store_true",
        help=f"add the master builder's promotion criteria ({CRITERIA_FILE})",
    )
    parser.add_argument(
        "--release",
        metavar="SERIES",
        help="open a release: stable branches, rdoinfo release, releases/ data",
    )
    args = parser.parse_args(argv)
    try:
        dist = generate(args.root, deps=args.deps)
        criteria = add_promotion_criteria(dist.root) if args.criteria else None
        release = None
        if args.release:
            release = find_release(dist.root, args.release) or add_release(dist.root, args.release)
    except DistributionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"configuration: {dist.config}")
    print(f"metadata:      {dist.metadata}")
    if dist.deps_repo is not None:
        print(f"dependencies:  {dist.deps_repo}")
    if criteria is not None:
        print(f"promotion:     {criteria}")
    if release is not None:
        print(f"release:       {release.series} ({release.releases}, tags {release.family}-*)")
    for name in dist.packages:
        project = dist.projects[name]
        note = " (build fails on purpose)" if name == dist.failing_package else ""
        print(f"  {name:28} {project:18} {dist.upstreams[project]}{note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
