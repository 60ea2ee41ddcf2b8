"""`conveyor release-branch`: a stable builder prepared from a release added to rdoinfo,
its distgit branches pushed from conveyor's mirrors (local, writable distgits here)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
import yaml
from tests.support import Trunk, cli, example_git

from conveyor.config import load_config
from conveyor.promote.criteria import ReleaseCriteria, load_criteria

SERIES = "gazpacho"
TAGS = [f"cloud9s-openstack-{SERIES}-{stage}" for stage in ("candidate", "testing", "release")]


@pytest.fixture
def trunk(tmp_path: Path) -> Trunk:
    """The example distribution with a `gazpacho` release added to rdoinfo, as RDO adds one
    around milestone 3, and a promotion criteria file on the master builder."""
    trunk = Trunk(tmp_path / "dist")
    rdo = trunk.root / "rdoinfo" / "rdo.yml"
    data = yaml.safe_load(rdo.read_text())
    data["releases"].append(
        {
            "name": SERIES,
            "status": "development",
            "branch": f"{SERIES}-rdo",
            "upstream_branch": "stable/2026.1",
            "repos": [{"name": "el9s", "buildsys-tags": TAGS}],
        }
    )
    for package in data["packages"]:
        package["tags"][SERIES] = None
    rdo.write_text(yaml.safe_dump(data, sort_keys=False))
    (trunk.root / "promotions.yaml").write_text(
        "promotions:\n  current-passed-ci:\n    candidate_label: consistent\n"
        "    criteria: [tempest]\n"
    )
    text = trunk.config_path.read_text()
    head, _, rest = text.partition("[metadata]")
    criteria = 'promotion_criteria = "promotions.yaml"\n'
    trunk.config_path.write_text(f"{head}{criteria}\n[metadata]{rest}")
    return trunk


def test_release_branch_prepares_the_stable_builder(trunk, tmp_path):
    assert trunk.run()[0] in (0, 1)  # the master builder has mirrored the distgits
    out = tmp_path / SERIES
    code, output = cli(
        "release-branch",
        SERIES,
        "--out",
        str(out),
        "--create-branches",
        "--releases",
        str(tmp_path / "openstack-releases"),
        "--config",
        str(trunk.config_path),
    )
    assert code == 0, output
    # The builder's configuration loads, and follows the release's branches.
    config = load_config(out / "conveyor.toml")
    # Its dashboard shows the series' readiness from that openstack/releases checkout.
    assert config.dashboard.releases == (tmp_path / "openstack-releases").resolve()
    assert (config.source_branch, config.distro_branch) == ("stable/2026.1", f"{SERIES}-rdo")
    assert config.metadata.release == SERIES
    # Its data lives in its own folder, where its repositories' URLs point.
    assert config.datadir == (out / "data").resolve()
    assert config.baseurl == (out / "data" / "repos").resolve().as_uri()
    assert tomllib.loads((out / "conveyor.toml").read_text())["fallback_to_master"] is False
    # The master's criteria, and the jobs GA waits for on the -testing tag: current-passed-ci's.
    copied = (out / "promotions.yaml").read_text()
    assert copied.startswith((trunk.root / "promotions.yaml").read_text())
    assert load_criteria(out / "promotions.yaml").release == ReleaseCriteria(("tempest",))
    # The buildsys tags are declared in rdoinfo for review, and load.
    rdoinfo = trunk.root / "rdoinfo"
    for tag in TAGS:
        assert (rdoinfo / "buildsys-tags" / f"{tag}.yml").read_text() == "packages: []\n"
    code, listed = cli("tags", "diff", "--json", "--config", str(out / "conveyor.toml"))
    assert code == 0, listed
    # Every distgit got its release branch, from the master's.
    for package in trunk.dist.packages:
        distgit = trunk.dist.distgits[trunk.dist.projects[package]]
        master = example_git(distgit, "rev-parse", "rpm-master")
        assert example_git(distgit, "rev-parse", f"{SERIES}-rdo") == master
        assert f"distgit {package}: {SERIES}-rdo from rpm-master: created" in output
    # Again: the builder folder is kept as it is, the branches are found there.
    before = (out / "conveyor.toml").read_text()
    code, output = cli(
        "release-branch",
        SERIES,
        "--out",
        str(out),
        "--create-branches",
        "--config",
        str(trunk.config_path),
    )
    assert code == 0 and "conveyor.toml exists: kept as it is" in output
    assert (out / "conveyor.toml").read_text() == before
    assert f"{SERIES}-rdo from rpm-master: exists" in output
    code, output = cli("release-branch", SERIES, "--dry-run", "--config", str(trunk.config_path))
    assert f"{SERIES}-rdo from rpm-master: exists" in output
    # A folder that is not a builder's is refused.
    other = tmp_path / "other"
    other.mkdir()
    code, output = cli(
        "release-branch", SERIES, "--out", str(other), "--config", str(trunk.config_path)
    )
    assert code == 2 and "exists: choose a new folder" in output


def test_release_branch_dry_run_writes_nothing_and_lists_what_is_missing(trunk, tmp_path):
    code, output = cli(
        "release-branch",
        SERIES,
        "--dry-run",
        "--json",
        "--out",
        str(tmp_path / "x"),
        "--config",
        str(trunk.config_path),
    )
    assert code == 0, output
    plan = json.loads(output)
    assert plan["tags_to_declare"] == TAGS
    assert {d["state"] for d in plan["distgit_branches"]} == {"to create"}
    assert not (tmp_path / "x").exists()
    assert not (trunk.root / "rdoinfo" / "buildsys-tags").exists()


def test_a_release_without_its_own_branch_is_refused(trunk):
    code, output = cli("release-branch", "master", "--dry-run", "--config", str(trunk.config_path))
    assert code == 2 and "has no branch of its own" in output
    code, output = cli("release-branch", "nosuch", "--config", str(trunk.config_path))
    assert code == 2 and "rdoinfo has no release 'nosuch'" in output
