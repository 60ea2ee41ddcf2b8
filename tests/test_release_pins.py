"""`conveyor release-pins`: branchless projects pinned to the series' final release, judged
on the real openstack/releases and rdoinfo data (what RDO pinned by hand for epoxy)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from conveyor.cli import packaging

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
RDOINFO = DATA / "rdoinfo-2cdac3d7e"
RELEASES = DATA / "openstack-releases-02df7c9a3"
pytestmark = pytest.mark.skipif(
    not (RDOINFO.is_dir() and RELEASES.is_dir()), reason="shared/data is absent"
)


def run(*args: str) -> Result:
    app = typer.Typer()
    packaging.register(app)
    return CliRunner().invoke(app, ["release-pins", "--releases", str(RELEASES), *args])


@pytest.fixture
def rdoinfo(tmp_path: Path) -> Path:
    """A git checkout of the real rdoinfo snapshot, to see the edits as `git diff` does."""
    copy = tmp_path / "rdoinfo"
    shutil.copytree(RDOINFO, copy)
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "snapshot"]):
        subprocess.run(
            ["git", "-C", str(copy), "-c", "user.name=t", "-c", "user.email=t@t", *command],
            check=True,
        )
    return copy


def _diff(repo: Path) -> list[str]:
    out = subprocess.run(
        ["git", "-C", str(repo), "diff", "-U0"], capture_output=True, text=True, check=True
    ).stdout
    return [line for line in out.splitlines() if line[:1] in "+-" and line[:3] not in "+++---"]


def test_epoxy_pins_match_what_rdo_pinned_by_hand(rdoinfo):
    result = run("--series", "epoxy", "--info", str(rdoinfo), "--dry-run", "--json")
    pins = {p["project"]: p for p in json.loads(result.stdout)}
    # RDO pinned the epoxy tempest plugins to their final releases: conveyor agrees.
    assert pins["barbican-tempest-plugin"] == {
        "project": "barbican-tempest-plugin",
        "repo": "openstack/barbican-tempest-plugin",
        "release": "4.3.0",
        "current": "4.3.0",
        "state": "ok",
    }
    assert sum(p["state"] == "ok" for p in pins.values()) == 17
    assert pins["cloudkitty-tempest-plugin"]["state"] == "pin"  # still on master
    # telemetry-tempest-plugin is pinned to 2.5.1, above epoxy's final 2.5.0: refused.
    assert pins["telemetry-tempest-plugin"]["state"] == "lower"
    assert result.exit_code == 1
    assert "telemetry-tempest-plugin (pinned 2.5.1, final 2.5.0)" in result.stderr
    assert _diff(rdoinfo) == []  # nothing edited


def test_flamingo_pins_are_written_as_minimal_edits(rdoinfo):
    result = run("--series", "flamingo", "--info", str(rdoinfo))
    assert result.exit_code == 0, result.output
    assert "pinned 19 projects in tags/flamingo.yml" in result.stderr
    changed = _diff(rdoinfo)
    # Each pin adds one line under its project's `flamingo:` and removes nothing.
    assert len(changed) == 19 and all(line.startswith("+") for line in changed)
    assert "+      source-branch: 4.4.0" in changed
    again = run("--series", "flamingo", "--info", str(rdoinfo), "--json")
    assert {p["state"] for p in json.loads(again.stdout)} == {"ok"}
    assert _diff(rdoinfo) == changed


def test_an_unknown_series_is_one_error_line(rdoinfo):
    result = run("--series", "nosuch", "--info", str(rdoinfo))
    assert result.exit_code == 2
    assert "rdoinfo has no release or tag 'nosuch'" in result.output


def test_a_tag_rdoinfo_does_not_have_is_one_error_line(rdoinfo):
    result = run("--series", "epoxy", "--tag", "nosuch", "--info", str(rdoinfo))
    assert result.exit_code == 2
    assert "rdoinfo has no release or tag 'nosuch'" in result.output
