"""The trunk builder end to end, on the example distribution: real git, rpmbuild, createrepo_c
and dnf; nothing is simulated except a process being killed."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest
import yaml
from tests.support import (
    Trunk,
    built_example,
    cli,
    default_first_cycle,
    dnf_install,
    example,
    example_git,
    fresh_trunk,
    rows,
    tree_digest,
)

from conveyor.assembly.builder import run_cycle
from conveyor.publish import repostore
from conveyor.publish.formats import VERSIONS_CSV_HEADER
from conveyor.trunk.cycle import CycleOptions

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("rpmbuild") is None, reason="rpmbuild is not installed"),
]


@pytest.fixture
def built() -> Trunk:
    """The example distribution after its first cycle, where example-broken fails on purpose
    (built once for the whole run, shared read-only)."""
    return built_example("default", default_first_cycle).shared()


@pytest.fixture
def built_changed() -> Iterator[Trunk]:
    """The same, for a test that changes it."""
    with built_example("default", default_first_cycle).changed() as trunk:
        yield trunk


@pytest.fixture
def trunk(tmp_path) -> Trunk:
    return fresh_trunk(tmp_path / "dist")


def test_every_package_built_once_broken_one_failed(built):
    statuses = dict(rows(built.db, "select project_name, status from commits"))
    assert len(statuses) == len(built.dist.packages)
    assert statuses.pop(built.dist.failing_package) == "FAILED"
    assert set(statuses.values()) == {"SUCCESS"}


def test_success_directory_has_dlrn_layout(built):
    status, commit, distro, artifacts, notes, _ = built.newest("python-exampleclient")
    assert (status, notes) == ("SUCCESS", "OK")
    hash_dir = built.hash_dir(commit, distro)
    assert hash_dir.is_dir()
    names = {p.name for p in hash_dir.iterdir()}
    assert {
        "repodata",
        "delorean.repo",
        "versions.csv",
        "commit.yaml",
        "rpmbuild.log",
        "installed",
    } <= names
    own = {a.rsplit("/", 1)[1] for a in artifacts.split(",")}
    assert all(a.startswith(f"repos/{commit[:2]}/{commit[2:4]}/") for a in artifacts.split(","))
    assert any(n.endswith(".src.rpm") for n in own)
    for name in own:
        assert (hash_dir / name).is_file() and not (hash_dir / name).is_symlink()
    assert (hash_dir / "installed").read_text() == f"python-exampleclient {commit} {distro}"
    repo_file = (hash_dir / "delorean.repo").read_text()
    assert repo_file.startswith("[delorean]\nname=delorean-python-exampleclient-" + commit + "\n")
    assert f"baseurl=file://{built.repos}/{commit[:2]}/{commit[2:4]}/{hash_dir.name}\n" in repo_file
    assert "enabled=1\ngpgcheck=0\npriority=1\n" in repo_file
    record = yaml.safe_load((hash_dir / "commit.yaml").read_text())["commits"][0]
    assert record["commit_hash"] == commit and record["status"] == "SUCCESS"
    assert all(isinstance(v, str) for v in record.values())
    assert record["extended_hash"] == "None"


def test_links_to_other_packages_are_relative_and_resolve(built):
    _, commit, distro, *_ = built.newest("python-exampleclient")
    hash_dir = built.hash_dir(commit, distro)
    links = [p for p in hash_dir.iterdir() if p.is_symlink()]
    assert links, "a new repository links to the other packages' newest good RPMs"
    for link in links:
        target = os.readlink(link)
        assert not os.path.isabs(target) and target.startswith("../../../")
        assert link.resolve().is_file()
    linked_packages = {
        link.name.rsplit("-", 2)[0] for link in links if link.name.endswith(".src.rpm")
    }
    assert built.dist.failing_package not in linked_packages


def test_versions_csv(built):
    _, commit, distro, *_ = built.newest("python-exampleclient")
    text = (built.hash_dir(commit, distro) / "versions.csv").read_text()
    table = list(csv.reader(text.splitlines()))
    assert tuple(table[0]) == VERSIONS_CSV_HEADER
    by_project = {row[0]: row for row in table[1:]}
    assert by_project["python-exampleclient"][2] == commit
    assert by_project["python-exampleclient"][5] == "SUCCESS"
    assert by_project["python-exampleclient"][9].startswith("python-exampleclient-1.0.1-0.")


def test_nvr_follows_dlrn_version_rules(built):
    def nvr(package: str) -> str:
        _, commit, _, artifacts, _, _ = built.newest(package)
        (srpm,) = [a for a in artifacts.split(",") if a.endswith(".src.rpm")]
        return srpm.rsplit("/", 1)[1].removesuffix(".src.rpm"), commit

    name, commit = nvr("python-examplelib")  # two commits after tag 1.1.0
    version, release = name.removeprefix("python-examplelib-").split("-")
    assert version == "1.1.1"
    zero, date, short, dist = release.split(".")  # %{?dist} is `dist`, .el9 by default
    assert (zero, len(date), short, dist) == ("0", 14, commit[:7], "el9")
    assert nvr("examplecli")[0].startswith("examplecli-2.3.1-0.")  # after tag v2.3.0
    assert nvr("python-exampleplugin")[0].startswith("python-exampleplugin-1.0.0-0.")  # on tag
    # The spec received upstream_version: the tarball inside the SRPM is named after it.
    artifacts = built.newest("python-examplelib")[3]
    srpm = next(a for a in artifacts.split(",") if a.endswith(".src.rpm"))
    files = subprocess.run(
        ["rpm", "-qlp", str(built.root / "data" / srpm)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert "examplelib-1.1.1.dev2.tar.gz" in files


def test_failed_build_directory(built):
    status, commit, distro, artifacts, notes, _ = built.newest(built.dist.failing_package)
    assert status == "FAILED" and not artifacts
    assert "rpmbuild failed" in notes
    hash_dir = built.hash_dir(commit, distro)
    assert {p.name for p in hash_dir.iterdir()} == {"rpmbuild.log", "notes.log", "commit.yaml"}
    assert "failing on purpose" in (hash_dir / "rpmbuild.log").read_text()


def test_current_moves_consistent_waits_for_every_package(built):
    current = built.repos / "current"
    assert current.is_symlink() and not os.path.isabs(os.readlink(current))
    newest_success = rows(
        built.db, "select commit_hash from commits where status='SUCCESS' order by id desc limit 1"
    )[0][0]
    assert current.resolve().name.startswith(newest_success)
    assert not (built.repos / "consistent").exists()
    assert rows(built.db, "select count(*) from civotes")[0][0] == 0


def test_status_command(built):
    code, output = cli("status", "--config", str(built.config_path))
    assert code == 0
    assert "python-examplelib" in output and "FAILED" in output and "current:" in output


def test_changes_are_followed_and_published_dirs_never_change(built_changed):
    trunk = built_changed  # after its first cycle, which failed for example-broken
    assert trunk.run()[0] == 0, "nothing new: nothing built"
    assert rows(trunk.db, "select count(*) from commits")[0][0] == len(trunk.dist.packages)
    before = {p: tree_digest(p) for p in trunk.repos.glob("??/??/*")}

    lib = trunk.dist.projects["python-examplelib"]
    new_commit = example.add_upstream_commit(trunk.root, lib, "one more feature")
    fixed_distro = example.fix_broken_package(trunk.root)
    code, output = trunk.run()
    assert code == 0, output

    status, commit, *_ = trunk.newest("python-examplelib")
    assert (status, commit) == ("SUCCESS", new_commit)
    status, commit, distro, *_ = trunk.newest(trunk.dist.failing_package)
    old = rows(
        trunk.db,
        "select commit_hash from commits where project_name=? order by id limit 1",
        trunk.dist.failing_package,
    )[0][0]
    assert (status, commit, distro) == ("SUCCESS", old, fixed_distro)  # same source, new distgit

    consistent = trunk.repos / "consistent"
    assert consistent.is_symlink()
    votes = rows(trunk.db, "select ci_name, ci_vote, commit_id from civotes")
    assert votes and all(v[:2] == ("consistent", 1) for v in votes)
    for path, digest in before.items():
        assert tree_digest(path) == digest, f"{path} was rewritten"


def test_dnf_installs_from_consistent(built_changed, tmp_path):
    if shutil.which("dnf") is None:
        pytest.skip("dnf is not installed")
    trunk = built_changed  # after its first cycle
    example.fix_broken_package(trunk.root)
    assert trunk.run()[0] == 0
    repo = (trunk.repos / "consistent").resolve()
    dependent, dependency = trunk.dist.dependency
    options = ["--setopt=reposdir=/dev/null", f"--repofrompath=conveyor,{repo}", "--repo=conveyor"]
    installed = dnf_install(tmp_path, options, dependent)
    table = list(csv.reader((repo / "versions.csv").read_text().splitlines()))
    computed = {row[0]: row[9] for row in table[1:]}
    assert computed[dependent] in installed
    assert computed[dependency] in installed  # pulled in by Requires


def test_spec_without_version_fails_with_a_note(trunk):
    distgit = trunk.dist.distgits[trunk.dist.projects["python-exampleplugin"]]
    spec = distgit / "python-exampleplugin.spec"
    spec.write_text(
        "\n".join(x for x in spec.read_text().splitlines() if not x.startswith("Version:"))
    )
    example_git(distgit, "commit", "-qam", "drop Version")
    code, _ = trunk.run("--package", "python-exampleplugin")
    assert code == 1
    status, commit, distro, _, notes, _ = trunk.newest("python-exampleplugin")
    assert status == "FAILED" and "no 'Version:' tag" in notes
    assert "no 'Version:' tag" in (trunk.hash_dir(commit, distro) / "notes.log").read_text()


def test_hanging_build_times_out(trunk):
    distgit = trunk.dist.distgits[trunk.dist.projects["python-exampleplugin"]]
    spec = distgit / "python-exampleplugin.spec"
    spec.write_text(spec.read_text().replace("%build\n", "%build\nsleep 600\n", 1))
    example_git(distgit, "commit", "-qam", "hang")
    report = run_cycle(trunk.config(build_timeout=2.0), CycleOptions(only=["python-exampleplugin"]))
    assert report.exit_code == 1
    status, *_, notes, _ = trunk.newest("python-exampleplugin")
    assert status == "FAILED" and "timed out after 2 s" in notes


def test_unreachable_upstream_is_skipped_not_failed(trunk):
    lib_dir = trunk.dist.upstreams[trunk.dist.projects["python-examplelib"]]
    lib_dir.rename(lib_dir.with_name("moved-away"))
    # One other package is enough to show that the cycle goes on without it.
    both = CycleOptions(only=["python-examplelib", "python-exampleplugin"])
    report = run_cycle(trunk.config(), both)
    assert [s.target.name for s in report.skipped] == ["python-examplelib"]
    assert not rows(trunk.db, "select 1 from commits where project_name='python-examplelib'")
    assert trunk.newest("python-exampleplugin")[0] == "SUCCESS"
    lib_dir.with_name("moved-away").rename(lib_dir)
    report = run_cycle(trunk.config(), CycleOptions(only=["python-examplelib"]))
    assert not report.skipped and trunk.newest("python-examplelib")[0] == "SUCCESS"


def test_rewritten_history_and_changed_url_need_no_cleanup(trunk):
    assert trunk.run("--package", "python-examplelib")[0] == 0
    upstream = trunk.dist.upstreams[trunk.dist.projects["python-examplelib"]]
    example_git(upstream, "commit", "-q", "--amend", "-m", "rewritten history")
    rewritten = example_git(upstream, "rev-parse", "HEAD")
    assert trunk.run("--package", "python-examplelib")[0] == 0
    assert trunk.newest("python-examplelib")[1] == rewritten

    # A forge move: same repository name, another address.
    moved = upstream.parent.parent / "new-forge" / upstream.name
    moved.parent.mkdir()
    upstream.rename(moved)
    metadata = yaml.safe_load(trunk.dist.metadata.read_text())
    for entry in metadata["packages"]:
        if entry["project"] == "examplelib":
            entry["upstream"] = f"file://{moved}"
    trunk.dist.metadata.write_text(yaml.safe_dump(metadata))
    example_git(moved, "commit", "-q", "--allow-empty", "-m", "after the move")
    new_head = example_git(moved, "rev-parse", "HEAD")
    assert trunk.run("--package", "python-examplelib")[0] == 0
    assert trunk.newest("python-examplelib")[1] == new_head


def test_killed_while_publishing_leaves_nothing_behind(trunk, monkeypatch):
    """A kill between the rename and the database commit, then a kill while staging."""
    original_commit = repostore.RepoStore._commit

    def killed_after_rename(self, final, staging):
        staging.rename(final)
        raise KeyboardInterrupt  # the process dies before the transaction commits

    monkeypatch.setattr(repostore.RepoStore, "_commit", killed_after_rename)
    with pytest.raises(KeyboardInterrupt):
        run_cycle(trunk.config(workers=1), CycleOptions(only=["python-examplelib"]))
    assert not rows(trunk.db, "select 1 from commits")
    orphan = list(trunk.repos.glob("??/??/*"))
    assert len(orphan) == 1  # the directory the database never recorded

    def killed_while_staging(directory, packages):
        raise KeyboardInterrupt

    monkeypatch.setattr(repostore.RepoStore, "_commit", original_commit)
    monkeypatch.setattr(repostore, "write_repodata", killed_while_staging)
    with pytest.raises(KeyboardInterrupt):
        run_cycle(trunk.config(workers=1), CycleOptions(only=["python-examplelib"]))
    assert list(trunk.repos.glob("??/??/.staging-*"))

    monkeypatch.undo()
    report = run_cycle(trunk.config(workers=1), CycleOptions(only=["python-examplelib"]))
    assert report.exit_code == 0
    assert not list(trunk.repos.glob("??/??/.staging-*"))
    assert not (trunk.repos / ".publishing").exists()
    status, commit, distro, *_ = trunk.newest("python-examplelib")
    assert status == "SUCCESS" and (trunk.hash_dir(commit, distro) / "repodata").is_dir()
    assert (trunk.repos / "current").resolve() == trunk.hash_dir(commit, distro)
    dangling = [p for p in trunk.repos.rglob("*") if p.is_symlink() and not p.exists()]
    assert not dangling


def test_bad_metadata_is_a_clear_error(trunk):
    trunk.dist.metadata.write_text("packages: [\n")
    code, output = trunk.run()
    assert code == 2
    assert "rdo.yml" in output
    assert not trunk.db.exists() or not rows(trunk.db, "select 1 from commits")
