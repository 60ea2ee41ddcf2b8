"""Components and the aggregate repository (reference/dlrn.md section 11): the hash formula
on its own, the aggregate directory on disk, and the example distribution built with
`use_components = true` (real rpmbuild, createrepo_c and dnf)."""

from __future__ import annotations

import configparser
import csv
import hashlib
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.support import Trunk, dnf_install, example, rows

from conveyor.assembly.builder import run_cycle
from conveyor.config import Config
from conveyor.domain.aggregate import (
    AGGREGATE_VERSIONS_HEADER,
    DEFAULT_COMPONENT,
    ComponentFiles,
    aggregate,
    aggregate_hash,
    aggregate_relpath,
    component_of,
)
from conveyor.domain.labels import REPORT_FILES
from conveyor.domain.names import InvalidName
from conveyor.metadata.targets import components_of, load_targets
from conveyor.publish.aggregate import (
    aggregate_for_label,
    published_hash,
    read_components,
    write_aggregate,
)
from conveyor.publish.formats import VERSIONS_CSV_HEADER
from conveyor.publish.repostore import PublishError
from conveyor.trunk.components import AggregateListener, refresh_aggregates, with_aggregate_listener
from conveyor.trunk.cycle import CycleOptions

HEADER = ",".join(VERSIONS_CSV_HEADER) + "\n"


def repo_text(component: str, url: str) -> bytes:
    return (
        f"[delorean-component-{component}]\nname=delorean-p-c\nbaseurl={url}\n"
        "enabled=1\ngpgcheck=0\npriority=1\n"
    ).encode()


def versions_text(*projects: str) -> bytes:
    return (HEADER + "".join(f"{p},u,c,d,s,SUCCESS,1,x,None,{p}-1-1\n" for p in projects)).encode()


# -- the formula -------------------------------------------------------------------------------


def test_hash_is_md5_of_sorted_repo_files_each_followed_by_a_newline():
    files = {"tripleo": b"[t]\n", "common": b"[c]\n", "compute": b"[x]\n"}
    expected = hashlib.md5(b"[c]\n\n[x]\n\n[t]\n\n").hexdigest()
    assert aggregate_hash(files) == expected
    assert aggregate_hash({}) == hashlib.md5(b"").hexdigest()


@given(st.dictionaries(st.from_regex(r"[a-z]{1,8}", fullmatch=True), st.binary(), max_size=6))
def test_hash_does_not_depend_on_mapping_order(files):
    reversed_order = dict(reversed(list(files.items())))
    assert aggregate_hash(files) == aggregate_hash(reversed_order)
    assert aggregate({c: ComponentFiles(r, None) for c, r in files.items()}).repo == b"".join(
        files[c] + b"\n" for c in sorted(files)
    )


def test_aggregate_repo_versions_and_md5_file():
    result = aggregate(
        {
            "common": ComponentFiles(repo_text("common", "u1"), versions_text("b", "a")),
            "clients": ComponentFiles(repo_text("clients", "u2"), versions_text("c")),
        }
    )
    assert result.repo == repo_text("clients", "u2") + b"\n" + repo_text("common", "u1") + b"\n"
    assert result.hash == hashlib.md5(result.repo).hexdigest()
    assert result.md5_file == result.hash.encode()  # no newline, as DLRN writes it
    # The header once, then each component's rows in component order, rows kept as written.
    assert result.versions == versions_text("c", "b", "a")
    assert str(result.relpath) == f"{result.hash[:2]}/{result.hash[2:4]}/{result.hash}"


def test_missing_files_are_skipped_one_by_one_as_dlrn_does():
    result = aggregate(
        {"a": ComponentFiles(None, versions_text("x")), "b": ComponentFiles(b"[b]\n", None)}
    )
    assert result.repo == b"[b]\n\n"
    assert result.versions == versions_text("x")


def test_header_is_the_one_of_every_versions_csv():
    assert HEADER.encode() == AGGREGATE_VERSIONS_HEADER


def test_packages_without_a_component_go_to_the_default_one():
    assert component_of("compute", True) == "compute"
    assert component_of(None, True) == DEFAULT_COMPONENT
    assert component_of("compute", False) is None
    with pytest.raises(InvalidName):
        component_of("../x", True)


