"""Retention: the purge planner alone, then `conveyor purge` and `conveyor fsck` on the example
distribution built with real rpmbuild (its history aged by editing dt_build)."""

from __future__ import annotations

import hashlib
import importlib
import os
import shutil
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
import yaml
from tests.support import fresh_trunk
from typer.testing import CliRunner

from conveyor.assembly.builder import run_cycle
from conveyor.cli.retention import register, summary
from conveyor.config import Config, load_config
from conveyor.domain.paths import commit_relpath
from conveyor.domain.status import CommitStatus
from conveyor.retention import BuildRecord, check_trunk, cutoff_for, plan_purge, purge, purging
from conveyor.retention.plan import (
    KEPT_LINKED,
    KEPT_NEWEST_GOOD,
    KEPT_REFERENCED,
    KEPT_SHARED,
    KEPT_SUCCESS_SAME_HASH,
    KEPT_UNKNOWN_PATH,
    protected_paths,
)
from conveyor.retention.purging import RetentionError, purge_lock
from conveyor.retention.tree import (
    hash_dir_of,
    hash_relpath,
    linked_closure,
    read_labels,
    resolve_link,
)
from conveyor.store.database import Database
from conveyor.store.models import FLAG_PURGED, Bisection, BisectStep, Commit
from conveyor.trunk.cycle import CycleOptions

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
example = importlib.import_module("examples.distribution")

DAY = 86_400
NOW = 1_800_000_000
SUCCESS, FAILED, RETRY = CommitStatus.SUCCESS, CommitStatus.FAILED, CommitStatus.RETRY

# --- the planner, without a disk --------------------------------------------------------------


def build(
    id: int,
    project: str = "pkg",
    status: str = SUCCESS,
    age_days: float | None = 30,
    commit: str | None = None,
    purged: bool = False,
    relpath: str | None = "",
) -> BuildRecord:
    commit_hash = commit or f"{id:040x}"
    if relpath == "":
        relpath = hash_relpath(commit_hash, "d" * 40, None, None)
    dt_build = None if age_days is None else int(NOW - age_days * DAY)
    return BuildRecord(id, project, status, commit_hash, relpath, dt_build, purged)


def plan(records: list[BuildRecord], keep_ids=(), kept_paths=(), days=7, finish=False):
    return plan_purge(records, cutoff_for(NOW, days), set(keep_ids), set(kept_paths), finish)


def test_old_builds_go_but_each_packages_newest_good_build_stays():
    records = [build(1), build(2), build(3, "other"), build(4), build(5, status=FAILED)]
    result = plan(records)
    assert result.remove == (records[0].relpath, records[1].relpath, records[4].relpath)
    assert result.mark == (1, 2, 5)
    assert result.kept == {KEPT_NEWEST_GOOD: 2}


def test_builds_after_the_cutoff_are_not_candidates():
    records = [build(1, age_days=8), build(2, age_days=6), build(3, age_days=1)]
    result = plan(records)
    assert result.mark == (1,)
    assert result.kept == {}  # young builds are not "kept", they were never candidates


def test_a_build_without_dt_build_counts_as_old():
    records = [build(1, age_days=None), build(2, age_days=0)]
    assert plan(records).mark == (1,)


def test_newest_good_skips_failed_and_purged_builds():
    records = [
        build(1),
        build(2),
        build(3, status=FAILED),
        build(4, purged=True),  # removed by an earlier purge: not "good"
    ]
    result = plan(records)
    assert result.mark == (1, 3)
    assert result.kept == {KEPT_NEWEST_GOOD: 1}
    assert records[1].relpath not in result.remove


def test_failed_build_stays_when_a_success_shares_its_commit_hash():
    same = "a" * 40
    records = [
        build(1, status=FAILED, commit=same),
        build(2, status=RETRY, commit="b" * 40),
        build(3, commit=same, relpath=hash_relpath(same, "e" * 40, None, None)),
        build(4),
    ]
    result = plan(records)
    assert result.mark == (2, 3)
    assert result.kept == {KEPT_SUCCESS_SAME_HASH: 1, KEPT_NEWEST_GOOD: 1}


def test_promoted_builds_and_labelled_or_linked_directories_stay():
    records = [build(i) for i in range(1, 6)]
    result = plan(records, keep_ids={1}, kept_paths={records[2].relpath})
    assert result.mark == (2, 4)
    assert result.kept == {KEPT_REFERENCED: 1, KEPT_LINKED: 1, KEPT_NEWEST_GOOD: 1}


