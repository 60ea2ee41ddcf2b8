"""The dashboard's trunk page, package pages and search box, on a real trunk run of the
example distribution (eight packages, example-broken failing on purpose)."""

from __future__ import annotations

import html
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.support import Trunk, built_example, default_first_cycle

from conveyor.api import create_app
from conveyor.config import Config
from conveyor.domain.builds import BuildJob, Mirrors
from conveyor.metadata.targets import load_targets
from conveyor.promote.labels import promote_label
from conveyor.reports.dashboard import labels, queue
from conveyor.reports.queue import write_queue
from conveyor.store.database import Database

PACKAGES = (
    "example-broken",
    "examplecli",
    "openstack-exampledashboard",
    "openstack-exampleservice",
    "python-example-config",
    "python-exampleclient",
    "python-examplelib",
    "python-exampleplugin",
)


@dataclass
class Site:
    trunk: Trunk
    config: Config
    client: TestClient


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    if shutil.which("rpmbuild") is None:
        pytest.skip("rpmbuild is not installed")
    with built_example("default", default_first_cycle).changed() as trunk:
        config = trunk.config()
        db = Database(config.database_url)
        try:
            # A promotion label, moved twice: it has a `previous-` label too.
            first = trunk.newest("python-examplelib")[5]
            second = trunk.newest("python-exampleplugin")[5]
            promote_label(config, db, first, "current-passed-ci")
            promote_label(config, db, second, "current-passed-ci")
        finally:
            db.close()
        with TestClient(create_app(config)) as client:
            yield Site(trunk, config, client)


def table(page: str, table_id: str) -> list[str]:
    """The body rows of the table `table_id`, as HTML."""
    start = page.index(f'id="{table_id}"')
    body = page[page.index("<tbody>", start) : page.index("</tbody>", start)]
    return re.findall(r"<tr.*?</tr>", body, flags=re.S)