@pytest.mark.parametrize("value", ["", "abc", "A" * 32, "../" + "0" * 29, "0" * 33])
def test_aggregate_relpath_refuses_what_is_not_an_md5(value):
    with pytest.raises(InvalidName):
        aggregate_relpath(value)


# -- the directory on disk ---------------------------------------------------------------------


def make_component_label(repos: Path, component: str, label: str, name: str, url: str) -> Path:
    hash_dir = repos / "component" / component / "ab" / "cd" / name
    hash_dir.mkdir(parents=True)
    (hash_dir / "delorean.repo").write_bytes(repo_text(component, url))
    (hash_dir / "versions.csv").write_bytes(versions_text(f"pkg-{component}"))
    (repos / "component" / component / label).symlink_to(f"ab/cd/{name}")
    return hash_dir


def aggregate_current(repos: Path, components: tuple[str, ...] = ("common",)) -> str:
    return write_aggregate(
        repos, "current", "delorean", read_components(repos, "current", "delorean", components)
    )


def published_files(label_dir: Path) -> dict[str, bytes]:
    return {
        name: (label_dir / name).read_bytes()
        for name in ("delorean.repo", "delorean.repo.md5", "versions.csv")
    }


def test_write_aggregate_layout_and_links(tmp_path):
    repos = tmp_path / "repos"
    make_component_label(repos, "common", "current", "c1", "http://x/c1")
    make_component_label(repos, "clients", "current", "k1", "http://x/k1")
    parts = read_components(repos, "current", "delorean", ["clients", "common", "compute"])
    assert sorted(parts) == ["clients", "common"]  # compute has no label: left out
    h = write_aggregate(repos, "current", "delorean", parts)
    label_dir = repos / "current"
    hashed = label_dir / h[:2] / h[2:4] / h
    assert sorted(p.name for p in hashed.iterdir()) == [
        "delorean.repo",
        "delorean.repo.md5",
        "versions.csv",
    ]
    for name in ("delorean.repo", "delorean.repo.md5", "versions.csv"):
        link = label_dir / name
        assert link.is_symlink() and os.readlink(link) == f"{h[:2]}/{h[2:4]}/{h}/{name}"
    files = published_files(label_dir)
    assert files["delorean.repo.md5"] == h.encode()
    assert published_hash(repos, "current", "delorean") == h
    assert published_hash(repos, "consistent", "delorean") is None
    assert hashlib.md5(files["delorean.repo"]).hexdigest() == h
    assert files["delorean.repo"].startswith(b"[delorean-component-clients]\n")
    assert [p.name for p in label_dir.iterdir() if p.name.startswith(".")] == []


def test_hashed_directory_is_immutable_and_links_follow_the_newest(tmp_path):
    repos = tmp_path / "repos"
    make_component_label(repos, "common", "current", "c1", "http://x/c1")
    first = aggregate_current(repos)
    first_dir = repos / "current" / first[:2] / first[2:4] / first
    mtime = first_dir.stat().st_mtime_ns
    again = aggregate_current(repos)
    assert again == first and first_dir.stat().st_mtime_ns == mtime

    make_component_label(repos, "common", "next", "c2", "http://x/c2")
    (repos / "component" / "common" / "next").replace(repos / "component" / "common" / "current")
    second = aggregate_current(repos)
    assert second != first and first_dir.is_dir()  # the old one stays: votes refer to it
    assert (repos / "current" / "delorean.repo.md5").read_bytes() == second.encode()

    (first_dir / "delorean.repo").write_text("tampered")
    (repos / "component" / "common" / "current").unlink()
    (repos / "component" / "common" / "current").symlink_to("ab/cd/c1")
    with pytest.raises(PublishError, match="different content"):
        aggregate_current(repos)


def test_a_label_link_from_a_run_without_components_becomes_a_directory(tmp_path):
    repos = tmp_path / "repos"
    (repos / "aa" / "bb" / "old").mkdir(parents=True)
    (repos / "current").symlink_to("aa/bb/old")
    make_component_label(repos, "common", "current", "c1", "http://x/c1")
    h = aggregate_current(repos)
    assert (repos / "current").is_dir() and not (repos / "current").is_symlink()
    assert (repos / "current" / "delorean.repo.md5").read_text() == h
    assert (repos / "aa" / "bb" / "old").is_dir()  # the old repository itself is untouched
    assert sorted(p.name for p in repos.iterdir()) == ["aa", "component", "current"]


