"""`conveyor meta ...`: minimal-diff edits of real-format rdoinfo files."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from conveyor.cli import packaging
from conveyor.edit import EditError, MetadataEditor

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
RDOINFO = DATA / "rdoinfo-2cdac3d7e"
pytestmark = pytest.mark.skipif(not RDOINFO.is_dir(), reason="shared/data is absent")
RELEASE_TAG = "cloud9s-openstack-epoxy-release"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A git repository holding copies of the real files the edits touch."""
    root = tmp_path / "rdoinfo"
    (root / "tags").mkdir(parents=True)
    (root / "buildsys-tags").mkdir()
    for name in ("rdo.yml", "deps.yml", "tags/epoxy.yml", f"buildsys-tags/{RELEASE_TAG}.yml"):
        shutil.copy(RDOINFO / name, root / name)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "snapshot")
    return root


def changed_lines(repo: Path) -> list[str]:
    """The +/- lines of `git diff` (no headers)."""
    return [
        line
        for line in git(repo, "diff", "-U0").splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def test_set_pin_replaces_a_pin(checkout: Path) -> None:
    MetadataEditor(checkout).set_pin("aodhclient", "epoxy", "3.7.2")
    assert changed_lines(checkout) == [
        "-      source-branch: 3.7.1",
        "+      source-branch: 3.7.2",
    ]


def test_set_pin_on_a_null_tag(checkout: Path) -> None:
    MetadataEditor(checkout).set_pin("aodh", "epoxy", "20.0.1")
    assert changed_lines(checkout) == ["+      source-branch: 20.0.1"]
    diff = git(checkout, "diff", "-U3")
    assert "- project: aodh\n" in diff


def test_set_pin_keeps_other_keys_and_quotes_what_needs_it(checkout: Path) -> None:
    editor = MetadataEditor(checkout)
    editor.set_pin("ansible-config_template", "epoxy", "1.10")  # a float unquoted
    assert changed_lines(checkout) == [
        "-      source-branch: 07c6e485f5d1886335e007889057aac9b18d45a4",
        "+      source-branch: '1.10'",
    ]
    assert "component: podified" in (checkout / "tags/epoxy.yml").read_text()


def test_two_edits_in_a_row(checkout: Path) -> None:
    editor = MetadataEditor(checkout)
    editor.set_pin("aodhclient", "epoxy", "3.7.2")
    editor.set_pin("aodh", "epoxy", "20.0.1")
    assert len(changed_lines(checkout)) == 3


def test_set_pin_unchanged_is_a_no_op(checkout: Path) -> None:
    assert MetadataEditor(checkout).set_pin("aodhclient", "epoxy", "3.7.1") == []
    assert changed_lines(checkout) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("no-such-project", "epoxy", "1.0"), "unknown project 'no-such-project'"),
        (("aodh", "no-such-tag", "1.0"), "unknown tag 'no-such-tag'"),
        (("aodh", "epoxy", "bad ref"), "invalid source-branch"),
        (("python-markupsafe", "epoxy", "1.0"), "is not tagged 'epoxy'"),
    ],
)
def test_set_pin_errors_leave_files_untouched(
    checkout: Path, args: tuple[str, str, str], message: str
) -> None:
    with pytest.raises(EditError, match=message):
        MetadataEditor(checkout).set_pin(*args)
    assert git(checkout, "status", "--porcelain") == ""


def test_set_buildsys_tag_replaces_and_appends(checkout: Path) -> None:
    editor = MetadataEditor(checkout)
    editor.set_buildsys_tag("GitPython", RELEASE_TAG, "GitPython-3.1.44-1.el9s")
    assert changed_lines(checkout) == [
        f"-    {RELEASE_TAG}: GitPython-3.1.43-1.el9s",
        f"+    {RELEASE_TAG}: GitPython-3.1.44-1.el9s",
    ]
    git(checkout, "commit", "-qam", "one", "--author", "t <t@t>")
    text = (checkout / f"buildsys-tags/{RELEASE_TAG}.yml").read_text()
    assert "project: aetos\n" not in text
    editor.set_buildsys_tag("aetos", RELEASE_TAG, "aetos-1.0.0-1.el9s")
    assert changed_lines(checkout) == [
        "+- project: aetos",
        "+  buildsys-tags:",
        f"+    {RELEASE_TAG}: aetos-1.0.0-1.el9s",
    ]
    assert (checkout / f"buildsys-tags/{RELEASE_TAG}.yml").read_text().startswith(text)