def test_a_directory_stays_while_any_of_its_rows_stays():
    shared = hash_relpath("c" * 40, "d" * 40, None, None)
    records = [
        build(1, status=RETRY, relpath=shared, commit="c" * 40),
        build(2, status=FAILED, relpath=shared, commit="c" * 40, age_days=1),  # young
        build(3),
    ]
    result = plan(records)
    assert result.remove == () and result.mark == ()
    assert result.kept == {KEPT_SHARED: 1, KEPT_NEWEST_GOOD: 1}


def test_purged_rows_are_skipped():
    records = [build(1, purged=True), build(2, purged=True, status=FAILED), build(3)]
    result = plan(records)
    assert (result.remove, result.finish, result.mark) == ((), (), ())
    assert result.kept == {KEPT_NEWEST_GOOD: 1}


def test_rows_marked_by_an_interrupted_purge_are_finished_not_marked_again():
    records = [build(1, purged=True, age_days=1), build(2, purged=True), build(3)]
    result = plan(records, finish=True)
    # Already purged: removed whatever their age, since the database already says so.
    assert result.finish == (records[0].relpath, records[1].relpath)
    assert result.remove == () and result.mark == ()


def test_purged_row_is_restored_when_a_label_needs_its_directory():
    records = [build(1, purged=True), build(2)]
    result = plan(records, kept_paths={records[0].relpath}, finish=True)
    assert result.finish == () and result.restore == {1: records[0].relpath}


def test_purged_row_is_not_restored_when_a_newer_row_owns_the_directory():
    path = hash_relpath("c" * 40, "d" * 40, None, None)
    records = [build(1, purged=True, relpath=path), build(2, relpath=path, age_days=1)]
    result = plan(records, kept_paths={path}, finish=True)
    assert result.restore == {} and result.finish == ()


def test_rows_whose_hashes_make_no_path_are_never_touched():
    records = [build(1, relpath=None), build(2, relpath=None, purged=True), build(3)]
    result = plan(records, finish=True)
    assert result.remove == () and result.finish == () and result.mark == ()
    assert result.kept == {KEPT_UNKNOWN_PATH: 1, KEPT_NEWEST_GOOD: 1}


def test_protected_paths_are_what_rows_alone_keep():
    records = [build(1), build(2, age_days=1), build(3, "other"), build(4, status=FAILED)]
    assert protected_paths(records, cutoff_for(NOW, 7), {1}) == {
        records[0].relpath,
        records[1].relpath,
        records[2].relpath,
    }


@pytest.mark.parametrize(
    ("distro", "extended", "component"),
    [
        ("d" * 40, None, None),
        (None, None, None),
        ("d" * 40, "e" * 40, "clients"),
        ("d" * 40, "e" * 40 + "_" + "f" * 40, None),
    ],
)
def test_hash_relpath_is_commit_relpath(distro, extended, component):
    commit = Commit(
        commit_hash="0123abcd" * 5, distro_hash=distro, extended_hash=extended, component=component
    )
    assert hash_relpath("0123abcd" * 5, distro, extended, component) == str(commit_relpath(commit))


def test_hash_relpath_refuses_what_is_not_a_hash():
    assert hash_relpath("../../etc", "d" * 40, None, None) is None
    assert hash_relpath("a" * 40, "d" * 40, None, "../x") is None


def test_link_resolution():
    assert resolve_link("/r", "ab/cd/x", "../../../ef/01/y/p.rpm") == "ef/01/y/p.rpm"
    assert resolve_link("/r", "ab/cd/x", "../../../../etc/passwd") is None
    assert resolve_link("/r", ".", "/r/ab/cd/x") == "ab/cd/x"
    assert resolve_link("/r", ".", "/elsewhere/x") is None
    assert hash_dir_of("ef/01/y/p.rpm") == "ef/01/y"
    assert hash_dir_of("component/c/ef/01/y/repodata/a.xml") == "component/c/ef/01/y"
    assert hash_dir_of("ef/01") is None
    assert hash_dir_of("current") is None


# --- the commands on a small, empty trunk -------------------------------------------------------


