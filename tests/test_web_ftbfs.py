"""The FTBFS page and its Atom feed: on a real trunk run of the example distribution
(example-broken fails on purpose), and the feed's failures and fixes on built histories."""

from __future__ import annotations

import html
import random
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from xml.etree import ElementTree

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert
from tests.support import Trunk, built_example, default_first_cycle

from conveyor.api import create_app
from conveyor.config import Config
from conveyor.reports.dashboard import PackageInfo, PackageList
from conveyor.reports.ftbfs import Transition, transitions
from conveyor.reports.queries import BuildRecord
from conveyor.store.database import Database
from conveyor.store.models import FLAG_RECHECKED, Commit
from conveyor.store.package_status import rebuild_package_status
from conveyor.web.pages.ftbfs import atom_feed

ATOM = "{http://www.w3.org/2005/Atom}"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@dataclass
class Site:
    trunk: Trunk
    config: Config
    client: TestClient


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    if shutil.which("rpmbuild") is None:
        pytest.skip("rpmbuild is not installed")
    trunk = built_example("default", default_first_cycle).shared()
    config = trunk.config()
    with TestClient(create_app(config)) as client:
        yield Site(trunk, config, client)


def rows_of(page: str, table_id: str) -> list[str]:
    start = page.index(f'id="{table_id}"')
    body = page[page.index("<tbody>", start) : page.index("</tbody>", start)]
    return re.findall(r"<tr.*?</tr>", body, flags=re.S)


