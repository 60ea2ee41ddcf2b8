"""Generate a small, realistic example distribution for conveyor.

`generate(root)` creates, under `root`:

* `upstream/<basename>/`: eight upstream git repositories with tagged, reproducible histories;
* `distgit/<project>-distgit/`: one distgit per project, branch `rpm-master`, holding
  `<package name>.spec` written the way RDO writes trunk specs;
* `rdoinfo/rdo.yml`: the rdoinfo-format metadata tying them together (tag `master`);
* `conveyor.toml`: a configuration that builds all of it into `data/`.

Every URL is a `file://` URL, so nothing needs the network. Run it as
`python examples/distribution.py ROOT`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType

import yaml

__all__ = [
    "Distribution",
    "DistributionError",
    "add_upstream_commit",
    "generate",
    "main",
]

MARKER_NAME = ".conveyor-example-distribution"
_MARKER_TEXT = "conveyor example distribution, format 1\n"

RELEASE_TAG = "master"
DISTGIT_BRANCH = "rpm-master"

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


def generate(root: Path) -> Distribution:
    """Create the distribution under `root`, or describe the one already generated there."""
    root = _checked_root(root)
    if (root / MARKER_NAME).exists():
        _check_marker(root)
        return _describe(root)
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
            _make_distgit(root, index, project)
        _write_metadata(root)
        _write_config(root)
        # Written last: its presence means the whole generation succeeded.
        (root / MARKER_NAME).write_text(_MARKER_TEXT, encoding="utf-8")
    except BaseException:
        # The root was empty, so everything in it is ours; a half-made one would be refused later.
        for child in root.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        raise
    return _describe(root)


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
    _check_marker(root)
    (broken,) = (p for p in _PROJECTS if p.broken)
    repo = _distgit_dir(root, broken)
    last = int(_git(repo, "log", "-1", "--format=%ct"))
    when = datetime.fromtimestamp(last, UTC) + _COMMIT_STEP
    _write_files(repo, {f"{broken.name}.spec": _spec(replace(broken, broken=False))}, frozenset())
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


def _check_marker(root: Path) -> None:
    marker = root / MARKER_NAME
    try:
        text = marker.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DistributionError(
            f"{root}: no generated distribution ({MARKER_NAME} missing)"
        ) from None
    if text != _MARKER_TEXT:
        raise DistributionError(f"{marker}: generated by an incompatible version; regenerate")


def _describe(root: Path) -> Distribution:
    (broken,) = (p for p in _PROJECTS if p.broken)
    (dependent,) = (p for p in _PROJECTS if p.requires)
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


def _make_distgit(root: Path, index: int, project: _Project) -> None:
    repo = _distgit_dir(root, project)
    _init(repo, DISTGIT_BRANCH)
    history = [(f"Initial packaging of {project.name}", _spec(project, with_requires=False))]
    if project.requires:
        history.append((f"Require {', '.join(project.requires)}", _spec(project)))
    start = _EPOCH + timedelta(days=31 + index)
    for step, (message, spec) in enumerate(history):
        _write_files(repo, {f"{project.name}.spec": spec}, frozenset())
        _git(repo, "add", "-A")
        _commit(repo, message, project.maintainers[0], start + step * _COMMIT_STEP)


def _spec(project: _Project, *, with_requires: bool = True) -> str:
    requires = "".join(
        f"Requires:       {r}\n" for r in (project.requires if with_requires else ())
    )
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


def _write_config(root: Path) -> None:
    repos = (root / "data" / "repos").as_uri()
    (root / "conveyor.toml").write_text(
        "# conveyor configuration of the example distribution (examples/distribution.py).\n"
        'datadir = "data"\n'
        f'baseurl = "{repos}"\n'
        "workers = 2\n"
        "\n"
        "[metadata]\n"
        'path = "rdoinfo/rdo.yml"\n'
        f'release = "{RELEASE_TAG}"\n',
        encoding="utf-8",
    )


# --- command line -------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Generate conveyor's example distribution (upstreams, distgits, rdoinfo)."
    )
    parser.add_argument("root", type=Path, help="empty or missing directory to generate into")
    args = parser.parse_args(argv)
    try:
        dist = generate(args.root)
    except DistributionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"configuration: {dist.config}")
    print(f"metadata:      {dist.metadata}")
    for name in dist.packages:
        project = dist.projects[name]
        note = " (build fails on purpose)" if name == dist.failing_package else ""
        print(f"  {name:28} {project:18} {dist.upstreams[project]}{note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
