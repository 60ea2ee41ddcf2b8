"""`conveyor run --dry-run [--json]`: the next cycle's builds and their versions, computed by
the function the build uses, with nothing built or recorded.

A small distribution of two packages: `python-foo`, a pbr project whose history carries a
`Sem-Ver: feature` footer, and `puppet-nova`, a Puppet module whose version and tarball folder
come from its `metadata.json`. Their specs unpack `%{name-of-the-folder}-%{upstream_version}`
and check the PKG-INFO pbr will read, so a real cycle proves the planned version is the built
one.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from tests.support import rows
from tests.test_pbr_versions import SPEC, Repo, run_git
from typer.testing import CliRunner

from conveyor.cli.main import app
from conveyor.config import load_config
from conveyor.publish.locks import builder_lock

KEYS = ["package", "commit_hash", "distro_hash", "version", "release", "upstream_version"]
PKG_INFO_CHECK = "%build\ngrep -qx 'Version: %{upstream_version}' PKG-INFO\n"


class Distribution:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.foo = Repo(root / "upstream" / "python-foo")
        self.foo.tag("1.2.3")
        self.foo.commit("Update master for stable/2026.1\n\nSem-Ver: feature\n")
        self.foo.commit("Fix a bug")
        self.nova = Repo(root / "upstream" / "puppet-nova")
        metadata = {"name": "openstack-nova", "version": "28.0.0", "dependencies": []}
        (self.nova.path / "metadata.json").write_text(json.dumps(metadata), encoding="utf-8")
        self.nova.commit("Add metadata.json")
        self.nova.tag("28.0.0")
        self.nova.commit("Fix a manifest")
        self.distgits = {
            "python-foo": self._distgit("python-foo", "python-foo", with_pkg_info=True),
            "puppet-nova": self._distgit("puppet-nova", "openstack-nova", with_pkg_info=False),
        }
        self._metadata()
        self.config = root / "conveyor.toml"
        self.config.write_text(
            'datadir = "data"\nbaseurl = "http://localhost/repos"\nworkers = 2\n\n'
            '[metadata]\npath = "rdoinfo/rdo.yml"\nrelease = "master"\n',
            encoding="utf-8",
        )

    def _distgit(self, name: str, folder: str, *, with_pkg_info: bool) -> Path:
        path = self.root / "distgit" / f"{name}-distgit"
        path.mkdir(parents=True)
        run_git(path, "init", "-q", "-b", "rpm-master")
        spec = SPEC.format(name=name, folder=folder)
        if with_pkg_info:
            spec = spec.replace("%build\n", PKG_INFO_CHECK)
        (path / f"{name}.spec").write_text(spec, encoding="utf-8")
        run_git(path, "add", "-A")
        run_git(path, "commit", "-q", "-m", "spec")
        return path

    def _metadata(self) -> None:
        packages = [
            {
                "project": project,
                "name": name,
                "upstream": (self.root / "upstream" / name).as_uri(),
                "master-distgit": self.distgits[name].as_uri(),
                "maintainers": ["a@example.org"],
                "tags": {"master": None},
            }
            for project, name in (("foo", "python-foo"), ("nova", "puppet-nova"))
        ]
        document = {
            "releases": [
                {
                    "name": "master",
                    "status": "development",
                    "branch": "rpm-master",
                    "upstream_branch": "master",
                    "repos": [{"name": "el9s", "buildsys": "cbs/x-el9s", "distrepos": []}],
                }
            ],
            "package-default": {"name": "python-%(project)s"},
            "packages": packages,
        }
        path = self.root / "rdoinfo" / "rdo.yml"
        path.parent.mkdir()
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")

    def run(self, *args: str) -> tuple[int, str, str]:
        result = CliRunner().invoke(app, ["run", "--config", str(self.config), *args])
        return result.exit_code, result.stdout, result.stderr

    def plan(self, *args: str) -> list[dict[str, str | None]]:
        code, out, err = self.run("--dry-run", "--json", *args)
        assert code == 0, out + err
        planned: list[dict[str, str | None]] = json.loads(out)
        return planned


@pytest.fixture
def dist(tmp_path: Path) -> Distribution:
    return Distribution(tmp_path / "dist")


def written(root: Path) -> set[str]:
    """What a dry run may have left in the data directory, mirrors aside."""
    data = root / "data"
    if not data.exists():
        return set()
    return {p.name for p in data.iterdir()} - {"sources", ".conveyor.lock"}


def test_dry_run_json_lists_builds_with_pbr_and_puppet_versions(dist: Distribution) -> None:
    planned = dist.plan()
    assert [list(p) for p in planned] == [KEYS, KEYS]
    nova, foo = planned  # by package name
    assert foo["package"] == "python-foo"
    assert foo["commit_hash"] == dist.foo.head()
    assert foo["distro_hash"] == run_git(dist.distgits["python-foo"], "rev-parse", "HEAD")
    # pbr's answer, Sem-Ver footer included (describe-based counting said 1.2.4.dev2).
    assert (foo["version"], foo["upstream_version"]) == ("1.3.0", "1.3.0.dev2")
    assert re.fullmatch(rf"0\.[0-9]{{14}}\.{dist.foo.head()[:7]}", foo["release"] or "")
    assert nova["package"] == "puppet-nova"
    assert (nova["version"], nova["upstream_version"]) == ("28.0.1", "28.0.1")
    # Nothing recorded, nothing built, nothing published.
    assert written(dist.root) == set()


def test_dry_run_table_and_selection(dist: Distribution) -> None:
    code, out, err = dist.run("--dry-run", "-p", "python-foo")
    assert code == 0, err
    assert "python-foo" in out and "1.3.0.dev2" in out and "puppet-nova" not in out
    assert "1 build(s) planned" in err


def test_dry_run_refuses_json_alone_and_loop(dist: Distribution) -> None:
    assert dist.run("--json")[0] == 2
    assert dist.run("--dry-run", "--loop")[0] == 2


def test_dry_run_beside_a_running_builder_fetches_nothing(dist: Distribution) -> None:
    first = dist.plan()
    dist.foo.commit("Another fix")
    with builder_lock(load_config(dist.config)):
        code, out, err = dist.run("--dry-run", "--json")
        assert code == 0, err
        assert "builder busy" in err
        # Planned from the mirrors as last fetched: the new commit is not seen yet.
        seen = json.loads(out)
        assert [{**p, "release": None} for p in seen] == [{**p, "release": None} for p in first]
    # Idle again: the dry run refreshes as a cycle would and sees it.
    foo = dist.plan("-p", "python-foo")
    assert [p["upstream_version"] for p in foo] == ["1.3.0.dev3"]


def test_dry_run_on_a_builder_that_never_fetched_while_busy(dist: Distribution) -> None:
    with builder_lock(load_config(dist.config)):
        code, out, err = dist.run("--dry-run", "--json")
    assert code == 0 and json.loads(out) == []
    assert "has not been fetched yet" in err


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("rpmbuild") is None, reason="rpmbuild is not installed")
def test_the_cycle_builds_what_the_dry_run_planned(dist: Distribution) -> None:
    planned = {p["package"]: p for p in dist.plan()}
    code, out, err = dist.run()
    assert code == 0, out + err
    db = dist.root / "data" / "commits.sqlite"
    for package, plan in planned.items():
        (artifacts,) = rows(
            db,
            "select artifacts from commits where project_name = ? and status = 'SUCCESS'",
            package,
        )[0]
        srpm = next(a for a in artifacts.split(",") if a.endswith(".src.rpm"))
        nvr = srpm.rsplit("/", 1)[1].removesuffix(".src.rpm")
        name, version, release = nvr.rsplit("-", 2)
        assert (name, version) == (package, plan["version"])
        # The planned Release, but with the build's date (and the host's %{?dist}).
        short = (plan["commit_hash"] or "")[:7]
        assert re.fullmatch(rf"0\.[0-9]{{14}}\.{short}(\..+)?", release), release
    # Everything is built now: the next cycle has nothing to do.
    assert dist.plan() == []