def cli(*args: str) -> tuple[int, str, str]:
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def empty_trunk(tmp_path) -> Path:
    config = tmp_path / "conveyor.toml"
    config.write_text('datadir = "data"\n')
    (tmp_path / "data" / "repos").mkdir(parents=True)
    return config


@pytest.mark.parametrize("days", ["0", "-3"])
def test_purge_refuses_days_below_one(empty_trunk, days):
    code, _, err = cli("purge", "--older-than", days, "-c", str(empty_trunk))
    assert code == 2 and "at least 1 day" in err


def test_purge_requires_older_than(empty_trunk):
    assert cli("purge", "-c", str(empty_trunk))[0] == 2


@pytest.mark.parametrize("label", ["../current", "a/b", "..", ".hidden"])
def test_purge_refuses_a_label_name_that_is_not_one(empty_trunk, label):
    code, _, err = cli("purge", "--older-than", "3", "--keep-label", label, "-c", str(empty_trunk))
    assert code == 2 and "invalid label" in err


def test_keep_label_that_exists_nowhere_is_a_warning(empty_trunk):
    code, out, err = cli(
        "purge", "--older-than", "3", "--keep-label", "nosuch", "-c", str(empty_trunk)
    )
    assert code == 0 and "no label 'nosuch'" in err
    assert "removed 0 hash directories" in out


def test_one_purge_at_a_time(empty_trunk):
    config = load_config(empty_trunk)
    with purge_lock(config.datadir), pytest.raises(RetentionError, match="another purge"):
        purge(config, 3)


def test_fsck_of_an_empty_trunk_is_clean(empty_trunk):
    code, out, err = cli("fsck", "-c", str(empty_trunk))
    assert (code, out) == (0, "") and "clean" in err


# --- a synthetic trunk: rows and directories written by hand ------------------------------------


class Synthetic:
    """Hash directories with a file or two and links, and their rows; no rpmbuild."""

    def __init__(self, root: Path) -> None:
        self.config_path = root / "conveyor.toml"
        self.config_path.write_text('datadir = "data"\n')
        self.config = load_config(self.config_path)
        self.repos = self.config.repos_dir
        self.repos.mkdir(parents=True)
        self.db = Database(self.config.database_url)
        self.count = 0

    def build(
        self,
        project: str,
        status: str = SUCCESS,
        age_days: int = 30,
        component: str | None = None,
        links_to: tuple[Path, ...] = (),
    ) -> Path:
        self.count += 1
        commit = f"{self.count:02x}" * 20
        relpath = hash_relpath(commit, "d" * 40, None, component)
        directory = self.repos / str(relpath)
        directory.mkdir(parents=True)
        rpm = f"{project}-1.0-{self.count}.noarch.rpm"
        (directory / (rpm if status == SUCCESS else "rpmbuild.log")).write_text("x")
        if status == SUCCESS:
            (directory / "repodata").mkdir()
        for other in links_to:
            for target in other.glob("*.rpm"):
                if not target.is_symlink():
                    (directory / target.name).symlink_to(os.path.relpath(target, directory))
        with self.db.transaction() as session:
            session.add(
                Commit(
                    project_name=project,
                    commit_hash=commit,
                    distro_hash="d" * 40,
                    status=status,
                    component=component,
                    dt_build=NOW - age_days * DAY,
                    artifacts=f"repos/{relpath}/{rpm}" if status == SUCCESS else None,
                    flags=0,
                )
            )
        return directory

    def label(self, name: str, directory: Path, base: Path | None = None) -> None:
        base = base or self.repos
        (base / name).symlink_to(os.path.relpath(directory, base))


@pytest.fixture
def synthetic(tmp_path) -> Iterator[Synthetic]:
    trunk = Synthetic(tmp_path)
    yield trunk
    trunk.db.close()


def test_links_are_followed_from_directory_to_directory(synthetic):
    c = synthetic.build("c")
    b = synthetic.build("b", links_to=(c,))
    a = synthetic.build("a", links_to=(b,))
    d = synthetic.build("d")
    rel = {p: str(p.relative_to(synthetic.repos)) for p in (a, b, c, d)}
    assert linked_closure(synthetic.repos, [rel[a]]) == {rel[a], rel[b], rel[c]}
    assert linked_closure(synthetic.repos, [rel[a]], reached_only=True) == {rel[b], rel[c]}
    (a / "outside.rpm").symlink_to("/etc/hostname")  # not a directory of the tree: ignored
    assert linked_closure(synthetic.repos, [rel[a]]) == {rel[a], rel[b], rel[c]}


