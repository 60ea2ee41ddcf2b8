"""DLRN's report files (report.html, status_report.html/.csv, queue.html): their content from
the database, their incremental update, escaping, atomic writes, and a real cycle."""

from __future__ import annotations

import csv
import re
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from markupsafe import escape
from tests.postgres_server import database_url, postgres  # noqa: F401 (fixtures)
from tests.support import Trunk, example, fresh_trunk

from conveyor.assembly.builder import run_cycle
from conveyor.config import Config
from conveyor.domain.builds import BuildJob, BuildTarget, Mirrors
from conveyor.domain.forge import commit_url
from conveyor.metadata.targets import load_targets
from conveyor.publish import files as report_files
from conveyor.reports import PendingBuilds, ReportsListener, write_queue
from conveyor.reports.render import STATUS_CSV_HEADER
from conveyor.reports.views import days_since
from conveyor.store.database import Database
from conveyor.store.models import Commit
from conveyor.store.package_status import record_build
from conveyor.trunk.cycle import CycleOptions, LoggingObserver
from conveyor.trunk.detect import Skipped

DAY = 86400
NOW = 1_800_000_000.0
needs_rpmbuild = pytest.mark.skipif(shutil.which("rpmbuild") is None, reason="no rpmbuild")


# --- helpers -------------------------------------------------------------------------------


def sha(n: int, salt: str = "c") -> str:
    """A 40-hex hash: `salt` (one hex digit) tells commit from distgit hashes apart."""
    return f"{salt}{n:039x}"


def target(name: str, upstream: str | None = None) -> BuildTarget:
    return BuildTarget(
        name=name,
        project=name,
        upstream=upstream or f"https://github.com/example/{name}.git",
        distgit=f"https://github.com/example/{name}-distgit",
        source_branch="master",
        distro_branch="rpm-master",
        distgit_path=None,
        component=None,
        maintainers=(),
        under_review=False,
    )


class History:
    """A database written the way the publisher writes it: a row and its package summary."""

    def __init__(self, config: Config) -> None:
        self.db = Database(config.database_url)
        self.count = 0

    def record(
        self, project: str, status: str, *, at: float, notes: str = "", commit_hash: str = ""
    ) -> Commit:
        self.count += 1
        commit_hash = commit_hash or sha(self.count)
        distro = sha(self.count, "d")
        artifacts = None
        if status == "SUCCESS":
            base = f"repos/{commit_hash[:2]}/{commit_hash[2:4]}/{commit_hash}_{distro[:8]}"
            nvr = f"{project}-1.0.{self.count}-0.1.{commit_hash[:7]}"
            artifacts = f"{base}/{nvr}.src.rpm,{base}/{nvr}.noarch.rpm"
        with self.db.transaction() as session:
            commit = Commit(
                type="rpm",
                dt_commit=int(at) - 60,
                dt_build=int(at),
                project_name=project,
                commit_hash=commit_hash,
                distro_hash=distro,
                status=status,
                artifacts=artifacts,
                notes=notes or ("OK" if status == "SUCCESS" else "build failed"),
                flags=0,
            )
            session.add(commit)
            session.flush()
            record_build(session, commit)
        return commit


@pytest.fixture
def config(tmp_path: Path, database_url: str) -> Config:  # noqa: F811
    """A builder on SQLite, then on PostgreSQL."""
    return Config(datadir=tmp_path / "data", project_name="RDO", database=database_url)


@pytest.fixture
def history(config: Config):
    history = History(config)
    yield history
    history.db.close()


def listener_for(config: Config, history: History, now: float = NOW) -> ReportsListener:
    return ReportsListener(config, history.db, clock=lambda: now)


def status_csv(config: Config) -> dict[str, dict[str, str]]:
    text = (config.repos_dir / "status_report.csv").read_text()
    table = list(csv.DictReader(text.splitlines()))
    return {row["Project"]: row for row in table}


def table_rows(page: str) -> list[str]:
    return re.findall(r"<tr[ >].*?</tr>", page.split("<tbody>", 1)[1], re.DOTALL)


def read(config: Config, name: str) -> str:
    return (config.repos_dir / name).read_text()


