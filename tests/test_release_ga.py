"""`conveyor release-ga`: the example distribution's release `azalea`, branched, then taken
to GA with the real rpmbuild, the tag store, the closure gate and CI votes on the testing
tag, including the ways it stops (a failed build, a closure refusal, missing and failed
votes, a kill) and resumes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from examples import distribution as example
from tests.support import cli, dnf_install, example_git

from conveyor.config import load_config
from conveyor.publish.locks import file_lock
from conveyor.store.database import Database
from conveyor.tags.state import newest_versions
from conveyor.tags.votes import record_tag_vote

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("rpmbuild") is None, reason="rpmbuild needed"),
]
SERIES = "azalea"
BRANCH = f"{SERIES}-rdo"


@dataclass
class Stable:
    root: Path
    dist: example.Distribution
    release: example.Release
    config: Path

    def ga(self, *args: str) -> tuple[int, str]:
        return cli(*self.ga_args(*args))

    def ga_args(self, *args: str) -> list[str]:
        return [
            "release-ga",
            "--series",
            SERIES,
            "--releases",
            str(self.release.releases),
            "--config",
            str(self.config),
            *args,
        ]

    def applied(self) -> dict[str, tuple[int, dict[str, str]]]:
        db = Database(load_config(self.config).database_url)
        try:
            with db.reader() as session:
                return {
                    t: (a.version, dict(a.content)) for t, a in newest_versions(session).items()
                }
        finally:
            db.close()

    def vote(self, success: bool) -> None:
        """The CI's result on the testing tag's newest version (the API's service)."""
        version = self.applied()[self.release.testing_tag][0]
        db = Database(load_config(self.config).database_url)
        try:
            with db.transaction() as session:
                record_tag_vote(
                    session,
                    self.release.testing_tag,
                    version,
                    example.RELEASE_CI_JOB,
                    success,
                    "https://ci.example.org/stable/1",
                    "",
                    int(time.time()),
                    "ci",
                )
        finally:
            db.close()

    def timeline(self) -> list[tuple[int, str, str]]:
        code, output = cli(
            "release-ga", "--series", SERIES, "--timeline", "--json", "--config", str(self.config)
        )
        assert code == 0, output
        return [(r["run"], r["step"], r["state"]) for r in json.loads(output)]


def stable(root: Path, *, fixed: bool = True, lookaside: bool = True) -> Stable:
    """The example with its release `azalea` branched into a stable builder folder, its
    distgit branches made from the master's (`fixed`: after the broken package's fix)."""
    dist = example.generate(root, deps=True)
    if fixed:
        example.fix_broken_package(root)
    example.add_promotion_criteria(root)
    release = example.add_release(root, SERIES)
    code, output = cli(
        "release-branch", SERIES, "--config", str(dist.config), "--out", str(root / SERIES)
    )
    assert code == 0, output
    for distgit in dist.distgits.values():
        example_git(distgit, "branch", BRANCH, example.DISTGIT_BRANCH)
    config = root / SERIES / "conveyor.toml"
    if not lookaside:
        text = config.read_text()
        config.write_text(text.replace('lookaside = ["', 'lookaside = []\n# was ["'))
    return Stable(root, dist, release, config)


def test_ga_stops_for_a_kill_and_for_votes_and_resumes_to_a_release_dnf_installs(tmp_path):
    s = stable(tmp_path)
    # Killed in the middle of the builds.
    process = subprocess.Popen(
        [sys.executable, "-m", "conveyor", *s.ga_args()],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if "[1/8]" in line:
            os.killpg(process.pid, signal.SIGKILL)
            break
    process.wait()
    assert process.returncode == -signal.SIGKILL

    # Resumed: what was built is not built again; it stops waiting for the CI.
    code, output = s.ga()
    assert code == 4, output
    assert ("[1/7]" in output and "[1/8]" not in output) or "skipped" in output
    assert f"waiting for {example.RELEASE_CI_JOB} on {s.release.testing_tag} version 1" in output
    applied = s.applied()
    assert len(applied[s.release.candidate_tag][1]) == 8
    assert len(applied[s.release.testing_tag][1]) == 8
    assert s.release.release_tag not in applied

    # A failed job stops it; a newer passing vote lets it go on.
    s.vote(False)
    code, output = s.ga()
    assert code == 1 and f"failed on {s.release.testing_tag} version 1" in output
    s.vote(True)
    code, output = s.ga()
    assert code == 0, output
    release = s.applied()[s.release.release_tag]
    assert release[0] == 1 and len(release[1]) == 8
    assert all(nvr.endswith("-1.el9") for nvr in release[1].values())

    runs = s.timeline()
    assert (1, "build", "interrupted") in runs
    assert (2, "criteria", "waiting") in runs
    assert (3, "criteria", "failed") in runs
    assert [state for run, _, state in runs if run == 4] == ["done"] * 8

    # The published .repo follows the release tag; dnf installs the release from it.
    repo_file = s.root / SERIES / "data" / "tags" / "repos" / f"{s.release.release_tag}.repo"
    assert str(repo_file) in output
    reposdir = tmp_path / "yum.repos.d"
    reposdir.mkdir()
    shutil.copy(repo_file, reposdir)
    shutil.copy(repo_file.parent / "delorean-deps.repo", reposdir)
    package, dependency = s.dist.dependency
    installed = dnf_install(tmp_path / "dnf", [f"--setopt=reposdir={reposdir}"], package)
    assert {n for n in installed if n.startswith((package, dependency))} == {
        release[1][package],
        release[1][dependency],
    }

    # Done is done: a new run finds nothing to do and changes no tag.
    code, output = s.ga()
    assert code == 0 and "every release is built" in output
    assert s.applied()[s.release.release_tag][0] == 1


def test_a_failed_build_and_a_closure_refusal_stop_ga_until_fixed(tmp_path):
    s = stable(tmp_path, fixed=False, lookaside=False)
    code, output = s.ga()
    assert code == 1, output
    assert "7 of 8 built in " in output
    assert "failing on purpose" in output  # the build's own words
    assert "nothing provides example-runtime" in output  # the gate, without the deps repo
    assert s.release.candidate_tag not in s.applied()  # refused: nothing applied
    declared = tmp_path / "rdoinfo" / "buildsys-tags" / f"{s.release.candidate_tag}.yml"
    assert declared.read_text().count("-1.el9") == 7  # for review, and for the next run

    # The lookaside back: the declared builds are applied; the broken build still fails.
    text = s.config.read_text()
    s.config.write_text(text.replace('lookaside = []\n# was ["', 'lookaside = ["'))
    code, output = s.ga()
    assert code == 1 and "0 of 1 built in " in output
    assert len(s.applied()[s.release.candidate_tag][1]) == 7

    # The distgit fixed on the release branch: only that build runs, and GA goes on.
    example.fix_broken_package(tmp_path)
    broken = s.dist.distgits[s.dist.projects[s.dist.failing_package]]
    example_git(broken, "branch", "-f", BRANCH, example.DISTGIT_BRANCH)
    code, output = s.ga()
    assert code == 4, output
    assert "1 of 1 built in" in output
    assert len(s.applied()[s.release.testing_tag][1]) == 8

    # Without release criteria, GA does not publish unvoted: it says what to write.
    criteria = s.config.parent / "promotions.yaml"
    text = criteria.read_text()
    head, _, _ = text.partition("release:")
    criteria.write_text(head)
    code, output = s.ga()
    assert code == 1 and "no release criteria: add a `release:` section" in output
    assert s.release.release_tag not in s.applied()
    # `criteria: []` is the explicit choice of releasing without CI.
    criteria.write_text(head + "release:\n  criteria: []\n")
    code, output = s.ga()
    assert code == 0, output
    assert len(s.applied()[s.release.release_tag][1]) == 8
    repo = tmp_path / SERIES / "data" / "tags" / "repos" / f"{s.release.release_tag}.repo"
    assert "priority=1" in repo.read_text()


def test_bad_input_is_refused_before_anything_is_done(tmp_path):
    s = stable(tmp_path)
    master = str(s.dist.config)
    # The master builder's configuration, not the series'.
    code, output = cli(*[master if a == str(s.config) else a for a in s.ga_args()])
    assert code == 2 and f"not {SERIES!r}" in output
    code, output = s.ga("--family", "cloud9s-nothing")
    assert code == 2 and "no tag family 'cloud9s-nothing'" in output
    code, output = cli("release-ga", "--series", SERIES, "--config", str(s.config))
    assert code == 2 and "--releases is required" in output

    code, output = cli("release-ga", "--series", "azalae", "--timeline", "--config", str(s.config))
    assert code == 2 and "not 'azalae'" in output
    code, output = cli(
        "release-status",
        "--series",
        SERIES,
        "--releases",
        str(s.release.releases),
        "--info",
        str(tmp_path / "rdoinfo"),
        "--config",
        master,
    )
    assert code == 2 and f"give --config the {SERIES} builder's conveyor.toml" in output

    # release-build lands in the release's candidate tag only, and never downgrades it.
    def release_build(config: str, into: str, version: str) -> tuple[int, str]:
        args = ["release-build", "python-examplelib", "--into", into, "--version", version]
        return cli(*args, "--config", config)

    code, output = release_build(str(s.config), s.release.testing_tag, "1.1.0")
    assert code == 2 and "is not a -candidate tag" in output
    code, output = release_build(master, s.release.candidate_tag, "1.1.0")
    assert code == 2 and "is not a tag of release master" in output
    declared = tmp_path / "rdoinfo" / "buildsys-tags" / f"{s.release.candidate_tag}.yml"
    declared.write_text(
        "packages:\n- project: examplelib\n  buildsys-tags:\n"
        f"    {s.release.candidate_tag}: python-examplelib-1.1.0-1.el9\n"
    )
    code, output = release_build(str(s.config), s.release.candidate_tag, "1.0.0")
    assert code == 2 and "older than python-examplelib-1.1.0-1.el9" in output
    declared.write_text("packages: []\n")

    # A dry run says what it would build, and builds and records nothing.
    code, output = s.ga("--dry-run")
    assert code == 0 and "would build python-examplelib 1.1.0" in output
    assert "dry run: nothing was changed" in output
    assert s.timeline() == [] and s.applied() == {}

    # Another release-ga holds the builder: refused, though a dry run may look.
    data = tmp_path / SERIES / "data"
    with file_lock(data / "release-ga.lock") as (_fd, locked):
        assert locked
        code, output = s.ga()
        assert code == 3 and "another release-ga is running" in output
        assert s.ga("--dry-run")[0] == 0

    # A deliverable no package builds is reported, and a pin newer than the series' final
    # release stops the GA at its first step.
    extra = s.release.releases / "deliverables" / SERIES / "unpackaged.yaml"
    extra.write_text("releases:\n- version: 1.0.0\n  projects:\n  - repo: upstream/unpackaged\n")
    rdo = tmp_path / "rdoinfo" / "rdo.yml"
    head, plugin, rest = rdo.read_text().partition("- project: exampleplugin\n")
    pinned = rest.replace(f"    {SERIES}: null", f"    {SERIES}:\n      source-branch: 9.0.0", 1)
    rdo.write_text(head + plugin + pinned)
    code, output = s.ga()
    assert code == 1, output
    assert "built by no package: upstream/unpackaged" in output
    assert "exampleplugin (pinned 9.0.0, newest 1.0.0)" in output
    assert s.applied() == {}
    assert s.timeline() == [(1, "status", "failed")]
