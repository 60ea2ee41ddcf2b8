"""`make demo` tells the whole story, from code to cloud: trunk builds, a CI vote promoting
`current-passed-ci`, a release opened upstream and branched, GA with the CI's vote on the
-testing tag, and a real dnf install from the release repository; a second run on the same
folder skips or resumes every step. One demo run (and its rerun) is shared by the assertions.

Also `add_release` (examples/distribution.py), which plays upstream's release team and the
rdoinfo reviewer in the demo: what it writes, and bad input refused with nothing written.
"""

from __future__ import annotations

import configparser
import importlib
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.support import cli, dnf_install, example_git, tree_digest

from conveyor.config import load_config
from conveyor.promote.criteria import load_criteria

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
example = importlib.import_module("examples.distribution")

SERIES = "azalea"
FAMILY = f"cloud9s-example-{SERIES}"
TAGS = [f"{FAMILY}-{stage}" for stage in ("candidate", "testing", "release")]

needs_demo_tools = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("rpmbuild", "createrepo_c", "dnf", "git")),
    reason="the demo needs rpmbuild, createrepo_c, dnf and git",
)


@dataclass(frozen=True)
class Journey:
    root: Path
    first: subprocess.CompletedProcess[str]
    again: subprocess.CompletedProcess[str]


def run_demo(root: Path) -> subprocess.CompletedProcess[str]:
    demo = [sys.executable, str(REPO_ROOT / "examples" / "demo.py"), "--dir", str(root)]
    return subprocess.run(demo, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def journey(tmp_path_factory: pytest.TempPathFactory) -> Journey:
    """The demo in a fresh folder, then again on the same folder."""
    root = tmp_path_factory.mktemp("journey") / "demo"
    first = run_demo(root)
    assert first.returncode == 0, first.stdout + first.stderr
    again = run_demo(root)
    assert again.returncode == 0, again.stdout + again.stderr
    return Journey(root, first, again)


def installed(output: str, after: str) -> dict[str, str]:
    """NVR -> `[repository] in file` of the install listing printed after `after`."""
    tail = output[output.index(after) :]
    block = tail[tail.index("installed into a scratch --installroot:") :].splitlines()[1:]
    rows: dict[str, str] = {}
    for line in block:
        found = re.fullmatch(r"  (\S+)\s+from (\[\S+\] in \S+)", line)
        if found is None:
            break
        rows[found[1]] = found[2]
    return rows


# --- the demo, end to end -----------------------------------------------------------------------


@pytest.mark.slow
@needs_demo_tools
def test_the_ci_vote_promotes_current_passed_ci(journey: Journey) -> None:
    repos = journey.root / "data" / "repos"
    promoted = repos / "current-passed-ci"
    assert promoted.is_symlink()
    assert promoted.resolve() == (repos / "consistent").resolve()
    out = journey.first.stdout
    assert "$ conveyor serve --config" in out
    assert "the CI job example-ci reports its result:" in out
    assert "/api/report_result" in out and "-> 201 " in out
    assert "$ conveyor promote --once --explain --config" in out
    assert f"current-passed-ci -> {promoted.resolve()}" in out
    # The trunk part still ends with an install from both published .repo files.
    trunk = installed(out, "consistent -> ")
    assert "[delorean] in delorean.repo" in trunk.values()
    assert trunk["example-runtime-1.0-1"] == "[example-deps] in delorean-deps.repo"


@pytest.mark.slow
@needs_demo_tools
def test_the_release_is_opened_and_branched(journey: Journey) -> None:
    root = journey.root
    out = journey.first.stdout
    assert f"upstream's release team branches stable/{SERIES}" in out
    assert "8 packages found (names only): python-examplelib" in out
    assert f"$ conveyor release-branch {SERIES} --config" in out
    assert f"distgit example-broken: {SERIES}-rdo from rpm-master: created" in out
    assert f"$ conveyor release-status --series {SERIES}" in out
    config = load_config(root / SERIES / "conveyor.toml")
    assert (config.source_branch, config.distro_branch) == (f"stable/{SERIES}", f"{SERIES}-rdo")
    assert config.metadata.release == SERIES
    assert config.datadir == root / SERIES / "data"
    assert config.tags.lookaside == (root / "deps" / "repo",)
    # The master's criteria, release section included, went with it.
    criteria = load_criteria(root / SERIES / "promotions.yaml")
    assert criteria.release is not None and criteria.release.criteria == ("example-stable-ci",)
    for tag in TAGS:
        assert (root / "rdoinfo" / "buildsys-tags" / f"{tag}.yml").is_file()
    # Every upstream has the stable branch, every distgit the release's branch.
    for upstream in (root / "upstream").iterdir():
        assert example_git(upstream, "branch", "--list", f"stable/{SERIES}")
    for distgit in (root / "distgit").iterdir():
        assert example_git(distgit, "branch", "--list", f"{SERIES}-rdo")


@pytest.mark.slow
@needs_demo_tools
def test_ga_waits_for_the_ci_then_publishes_the_release(journey: Journey) -> None:
    out = journey.first.stdout
    exits = re.findall(r"^-> release-ga exit (\d+):", out, flags=re.M)
    assert exits == ["4", "0"], out
    assert "the CI job example-stable-ci reports its result:" in out
    assert f"/api/tags/{FAMILY}-testing/report_result" in out
    release_repo = journey.root / SERIES / "data" / "tags" / "repos" / f"{FAMILY}-release.repo"
    assert release_repo.is_file()
    reposdir = journey.root / SERIES / "yum.repos.d"
    assert "dnf --installroot=" in out and f"--setopt=reposdir={reposdir} install" in out
    rows = installed(out, "-> release-ga exit 0:")
    where = f"[{FAMILY}-release] in {FAMILY}-release.repo"
    assert rows == {
        "example-runtime-1.0-1": "[example-deps] in delorean-deps.repo",
        "python-exampleclient-1.0.0-1.el9": where,
        "python-examplelib-1.1.0-1.el9": where,
    }


@pytest.mark.slow
@needs_demo_tools
def test_a_second_run_skips_or_resumes_every_step(journey: Journey) -> None:
    out = journey.again.stdout
    # Nothing new upstream: neither builder builds anything (the counts go to stderr).
    assert journey.again.stderr.count("0 build(s), 0 not successful") == 2
    assert "current-passed-ci points at `consistent`'s repository already" in out
    assert "/api/report_result" not in out  # no vote needed
    assert f"{SERIES} was opened by an earlier run" in out
    assert "release-branch is not run again" in out
    assert re.findall(r"^-> release-ga exit (\d+):", out, flags=re.M) == ["0"]
    rows = installed(out, "-> release-ga exit 0:")
    assert "python-exampleclient-1.0.0-1.el9" in rows


# --- add_release --------------------------------------------------------------------------------


@pytest.fixture
def dist(tmp_path: Path) -> Any:
    return example.generate(tmp_path / "dist")


def snapshot(root: Path) -> dict[str, str]:
    """What add_release may change: rdoinfo, releases/, and every upstream's refs."""
    state = {"rdoinfo": tree_digest(root / "rdoinfo")}
    if (root / "releases").exists():
        state["releases"] = tree_digest(root / "releases")
    for upstream in sorted((root / "upstream").iterdir()):
        state[upstream.name] = example_git(upstream, "for-each-ref")
    return state


def test_add_release_opens_the_release(dist: Any) -> None:
    root = dist.root
    assert example.find_release(root, SERIES) is None
    release = example.add_release(root, SERIES)
    assert example.find_release(root, SERIES) == release
    assert release.buildsys_tags == tuple(TAGS)
    assert release.versions["examplecli"] == "2.3.0"  # upstream tags v2.3.0
    info = yaml.safe_load(dist.metadata.read_text())
    (entry,) = [r for r in info["releases"] if r["name"] == SERIES]
    assert entry == {
        "name": SERIES,
        "status": "development",
        "branch": f"{SERIES}-rdo",
        "upstream_branch": f"stable/{SERIES}",
        "repos": [
            {"name": "el9s", "buildsys": f"cbs/{FAMILY}-el9s", "buildsys-tags": TAGS},
        ],
    }
    assert all(SERIES in package["tags"] for package in info["packages"])
    status = yaml.safe_load((root / "releases" / "data" / "series_status.yaml").read_text())
    assert status[0] == {"name": SERIES, "release-id": "2026.1", "status": "development"}
    for project, upstream in dist.upstreams.items():
        deliverable = root / "releases" / "deliverables" / SERIES / f"{upstream.name}.yaml"
        (released,) = yaml.safe_load(deliverable.read_text())["releases"]
        version, commit = release.versions[project], release.hashes[project]
        assert released == {
            "version": version,
            "projects": [{"repo": f"upstream/{upstream.name}", "hash": commit}],
        }
        # The branch and the tag openstack/releases names are both at the released commit.
        assert example_git(upstream, "rev-parse", f"stable/{SERIES}") == commit
        assert example_git(upstream, "rev-parse", f"{version}^{{commit}}") == commit
    # conveyor sees the release and its packages.
    code, output = cli("info", "-l", str(dist.metadata), f"tags:{SERIES}")
    assert code == 0 and "8 packages found" in output


def test_add_release_twice_is_refused_and_changes_nothing(dist: Any) -> None:
    example.add_release(dist.root, SERIES)
    before = snapshot(dist.root)
    with pytest.raises(example.DistributionError, match=f"release '{SERIES}' exists already"):
        example.add_release(dist.root, SERIES)
    assert snapshot(dist.root) == before


@pytest.mark.parametrize("series", ["Azalea", "master", "a", "../x", "stable/azalea", ""])
def test_add_release_refuses_a_bad_series_name(dist: Any, series: str) -> None:
    before = snapshot(dist.root)
    with pytest.raises(example.DistributionError, match="invalid series name"):
        example.add_release(dist.root, series)
    assert snapshot(dist.root) == before


def test_add_release_refuses_a_branch_in_the_way(dist: Any) -> None:
    upstream = dist.upstreams["exampleplugin"]
    example_git(upstream, "branch", f"stable/{SERIES}", "HEAD~1")
    before = snapshot(dist.root)
    with pytest.raises(example.DistributionError, match=f"branch stable/{SERIES} exists already"):
        example.add_release(dist.root, SERIES)
    assert snapshot(dist.root) == before
    assert not (dist.root / "releases").exists()


def test_add_release_undoes_what_it_wrote_when_it_fails(
    dist: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(dist.root)

    def fail(*_: object) -> None:
        raise example.DistributionError("rdoinfo cannot be written")

    monkeypatch.setattr(example, "_add_release_metadata", fail)
    with pytest.raises(example.DistributionError, match="rdoinfo cannot be written"):
        example.add_release(dist.root, SERIES)
    assert snapshot(dist.root) == before  # branches, the added tag, releases/ all gone
    assert not (dist.root / "releases").exists()
    monkeypatch.undo()
    assert example.add_release(dist.root, SERIES).series == SERIES


def test_add_release_needs_a_generated_distribution(tmp_path: Path) -> None:
    with pytest.raises(example.DistributionError, match="no generated distribution"):
        example.add_release(tmp_path, SERIES)


def test_promotion_criteria_load_and_are_written_once(dist: Any) -> None:
    path = example.add_promotion_criteria(dist.root)
    config_text = dist.config.read_text()
    assert example.add_promotion_criteria(dist.root) == path
    assert dist.config.read_text() == config_text  # a rerun changes nothing
    config = load_config(dist.config)
    assert config.promotion_criteria == path
    criteria = load_criteria(path)
    target = criteria.target("current-passed-ci")
    assert target is not None
    assert (target.candidate_label, target.criteria) == ("consistent", ("example-ci",))
    assert criteria.release is not None and criteria.release.criteria == ("example-stable-ci",)


@pytest.mark.slow
@needs_demo_tools
def test_the_trunk_installs_from_both_published_repo_files(
    journey: Journey, tmp_path: Path
) -> None:
    root = journey.root
    for output in (journey.first.stdout, journey.again.stdout):
        assert "from [example-deps] in delorean-deps.repo" in output
        assert "from [delorean] in delorean.repo" in output
    repos = root / "data" / "repos"
    published = repos / "delorean-deps.repo"
    assert published.read_text() == (root / "deps" / "example-deps.repo").read_text()
    reposdir = root / "yum.repos.d"
    assert sorted(p.name for p in reposdir.iterdir()) == ["delorean-deps.repo", "delorean.repo"]
    consistent = (repos / "consistent" / "delorean.repo").read_text()
    assert (reposdir / "delorean.repo").read_text() == consistent
    ids = configparser.ConfigParser(interpolation=None)
    ids.read(reposdir / "delorean.repo")
    assert ids.sections() == ["delorean"]

    client, lib = "python-exampleclient", "python-examplelib"
    found = dnf_install(tmp_path / "both", [f"--setopt=reposdir={reposdir}"], client)
    assert {nvr.rsplit("-", 2)[0] for nvr in found} == {client, lib, "example-runtime"}
    # delorean.repo alone is not enough: python-examplelib requires example-runtime.
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copyfile(reposdir / "delorean.repo", alone / "delorean.repo")
    with pytest.raises(subprocess.CalledProcessError) as failed:
        dnf_install(tmp_path / "one", [f"--setopt=reposdir={alone}"], client)
    assert b"example-runtime" in failed.value.stderr