# --- links and days ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("upstream", "expected"),
    [
        ("https://github.com/openstack/nova.git", "https://github.com/openstack/nova/commit/{}"),
        ("git://github.com/openstack/nova", "https://github.com/openstack/nova/commit/{}"),
        ("git@github.com:openstack/nova.git", "https://github.com/openstack/nova/commit/{}"),
        ("https://opendev.org/openstack/nova", "https://opendev.org/openstack/nova/commit/{}"),
        ("https://gitlab.com/group/sub/pkg.git", "https://gitlab.com/group/sub/pkg/-/commit/{}"),
        (
            "https://gitlab.example.org/group/pkg/",
            "https://gitlab.example.org/group/pkg/-/commit/{}",
        ),
        (
            "https://git.openstack.org/openstack/nova",
            "http://git.openstack.org/cgit/openstack/nova/commit/?id={}",
        ),
        ("file:///srv/upstream/nova", None),
        ("https://example.org/nova.git", None),
        ("https://github.com/", None),
        ("", None),
    ],
)
def test_commit_links_follow_the_forge(upstream: str, expected: str | None) -> None:
    commit = sha(1)
    assert commit_url(upstream, commit) == (expected.format(commit) if expected else None)


def test_commit_link_refuses_what_would_leave_the_path() -> None:
    assert commit_url('https://github.com/org/x"><script>alert(1)</script>', sha(1)) is None


def test_days_since_last_success_round_down_like_dlrn() -> None:
    assert days_since(NOW, int(NOW - 3.9 * DAY)) == 3
    assert days_since(NOW, int(NOW - 10)) == 0


# --- atomic writes -------------------------------------------------------------------------


def test_report_files_are_replaced_by_rename_world_readable(tmp_path: Path) -> None:
    path = tmp_path / "repos" / "report.html"
    report_files.write_atomic(path, "first")
    inode = path.stat().st_ino
    report_files.write_atomic(path, "second")
    assert path.read_text() == "second"
    assert path.stat().st_ino != inode  # a new file renamed over the old one
    assert path.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]  # no temporary left


def test_a_failed_write_leaves_the_old_file_whole(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "status_report.csv"
    report_files.write_atomic(path, "old\n")

    def refuse(self: Path, target: Path) -> Path:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "replace", refuse)
    with pytest.raises(OSError):
        report_files.write_atomic(path, "new\n" * 1000)
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["status_report.csv"]


