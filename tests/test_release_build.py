"""`conveyor release-build`: a package built from an upstream release tag (Release 1, the
builder's driver, the real rpmbuild) and tagged into a -candidate tag through the gate."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from tests.support import Trunk, cli, example_git

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("rpmbuild") is None, reason="rpmbuild needed"),
]
CANDIDATE = "cloud9s-openstack-demo-candidate"


@pytest.fixture
def trunk(tmp_path: Path) -> Trunk:
    trunk = Trunk(tmp_path / "dist")
    rdoinfo = trunk.root / "rdoinfo"
    (rdoinfo / "buildsys-tags").mkdir()
    (rdoinfo / "buildsys-tags.yml").write_text(f"import:\n- buildsys-tags/{CANDIDATE}.yml\n")
    # A new release's candidate tag, declared and still empty.
    (rdoinfo / "buildsys-tags" / f"{CANDIDATE}.yml").write_text("packages: []\n")
    return trunk


def _release_of(trunk: Trunk, package: str) -> str:
    upstream = trunk.dist.upstreams[trunk.dist.projects[package]]
    return example_git(upstream, "tag", "--sort=-creatordate").splitlines()[0]


def build(trunk: Trunk, package: str, version: str, *options: str) -> tuple[int, str]:
    return cli(
        "release-build",
        package,
        "--version",
        version,
        "--into",
        CANDIDATE,
        "--config",
        str(trunk.config_path),
        *options,
    )


def test_a_release_build_lands_in_the_candidate_tag_once(trunk):
    package = trunk.dist.dependency[1]  # a library the example releases
    version = _release_of(trunk, package).removeprefix("v")
    code, output = build(trunk, package, _release_of(trunk, package))
    assert code == 0, output
    nvr = f"{package}-{version}-1.el9"
    assert f"built    {nvr}" in output
    declared = (trunk.root / "rdoinfo" / "buildsys-tags" / f"{CANDIDATE}.yml").read_text()
    assert nvr in declared and "packages:\n- project:" in declared
    code, output = cli("tags", "show", CANDIDATE, "--config", str(trunk.config_path))
    assert code == 0 and nvr in output
    repo = trunk.root / "data" / "tags" / CANDIDATE
    assert any(p.name.startswith(f"{nvr}.") for p in repo.glob("*.rpm"))
    # The same release again: the store has it, nothing is built.
    code, output = build(trunk, package, _release_of(trunk, package))
    assert code == 0, output
    assert f"skipped  {nvr}" in output


def test_a_tag_that_does_not_exist_is_one_error_line(trunk):
    code, output = build(trunk, trunk.dist.dependency[1], "9.9.9")
    assert code == 2
    assert "no tag 9.9.9 in python-examplelib's upstream" in output


def test_a_failing_release_build_tags_nothing(trunk):
    package = trunk.dist.failing_package
    code, output = build(trunk, package, _release_of(trunk, package))
    assert code == 1
    assert "failed" in output and "failing on purpose" in output
    # The whole log is kept for a person (the build's work folder goes).
    logs = trunk.root / "data" / "release-logs"
    (kept,) = logs.iterdir()
    assert f"logs: {kept}" in output
    assert "failing on purpose" in (kept / "rpmbuild.log").read_text()
    code, output = cli("tags", "list", "--config", str(trunk.config_path))
    assert "no tag applied yet" in output


def test_a_release_bumped_in_the_distgit_is_built_again_with_its_release(trunk):
    package = trunk.dist.dependency[1]
    tag = _release_of(trunk, package)
    version = tag.removeprefix("v")
    assert build(trunk, package, tag)[0] == 0
    # A packaging fix of the same version: the spec says Release 2, as a stable distgit does.
    distgit = trunk.dist.distgits[trunk.dist.projects[package]]
    spec = distgit / f"{package}.spec"
    text = spec.read_text()
    text = text.replace("Version:        XXX", f"Version:        {version}")
    spec.write_text(text.replace("Release:        XXX", "Release:        2%{?dist}"))
    example_git(distgit, "commit", "-qam", "Rebuild: a packaging fix")
    code, output = build(trunk, package, tag)
    assert code == 0, output
    assert f"built    {package}-{version}-2.el9" in output
    declared = (trunk.root / "rdoinfo" / "buildsys-tags" / f"{CANDIDATE}.yml").read_text()
    assert f"{package}-{version}-2.el9" in declared


def test_everything_is_checked_before_the_first_build(trunk):
    good = trunk.dist.dependency[1]
    release = _release_of(trunk, good)
    # A tag not declared: nothing is built.
    code, output = cli(
        "release-build",
        good,
        "--version",
        release,
        "--into",
        "cloud9s-nosuch-candidate",
        "--config",
        str(trunk.config_path),
    )
    assert code == 2 and "cloud9s-nosuch-candidate is not declared" in output
    # A second package without that release: the first is not built either.
    code, output = cli(
        "release-build",
        good,
        trunk.dist.failing_package,
        "--version",
        release,
        "--into",
        CANDIDATE,
        "--config",
        str(trunk.config_path),
    )
    assert code == 2 and f"no tag {release} in {trunk.dist.failing_package}'s upstream" in output
    assert not (trunk.root / "data" / "tags" / "pool").exists()


def _release_with_requirements(trunk: Trunk, package: str, version: str) -> Path:
    """A new upstream release of `package` whose requirements.txt asks for requests."""
    upstream = trunk.dist.upstreams[trunk.dist.projects[package]]
    (upstream / "requirements.txt").write_text("requests>=2.25.0\n")
    example_git(upstream, "add", "requirements.txt")
    example_git(upstream, "commit", "-qm", "Require requests")
    example_git(upstream, "tag", "-a", "-m", version, version)
    return trunk.dist.distgits[trunk.dist.projects[package]]


def test_requirements_are_checked_and_synced_into_the_spec_before_the_build(trunk):
    package, library = trunk.dist.dependency  # python-exampleclient needs python-examplelib
    assert build(trunk, library, _release_of(trunk, library))[0] == 0
    distgit = _release_with_requirements(trunk, package, "1.1.0")
    # Reported, not changed, without --sync-requirements.
    code, output = build(trunk, package, "1.1.0")
    assert code == 0, output
    assert "requirements differ: missing: python-requests >= 2.25.0" in output
    head = example_git(distgit, "rev-parse", "HEAD")

    # A distgit that refuses the push: that build fails with the reason, nothing is tagged.
    upstream = trunk.dist.upstreams[trunk.dist.projects[package]]
    example_git(upstream, "tag", "-a", "-m", "1.1.1", "1.1.1", "1.1.0^{}")
    example_git(distgit, "config", "receive.denyCurrentBranch", "refuse")
    code, output = build(trunk, package, "1.1.1", "--sync-requirements")
    assert code == 1 and "the sync commit could not be pushed to rpm-master" in output
    assert example_git(distgit, "rev-parse", "HEAD") == head

    # Synced: a reviewed commit on the distgit branch, and the build made from it.
    example_git(distgit, "config", "receive.denyCurrentBranch", "updateInstead")
    code, output = build(trunk, package, "1.1.1", "--sync-requirements")
    assert "requirements synced: missing: python-requests >= 2.25.0" in output
    # It now needs requests, which nothing here provides: the gate keeps it out of the tag.
    assert code == 2 and "nothing provides python3-requests >= 2.25.0" in output
    assert example_git(distgit, "log", "-1", "--format=%s") == "Sync requirements with 1.1.1"
    spec = (distgit / f"{package}.spec").read_text()
    assert "python3-requests >= 2.25.0" in spec
    rpm = next((trunk.root / "data" / "tags" / "pool").glob(f"{package}-1.1.1-1.el9/*.noarch.rpm"))
    requires = subprocess.run(
        ["rpm", "-qp", "--requires", str(rpm)], capture_output=True, text=True, check=True
    ).stdout
    assert "python3-requests >= 2.25.0" in requires