def test_component_labels_keep_their_builds(synthetic):
    old = synthetic.build("lib", component="common")
    synthetic.build("lib", component="common")
    other = synthetic.build("client", component="clients", links_to=(old,))
    synthetic.build("client", component="clients")
    base = synthetic.repos / "component" / "clients"
    synthetic.label("current-passed-ci", other, base)

    report = purge(synthetic.config, 7, now=NOW)

    assert report.removed == ()  # other is labelled, and links to old
    assert report.plan.kept == {KEPT_NEWEST_GOOD: 2, KEPT_LINKED: 2}
    (base / "current-passed-ci").unlink()
    report = purge(synthetic.config, 7, now=NOW)
    assert set(report.removed) == {str(p.relative_to(synthetic.repos)) for p in (old, other)}
    assert check_trunk(synthetic.config) == []


def test_a_label_to_a_label_is_followed_to_its_end(synthetic):
    old = synthetic.build("lib")
    synthetic.label("current-passed-ci", old)
    (synthetic.repos / "promoted").symlink_to("current-passed-ci")
    labels = {label.path: label for label in read_labels(synthetic.repos)}
    assert labels["promoted"].target == "current-passed-ci"
    assert labels["promoted"].resolved == str(old.relative_to(synthetic.repos))


def test_purge_leaves_the_purged_flag_alongside_other_flags(synthetic):
    synthetic.build("lib")
    synthetic.build("lib")
    with synthetic.db.transaction() as session:
        session.get(Commit, 1).flags = 0x4  # rechecked
    purge(synthetic.config, 7, now=NOW)
    with synthetic.db.reader() as session:
        assert session.get(Commit, 1).flags == 0x4 | FLAG_PURGED
        assert session.get(Commit, 2).flags == 0


def test_marks_are_finished_or_lifted_only_after_an_interrupted_purge(synthetic):
    labelled = synthetic.build("lib")
    leftover = synthetic.build("lib")
    synthetic.build("lib")
    synthetic.label("current-passed-ci", labelled)
    with synthetic.db.transaction() as session:
        session.get(Commit, 1).flags = FLAG_PURGED
        session.get(Commit, 2).flags = FLAG_PURGED

    # Marked by hand, no purge interrupted: skipped, as DLRN skips them; fsck tells.
    report = purge(synthetic.config, 7, now=NOW)
    assert (report.removed, report.restored) == ((), ())
    assert len(check_trunk(synthetic.config)) == 2

    (synthetic.config.datadir / purging.JOURNAL_NAME).write_text("")
    report = purge(synthetic.config, 7, now=NOW)
    assert report.removed == (str(leftover.relative_to(synthetic.repos)),)
    assert report.restored == (1,)  # the label needs it: the database says it is there
    assert not leftover.exists() and labelled.is_dir()
    assert not (synthetic.config.datadir / purging.JOURNAL_NAME).exists()
    assert check_trunk(synthetic.config) == []


# --- end to end, on the example distribution --------------------------------------------------


