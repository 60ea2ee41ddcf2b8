"""`conveyor tags-diff` / `attr-diff`: the metadata compared across its git history.

Semantics: rdopkg's info-tags-diff / info-attr-diff (distroinfo.query.tags_diff / attr_diff),
plus removed tags and packages (shared/reference/rdoinfo-and-openstack-data.md section 2.4).
Each test builds a real git repository in tmp_path.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import pytest
import typer
from tests.support import example_git as git
from typer.testing import CliRunner, Result

from conveyor.metadata import history, load_database
from conveyor.metadata.history import (
    AttrChange,
    HistoryError,
    attr_diff,
    find_repository,
    package_set,
    tags_diff,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

RDO = """
package-default:
  name: python-%(project)s
  upstream: https://opendev.org/openstack/%(project)s
  maintainers:
  - dev@example.org
  tags:
    train:
package-configs:
  core:
    name: openstack-%(project)s
releases:
- name: flamingo
  branch: rpm-master
  repos:
  - name: el9s
packages:
- project: nova
  conf: core
- project: glance
  conf: core
- project: oslo-config
  maintainers:
  - a@example.org
"""

TAGS = """
packages:
- project: nova
  tags:
    flamingo:
    epoxy:
      source-branch: 1.0.0
- project: glance
  tags:
    epoxy:
"""

BUILDSYS = """
packages:
- project: nova
  buildsys-tags:
    cloud9s-openstack-epoxy-testing: openstack-nova-31.0.0-1.el9s
"""

ENTRY = """
import:
- rdo.yml
- tags.yml
- buildsys-tags.yml
"""

# The second commit: nova's flamingo gets an override and dalmatian is added; glance moves
# from epoxy to flamingo; oslo-config changes maintainers; placement is new; a NVR changes.
RDO_2 = RDO.replace("  - a@example.org", "  - b@example.org") + (
    "- project: placement\n  conf: core\n"
)
TAGS_2 = """
packages:
- project: nova
  tags:
    flamingo:
      source-branch: main
    epoxy:
      source-branch: 1.0.0
    dalmatian:
- project: glance
  tags:
    flamingo:
- project: placement
  tags:
    flamingo:
"""
BUILDSYS_2 = BUILDSYS.replace("31.0.0-1", "31.0.1-1")


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


def commit(repo: Path, files: dict[str, str], message: str) -> None:
    write(repo, files)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """Two commits of a small database at the top of a repository."""
    root = tmp_path / "rdoinfo"
    root.mkdir()
    git(root, "init", "-q")
    files = {"rdo-full.yml": ENTRY, "rdo.yml": RDO, "tags.yml": TAGS, "buildsys-tags.yml": BUILDSYS}
    commit(root, files, "first")
    commit(root, {"rdo.yml": RDO_2, "tags.yml": TAGS_2, "buildsys-tags.yml": BUILDSYS_2}, "second")
    return root


def _app() -> typer.Typer:
    from conveyor.cli import metadata

    app = typer.Typer()
    metadata.register(app)
    return app


def run(*args: str) -> Result:
    return CliRunner().invoke(_app(), list(args))


# --- the comparisons, on package sets -----------------------------------------------------


def _pkg(name: str, **values: Any) -> dict[str, Any]:
    return {"name": name, "project": name, **values}


def test_tags_diff_added_changed_removed() -> None:
    old = {
        "a": _pkg("a", tags={"x": None, "y": {"source-branch": "1"}, "gone": None}),
        "same": _pkg("same", tags={"x": None}),
        "dropped": _pkg("dropped", tags={"x": None}),
        "untagged": _pkg("untagged"),
    }
    new = {
        "a": _pkg("a", tags={"new": None, "y": {"source-branch": "2"}, "x": None}),
        "same": _pkg("same", tags={"x": None}),
        "fresh": _pkg("fresh", tags={"x": {"source-branch": "3"}}),
        "untagged": _pkg("untagged", tags=None),
    }
    changes = tags_diff(old, new)
    assert [c.text() for c in changes] == [
        "a ['new', 'y', 'gone']",
        "fresh ['x']",
        "dropped ['x']",
    ]
    a, fresh, dropped = changes
    assert (a.package, fresh.package, dropped.package) == ("changed", "added", "removed")
    assert a.added == {"new": None}
    assert a.changed == {"y": ({"source-branch": "1"}, {"source-branch": "2"})}
    assert a.removed == {"gone": None}
    assert fresh.to_json()["added"] == {"x": {"source-branch": "3"}}
    assert dropped.to_json()["removed"] == {"x": None}


def test_tags_diff_tells_null_from_missing() -> None:
    # distroinfo: a tag going from absent to `null` is added, from `null` to a mapping changed.
    old = {"a": _pkg("a", tags={"x": None})}
    new = {"a": _pkg("a", tags={"x": {}, "y": None})}
    [change] = tags_diff(old, new)
    assert change.added == {"y": None} and change.changed == {"x": (None, {})}
    assert tags_diff(new, new) == []


def test_tags_diff_on_buildsys_tags() -> None:
    old = {"a": _pkg("a", **{"buildsys-tags": {"t": "a-1.0-1"}, "tags": {"x": None}})}
    new = {"a": _pkg("a", **{"buildsys-tags": {"t": "a-1.1-1"}, "tags": {"x": None}})}
    assert tags_diff(old, new) == []
    [change] = tags_diff(old, new, "buildsys-tags")
    assert change.changed == {"t": ("a-1.0-1", "a-1.1-1")}


def test_attr_diff() -> None:
    old = {
        "a": _pkg("a", maintainers=["x@example.org"]),
        "b": _pkg("b", maintainers=["y@example.org"]),
        "c": _pkg("c"),
        "d": _pkg("d", maintainers=[]),
        "gone": _pkg("gone", maintainers=["z@example.org"]),
    }
    new = {
        "a": _pkg("a", maintainers=["x@example.org", "w@example.org"]),
        "b": _pkg("b", maintainers=["y@example.org"]),
        "c": _pkg("c", maintainers=["v@example.org"]),
        "d": _pkg("d"),
        "fresh": _pkg("fresh", maintainers=["u@example.org"]),
    }
    changes = attr_diff(old, new, "maintainers")
    assert [c.text() for c in changes] == [
        "a ['x@example.org', 'w@example.org']",
        "c ['v@example.org']",
        "d None",
        "fresh ['u@example.org']",
        "gone None",
    ]
    assert changes[2] == AttrChange("d", "d", [], None, had=True, has=False)
    assert changes[2].to_json() == {"name": "d", "project": "d", "old": []}
    assert changes[3].to_json() == {"name": "fresh", "project": "fresh", "new": ["u@example.org"]}
    assert attr_diff(old, new, "no-such-attribute") == []
    assert not history.has_attr(new, "no-such-attribute")


# --- reading revisions ---------------------------------------------------------------------


def test_package_set_is_what_rdopkg_compares(repo: Path) -> None:
    packages = package_set(load_database(repo))
    # package-default's tags count for packages with none of their own, as in get_info().
    assert packages["oslo-config"]["tags"] == {"train": None}
    assert packages["nova"]["name"] == "openstack-nova"


def test_find_repository(repo: Path, tmp_path: Path) -> None:
    found = find_repository(repo / "rdo.yml")
    assert found.top == repo.resolve() and found.entry == "rdo.yml"
    assert str(found.folder) == "."
    with pytest.raises(HistoryError, match="not in a git repository"):
        find_repository(tmp_path)
    with pytest.raises(HistoryError, match="no such file"):
        find_repository(tmp_path / "missing")


def test_tags_diff_command(repo: Path) -> None:
    status = git(repo, "status", "--porcelain")
    head = git(repo, "rev-parse", "HEAD")
    result = run("tags-diff", "-l", str(repo))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "openstack-nova ['flamingo', 'dalmatian']",
        "openstack-glance ['flamingo', 'epoxy']",
        "openstack-placement ['flamingo']",
    ]
    # Nothing of the user's repository changed: no checkout, no index update.
    assert git(repo, "status", "--porcelain") == status
    assert git(repo, "rev-parse", "HEAD") == head

    result = run("tags-diff", "-b", "-l", str(repo))
    assert result.stdout == "openstack-nova ['cloud9s-openstack-epoxy-testing']\n"

    result = run("tags-diff", "--json", "-l", str(repo))
    listed = json.loads(result.stdout)
    assert listed[0]["changed"] == {"flamingo": {"old": None, "new": {"source-branch": "main"}}}
    assert listed[1]["removed"] == {"epoxy": None}
    assert listed[2]["package"] == "added"


def test_revisions_and_working_tree(repo: Path) -> None:
    result = run("tags-diff", "HEAD", "-l", str(repo))
    assert result.exit_code == 0 and result.stdout == ""
    assert "No tag changes detected." in result.stderr
    # An uncommitted edit is part of the working tree side, not of --to HEAD.
    write(repo, {"tags.yml": TAGS_2.replace("    dalmatian:\n", "")})
    assert run("tags-diff", "HEAD", "-l", str(repo)).stdout == "openstack-nova ['dalmatian']\n"
    result = run("tags-diff", "HEAD~", "--to", "HEAD", "-l", str(repo))
    assert "openstack-nova ['flamingo', 'dalmatian']" in result.stdout
    first = git(repo, "rev-list", "--max-parents=0", "HEAD")
    assert run("tags-diff", first, "--to", first, "-l", str(repo)).stdout == ""


def test_attr_diff_command(repo: Path) -> None:
    result = run("attr-diff", "maintainers", "-l", str(repo))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "python-oslo-config ['b@example.org']",
        "openstack-placement ['dev@example.org']",
    ]
    result = run("attr-diff", "maintainers", "--json", "-l", str(repo))
    assert json.loads(result.stdout)[0] == {
        "name": "python-oslo-config",
        "project": "oslo-config",
        "old": ["a@example.org"],
        "new": ["b@example.org"],
    }
    result = run("attr-diff", "upstream", "HEAD", "-l", str(repo))
    assert result.exit_code == 0 and result.stdout == ""
    assert "No changes of 'upstream' detected." in result.stderr


def test_attribute_no_package_has(repo: Path) -> None:
    result = run("attr-diff", "no-such-attribute", "-l", str(repo))
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "No package has the attribute 'no-such-attribute'" in result.stderr
    result = run("attr-diff", "no-such-attribute", "--json", "-l", str(repo))
    assert result.exit_code == 0 and json.loads(result.stdout) == []


def test_unknown_revision(repo: Path) -> None:
    result = run("tags-diff", "no-such-rev", "-l", str(repo))
    assert result.exit_code == 2
    assert "unknown revision 'no-such-rev'" in result.stderr
    result = run("attr-diff", "maintainers", "HEAD", "--to", "v9.9", "-l", str(repo))
    assert result.exit_code == 2 and "unknown revision 'v9.9'" in result.stderr
    result = run("tags-diff", "-l", str(repo), "--", "--output=x")
    assert result.exit_code == 2 and "invalid revision '--output=x'" in result.stderr
    assert not (repo / "x").exists()


def test_first_commit_has_no_parent(tmp_path: Path) -> None:
    root = write(tmp_path / "one", {"rdo.yml": RDO})
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "only")
    result = run("tags-diff", "-l", str(root))
    assert result.exit_code == 2 and "unknown revision 'HEAD~'" in result.stderr


def test_not_a_git_repository(tmp_path: Path) -> None:
    plain = write(tmp_path / "plain", {"rdo.yml": RDO})
    for command in (["tags-diff"], ["attr-diff", "maintainers"]):
        result = run(*command, "-l", str(plain))
        assert result.exit_code == 2
        assert "not in a git repository" in result.stderr


def test_metadata_broken_at_revision(repo: Path) -> None:
    commit(repo, {"tags.yml": "packages: [\n"}, "broken")
    commit(repo, {"tags.yml": TAGS_2}, "fixed")
    # HEAD~ is the broken commit: the older side fails, and the message says where.
    result = run("tags-diff", "-l", str(repo))
    assert result.exit_code == 2
    assert "the metadata at HEAD~ (older side) does not load: HEAD~:tags.yml:" in result.stderr
    assert "conveyor-history-" not in result.stderr  # no temporary path leaks out
    result = run("attr-diff", "maintainers", "HEAD~2", "--to", "HEAD~", "-l", str(repo))
    assert result.exit_code == 2
    assert "at HEAD~ (newer side) does not load: HEAD~:tags.yml:" in result.stderr


def test_metadata_broken_in_working_tree(repo: Path) -> None:
    write(repo, {"rdo.yml": RDO_2 + "- project: bad\n  conf: no-such-template\n"})
    result = run("tags-diff", "-l", str(repo))
    assert result.exit_code == 2
    assert "the metadata in the working tree (newer side) does not load" in result.stderr
    assert f"{repo / 'rdo.yml'}:" in result.stderr
    assert "unknown conf template" in result.stderr


def test_metadata_in_a_subfolder_and_info_file(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    git(root, "init", "-q")
    commit(root, {"README": "x\n", "meta/rdo.yml": RDO, "meta/tags.yml": TAGS}, "first")
    commit(root, {"meta/rdo.yml": RDO_2 + "import:\n- tags.yml\n"}, "second")
    commit(root, {"meta/rdo.yml": RDO_2 + "import:\n- tags.yml\n", "meta/tags.yml": TAGS_2}, "3")
    result = run("tags-diff", "-l", str(root / "meta"), "-i", "rdo.yml")
    assert result.exit_code == 0, result.output
    assert "openstack-nova ['flamingo', 'dalmatian']" in result.stdout
    # The first commit's rdo.yml has no import: every package keeps package-default's tags.
    result = run("tags-diff", "HEAD~2", "-l", str(root / "meta" / "rdo.yml"))
    assert "openstack-nova ['flamingo', 'epoxy', 'dalmatian', 'train']" in result.stdout
    # A revision without the folder at all.
    commit(root, {"other/file": "y\n"}, "4")
    shutil.rmtree(root / "meta")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "5")
    (root / "meta").mkdir()
    write(root, {"meta/rdo.yml": RDO})
    result = run("tags-diff", "HEAD", "-l", str(root / "meta"))
    assert result.exit_code == 2 and "HEAD: has no meta/ folder" in result.stderr


def test_option_like_revisions_never_reach_git(repo: Path) -> None:
    for args in (["--", "-h"], ["HEAD", "--to=--output=y"], ["HEAD", "--to", "-p"]):
        result = run("tags-diff", "-l", str(repo), *args)
        assert result.exit_code == 2, args
        assert "invalid revision '-" in result.stderr, args
    assert not (repo / "y").exists()


def test_folder_with_spaces(tmp_path: Path) -> None:
    root = tmp_path / "my project"
    root.mkdir()
    git(root, "init", "-q")
    commit(root, {"meta data/rdo.yml": RDO, "meta data/tags.yml": TAGS}, "first")
    commit(root, {"meta data/rdo.yml": RDO + "import:\n- tags.yml\n"}, "second")
    result = run("tags-diff", "-l", str(root / "meta data"))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "openstack-nova ['flamingo', 'epoxy', 'train']",
        "openstack-glance ['epoxy', 'train']",
    ]


def test_temporary_trees_are_removed(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    assert run("tags-diff", "HEAD~", "--to", "HEAD", "-l", str(repo)).exit_code == 0
    commit(repo, {"tags.yml": "packages: [\n"}, "broken")
    assert run("tags-diff", "HEAD~", "--to", "HEAD", "-l", str(repo)).exit_code == 2
    write(repo, {"new.yml": RDO})  # not in any commit
    result = run("tags-diff", "HEAD", "-l", str(repo / "new.yml"))
    assert result.exit_code == 2 and "at HEAD (older side) does not load: HEAD:new.yml" in (
        result.stderr
    )
    assert list(scratch.iterdir()) == []


def test_sides_without_the_command(repo: Path) -> None:
    old, new = history.sides(repo, "HEAD~", "HEAD")
    assert "placement" in new and "placement" not in old
    commit(repo, {"tags.yml": "packages: [\n"}, "broken")
    with pytest.raises(
        HistoryError, match=r"at HEAD \(newer side\) does not load: HEAD:tags\.yml:"
    ):
        history.sides(repo, "HEAD~", "HEAD")


# --- the real snapshots, as two commits -------------------------------------------------


def test_real_snapshots_as_history(tmp_path: Path) -> None:
    old, new = DATA / "rdoinfo-b967254ab", DATA / "rdoinfo-2cdac3d7e"
    if not ((old / "rdo-full.yml").is_file() and (new / "rdo-full.yml").is_file()):
        pytest.skip("rdoinfo snapshots not available")
    root = tmp_path / "rdoinfo"
    shutil.copytree(old, root)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "2024-10-01")
    shutil.rmtree(root / "tags")
    shutil.rmtree(root / "buildsys-tags")
    shutil.copytree(new, root, dirs_exist_ok=True)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "2026-07-14")

    result = run("tags-diff", "-l", str(root))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "puppet-aodh ['flamingo', 'flamingo-uc', 'epoxy-uc']" in lines
    # distroinfo reports 314 packages (measured); removals add the rest.
    assert len(lines) == 317
    result = run("attr-diff", "maintainers", "--json", "-l", str(root))
    changes = json.loads(result.stdout)
    nova = next(change for change in changes if change["name"] == "openstack-nova")
    assert nova["new"] == ["sbauza@redhat.com", "gibi@redhat.com"]