def test_a_reader_never_sees_a_partial_file(tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    versions = ["a" * 2_000_000, "b" * 1_500_000]
    report_files.write_atomic(path, versions[0])
    seen: set[str] = set()
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            seen.add(path.read_text())

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(40):
            report_files.write_atomic(path, versions[i % 2])
    finally:
        done.set()
        thread.join()
    assert seen <= set(versions)


# --- content from the database -------------------------------------------------------------


@pytest.fixture
def packages(config: Config, history: History) -> list[BuildTarget]:
    """ok builds; failing built once then failed twice; never only failed; retrying waits for
    a retry; removed has builds but left the package list."""
    history.record("removed", "SUCCESS", at=NOW - 9 * DAY)
    history.record("ok", "FAILED", at=NOW - 8 * DAY)
    history.record("ok", "SUCCESS", at=NOW - 7 * DAY)
    history.record("failing", "SUCCESS", at=NOW - 3.5 * DAY)
    history.record("failing", "FAILED", at=NOW - 3 * DAY)
    history.record("failing", "FAILED", at=NOW - 2 * DAY)
    history.record("never", "FAILED", at=NOW - DAY)
    history.record("retrying", "SUCCESS", at=NOW - DAY)
    history.record("retrying", "RETRY", at=NOW - 0.5 * DAY)
    return [target(n) for n in ("ok", "failing", "never", "retrying", "unbuilt")]


def test_status_report_csv_follows_dlrn(config, history, packages) -> None:
    listener = listener_for(config, history)
    listener.cycle_started(packages, [])
    text = read(config, "status_report.csv")
    assert text.splitlines()[0] == ",".join(STATUS_CSV_HEADER)
    dlrn = "Project,Source Sha,Dist Sha,Extended Sha,Component,Status,Timestamp,Packages"
    assert ",".join(STATUS_CSV_HEADER[:8]) == dlrn  # DLRN's columns first, in its order
    rows = status_csv(config)
    # The package list's packages that have a build, by name; "removed" left the list.
    assert list(rows) == ["failing", "never", "ok", "retrying"]
    ok = rows["ok"]
    assert (ok["Status"], ok["First Failure Sha"], ok["Days Since Last Success"]) == (
        "SUCCESS",
        "",
        "",
    )
    assert ok["Source Sha"] == sha(3) and ok["Dist Sha"] == sha(3, "d")
    assert ok["Pkg NVR"] == f"ok-1.0.3-0.1.{sha(3)[:7]}"
    assert ok["Packages"].count("|") == 1 and ok["Packages"].endswith(".noarch.rpm")
    assert (ok["Extended Sha"], ok["Component"]) == ("None", "None")  # as DLRN prints them
    assert ok["Timestamp"] == str(int(NOW - 7 * DAY))
    failing = rows["failing"]
    assert failing["Status"] == "FAILED"
    assert failing["First Failure Sha"] == sha(5)  # the first failure, not the newest
    assert failing["Days Since Last Success"] == "3"
    assert (failing["Pkg NVR"], failing["Packages"]) == ("", "None")
    never = rows["never"]
    assert (never["Status"], never["First Failure Sha"]) == ("FAILED", sha(7))
    assert never["Days Since Last Success"] == "Never"
    assert rows["retrying"]["Status"] == "RETRY"


def test_status_report_html_shows_the_same(config, history, packages) -> None:
    listener_for(config, history).cycle_started(packages, [])
    page = read(config, "status_report.html")
    rows = {re.search(r"<td>([^<]*)</td>", r)[1]: r for r in table_rows(page)}
    assert list(rows) == ["failing", "never", "ok", "retrying"]
    failing = rows["failing"]
    assert 'class="failure"' in failing and "3 days" in failing
    log = f"{sha(6)[:2]}/{sha(6)[2:4]}/{sha(6)}_{sha(6, 'd')[:8]}/rpmbuild.log"
    assert f'<a href="{log}">FAILED</a>' in failing  # the last build's log
    first = f"https://github.com/example/failing/commit/{sha(5)}"
    assert f'<a href="{first}">{sha(5)}</a>' in failing
    assert "Never" in rows["never"]
    assert 'class="retry"' in rows["retrying"]
    assert "class=" not in rows["ok"].split(">", 1)[0] and "days" not in rows["ok"]
    assert 'title="build failed"' in failing  # the failure's note as a tooltip


def test_report_html_lists_the_newest_builds_without_retries(config, history, packages) -> None:
    listener_for(config, history).cycle_started(packages, [])
    rows = table_rows(read(config, "report.html"))
    assert len(rows) == 8  # nine builds, one RETRY
    # Newest first, every project of the history, listed or not.
    assert ">retrying<" in rows[0] and ">never<" in rows[1] and ">removed<" in rows[-1]
    c, d = sha(7), sha(7, "d")
    relpath = f"{c[:2]}/{c[2:4]}/{c}_{d[:8]}"
    assert f'<a href="{relpath}">repo</a>' in rows[1]
    assert f'<a href="{relpath}/rpmbuild.log">build log</a>' in rows[1]
    assert f'<a href="https://github.com/example/never/commit/{c}">{c}</a>' in rows[1]
    assert 'class="failure"' in rows[1] and "class=" not in rows[0].split(">", 1)[0]
    assert "RETRY" not in "".join(rows)


def test_report_html_is_capped_at_300_builds(config, history) -> None:
    for i in range(305):
        history.record("busy", "SUCCESS", at=NOW - 1000 + i)
    listener_for(config, history).cycle_started([target("busy")], [])
    rows = table_rows(read(config, "report.html"))
    assert len(rows) == 300 and sha(305) in rows[0] and sha(6) in rows[-1]


def test_incremental_update_matches_a_fresh_process(config, history, packages) -> None:
    """The long-lived listener keeps rendered rows; a fresh one renders everything. Builds
    recorded by someone else (a remote import) must show up all the same."""
    kept = listener_for(config, history)
    kept.cycle_started(packages, [])
    names = ("failing", "ok", "never", "retrying")
    for i, status in enumerate(("SUCCESS", "FAILED", "SUCCESS", "FAILED", "RETRY", "SUCCESS")):
        commit = history.record(names[i % 4], status, at=NOW - 100 + i)
        if i % 3 != 2:  # every third build is recorded by another process
            kept.published(commit, target(commit.project_name))
    kept.update()
    snapshot = {n: read(config, n) for n in ("report.html", "status_report.html")}
    snapshot["status_report.csv"] = read(config, "status_report.csv")
    fresh = listener_for(config, history)
    fresh.cycle_started(packages, [])
    for name, text in snapshot.items():
        assert read(config, name) == text, name


def test_days_move_with_the_date_without_a_build(config, history, packages) -> None:
    now = [NOW]
    listener = ReportsListener(config, history.db, clock=lambda: now[0])
    listener.cycle_started(packages, [])
    assert status_csv(config)["failing"]["Days Since Last Success"] == "3"
    now[0] += 2 * DAY
    listener.update()
    assert status_csv(config)["failing"]["Days Since Last Success"] == "5"


def test_everything_from_the_database_is_escaped(config, history) -> None:
    evil = '"><script>alert(1)</script>'
    listed = target("pkg", upstream=f"https://github.com/org/x{evil}")
    history.record("pkg", "FAILED", at=NOW - 10, notes=f"error {evil} & more")
    history.record(f"imported{evil}", "FAILED", at=NOW - 5, commit_hash=f"<img src=x>{evil}")
    listener = listener_for(config, history)
    listener.cycle_started([listed, target(f"imported{evil}")], [])
    for name in ("report.html", "status_report.html"):
        page = read(config, name)
        assert "<script>" not in page and "<img" not in page, name
        assert escape(evil) in page, name  # shown, as text
    status = read(config, "status_report.html")
    assert f'title="error {escape(evil)} &amp; more"' in status
    # A hash no directory can exist for gets no repository link.
    assert 'href="<' not in read(config, "report.html")
    rows = status_csv(config)
    assert rows[f"imported{evil}"]["Source Sha"] == f"<img src=x>{evil}"  # CSV quoting, intact


def test_pages_load_nothing_from_elsewhere(config, history, packages) -> None:
    listener_for(config, history).cycle_started(packages, [])
    for name in ("report.html", "status_report.html", "queue.html"):
        page = read(config, name)
        assets = re.findall(r'<(?:script|link)[^>]*(?:src|href)="([^"]+)"', page)
        assert set(assets) == {"styles.css", "sortable.js"}, name
        assert "@import" not in page and "cdn" not in page.lower()
    for asset in ("styles.css", "sortable.js"):
        text = read(config, asset)
        assert "http" not in text and "@import" not in text


def test_write_failures_do_not_stop_the_cycle(config, history, packages, caplog) -> None:
    listener = listener_for(config, history)
    listener.cycle_started(packages, [])
    shutil.rmtree(config.repos_dir)
    config.repos_dir.write_text("not a directory")
    commit = history.record("ok", "SUCCESS", at=NOW)
    listener.published(commit, target("ok"))  # logged, not raised
    assert "reports not updated" in caplog.text


# --- queue ---------------------------------------------------------------------------------


def job(name: str, n: int, dt_commit: int) -> BuildJob:
    mirrors = Mirrors(Path("/nonexistent"), Path("/nonexistent"))
    return BuildJob(target(name), mirrors, sha(n), dt_commit, "master", sha(n, "d"), 0)


def test_queue_lists_jobs_until_recorded_and_keeps_retries(config, history) -> None:
    jobs = [job("alpha", 1, 100), job("beta", 2, 300), job("gamma", 3, 200)]
    write_queue(config, jobs)
    rows = table_rows(read(config, "queue.html"))
    assert [re.findall(r"<td>([a-z]+)</td>", r)[0] for r in rows] == ["beta", "gamma", "alpha"]
    pending = PendingBuilds(jobs)
    for name, n, status in (("beta", 2, "RETRY"), ("gamma", 3, "FAILED")):
        done = Commit(project_name=name, commit_hash=sha(n), distro_hash=sha(n, "d"))
        done.status = status
        pending.recorded(done)
    assert len(pending.rows()) == 2  # beta waits for its retry, as in DLRN


# --- a real cycle --------------------------------------------------------------------------


class WiredListener(ReportsListener):
    """Keeps a copy of queue.html after every build, to see the queue drain."""

    queues: list[str]

    def published(self, commit: Commit, target: BuildTarget) -> None:
        super().published(commit, target)
        self.queues.append(read(self.config, "queue.html"))


class WiringObserver(LoggingObserver):
    """What the cycle's wiring does: hand the package list and the jobs to the reports."""

    def __init__(self, reports: ReportsListener, config: Config) -> None:
        self.reports, self.config = reports, config

    def detected(self, jobs: Sequence[BuildJob], skipped: Sequence[Skipped]) -> None:
        self.reports.cycle_started(load_targets(self.config), jobs)


def run_reported(trunk: Trunk) -> WiredListener:
    config = trunk.config()
    reports = WiredListener(config)
    reports.queues = []
    try:
        run_cycle(config, CycleOptions(listeners=[reports]), WiringObserver(reports, config))
    finally:
        reports.close()
    return reports


@dataclass(frozen=True)
class Cycles:
    trunk: Trunk
    first: WiredListener
    before: dict[str, str]  # the reports after the first cycle
    after: dict[str, str]  # and after the second


@pytest.fixture(scope="module")
def cycles(tmp_path_factory) -> Cycles:
    """Two cycles of the example distribution: the first (example-broken fails), then one
    after its distgit fix."""
    trunk = fresh_trunk(tmp_path_factory.mktemp("reports") / "dist")
    names = ("report.html", "status_report.html", "status_report.csv", "queue.html")
    first = run_reported(trunk)
    before = {n: (trunk.repos / n).read_text() for n in names}
    example.fix_broken_package(trunk.root)
    run_reported(trunk)
    after = {n: (trunk.repos / n).read_text() for n in names}
    return Cycles(trunk, first, before, after)


@needs_rpmbuild
@pytest.mark.slow
def test_cycle_reports_every_build_with_working_links(cycles) -> None:
    trunk = cycles.trunk
    rows = table_rows(cycles.before["report.html"])
    assert len(rows) == len(trunk.dist.packages)
    for row in rows:
        repo, log = re.findall(r'href="([^"]+)"', row)
        assert (trunk.repos / repo).is_dir() and (trunk.repos / log).is_file()
        assert log == f"{repo}/rpmbuild.log"
        commit = re.search(r'<td class="commit">([0-9a-f]{40})</td>', row)
        assert commit, "file:// upstreams: the bare hash, no link"
        assert repo.split("/")[-1].startswith(commit[1])
    failing = [r for r in rows if trunk.dist.failing_package in r]
    assert len(failing) == 1 and 'class="failure"' in failing[0]


@needs_rpmbuild
@pytest.mark.slow
def test_cycle_status_report_then_fixed(cycles) -> None:
    trunk = cycles.trunk
    broken = trunk.dist.failing_package

    def table(text: str) -> dict[str, dict[str, str]]:
        return {r["Project"]: r for r in csv.DictReader(text.splitlines())}

    before = table(cycles.before["status_report.csv"])
    assert sorted(before) == sorted(trunk.dist.packages)
    row = before[broken]
    assert (row["Status"], row["Days Since Last Success"], row["Pkg NVR"]) == (
        "FAILED",
        "Never",
        "",
    )
    assert row["First Failure Sha"] == row["Source Sha"]
    for name, row in before.items():
        if name != broken:
            assert row["Status"] == "SUCCESS" and row["First Failure Sha"] == ""
            assert row["Pkg NVR"].startswith(f"{name}-")
            # Release 0.<date>.<sha7>, then the dist tag
            assert row["Pkg NVR"].endswith(f".{row['Source Sha'][:7]}.el9")
    after = table(cycles.after["status_report.csv"])
    fixed = after[broken]
    assert (fixed["Status"], fixed["First Failure Sha"], fixed["Days Since Last Success"]) == (
        "SUCCESS",
        "",
        "",
    )
    assert fixed["Pkg NVR"].startswith(f"{broken}-")
    page = cycles.after["status_report.html"]
    assert "Never" not in page and 'class="failure"' not in page
    newest = table_rows(cycles.after["report.html"])[0]
    assert f"<td>{broken}</td>" in newest and "SUCCESS" in newest


@needs_rpmbuild
@pytest.mark.slow
def test_cycle_queue_drains_build_by_build(cycles) -> None:
    trunk = cycles.trunk
    counts = [len(table_rows(q)) for q in cycles.first.queues]
    total = len(trunk.dist.packages)
    assert counts == list(range(total - 1, -1, -1))
    assert table_rows(cycles.after["queue.html"]) == []
    assert (trunk.repos / "styles.css").is_file() and (trunk.repos / "sortable.js").is_file()
    assert not list(trunk.repos.glob(".*.tmp"))


def test_package_removed_from_the_list_leaves_the_status_report(config, history) -> None:
    history.record("kept", "SUCCESS", at=NOW - 20)
    history.record("dropped", "FAILED", at=NOW - 10)
    listener = listener_for(config, history)
    listener.cycle_started([target("kept"), target("dropped")], [])
    assert list(status_csv(config)) == ["dropped", "kept"]
    listener.cycle_started([target("kept")], [])  # the next cycle's metadata lost it
    assert list(status_csv(config)) == ["kept"]
    assert ">dropped<" in read(config, "report.html")  # its builds stay in the history
