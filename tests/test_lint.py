"""`conveyor lint`: every problem at file:line, on synthetic databases and the real snapshots."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest
import typer
from tests.rdoinfo_history import REVISIONS, rdoinfo_at
from typer.testing import CliRunner

from conveyor.metadata.lint import Problem, lint, ref_problem, suggestion

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

RELEASES = """\
releases:
- name: flamingo
  status: development
  branch: rpm-master
  repos:
  - name: el9s
    buildsys: cbs/cloud9s-openstack-flamingo-el9s
    buildsys-tags:
    - cloud9s-openstack-flamingo-testing
    - cloud9s-openstack-flamingo-release
- name: epoxy
  status: maintained
  branch: epoxy-rdo
  repos:
  - name: el9s
"""

HEAD = (
    RELEASES
    + """\
package-default:
  name: python-%(project)s
  upstream: https://opendev.org/openstack/%(project)s
  maintainers:
  - someone@example.com
package-configs:
  lib:
    component: common
components:
- name: common
- name: network
packages:
"""
)


def write(tmp_path: Path, packages: str, head: str = HEAD, **files: str) -> Path:
    (tmp_path / "rdo.yml").write_text(head + dedent(packages))
    for name, text in files.items():
        path = tmp_path / name.replace("__", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dedent(text))
    return tmp_path / "rdo.yml"


def messages(problems: list[Problem]) -> list[str]:
    return [f"{p.location.path.name}:{p.location.line}: {p.message}" for p in problems]


def test_clean_database_has_no_problems(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        - project: oslo-config
          conf: lib
          tags:
            flamingo:
            epoxy:
              source-branch: 9.7.0
          buildsys-tags:
            cloud9s-openstack-flamingo-testing: python-oslo-config-9.8.0-1.el9s
        """,
    )
    assert lint(path) == []


def test_unknown_keys_with_suggestions(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        - project: oslo-config
          conf: lib
          source_branch: main
          maintainer:
          - x@example.com
          tags:
            epoxy:
              source_branch: 9.7.0
        """,
    )
    found = messages(lint(path))
    assert (
        "rdo.yml:30: unknown key 'source_branch' in package 'oslo-config' (did you mean "
        "'source-branch'?)" in found
    )
    assert any(
        m.startswith("rdo.yml:31: unknown key 'maintainer'") and "'maintainers'" in m for m in found
    )
    assert (
        "rdo.yml:35: unknown key 'source_branch' in tag 'epoxy' override of package "
        "'oslo-config' (did you mean 'source-branch'?)" in found
    )


def test_source_branch_syntax(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        - project: a
          source-branch: stable/2025.1
        - project: b
          source-branch: "bad..ref"
        - project: c
          tags:
            epoxy:
              source-branch: 1.10
        - project: d
          source-branch: 0123456789abcdef0123456789abcdef01234567
        - project: e
          source-branch: deadbeef12
        """,
    )
    found = messages(lint(path))
    # the float is also refused by resolution (at the tag), hence 4 lines for 3 packages
    assert len(found) == 4, "\n".join(found)
    assert found[0].startswith("rdo.yml:31: package 'b': source-branch 'bad..ref' is neither")
    assert "'source-branch' must be a string, not 1.1 (quote it)" in found[1]
    assert found[2].startswith("rdo.yml:35: package 'c' (tag 'epoxy'): source-branch 1.1 is a")
    assert "use all 40" in found[3] and found[3].startswith("rdo.yml:39:")


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("master", True),
        ("v8.1.0", True),
        ("stable/4.6", True),
        ("a" * 40, True),
        ("", False),
        ("-x", False),
        ("a b", False),
        ("x.lock", False),
        ("x/", False),
        ("x.", False),
        ("@{u}", False),
        ("abc1234", False),
        (4.1, False),
    ],
)
def test_ref_problem(value: object, ok: bool) -> None:
    assert (ref_problem(value) is None) is ok