class History:
    """The example distribution after: a first cycle of the three packages the tests look at
    (one build at a time, so in name order; example-broken fails), three more commits of
    python-examplelib and one of python-exampleplugin, each built by its own cycle."""

    LIB, PLUGIN = "python-examplelib", "python-exampleplugin"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dist = example.generate(root)
        self.config_path = self.dist.config
        self.repos = root / "data" / "repos"
        self.db = root / "data" / "commits.sqlite"

    def config(self) -> Config:
        return load_config(self.config_path).model_copy(update={"workers": 1})

    def cycle(self, *only: str) -> None:
        run_cycle(self.config(), CycleOptions(only=only))

    def make(self) -> History:
        # The other five packages would only add builds that every purge keeps.
        packages = (self.dist.failing_package, History.LIB, History.PLUGIN)
        self.cycle(*packages)
        for n in range(3):
            example.add_upstream_commit(self.root, "examplelib", f"lib change {n}")
            self.cycle(*packages)
        example.add_upstream_commit(self.root, "exampleplugin", "plugin change")
        self.cycle(*packages)
        return self

    def copy(self, into: Path) -> History:
        """A copy that can be changed (metadata URLs moved along with it)."""
        shutil.copytree(self.root, into, symlinks=True)
        for name in ("rdoinfo/rdo.yml", "conveyor.toml"):
            path = into / name
            path.write_text(path.read_text().replace(str(self.root), str(into)))
        return History(into)

    def sql(self, query: str, *params: object) -> list[tuple]:
        with sqlite3.connect(self.db) as conn:
            return conn.execute(query, params).fetchall()

    def age(self, days: int) -> None:
        self.sql("update commits set dt_build = dt_build - ?", days * DAY)

    def builds(self, project: str) -> list[int]:
        return [
            i
            for (i,) in self.sql("select id from commits where project_name=? order by id", project)
        ]

    def path(self, commit_id: int) -> Path:
        with Database(f"sqlite:///{self.db}").reader() as session:
            return self.repos / commit_relpath(session.get(Commit, commit_id))

    def purged(self) -> set[int]:
        return {i for (i,) in self.sql("select id from commits where flags & 2")}

    def label(self, name: str, commit_id: int) -> None:
        link = self.repos / name
        link.unlink(missing_ok=True)
        link.symlink_to(os.path.relpath(self.path(commit_id), self.repos))

    def hash_dirs(self) -> set[Path]:
        return set(self.repos.glob("??/??/*"))

    def cli(self, *args: str) -> tuple[int, str, str]:
        return cli(*args, "-c", str(self.config_path))


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> History:
    if shutil.which("rpmbuild") is None:
        pytest.skip("rpmbuild is not installed")
    root = tmp_path_factory.mktemp("history") / "dist"
    fresh_trunk(root)  # the example distribution, generated
    return History(root).make()


@pytest.fixture
def trunk(history, tmp_path) -> History:
    copy = history.copy(tmp_path / "dist")
    copy.age(30)
    return copy


def dangling_links(repos: Path) -> list[Path]:
    return [
        Path(folder, name)
        for folder, dirs, files in os.walk(repos)
        for name in dirs + files
        if Path(folder, name).is_symlink() and not Path(folder, name).exists()
    ]


def links(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if p.is_symlink()]


def tree_state(trunk: History) -> tuple:
    entries = []
    for folder, dirs, files in os.walk(trunk.repos):
        for name in sorted(dirs + files):
            path = Path(folder, name)
            entries.append((str(path), os.readlink(path) if path.is_symlink() else None))
    return sorted(entries), trunk.sql("select id, flags from commits order by id")


@pytest.mark.slow
def test_purge_keeps_labelled_linked_and_newest_builds(trunk):
    (broken,) = trunk.builds(trunk.dist.failing_package)
    lib1, lib2, lib3, lib4 = trunk.builds(History.LIB)
    plugin1, plugin2 = trunk.builds(History.PLUGIN)
    trunk.label("current-passed-ci", lib2)
    before = trunk.hash_dirs()

    code, out, _ = trunk.cli("purge", "--older-than", "7")

    assert code == 0, out
    assert before - trunk.hash_dirs() == {trunk.path(broken), trunk.path(lib3)}
    assert trunk.purged() == {broken, lib3}
    assert "removed 2 hash directories; marked 2 build(s) purged" in out
    assert all(trunk.path(i).is_dir() for i in (lib1, lib2, lib4, plugin1, plugin2))
    assert not dangling_links(trunk.repos)
    assert check_trunk(trunk.config()) == []
    assert trunk.cli("fsck")[0] == 0
    # Nothing more to do: a second purge changes nothing.
    state = tree_state(trunk)
    assert trunk.cli("purge", "--older-than", "7")[0] == 0
    assert tree_state(trunk) == state


@pytest.mark.slow
def test_links_keep_builds_from_kept_repositories_on_down(trunk):
    (broken,) = trunk.builds(trunk.dist.failing_package)
    lib1, lib2, lib3, lib4 = trunk.builds(History.LIB)
    plugin1, _ = trunk.builds(History.PLUGIN)
    # lib4 (newest of its package) was published while plugin1 was the plugin's newest, and
    # plugin1 while lib1 was the library's: lib4 -> plugin1 -> lib1, all three stay.
    assert any(str(trunk.path(plugin1).name) in os.readlink(p) for p in links(trunk.path(lib4)))
    assert any(str(trunk.path(lib1).name) in os.readlink(p) for p in links(trunk.path(plugin1)))

    code, out, _ = trunk.cli("purge", "--older-than", "7")

    assert code == 0, out
    assert trunk.purged() == {broken, lib2, lib3}
    assert trunk.path(plugin1).is_dir() and trunk.path(lib1).is_dir()
    assert not dangling_links(trunk.repos)
    assert check_trunk(trunk.config()) == []