def text(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def check_atom(document: bytes) -> ElementTree.Element:
    """The feed parsed, with what RFC 4287 requires of a feed and of each entry."""
    feed = ElementTree.fromstring(document)
    assert feed.tag == f"{ATOM}feed"
    for required in ("id", "title", "updated", "author"):
        assert feed.find(f"{ATOM}{required}") is not None, required
    assert RFC3339.match(feed.findtext(f"{ATOM}updated") or "")
    ids = []
    for entry in feed.findall(f"{ATOM}entry"):
        for required in ("id", "title", "updated", "link", "content"):
            assert entry.find(f"{ATOM}{required}") is not None, required
        assert RFC3339.match(entry.findtext(f"{ATOM}updated") or "")
        ids.append(entry.findtext(f"{ATOM}id"))
    assert len(ids) == len(set(ids))
    return feed


# --- on the example distribution -----------------------------------------------------------


@pytest.mark.slow
def test_the_ftbfs_page_shows_the_failing_package_its_excerpt_and_its_log(site: Site) -> None:
    response = site.client.get("/ftbfs")
    assert response.status_code == 200
    page = response.text
    assert '<a href="/ftbfs" aria-current="page">FTBFS</a>' in page
    assert '<input class="filter" type="search" data-filter="#ftbfs-table"' in page
    (row,) = rows_of(page, "ftbfs-table")
    _, commit_hash, distro_hash, *_ = site.trunk.newest("example-broken")
    repo = f"{commit_hash[:2]}/{commit_hash[2:4]}/{commit_hash}_{distro_hash[:8]}"
    assert '<a href="/package/example-broken">example-broken</a>' in row
    assert f'<span class="hash">{commit_hash[:12]}</span>' in row  # file:// upstream: no link
    assert "never succeeded" in text(row)
    assert "dave@example.org" in row
    assert f'<a href="/repos/{repo}/rpmbuild.log">rpmbuild.log</a>' in row
    assert f'<a href="/view/{repo}/rpmbuild.log">view</a>' in row
    # The excerpt: the build's notes, the failure lines highlighted.
    assert "example-broken: failing on purpose" in row
    assert re.search(r'<span class="hit">error: Bad exit status from [^<]+\(%build\)</span>', row)
    assert "<summary>error: Bad exit status" in row
    log = site.client.get(f"/repos/{repo}/rpmbuild.log")
    assert log.status_code == 200
    assert "failing on purpose" in log.text
    for name in ("python-examplelib", "examplecli"):
        assert f"/package/{name}" not in page
    assert "does not record a review or an issue" in page


@pytest.mark.slow
def test_the_feed_is_atom_and_lists_the_failure(site: Site) -> None:
    response = site.client.get("/ftbfs.atom")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/atom+xml")
    feed = check_atom(response.content)
    assert feed.findtext(f"{ATOM}id") == "http://testserver/ftbfs.atom"
    (entry,) = feed.findall(f"{ATOM}entry")
    _, commit_hash, *_ = site.trunk.newest("example-broken")
    assert entry.findtext(f"{ATOM}title") == f"example-broken failed to build ({commit_hash[:8]})"
    links = {link.get("rel"): link.get("href") for link in entry.findall(f"{ATOM}link")}
    assert links["alternate"] == "http://testserver/package/example-broken"
    assert links["related"].startswith(f"http://testserver/repos/{commit_hash[:2]}/")
    assert links["related"].endswith("/rpmbuild.log")
    assert site.client.get(links["related"]).status_code == 200
    content = entry.findtext(f"{ATOM}content") or ""
    assert f"commit {commit_hash}" in content
    assert "its first build" in content
    assert "maintainers: dave@example.org" in content
    assert feed.findtext(f"{ATOM}updated") == entry.findtext(f"{ATOM}updated")


# --- failures and fixes on built histories ---------------------------------------------------


def history(path: Path, builds: list[tuple[str, str, int]]) -> Database:
    """A database holding `builds` (package, status, flags) in order, ids from 1, with
    `package_status` rebuilt from them as a migration does."""
    db = Database(f"sqlite:///{path}")
    rows = [
        {
            "type": "rpm",
            "project_name": package,
            "commit_hash": f"{number:040x}",
            "distro_hash": "d" * 40,
            "status": status,
            "dt_build": 1_700_000_000 + number * 60,
            "dt_commit": 1_700_000_000,
            "notes": "OK" if status == "SUCCESS" else "error: <b>broken</b> & gone\x1b[31m",
            "flags": flags,
        }
        for number, (package, status, flags) in enumerate(builds)
    ]
    with db.engine.begin() as connection:
        connection.execute(insert(Commit), rows)
        rebuild_package_status(connection)
    return db


def brute_force(builds: list[tuple[str, str, int]]) -> list[tuple[int, int | None]]:
    """Every failure and fix of `builds` (their 1-based ids), newest first."""
    previous: dict[str, tuple[int, str]] = {}
    events = []
    for number, (package, status, flags) in enumerate(builds, start=1):
        if status == "RETRY" or flags & FLAG_RECHECKED:
            continue
        before = previous.get(package)
        if status == "FAILED" and (before is None or before[1] == "SUCCESS"):
            events.append((number, before[0] if before else None))
        elif status == "SUCCESS" and before is not None and before[1] == "FAILED":
            events.append((number, before[0]))
        previous[package] = (number, status)
    return events[::-1]


def test_failures_and_fixes_skip_retries_and_rechecked_builds(tmp_path: Path) -> None:
    builds = [
        ("a", "SUCCESS", 0),  # 1
        ("b", "FAILED", 0),  # 2: b's first build fails: a failure
        ("a", "FAILED", 0),  # 3: a failure
        ("a", "RETRY", 0),  # 4: not counted
        ("a", "FAILED", 0),  # 5: still failing: nothing
        ("c", "SUCCESS", 0),  # 6: a first success is no event
        ("a", "SUCCESS", 0),  # 7: fixed (after 5)
        ("c", "FAILED", FLAG_RECHECKED),  # 8: set aside by a recheck
        ("c", "SUCCESS", 0),  # 9: nothing (8 does not count)
        ("b", "SUCCESS", 0),  # 10: fixed (after 2)
    ]
    db = history(tmp_path / "commits.sqlite", builds)
    try:
        with db.engine.connect() as connection:
            found = transitions(connection)
            events = [(e.build.id, e.previous.id if e.previous else None) for e in found]
            assert events == [(10, 2), (7, 5), (3, 1), (2, None)]
            assert [e.fixed for e in found] == [True, True, False, False]
            assert found[0].build.project == "b"
            tenth = f"{9:040x}"
            assert found[0].repo == f"{tenth[:2]}/{tenth[2:4]}/{tenth}_dddddddd"
            assert [(e.build.id) for e in transitions(connection, limit=2)] == [10, 7]
    finally:
        db.close()


@dataclass
class History:
    builds: list[tuple[str, str, int]]
    db: Database


@pytest.fixture(scope="module")
def busy_history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    """Some packages build often, some rarely (their previous build lies far back), with
    retries and rechecks."""
    rng = random.Random(14)
    packages = [f"p{i}" for i in range(25)]
    weights = [50 if i < 5 else 1 for i in range(25)]
    builds = []
    for _ in range(1500):
        status = rng.choices(["SUCCESS", "FAILED", "RETRY"], [70, 20, 10])[0]
        flags = FLAG_RECHECKED if rng.random() < 0.03 else 0
        builds.append((rng.choices(packages, weights)[0], status, flags))
    db = history(tmp_path_factory.mktemp("busy") / "commits.sqlite", builds)
    try:
        yield History(builds, db)
    finally:
        db.close()


@pytest.mark.parametrize(
    ("limit", "batch", "scan_limit"),
    [(100, 500, 100_000), (30, 7, 100_000), (30, 5, 40), (1000, 3, 100_000), (1, 1, 1)],
)
def test_the_walk_finds_the_newest_events_whatever_its_batches(
    busy_history: History, limit: int, batch: int, scan_limit: int
) -> None:
    """Against a brute force over the whole history."""
    with busy_history.db.engine.connect() as connection:
        found = transitions(connection, limit, batch, scan_limit)
    got = [(e.build.id, e.previous.id if e.previous else None) for e in found]
    expected = brute_force(busy_history.builds)
    if scan_limit >= len(busy_history.builds):
        assert got == expected[:limit]
    else:
        # A walk cut short knows every event at the builds it read, and those at each
        # package's oldest build read (its previous build is asked for): all of them newer
        # than the oldest build read, and none of those is missing.
        oldest = min(build for build, _ in got) if got else len(busy_history.builds) + 1
        assert got == [e for e in expected if e[0] >= oldest][:limit]


def test_a_feed_with_hostile_text_stays_valid_atom() -> None:
    hostile = '<script>alert("x")</script> & \x01\x1b]0;'
    packages = PackageList(
        {
            "pkg": PackageInfo(
                name="pkg",
                upstream="https://github.com/org/pkg",
                maintainers=(hostile,),
                component=None,
                under_review=False,
            )
        }
    )
    build = BuildRecord(7, "pkg", "a" * 40, "b" * 40, None, None, "FAILED", 1, 1_700_000_000)
    config = Config(datadir=Path("/nonexistent"), baseurl="http://example.com/repos")
    document = atom_feed(config, packages, [Transition(build, None)], "http://host", time.time())
    feed = check_atom(document)
    entry = feed.find(f"{ATOM}entry")
    assert entry is not None
    content = entry.findtext(f"{ATOM}content") or ""
    assert '<script>alert("x")</script> & \ufffd\ufffd]0;' in content
    assert f"https://github.com/org/pkg/commit/{'a' * 40}" in content
    assert entry.findtext(f"{ATOM}updated") == "2023-11-14T22:13:20Z"
    assert datetime.fromisoformat(entry.findtext(f"{ATOM}updated") or "").year == 2023


def test_the_ftbfs_page_escapes_notes_and_says_when_the_metadata_is_missing(
    tmp_path: Path,
) -> None:
    datadir = tmp_path / "data"
    datadir.mkdir()
    history(datadir / "commits.sqlite", [("pkg", "SUCCESS", 0), ("pkg", "FAILED", 0)]).close()
    config = Config(
        datadir=datadir,
        baseurl="http://example.com/repos",
        metadata={"path": tmp_path / "missing-rdoinfo"},
    )
    with TestClient(create_app(config)) as client:
        page = client.get("/ftbfs").text
        (row,) = rows_of(page, "ftbfs-table")
        assert "<b>broken</b>" not in row
        assert (
            '<span class="hit">error: &lt;b&gt;broken&lt;/b&gt; &amp; gone\ufffd[31m</span>' in row
        )
        assert "Maintainers unknown: the metadata is not readable" in page
        assert re.search(r"\d+ d since the last success", text(row))
        feed = check_atom(client.get("/ftbfs.atom").content)
        titles = [e.findtext(f"{ATOM}title") for e in feed.findall(f"{ATOM}entry")]
        assert titles == ["pkg failed to build (00000000)"]