def test_components_buildsys_tags_and_maintainers(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        - project: a
          component: netwrok
          maintainers: [nobody]
          buildsys-tags:
            cloud9s-openstack-flamingo-tesitng: a-1-1
            cloud9s-openstack-flamingo-release: ""
          tags:
            epoxy:
              component: nope
        - project: b
          conf: missing
        - project: c
          maintainers: []
        """,
    )
    found = messages(lint(path))
    text = "\n".join(found)
    assert "unknown component 'netwrok' (did you mean 'network'?)" in text
    assert "(tag 'epoxy'): unknown component 'nope'" in text
    assert "maintainer 'nobody' is not an e-mail address" in text
    assert (
        "rdo.yml:32: package 'a': unknown buildsys tag 'cloud9s-openstack-flamingo-tesitng'" in text
    )
    assert (
        "rdo.yml:33: package 'a': buildsys tag 'cloud9s-openstack-flamingo-release' has no NVR"
        in text
    )
    assert "unknown conf template 'missing'" in text
    assert "package 'c' has no maintainers" in text


def test_releases(tmp_path: Path) -> None:
    head = (
        HEAD.replace("status: maintained", "status: development").replace(
            "  branch: epoxy-rdo\n", ""
        )
        + "- project: a\n"
    )
    head = head.replace("- name: flamingo\n", "- name: flamingo\n  stauts: x\n")
    found = "\n".join(messages(lint(write(tmp_path, "", head=head))))
    assert "is a second development release ('flamingo'" in found
    assert "release 'epoxy' repo 'el9s' has no 'branch'" in found
    assert "unknown key 'stauts' in release 'flamingo' (did you mean 'status'?)" in found


def test_duplicates(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        - project: a
        - project: b
          conf: lib
        - project: a
        """,
        head="import:\n- deps.yml\n" + HEAD,
        deps_yml="",
    )
    (tmp_path / "deps.yml").write_text("packages:\n- project: b\n  conf: lib\n")
    found = messages(lint(path))
    assert "rdo.yml:33: duplicate project 'a' in this file (first at line 30)" in found
    assert any(
        m.startswith("deps.yml:2: project 'b' is defined again (first at ")
        and m.endswith("rdo.yml:31)")
        for m in found
    )


def test_disagreeing_duplicates_name_both_lines_and_what_differs(tmp_path: Path) -> None:
    """The loader merges them as distroinfo does (later values winning); lint judges them,
    with the message a strict load refuses them with."""
    again = "- name: epoxy\n  status: eol\n  repos:\n  - name: el9s\n    branch: epoxy-rdo\n"
    head = RELEASES + again + HEAD.removeprefix(RELEASES)
    path = write(
        tmp_path,
        """\
        - project: a
          conf: lib
          name: python-a
          tags:
            flamingo:
        - project: a
          tags:
            epoxy:
        - project: a
          conf: lib
          name: python-a2
        """,
        head=head,
    )
    found = messages(lint(path))
    assert found == [
        "rdo.yml:16: duplicate name 'epoxy' in 'releases' (first at line 11): 'status' differs",
        "rdo.yml:38: duplicate project 'a' in this file (first at line 33)",
        "rdo.yml:41: duplicate project 'a' in 'packages' (first at line 33): 'name' differs",
    ]