@pytest.mark.slow
def test_a_promoted_build_stays(trunk):
    (broken,) = trunk.builds(trunk.dist.failing_package)
    _, lib2, lib3, _ = trunk.builds(History.LIB)
    trunk.sql(
        "insert into promotions (commit_id, promotion_name, timestamp) values (?, ?, 0)",
        lib3,
        "puppet-ci-testing",
    )
    assert trunk.cli("purge", "--older-than", "7")[0] == 0
    assert trunk.purged() == {broken, lib2}
    assert check_trunk(trunk.config()) == []


@pytest.mark.slow
def test_young_builds_stay(trunk):
    trunk.age(-25)  # everything built 5 days ago
    assert trunk.cli("purge", "--older-than", "7")[0] == 0
    assert trunk.purged() == set()


@pytest.mark.slow
def test_dry_run_changes_nothing_and_lists_with_verbose(trunk):
    lib2 = trunk.builds(History.LIB)[1]
    state = tree_state(trunk)
    code, out, _ = trunk.cli("purge", "--older-than", "7", "--dry-run", "-v", "--size")
    assert code == 0
    assert tree_state(trunk) == state
    assert f"repos/{trunk.path(lib2).relative_to(trunk.repos)}" in out.splitlines()
    assert "would remove 3 hash directories (" in out
    assert "would mark 3 build(s) purged" in out
    assert "newest good build of its package" in out