@pytest.mark.parametrize("label", ["component", "../x", ".hidden", "a/b"])
def test_unsafe_labels_are_refused(tmp_path, label):
    with pytest.raises(InvalidName):
        write_aggregate(tmp_path, label, "delorean", {})
    assert not list(tmp_path.iterdir())


def test_unsafe_component_names_are_refused(tmp_path):
    with pytest.raises(InvalidName):
        read_components(tmp_path, "current", "delorean", ["../../etc"])
    with pytest.raises(InvalidName):
        write_aggregate(tmp_path, "current", "delorean", {"../x": ComponentFiles(b"", b"")})


def test_a_component_label_pointing_outside_the_tree_is_refused(tmp_path):
    repos = tmp_path / "repos"
    (repos / "component" / "common").mkdir(parents=True)
    (repos / "component" / "common" / "current").symlink_to(tmp_path)
    with pytest.raises(PublishError, match="outside"):
        read_components(repos, "current", "delorean", ["common"])


def test_the_aggregate_listener_joins_only_when_components_are_on(tmp_path):
    other = object()
    assert with_aggregate_listener(Config(datadir=tmp_path), [], [other]) == [other]
    on = with_aggregate_listener(Config(datadir=tmp_path, use_components=True), [], [other])
    assert on[0] is other and isinstance(on[1], AggregateListener)
    assert refresh_aggregates(Config(datadir=tmp_path), []) == {}


# -- the example distribution, built by components ---------------------------------------------


def slow(test):
    """Builds real RPMs: marked slow, and skipped where rpmbuild is missing."""
    needs_rpmbuild = pytest.mark.skipif(
        shutil.which("rpmbuild") is None, reason="rpmbuild is not installed"
    )
    return pytest.mark.slow(needs_rpmbuild(test))


def run_with_components(trunk: Trunk) -> tuple[int, AggregateListener]:
    config = trunk.config(use_components=True)
    listener = AggregateListener(config, load_targets(config))
    report = run_cycle(config, CycleOptions(listeners=[listener]))
    return report.exit_code, listener


@pytest.fixture(scope="module")
def by_components(tmp_path_factory) -> tuple[Trunk, AggregateListener]:
    """The example distribution after one cycle with components on (shared, read-only)."""
    trunk = Trunk(tmp_path_factory.mktemp("components") / "dist")
    code, listener = run_with_components(trunk)
    assert code == 1  # example-broken fails on purpose
    return trunk, listener


def component_labels(repos: Path, label: str) -> dict[str, Path]:
    return {
        c.name: (c / label)
        for c in sorted((repos / "component").iterdir())
        if (c / label).is_symlink()
    }


def expected_hash(repos: Path, label: str) -> str:
    """The formula of reference/dlrn.md section 11, written out again."""
    content = ""
    for link in component_labels(repos, label).values():
        content += (link / "delorean.repo").read_text() + "\n"
    return hashlib.md5(content.encode()).hexdigest()


@slow
def test_every_build_lives_in_its_component_tree(by_components):
    trunk, _ = by_components
    components = dict(rows(trunk.db, "select project_name, component from commits"))
    assert components["openstack-exampleservice"] == "common"
    assert components["python-exampleclient"] == "clients"
    assert components["python-examplelib"] == DEFAULT_COMPONENT
    # The builder's own labels and folder, and the reports every assembled builder writes.
    assert {p.name for p in trunk.repos.iterdir()} == {"component", "consistent", "current"} | (
        REPORT_FILES
    )
    for name, component in components.items():
        _, commit, distro, *_ = trunk.newest(name)
        hash_dir = trunk.repos / "component" / component / commit[:2] / commit[2:4]
        assert (hash_dir / f"{commit}_{distro[:8]}" / "commit.yaml").is_file(), name
    current = component_labels(trunk.repos, "current")
    assert sorted(current) == ["clients", "common", DEFAULT_COMPONENT]
    # example-broken is in the default component: that one is not consistent yet.
    assert sorted(component_labels(trunk.repos, "consistent")) == ["clients", "common"]


@slow
def test_a_component_repository_links_only_to_its_own_packages(by_components):
    trunk, _ = by_components
    checked = 0
    for tree in (trunk.repos / "component").iterdir():
        for link in tree.glob("??/??/*/*.rpm"):
            if link.is_symlink():
                assert link.resolve().is_relative_to(tree.resolve()), link
                checked += 1
        versions = (tree / "current" / "versions.csv").read_text().splitlines()
        assert {row[7] for row in csv.reader(versions[1:])} == {tree.name}
    assert checked  # the default component links its packages to each other