def test_version_locked(tmp_path: Path) -> None:
    """rdoinfo's special tag: under ``tags`` it may name releases and their -uc tags; under
    ``buildsys-tags`` it lists CBS tags and has no NVR (rdoinfo's verify.py allows it)."""
    path = write(
        tmp_path,
        """\
        - project: a
          tags:
            version-locked:
              epoxy:
              flamingo-uc:
          buildsys-tags:
            version-locked:
            - cloud9s-openstack-flamingo-release
        - project: b
          tags:
            version-locked:
          buildsys-tags:
            version-locked:
        - project: c
          tags:
            version-locked:
              epoxxy:
          buildsys-tags:
            version-locked:
            - cloud9s-openstack-flamingo-relase
        - project: d
          buildsys-tags:
            version-locked: cloud9s-openstack-flamingo-release
        """,
    )
    found = messages(lint(path))
    assert found == [
        "rdo.yml:44: unknown key 'epoxxy' in tag 'version-locked' override of package 'c' "
        "(did you mean 'epoxy'?)",
        "rdo.yml:46: package 'c': buildsys-tags 'version-locked' names an unknown buildsys tag "
        "'cloud9s-openstack-flamingo-relase' (not in any release's repos) "
        "(did you mean 'cloud9s-openstack-flamingo-release'?)",
        "rdo.yml:50: package 'd': buildsys-tags 'version-locked' must list CBS tags, "
        "not 'cloud9s-openstack-flamingo-release'",
    ]


def test_unreadable_database_is_one_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "- project: [unclosed\n")
    found = lint(path)
    assert len(found) == 1 and "malformed YAML" in found[0].message
    assert lint(tmp_path / "nothing.yml")[0].message == "file not found"


def test_suggestion() -> None:
    assert (
        suggestion("source_branch", {"source-branch", "name"}) == " (did you mean 'source-branch'?)"
    )
    assert suggestion("zzz", {"name"}) == ""


@pytest.mark.parametrize("snapshot", ["rdoinfo-2cdac3d7e", "rdoinfo-b967254ab"])
def test_real_snapshots(snapshot: str) -> None:
    path = DATA / snapshot
    if not (path / "rdo-full.yml").is_file():
        pytest.skip(f"{path} not present")
    found = [str(p) for p in lint(path)]
    assert any(
        m.startswith(f"{path}/deps.yml:") and "duplicate project 'python-markupsafe'" in m
        for m in found
    ), found
    if snapshot == "rdoinfo-2cdac3d7e":
        assert (
            f"{path}/tags/antelope.yml:86: unknown key 'source_branch' in tag 'antelope' override"
            " of package 'cloudkitty-tempest-plugin' (did you mean 'source-branch'?)"
        ) in found
        assert len(found) == 2, found
    else:
        assert len(found) == 1, found  # version-locked lists 'dalmatian-uc', a release's -uc tag


@pytest.mark.parametrize("name", sorted(REVISIONS))
def test_older_real_snapshots(name: str, tmp_path: Path) -> None:
    """States distroinfo loads and conveyor refused before: lint names what is wrong in them
    (and nothing about a dependency without upstream or the version-locked buildsys tag)."""
    path = rdoinfo_at(name, tmp_path)
    found = [str(p) for p in lint(path)]
    if name == "rdoinfo-2018":
        assert found == []
    else:
        assert found == [
            f"{path}/buildsys-tags/cloud8-openstack-train-release.yml:1730: duplicate project "
            "'python-urllib-gssapi' in this file (first at line 1727)",
            f"{path}/buildsys-tags/cloud8-openstack-train-testing.yml:1730: duplicate project "
            "'python-urllib-gssapi' in this file (first at line 1727)",
            f"{path}/deps.yml:2336: duplicate project 'python-sphinx-testing' in 'packages' "
            "(first at line 145): 'conf' differs",
        ]


def _app() -> typer.Typer:
    from conveyor.cli import metadata

    app = typer.Typer()
    metadata.register(app)
    return app


def test_cli_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    (tmp_path / "clean").mkdir()
    clean = write(tmp_path / "clean", "")
    result = runner.invoke(_app(), ["lint", str(clean), "--no-cache"])
    assert result.exit_code == 0, result.output
    (tmp_path / "bad").mkdir()
    bad = write(tmp_path / "bad", "- project: a\n  source_branch: x\n")
    result = runner.invoke(_app(), ["lint", str(bad), "--no-cache"])
    assert result.exit_code == 1
    assert f"{bad}:29: unknown key 'source_branch'" in result.stdout