def test_set_buildsys_tag_errors(checkout: Path) -> None:
    editor = MetadataEditor(checkout)
    with pytest.raises(EditError, match="invalid NVR"):
        editor.set_buildsys_tag("GitPython", RELEASE_TAG, "GitPython")
    with pytest.raises(EditError, match="unknown project"):
        editor.set_buildsys_tag("nope", RELEASE_TAG, "nope-1-1")
    assert git(checkout, "status", "--porcelain") == ""


def test_add_package_appends_to_rdo_yml_and_tags(checkout: Path) -> None:
    MetadataEditor(checkout).add_package(
        "oslo-new",
        "rpmfactory-lib",
        upstream="https://opendev.org/openstack/oslo.new",
        component="common",
        maintainers=["someone@example.com"],
        tags=["epoxy"],
    )
    diff = git(checkout, "diff", "-U0", "rdo.yml")
    assert diff.count("@@") == 2  # one hunk, before `components:`
    assert changed_lines(checkout) == [
        "+- project: oslo-new",
        "+  conf: rpmfactory-lib",
        "+  upstream: https://opendev.org/openstack/oslo.new",
        "+  component: common",
        "+  maintainers:",
        "+  - someone@example.com",
        "+- project: oslo-new",
        "+  tags:",
        "+    epoxy:",
    ]
    rdo = (checkout / "rdo.yml").read_text()
    assert rdo.index("project: oslo-new") < rdo.index("\ncomponents:")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"project": "aodh", "conf": "rpmfactory-core"}, "already exists"),
        ({"project": "x", "conf": "nope"}, "unknown conf 'nope'"),
        ({"project": "x", "conf": "rpmfactory-lib", "component": "nope"}, "unknown component"),
        ({"project": "x", "conf": "rpmfactory-lib", "tags": ["nope"]}, "unknown tag"),
        ({"project": "x", "conf": "rpmfactory-lib", "maintainers": ["x"]}, "invalid maintainer"),
    ],
)
def test_add_package_errors(checkout: Path, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(EditError, match=message):
        MetadataEditor(checkout).add_package(**kwargs)  # type: ignore[arg-type]
    assert git(checkout, "status", "--porcelain") == ""


def test_broken_file_is_a_clear_error(checkout: Path) -> None:
    (checkout / "tags/epoxy.yml").write_text("packages:\n- project: [\n")
    git(checkout, "commit", "-qam", "broken", "--author", "t <t@t>")
    with pytest.raises(Exception, match=r"epoxy\.yml"):
        MetadataEditor(checkout).set_pin("aodh", "epoxy", "1.0")
    assert git(checkout, "status", "--porcelain") == ""


def test_cli_meta(checkout: Path) -> None:
    app = typer.Typer()
    packaging.register(app)
    runner = CliRunner()
    info = ["--info", str(checkout)]
    result = runner.invoke(app, ["meta", "set-pin", "aodhclient", "epoxy", "3.7.2", *info])
    assert result.exit_code == 0, result.output
    assert "tags/epoxy.yml" in result.stdout
    result = runner.invoke(app, ["meta", "set-pin", "nope", "epoxy", "3.7.2", *info])
    assert result.exit_code == 2
    assert "unknown project 'nope'" in result.output
    result = runner.invoke(
        app,
        ["meta", "add-package", "-p", "foo", "--conf", "rpmfactory-lib", "-m", "a@b.c",
         "-t", "epoxy", *info],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, ["meta", "set-buildsys-tag", "foo", RELEASE_TAG, "python-foo-1.0-1.el9s", *info]
    )
    assert result.exit_code == 0, result.output
    assert len(changed_lines(checkout)) == 2 + 4 + 3 + 3


def test_set_pins_is_all_or_nothing(checkout: Path) -> None:
    editor = MetadataEditor(checkout)
    with pytest.raises(EditError, match="no-such-project"):
        editor.set_pins("epoxy", [("aodhclient", "3.7.2"), ("no-such-project", "1.0")])
    assert changed_lines(checkout) == []
    assert editor.set_pins("epoxy", [("aodhclient", "3.7.2"), ("aodhclient", "3.7.2")]) == 1
    assert changed_lines(checkout) == ["-      source-branch: 3.7.1", "+      source-branch: 3.7.2"]