@pytest.mark.slow
def test_interrupted_purge_is_finished_by_the_next_one(trunk, monkeypatch):
    (broken,) = trunk.builds(trunk.dist.failing_package)
    doomed = {trunk.path(i) for i in (broken, *trunk.builds(History.LIB)[1:3])}
    calls = []

    def killed_on_the_second(parked: Path) -> None:
        calls.append(parked)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the process dies with a directory in the trash
        shutil.rmtree(parked)

    monkeypatch.setattr(purging, "_discard", killed_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        purge(trunk.config(), 7)
    monkeypatch.undo()

    assert len(trunk.purged()) == 3  # every row is marked before any directory goes
    assert sum(p.exists() for p in doomed) == 1
    messages = [p.message for p in check_trunk(trunk.config())]
    assert any("left by an interrupted purge" in m for m in messages)  # the trash
    assert any("a purge was interrupted" in m for m in messages)  # the journal
    assert any("marked purged but still present" in m for m in messages)

    code, out, _ = trunk.cli("purge", "--older-than", "7")
    assert code == 0, out
    assert "deleted 1 trash folder(s) of an interrupted purge" in out
    assert not any(p.exists() for p in doomed)
    assert not list(trunk.repos.glob(".trash-*"))
    assert check_trunk(trunk.config()) == []
    assert not dangling_links(trunk.repos)


@pytest.mark.slow
def test_a_package_dropped_from_metadata_is_purged_like_any_other(trunk):
    plugin1, plugin2 = trunk.builds(History.PLUGIN)
    metadata = trunk.dist.metadata
    document = yaml.safe_load(metadata.read_text())
    document["packages"] = [p for p in document["packages"] if p["project"] != "exampleplugin"]
    metadata.write_text(yaml.safe_dump(document))
    example.add_upstream_commit(trunk.root, "examplelib", "after the plugin left")
    trunk.cycle(History.LIB)
    newest_lib = trunk.builds(History.LIB)[-1]
    assert not any("exampleplugin" in p.name for p in trunk.path(newest_lib).iterdir())

    # Purge never reads metadata: the plugin's newest good build stays, as every package's
    # does, and the links from it keep lib4 and, through lib4, plugin1.
    assert trunk.cli("purge", "--older-than", "7")[0] == 0
    (broken,) = trunk.builds(trunk.dist.failing_package)
    _, lib2, lib3, *_ = trunk.builds(History.LIB)
    assert trunk.purged() == {broken, lib2, lib3}
    assert trunk.path(plugin2).is_dir() and trunk.path(plugin1).is_dir()
    assert not dangling_links(trunk.repos)
    assert check_trunk(trunk.config()) == []


@pytest.mark.slow
def test_fsck_reports_every_kind_of_mismatch(trunk):
    assert check_trunk(trunk.config()) == []
    repos = trunk.repos.resolve()
    (broken,) = trunk.builds(trunk.dist.failing_package)
    _, lib2, lib3, lib4 = trunk.builds(History.LIB)
    plugin2 = trunk.builds(History.PLUGIN)[-1]
    lib4_dir = trunk.path(lib4).resolve()
    shard = lib4_dir.parent

    (lib4_dir / "dangling.rpm").symlink_to("../../../00/00/nothing/here.rpm")
    (lib4_dir / "escaping.rpm").symlink_to("/etc/hostname")
    (repos / "outside").symlink_to("/tmp")
    (repos / "gone").symlink_to("00/00/" + "0" * 40)
    (repos / "shard-label").symlink_to(os.path.relpath(shard, repos))
    trunk.label("failed-label", broken)
    shutil.rmtree(trunk.path(lib2))
    # The newest build's RPM: no repository links to it yet, so it makes one problem only.
    plugin2_dir = trunk.path(plugin2).resolve()
    rpm = next(p for p in plugin2_dir.glob("*.noarch.rpm") if not p.is_symlink())
    rpm.unlink()
    trunk.sql("update commits set flags = 2 where id = ?", lib3)
    orphan = repos / "ab" / "cd" / ("abcd" + "0" * 36 + "_12345678")
    orphan.mkdir(parents=True)
    (shard / ".staging-x").mkdir()
    (shard / "stray-file").write_text("")
    (repos / ".publishing").write_text("{}")
    (repos / ".trash-99").mkdir()
    (repos / ".current.tmp99").symlink_to("current")

    code, out, _ = trunk.cli("fsck")
    assert code == 1
    lines = out.splitlines()
    expected = [
        (lib4_dir / "dangling.rpm", "dangling link"),
        (lib4_dir / "escaping.rpm", "link points outside repos/"),
        (repos / "outside", "label points outside repos/"),
        (repos / "gone", "dangling label"),
        (repos / "shard-label", "not at a hash directory"),
        (repos / "failed-label", "a build without a repository"),
        (trunk.path(lib2).resolve(), f"directory missing for SUCCESS commit {lib2}"),
        (rpm, f"artifact of commit {plugin2}"),
        (trunk.path(lib3).resolve(), f"marked purged but still present: commit {lib3}"),
        (orphan, "no row in the database (orphan)"),
        (shard / ".staging-x", "interrupted publish"),
        (shard / "stray-file", "unexpected entry"),
        (repos / ".publishing", "journal of an interrupted publish"),
        (repos / ".trash-99", "interrupted purge"),
        (repos / ".current.tmp99", "interrupted label move"),
    ]
    for path, message in expected:
        assert any(line.startswith(f"{path}: ") and message in line for line in lines), (
            path,
            message,
            out,
        )
    assert len(lines) == len(expected), out


def test_hardlinked_trunk_purges_old_builds_without_keeping_their_link_chain(tmp_path):
    """With symlinks, purge must keep every directory a kept repository links to, which
    reaches back through the history; hard links keep the files and free the directories."""
    import time as _time

    from tests.support import example

    from conveyor.assembly.builder import run_cycle
    from conveyor.config import RpmLinks
    from conveyor.retention import check_trunk, purge

    trunk = fresh_trunk(tmp_path / "dist")
    config = trunk.config(link_rpms=RpmLinks.HARDLINK)
    # Two packages are enough for a link chain: every python-examplelib repository holds the
    # plugin's RPMs, and the plugin's may hold the first python-examplelib's.
    two = CycleOptions(only=["python-examplelib", "python-exampleplugin"])
    run_cycle(config, two)
    for n in range(2):
        example.add_upstream_commit(trunk.root, "examplelib", f"change {n}")
        run_cycle(config, two)
    old_lib_dirs = sorted(trunk.repos.glob("??/??/*"))
    assert not [p for p in trunk.repos.rglob("*.rpm") if p.is_symlink()]
    report = purge(config, 1, now=int(_time.time()) + 3 * 86400)
    assert len(report.removed) >= 2  # the two older python-examplelib builds at least
    assert check_trunk(config) == []
    current = (trunk.repos / "current").resolve()
    for rpm in current.glob("*.rpm"):
        assert rpm.is_file()  # every repository still holds all its RPMs
    assert len(old_lib_dirs) > len(list(trunk.repos.glob("??/??/*")))


# --- bisections' step repositories ----------------------------------------------------------


def bisection_step(
    trunk: Synthetic, state: str, age_days: int, builds: tuple[Path, ...], pointer: bool
) -> Path:
    """A bisection in `state` whose one step repository links to the RPMs of `builds`."""
    when = NOW - age_days * DAY
    with trunk.db.transaction() as session:
        row = Bisection(
            job_id="job",
            good_ref="good",
            good_path="good",
            bad_ref="bad",
            bad_path="bad",
            state=state,
            plan="{}",
            created=when,
            updated=when,
        )
        session.add(row)
        session.flush()
        step_hash = hashlib.sha256(str(row.id).encode()).hexdigest()[:40]
        session.add(
            BisectStep(
                bisection_id=row.id,
                number=1,
                hash=step_hash,
                kind="package",
                position=1,
                builds="{}",
                created=when,
            )
        )
        bisection_id = row.id
    step = trunk.repos / "bisect" / step_hash[0:2] / step_hash[2:4] / step_hash
    (step / "repodata").mkdir(parents=True)
    for build in builds:
        for rpm in build.glob("*.rpm"):
            (step / rpm.name).symlink_to(os.path.relpath(rpm, step))
    if pointer:
        trunk.label(f"current-{bisection_id}", step, trunk.repos / "bisect")
    return step


def test_a_running_bisections_step_keeps_the_old_builds_it_links_to(synthetic):
    old = synthetic.build("lib")
    synthetic.build("lib")  # the newest good build: `old` is not
    step = bisection_step(synthetic, "running", 30, (old,), pointer=True)

    report = purge(synthetic.config, 7, now=NOW)

    assert report.removed == () and report.plan.kept == {KEPT_NEWEST_GOOD: 1, KEPT_LINKED: 1}
    assert all(rpm.resolve().is_file() for rpm in step.glob("*.rpm"))
    assert (synthetic.repos / "bisect" / "current-1").resolve() == step
    assert check_trunk(synthetic.config) == []


def test_an_ended_bisections_steps_go_once_old_and_a_dry_run_only_lists_them(synthetic):
    old = synthetic.build("lib")
    synthetic.build("lib")
    step = bisection_step(synthetic, "reset", 3, (old,), pointer=True)  # ended 3 days ago
    pointer = synthetic.repos / "bisect" / "current-1"  # left behind, as if by a crash

    young = purge(synthetic.config, 7, now=NOW)
    assert young.removed == () and step.is_dir()  # ended recently: stays, keeps `old`

    with synthetic.db.transaction() as session:
        session.get(Bisection, 1).updated = NOW - 10 * DAY
        session.get(BisectStep, 1).created = NOW - 10 * DAY
    rel = {str(p.relative_to(synthetic.repos)) for p in (old, step, pointer)}
    dry = purge(synthetic.config, 7, dry_run=True, now=NOW)
    assert set(dry.removed) == rel and dry.steps == 2 and dry.marked == 1
    assert summary(dry)[:2] == [
        "would remove 1 hash directory; would mark 1 build(s) purged",
        "would remove 2 step repositories and pointers of ended bisections",
    ]
    assert step.is_dir() and pointer.is_symlink() and old.is_dir()

    report = purge(synthetic.config, 7, now=NOW)
    assert set(report.removed) == rel
    assert not step.exists() and not pointer.is_symlink() and not old.exists()
    assert check_trunk(synthetic.config) == []


def test_a_concluded_bisection_does_not_free_a_running_ones_builds(synthetic):
    old = synthetic.build("lib")
    synthetic.build("lib")
    ended = bisection_step(synthetic, "concluded", 10, (old,), pointer=False)
    running = bisection_step(synthetic, "running", 10, (old,), pointer=True)

    report = purge(synthetic.config, 7, now=NOW)

    assert report.removed == (str(ended.relative_to(synthetic.repos)),)
    assert old.is_dir() and running.is_dir()
    assert check_trunk(synthetic.config) == []