def text(fragment: str) -> str:
    """What a person reads in `fragment`: tags dropped, entities decoded, spaces folded."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def relpath(trunk: Trunk, package: str) -> str:
    _, commit_hash, distro_hash, *_ = trunk.newest(package)
    return f"{commit_hash[:2]}/{commit_hash[2:4]}/{commit_hash}_{distro_hash[:8]}"


@pytest.mark.slow
def test_the_trunk_page_shows_the_builder_its_labels_and_every_package(site: Site) -> None:
    response = site.client.get("/")
    assert response.status_code == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page = response.text
    assert '<a href="/" aria-current="page">Trunk</a>' in page
    assert "<title>Trunk: RDO master · conveyor</title>" in page
    builder = text(page[page.index('<dl class="builder">') : page.index("</dl>")])
    assert "Project RDO" in builder
    assert "Repository name delorean" in builder
    assert "Source branch master" in builder
    assert f"Base URL {site.config.baseurl}" in builder
    assert "8 built, 8 in the metadata" in builder

    labels = {text(row).split()[0]: row for row in table(page, "label-table")}
    assert list(labels) == ["current", "current-passed-ci", "previous-current-passed-ci"]
    current = os.readlink(site.config.repos_dir / "current")
    assert (
        f'<a class="hash" href="/repos/{current}/" title="{current.split("/")[-1]}">'
        in (labels["current"])
    )
    assert '<a href="/repos/current/">current</a>' in labels["current"]
    assert "/diff?" not in labels["current"]  # no diff of current against itself
    promoted = labels["current-passed-ci"]
    assert f'href="/repos/{relpath(site.trunk, "python-exampleplugin")}/"' in promoted
    assert '<a href="/package/python-exampleplugin">python-exampleplugin</a>' in promoted
    assert 'href="/diff?from=current-passed-ci&amp;to=current"' in promoted
    assert re.search(r"<td[^>]*>\d+ s</td>", promoted)  # moved seconds ago
    previous = labels["previous-current-passed-ci"]
    assert '<a href="/package/python-examplelib">python-examplelib</a>' in previous

    waiting = table(page, "waiting-table")
    assert len(waiting) == 1
    assert text(waiting[0]).startswith("example-broken FAILED")
    assert f'href="/repos/{relpath(site.trunk, "example-broken")}/rpmbuild.log"' in waiting[0]

    days = table(page, "per-day-table")
    assert len(days) == 14
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert text(days[0]).split() == [today, "8", "7", "1", "8"]  # the meter's fallback text
    assert '<meter min="0" max="8" value="8"' in days[0]
    assert text(days[1]).split()[1] == "0"

    rows = {text(row).split()[0]: row for row in table(page, "package-table")}
    assert sorted(rows) == sorted(PACKAGES)
    for name, row in rows.items():
        assert f'<a href="/package/{name}">{name}</a>' in row
        assert f'href="/repos/{relpath(site.trunk, name)}/rpmbuild.log"' in row
    assert 'class="failed"' in rows["example-broken"]
    assert "never succeeded" in text(rows["example-broken"])
    assert re.search(
        r"python-examplelib-1\.1\.1-0\.\d{14}\.[0-9a-f]{7}\.el9", rows["python-examplelib"]
    )
    assert '<input class="filter" type="search" data-filter="#package-table"' in page
    assert "Nothing is building now." in page
    assert "The queue is empty" in page


@pytest.mark.slow
def test_the_queue_and_the_builds_under_way_are_shown(site: Site) -> None:
    targets = {t.name: t for t in load_targets(site.config)}
    commit_hash = "ab" * 20
    jobs = [
        BuildJob(
            target=targets[name],
            mirrors=Mirrors.under(site.config.datadir, name),
            commit_hash=commit_hash,
            dt_commit=1_700_000_000 + i,
            commit_branch="master",
            distro_hash="cd" * 20,
            dt_distro=1_700_000_000,
        )
        for i, name in enumerate(("python-examplelib", "examplecli"))
    ]
    write_queue(site.config, jobs)  # as the reports listener writes it when a cycle starts
    work = site.config.datadir / "builds" / f"python-examplelib-{commit_hash[:12]}-1700000000123"
    work.mkdir(parents=True)
    (work / "rpmbuild.log").write_text(
        f"conveyor: building python-examplelib-1.1.2-0.1.abababa.el9 from {commit_hash}\n"
    )
    try:
        page = site.client.get("/").text
    finally:
        shutil.rmtree(work)
        (site.config.repos_dir / "queue.html").write_text("")
    running = table(page, "running-table")
    assert len(running) == 1
    assert text(running[0]).startswith(
        f"python-examplelib {commit_hash[:12]} python-examplelib-1.1.2-0.1.abababa.el9"
    )
    queued = [text(row).split() for row in table(page, "queue-table")]
    assert [row[2:] for row in queued] == [
        ["examplecli", commit_hash[:12]],
        ["python-examplelib", commit_hash[:12]],
    ]
    assert "2 builds queued" in text(page)
    waiting = {text(row).split()[0]: text(row).split()[1] for row in table(page, "waiting-table")}
    assert waiting == {"example-broken": "FAILED"}
    pending = page[page.index('<p id="waiting-pending"') : page.index('<h2 id="queue">')]
    assert text(pending) == (
        "Also 2 packages with a build under way or queued: "
        "python-examplelib (building), examplecli (queued)."
    )
    assert '<a href="/package/examplecli">examplecli</a>' in pending
    # An emptied queue.html (no table) is an empty queue, not an error.
    assert "The queue is empty" in site.client.get("/").text


@pytest.mark.slow
def test_a_package_page_lists_its_builds_with_links_to_their_logs(site: Site) -> None:
    response = site.client.get("/package/python-examplelib")
    assert response.status_code == 200
    page = response.text
    assert "<h1>Package python-examplelib</h1>" in page
    facts = text(page[page.index('<dl class="builder">') : page.index("</dl>")])
    assert "Status SUCCESS" in facts
    assert "Maintainers alice@example.org" in facts
    builds = table(page, "build-table")
    assert len(builds) == 1
    repo = relpath(site.trunk, "python-examplelib")
    assert f'<a href="/repos/{repo}/">repository</a>' in builds[0]
    assert f'<a href="/repos/{repo}/rpmbuild.log">rpmbuild.log</a>' in builds[0]
    assert f'<a href="/view/{repo}/rpmbuild.log">view</a>' in builds[0]
    log = site.client.get(f"/repos/{repo}/rpmbuild.log")
    assert log.status_code == 200
    assert log.text.startswith("conveyor: building python-examplelib-1.1.1-")

    broken = site.client.get("/package/example-broken").text
    facts = text(broken[broken.index('<dl class="builder">') : broken.index("</dl>")])
    assert "Status FAILED , never built successfully" in facts
    assert "Maintainers dave@example.org" in facts
    (row,) = table(broken, "build-table")
    assert 'class="failed"' in row
    assert 'title="rpmbuild failed (exit 1)' in row


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    ["no-such-package", "-starts-with-a-dash", "<img src=x onerror=alert(1)>", "a" * 300],
)
def test_an_unknown_or_invalid_package_is_a_404_page_with_the_navigation(
    site: Site, name: str
) -> None:
    response = site.client.get(f"/package/{name}")
    assert response.status_code == 404
    page = response.text
    assert '<nav aria-label="Main">' in page
    assert "<h1>Unknown package</h1>" in page
    assert "<img" not in page
    assert f"<code>{html.escape(name, quote=False)}</code>" in page


@pytest.mark.slow
def test_the_package_page_follows_the_metadata_without_a_restart(site: Site) -> None:
    metadata = Path(site.config.metadata.path)
    before = metadata.read_text()
    try:
        metadata.write_text(before.replace("- dave@example.org", "- erin@example.org"))
        page = site.client.get("/package/example-broken").text
    finally:
        metadata.write_text(before)
    assert "erin@example.org" in page
    assert "dave@example.org" in site.client.get("/package/example-broken").text


@pytest.mark.slow
def test_search_finds_packages_commits_nvrs_and_labels(site: Site) -> None:
    packages = site.client.get("/search", params={"q": "client"}).text
    assert re.findall(r'<li><a href="/package/([^"]+)">', packages) == ["python-exampleclient"]

    _, broken_hash, *_ = site.trunk.newest("example-broken")
    for query in (broken_hash[:6], broken_hash[:6].upper(), broken_hash):
        page = site.client.get("/search", params={"q": query}).text
        (row,) = table(page, "commit-results")
        assert broken_hash in row
        assert '<a href="/package/example-broken">example-broken</a>' in row
        assert f'href="/repos/{relpath(site.trunk, "example-broken")}/"' in row

    nvrs = site.client.get("/search", params={"q": "examplelib-1.1.1"}).text
    assert "nvr-results" in nvrs
    assert re.search(r"python-examplelib-1\.1\.1-0\.\d+\.[0-9a-f]{7}\.el9</span>", nvrs)

    labels = site.client.get("/search", params={"q": "passed-ci"}).text
    assert '<a href="/repos/current-passed-ci/">current-passed-ci</a>' in labels

    nothing = site.client.get("/search", params={"q": "zzz"}).text
    assert "Nothing matches <code>zzz</code>" in nothing
    short = site.client.get("/search", params={"q": broken_hash[:3]}).text
    assert "commit-results" not in short  # three digits are no hash prefix

    help_page = site.client.get("/search")
    assert help_page.status_code == 200
    assert "hexadecimal digits of an upstream commit hash" in help_page.text


@pytest.mark.slow
def test_a_hostile_query_is_escaped_everywhere_it_is_shown(site: Site) -> None:
    hostile = '"><script>alert(1)</script><img src=x onerror=alert(2)>'
    for path in ("/search", "/", "/package/examplecli"):
        response = site.client.get(path, params={"q": hostile})
        assert response.status_code == 200
        page = response.text
        assert "<script>alert" not in page
        assert "<img src=x" not in page
        # The search box keeps what was typed, as an attribute value.
        assert 'value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;' in page


# --- labels and the queue, from files laid out by hand ----------------------------------------


def test_labels_are_the_links_and_aggregates_of_repos_and_nothing_else(tmp_path: Path) -> None:
    datadir = tmp_path / "data"
    repos = datadir / "repos"
    build = "ab/cd/abcd" + "0" * 36 + "_12345678"
    (repos / build).mkdir(parents=True)
    (repos / "current").symlink_to(build)
    (repos / "tripleo-ci-testing").symlink_to(build)
    (repos / "escape").symlink_to("../../../etc")  # no hash directory: not a label
    (repos / "status_report.html").write_text("")
    (repos / "-odd").symlink_to(build)  # not a label name
    aggregate = repos / "puppet-ci-testing"  # components on: an aggregate's folder
    aggregate.mkdir()
    (aggregate / "delorean.repo.md5").write_text("0123456789abcdef0123456789abcdef\n")
    (repos / "ab" / "cd" / "stray").mkdir()
    config = Config(datadir=datadir, baseurl="http://example.com/repos")
    db = Database(config.database_url)
    try:
        with db.engine.connect() as connection:
            found = labels(config, connection)
    finally:
        db.close()
    assert [(label.name, label.kind) for label in found] == [
        ("current", "builder"),
        ("puppet-ci-testing", "promotion"),
        ("tripleo-ci-testing", "promotion"),
    ]
    current, aggregate_label, promoted = found
    assert current.repo_href == f"/repos/{build}/"
    assert current.shown_hash == "abcd" + "0" * 36 + "_12345678"
    assert current.package is None  # not in the database: shown without a package
    assert current.diff_href is None
    assert promoted.diff_href == "/diff?from=tripleo-ci-testing&to=current"
    assert aggregate_label.shown_hash == "0123456789abcdef0123456789abcdef"
    assert aggregate_label.repo_href is None
    assert aggregate_label.href == "/repos/puppet-ci-testing/"


def test_the_queue_keeps_only_http_links(tmp_path: Path) -> None:
    datadir = tmp_path / "data"
    (datadir / "repos").mkdir(parents=True)
    config = Config(datadir=datadir, baseurl="http://example.com/repos")
    assert queue(config).written is None
    (datadir / "repos" / "queue.html").write_text(
        "<table><thead><tr><th>a</th></tr></thead><tbody>"
        '<tr><td>2024-01-01 00:00:00</td><td>pkg</td><td class="commit">'
        '<a href="javascript:alert(1)">abc</a></td></tr>'
        '<tr><td>2024-01-01 00:00:00</td><td>two &amp; three</td><td class="commit">'
        '<a href="https://github.com/o/r/commit/def">def</a></td></tr>'
        "</tbody></table>"
    )
    found = queue(config)
    assert found.written is not None
    assert [(b.package, b.commit_hash, b.url, b.linked) for b in found.builds] == [
        ("pkg", "abc", None, True),
        ("two & three", "def", "https://github.com/o/r/commit/def", False),
    ]