@slow
@pytest.mark.parametrize("label", ["current", "consistent"])
def test_top_level_label_is_the_aggregate_directory(by_components, label):
    trunk, listener = by_components
    label_dir = trunk.repos / label
    assert label_dir.is_dir() and not label_dir.is_symlink()
    h = expected_hash(trunk.repos, label)
    assert listener.hashes[label] == h
    for name in ("delorean.repo", "delorean.repo.md5", "versions.csv"):
        assert os.readlink(label_dir / name) == f"{h[:2]}/{h[2:4]}/{h}/{name}"
    assert (label_dir / "delorean.repo.md5").read_text() == h
    assert hashlib.md5((label_dir / "delorean.repo").read_bytes()).hexdigest() == h
    table = list(csv.reader((label_dir / "versions.csv").read_text().splitlines()))
    assert table[0] == list(VERSIONS_CSV_HEADER)
    expected_rows = []
    for link in component_labels(trunk.repos, label).values():
        expected_rows += list(csv.reader((link / "versions.csv").read_text().splitlines()))[1:]
    assert table[1:] == expected_rows


@slow
def test_aggregate_repo_has_one_section_per_component(by_components):
    trunk, _ = by_components
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string((trunk.repos / "current" / "delorean.repo").read_text())
    components = component_labels(trunk.repos, "current")
    assert parser.sections() == [f"delorean-component-{c}" for c in components]
    for component, link in components.items():
        section = parser[f"delorean-component-{component}"]
        relative = link.resolve().relative_to(trunk.repos.resolve())
        assert section["baseurl"] == f"{trunk.repos.as_uri()}/{relative}"
        assert (section["enabled"], section["gpgcheck"]) == ("1", "0")


@slow
def test_refresh_and_api_entry_point_agree_with_the_listener(by_components):
    trunk, listener = by_components
    config = trunk.config(use_components=True)
    assert refresh_aggregates(config, load_targets(config)) == listener.hashes
    assert (
        aggregate_for_label(config, "current", components_of(config)) == listener.hashes["current"]
    )
    assert aggregate_for_label(config, "never-promoted", components_of(config)) is None
    assert not (trunk.repos / "never-promoted").exists()


@slow
def test_aggregate_follows_new_builds_and_dnf_installs_from_it(tmp_path):
    if shutil.which("dnf") is None:
        pytest.skip("dnf is not installed")
    trunk = Trunk(tmp_path / "dist")
    run_with_components(trunk)
    first = (trunk.repos / "current" / "delorean.repo.md5").read_text()
    example.add_upstream_commit(trunk.root, "exampleclient", "A change of the client")
    example.fix_broken_package(trunk.root)
    code, listener = run_with_components(trunk)
    assert code == 0
    second = listener.hashes["current"]
    assert second != first and second == expected_hash(trunk.repos, "current")
    assert (trunk.repos / "current" / first[:2] / first[2:4] / first).is_dir()  # kept
    # Every component is consistent now, so `consistent` aggregates all three.
    consistent = trunk.repos / "consistent" / "delorean.repo"
    assert consistent.read_text().count("[delorean-component-") == 3

    # dnf reads the aggregate .repo file as it is, one repository per component.
    reposdir = tmp_path / "reposdir"
    reposdir.mkdir()
    shutil.copyfile(consistent, reposdir / "delorean.repo")
    dependent, dependency = trunk.dist.dependency
    installed = dnf_install(tmp_path, [f"--setopt=reposdir={reposdir}"], dependent)
    installed = {nvr.rsplit("-", 2)[0] for nvr in installed}
    # The client (component clients) pulls its library from the default component.
    assert {dependent, dependency} <= set(installed)


def test_status_shows_component_labels_and_aggregates(tmp_path):
    from tests.support import Trunk

    from conveyor.trunk.status import trunk_status

    trunk = Trunk(tmp_path / "dist")
    config = trunk.config(use_components=True)
    run_cycle(config)
    labels = trunk_status(config).labels
    assert labels["component/clients/current"] is not None
    assert labels["current (aggregate)"] is not None and len(labels["current (aggregate)"]) == 32
