"""The dashboard in a real browser: Debian's chromium driven by Playwright, against a real
uvicorn on 127.0.0.1 serving the example distribution after two real trunk runs, with
promotions, votes, an applied buildsys tag, a release and upper-constraints
(tests/browser_support.py says what is where).

Every page renders (its status, its h1, the navigation, no console error, which is also how
a Content-Security-Policy violation shows, no failed request); the navigation, the search
box and the links between pages lead where they say; the filter box hides rows; the diff shows
the change of the second run; the log viewer highlights example-broken's failing lines; the
/repos/ listings lead down to a text file the browser shows; no request leaves the server;
no page is wider than the screen at 1400 and 400 px.

On a failure, screenshots of the page at 1400 and 400 px are written into the test's
tmp_path and their paths are shown in the failure's report (section "screenshots"): the
hook `_ScreenshotsOnFailure`, registered by this module's autouse fixture, takes them.

One browser and one server for the module; the data is made once (about 20 s of builds).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from tests.browser_support import (
    CHROMIUM,
    LIB,
    NARROW,
    PROMOTED_TARGET,
    SERIES,
    TESTING_TAG,
    WAITING_TARGET,
    WIDE,
    Data,
    Record,
    chromium,
    dashboard_data,
    record,
    screenshots,
    serve,
)

from conveyor.web.render import NAV

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Download, Page

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("rpmbuild") is None, reason="rpmbuild is not installed"),
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed"),
]
pytest.importorskip("playwright.sync_api", reason="playwright is not installed")


@dataclass(frozen=True)
class Site:
    data: Data
    url: str  # http://127.0.0.1:PORT


@dataclass(frozen=True)
class Tab:
    page: Page
    record: Record
    url: str

    def open(self, path: str, status: int = 200) -> None:
        """Go to `path` on the server; its answer must be `status`."""
        response = self.page.goto(self.url + path)
        assert response is not None, path
        assert response.status == status, f"{path}: {response.status}"
        if status >= 400:
            self.record.expected.add(response.url)


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    with dashboard_data() as data, serve(data.config) as url:
        yield Site(data, url)


@pytest.fixture(scope="module")
def browser(site: Site) -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def shared_tab(browser: Browser, site: Site) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": WIDE, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()  # one for the module: a new page costs 0.3 s here
    yield Tab(page, record(page, site.url), site.url)
    context.close()


@pytest.fixture
def tab(shared_tab: Tab, tmp_path: Path) -> Tab:
    """The module's page, blank, 1400 px wide, its record emptied (nothing of the previous
    test's pages arrives after). tmp_path is where a failure's screenshots go."""
    shared_tab.page.goto("about:blank")
    shared_tab.page.set_viewport_size({"width": WIDE, "height": 900})
    shared_tab.record.clear()
    return shared_tab


class _ScreenshotsOnFailure:
    """A test that used `tab` and failed gets full-page screenshots of the page at 1400 and
    400 px in its tmp_path, named after the test; their paths go into the report."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        funcargs: dict[str, Any] = getattr(item, "funcargs", {})
        tab, folder = funcargs.get("tab"), funcargs.get("tmp_path")
        if report.when == "call" and report.failed and tab is not None and folder is not None:
            try:
                paths = screenshots(tab.page, folder, item.name)
            except Exception as exc:  # the browser may be what failed
                report.sections.append(("screenshots", f"none taken: {exc}"))
            else:
                report.sections.append(("screenshots", "\n".join(map(str, paths))))
        return report


@pytest.fixture(scope="module", autouse=True)
def _screenshots_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    plugin = _ScreenshotsOnFailure()
    request.config.pluginmanager.register(plugin, f"{__name__}.screenshots")
    yield
    request.config.pluginmanager.unregister(plugin)


# --- the pages ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PageCase:
    path: Callable[[Data], str]
    h1: str  # a part of its h1
    current: str | None  # the navigation item it belongs to
    shows: Callable[[Data], str]  # a text the page shows
    status: int = 200


def _const(text: str) -> Callable[[Data], str]:
    return lambda _data: text


PAGES: dict[str, PageCase] = {
    "trunk": PageCase(_const("/"), "Trunk: RDO master", "trunk", _const(LIB)),
    "package": PageCase(_const(f"/package/{LIB}"), f"Package {LIB}", "trunk", lambda d: d.new_nvr),
    "ftbfs": PageCase(_const("/ftbfs"), "Failing to build from source", "ftbfs", _const("dave")),
    "search": PageCase(_const("/search?q=examplelib"), "Search: examplelib", None, _const(LIB)),
    "promotions": PageCase(
        _const("/promotions"), "Promotions", "promotions", _const(WAITING_TARGET)
    ),
    "promotion-target": PageCase(
        _const(f"/promotions/{WAITING_TARGET}"),
        WAITING_TARGET,
        "promotions",
        _const("packstack-scenario001"),
    ),
    "buildsys": PageCase(_const("/buildsys"), "Buildsys tags", "buildsys", _const(TESTING_TAG)),
    "buildsys-tag": PageCase(
        _const(f"/buildsys/{TESTING_TAG}"), TESTING_TAG, "buildsys", _const("Not closed")
    ),
    "releases": PageCase(_const("/releases"), "Releases", "releases", _const(SERIES)),
    "release": PageCase(
        _const(f"/releases/{SERIES}"), f"Release {SERIES}", "releases", _const("release-build")
    ),
    "constraints": PageCase(
        _const("/constraints"), "Upper-constraints drift", "constraints", _const("master")
    ),
    "constraints-release": PageCase(
        _const("/constraints/master"), "drift of master", "constraints", _const("requests")
    ),
    "diff-form": PageCase(_const("/diff"), "Diff of two repositories", "diff", _const("Compare")),
    "diff": PageCase(
        lambda d: f"/diff?from={d.before}&to={d.after}", "Diff", "diff", lambda d: d.new_nvr
    ),
    "repos": PageCase(_const("/repos/"), "/repos/", "repos", _const("current/")),
    "repository": PageCase(
        lambda d: f"/repos/{d.after}/", "/repos/", "repos", _const("versions.csv")
    ),
    "viewer": PageCase(
        lambda d: f"/view/{d.failed_dir}/rpmbuild.log",
        "rpmbuild.log",
        "repos",
        _const("Bad exit status"),
    ),
    "civotes": PageCase(
        _const("/api/civotes.html"), "CI votes", "promotions", lambda d: d.voted[0]
    ),
    "civotes-agg": PageCase(  # the example has no components: no aggregate, no vote on one
        _const("/api/civotes_agg.html"), "CI votes on aggregates", "promotions", _const("")
    ),
    "civotes-detail": PageCase(
        lambda d: f"/api/civotes_detail.html?commit_hash={d.voted[0]}&distro_hash={d.voted[1]}",
        "CI votes detail",
        "promotions",
        _const("packstack-scenario001"),
    ),
    "unknown-package": PageCase(
        _const("/package/no-such-package"), "Unknown package", "trunk", _const("no-such"), 404
    ),
    "unknown-tag": PageCase(
        _const("/buildsys/no-such-tag"),
        "Not found",
        "buildsys",
        _const("no-such-tag: no such tag"),
        404,
    ),
}


_STATE = """() => {
  const nav = [...document.querySelectorAll('header nav[aria-label="Main"] a')];
  const search = document.querySelector('header form[role="search"] input[type="search"]');
  const main = document.querySelector('main');
  return {
    h1: [...document.querySelectorAll('main h1')].map((h) => h.innerText),
    nav: nav.map((a) => [a.innerText.trim(), a.getAttribute('href')]),
    current: nav.filter((a) => a.getAttribute('aria-current') === 'page')
                .map((a) => a.innerText.trim()),
    search: !!search && search.getBoundingClientRect().width > 0,
    main: main ? main.innerText : '',
    styled: getComputedStyle(document.querySelector('header.top') || document.body).display,
  };
}"""


@dataclass(frozen=True)
class Shown:
    """What a page shows of the dashboard's frame, read in one call."""

    h1: list[str]
    nav: list[tuple[str, str]]
    current: list[str]  # the navigation items marked as the current page
    search: bool  # the search box is there and shown
    main: str  # the text of <main>
    styled: str  # the header's `display`: "flex" when dashboard.css applies


def _shown(page: Page) -> Shown:
    found = page.evaluate(_STATE)
    return Shown(
        h1=found["h1"],
        nav=[(label, href) for label, href in found["nav"]],
        current=found["current"],
        search=found["search"],
        main=found["main"],
        styled=found["styled"],
    )


def _label(key: str) -> str:
    return next(item.label for item in NAV if item.key == key)


@pytest.mark.parametrize("name", list(PAGES))
def test_every_page_renders(site: Site, tab: Tab, name: str) -> None:
    case = PAGES[name]
    tab.open(case.path(site.data), case.status)
    shown = _shown(tab.page)
    assert len(shown.h1) == 1 and case.h1 in shown.h1[0], shown.h1
    assert shown.nav == [(item.label, item.href) for item in NAV]
    assert shown.current == ([_label(case.current)] if case.current else [])
    assert shown.search
    assert case.shows(site.data) in shown.main
    assert shown.styled == "flex", "dashboard.css was not applied"
    assert tab.record.problems() == []
    assert tab.record.outside() == []


def test_the_feed_is_atom(site: Site, tab: Tab) -> None:
    response = tab.page.request.get(site.url + "/ftbfs.atom")
    assert response.status == 200
    assert response.headers["content-type"].startswith("application/atom+xml")
    body = response.text()
    assert "<feed" in body and "example-broken failed to build" in body


def _document_width(page: Page) -> tuple[int, int]:
    width, inner = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    return int(width), int(inner)


_WIDEST = """() => {
  // What makes the document wider than the window, outermost first: an element past the
  // window's right edge (its parent is not), or one whose own text overflows its box; never
  // what a scrolling box (.table-wrap) clips.
  const inner = window.innerWidth + 0.5, found = [];
  const right = (el) => el.getBoundingClientRect().right;
  const spills = (el) => el.scrollWidth > el.clientWidth + 1
    && getComputedStyle(el).overflowX === 'visible' && el.clientWidth > 0;
  const clipped = (el) => {
    for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
      if (getComputedStyle(up).overflowX !== 'visible' && right(up) <= inner) return true;
    }
    return false;
  };
  for (const el of document.querySelectorAll('body *')) {
    const parent = el.parentElement;
    const past = right(el) > inner && (parent === document.body || right(parent) <= inner);
    const text = spills(el) && right(el) + el.scrollWidth - el.clientWidth > inner
      && ![...el.children].some((c) => spills(c) || right(c) > right(el) + 0.5);
    if (!(past || text) || clipped(el)) continue;
    const cls = typeof el.className === 'string' && el.className.trim()
      ? '.' + el.className.trim().split(/\\s+/).join('.') : '';
    const words = (el.textContent || '').trim().replace(/\\s+/g, ' ').slice(0, 60);
    found.push(`<${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}${cls}> ` +
               `${Math.round(el.getBoundingClientRect().left)}..` +
               `${Math.round(right(el) + el.scrollWidth - el.clientWidth)} px: "${words}"`);
  }
  return found.slice(0, 8);
}"""


@pytest.mark.parametrize("name", [n for n, c in PAGES.items() if c.status == 200])
def test_no_page_is_wider_than_the_screen(site: Site, tab: Tab, name: str) -> None:
    """At 1400 and at 400 px the document is no wider than the window: wide tables scroll
    inside their box (.table-wrap)."""
    tab.open(PAGES[name].path(site.data))
    page = tab.page
    overflowing = {}
    for width in (WIDE, NARROW):
        page.set_viewport_size({"width": width, "height": 900})
        document, inner = _document_width(page)
        if document > inner:
            overflowing[width] = [f"{document} px wide", *page.evaluate(_WIDEST)]
    if overflowing:
        pytest.fail(
            "the document is wider than the window:\n"
            + "\n".join(f"at {w} px: " + "\n    ".join(found) for w, found in overflowing.items())
        )


# --- links between pages --------------------------------------------------------------------


def _check_landed(page: Page, url: str, label: str) -> Shown:
    page.wait_for_url(url)
    shown = _shown(page)
    assert len(shown.h1) == 1 and shown.current == [label], (url, shown.h1, shown.current)
    return shown


def test_the_navigation_leads_to_every_part(site: Site, tab: Tab) -> None:
    tab.open("/")
    page = tab.page
    nav = page.get_by_role("navigation", name="Main")
    for item in [*NAV[1:], NAV[0]]:
        nav.get_by_role("link", name=item.label, exact=True).click()
        _check_landed(page, site.url + item.href, item.label)
    page.locator("header a.brand").click()
    _check_landed(page, site.url + "/", NAV[0].label)
    assert tab.record.problems() == []


def test_the_search_box_finds_a_package(site: Site, tab: Tab) -> None:
    tab.open("/ftbfs")
    page = tab.page
    box = page.get_by_role("searchbox", name="Search")
    box.fill("examplelib")
    box.press("Enter")
    page.wait_for_url(re.compile(r".*/search\?q=examplelib$"))
    page.locator("main").get_by_role("link", name=LIB, exact=True).first.click()
    shown = _check_landed(page, f"{site.url}/package/{LIB}", _label("trunk"))
    assert site.data.new_nvr in shown.main
    assert tab.record.problems() == []


def test_from_a_promotion_target_to_its_votes(site: Site, tab: Tab) -> None:
    """/promotions links each candidate's votes; the vote page has the navigation, the
    package and the repository's promotions, and leads back."""
    commit_hash, distro_hash = site.data.voted
    tab.open("/promotions")
    page = tab.page
    link = page.locator(f'a[href*="civotes_detail.html?commit_hash={commit_hash}"]').first
    link.click()
    page.wait_for_url(re.compile(rf".*/api/civotes_detail\.html\?commit_hash={commit_hash}.*"))
    shown = _shown(page)
    assert "tempest-full" in shown.main and "packstack-scenario001" in shown.main
    assert site.data.voted_package in shown.main
    assert PROMOTED_TARGET in shown.main  # the repository's promotion
    assert shown.current == [_label("promotions")]
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Promotions").click()
    _check_landed(page, site.url + "/promotions", _label("promotions"))
    assert distro_hash  # named in the link followed
    assert tab.record.problems() == []


# --- the filter box -------------------------------------------------------------------------


def _rows(page: Page, table: str) -> tuple[int, list[str]]:
    """How many body rows `table` has, and the text of those shown."""
    count, shown = page.evaluate(
        """(table) => {
          const rows = [...document.querySelectorAll(`${table} tbody tr`)];
          return [rows.length, rows.filter((r) => r.getClientRects().length > 0)
                                    .map((r) => r.innerText)];
        }""",
        table,
    )
    return int(count), list(shown)


@pytest.mark.parametrize(
    ("path", "table", "typed", "expected"),
    [
        ("/", "#package-table", LIB, LIB),
        (f"/buildsys/{TESTING_TAG}", "#content", "exampleclient", "python-exampleclient"),
    ],
)
def test_the_filter_box_hides_other_rows(
    tab: Tab, path: str, table: str, typed: str, expected: str
) -> None:
    tab.open(path)
    page = tab.page
    total, shown = _rows(page, table)
    assert total >= 5 and len(shown) == total
    page.locator(f'input.filter[data-filter="{table}"]').fill(typed)
    total_after, shown = _rows(page, table)
    assert total_after == total
    assert len(shown) == 1 and expected in shown[0]
    page.locator(f'input.filter[data-filter="{table}"]').fill(f"{typed} no-such-word")
    assert _rows(page, table)[1] == []
    page.locator(f'input.filter[data-filter="{table}"]').fill("")
    assert len(_rows(page, table)[1]) == total
    assert tab.record.problems() == []


# --- the diff -------------------------------------------------------------------------------


def test_the_diff_form_shows_the_change_of_the_second_run(site: Site, tab: Tab) -> None:
    data = site.data
    tab.open("/diff")
    page = tab.page
    page.get_by_label("From").fill(data.before)
    page.get_by_label("To").fill(data.after)
    page.get_by_role("button", name="Compare").click()
    page.wait_for_url(re.compile(r".*/diff\?from=.*&to=.*"))
    assert "1 changed, 0 added, 0 removed, 7 unchanged" in page.locator("main").inner_text()
    rows = page.locator("#changed-table tbody tr")
    assert rows.count() == 1
    row = rows.first.inner_text()
    assert LIB in row and data.old_nvr in row and data.new_nvr in row
    assert data.old_nvr != data.new_nvr
    assert "Add a feature" in row  # the upstream commit between the two builds
    # The labels name the same two repositories: ci-testing was promoted by the first run.
    tab.open(f"/diff?from={PROMOTED_TARGET}&to=current")
    assert page.locator("#changed-table tbody tr").count() == 1
    assert data.new_nvr in page.locator("#changed-table").inner_text()
    assert tab.record.problems() == []


# --- browsing -------------------------------------------------------------------------------


def test_the_log_viewer_highlights_the_failing_lines(site: Site, tab: Tab) -> None:
    tab.open(f"/view/{site.data.failed_dir}/rpmbuild.log")
    page = tab.page
    hits = page.locator("pre.log .hit")
    texts = [hit.inner_text() for hit in hits.all()]
    assert any(text.startswith("error: Bad exit status") for text in texts), texts
    assert all(re.search(r"error:|Error|FAILED|Traceback|Bad exit status", t) for t in texts)
    plain = page.locator("pre.log span.line:not(.hit):not(.quoted)").first
    highlight = hits.first.evaluate("e => getComputedStyle(e).backgroundColor")
    background = plain.evaluate("e => getComputedStyle(e).backgroundColor")
    assert highlight != background, "the failing lines do not stand out"
    page.set_viewport_size({"width": WIDE, "height": 400})
    page.locator(".log-summary a.bad").click()  # "N failing lines: the first"
    first = page.locator(f"pre.log #{hits.first.get_attribute('id')}")
    assert re.search(r"#L\d+$", page.url)
    assert first.evaluate(
        "e => { const b = e.getBoundingClientRect(); return b.top >= 0 "
        "&& b.top < window.innerHeight }"
    )
    assert tab.record.problems() == []


def test_a_listing_leads_down_to_a_file_shown_in_the_browser(site: Site, tab: Tab) -> None:
    """From /repos/, link by link down to a repository, then its versions.csv: shown as text
    in the browser, not downloaded; and a text file's viewer from the listing."""
    data = site.data
    page = tab.page
    downloads: list[str] = []

    def on_download(download: Download) -> None:
        downloads.append(download.url)

    page.on("download", on_download)
    try:
        tab.open("/repos/")
        listing = page.locator("#listing")
        walked = ""
        for part in data.after.split("/"):  # shard, shard, hash folder
            walked += f"{part}/"
            listing.get_by_role("link", name=f"{part}/", exact=True).click()
            page.wait_for_url(f"{site.url}/repos/{walked}")
            assert _shown(page).h1 == [f"/repos/{walked}"]
        listing.get_by_role("link", name="versions.csv", exact=True).click()
        page.wait_for_url(f"{site.url}/repos/{data.after}/versions.csv")
        assert page.evaluate("document.contentType") == "text/plain"
        assert data.new_nvr in page.locator("body").inner_text()
        page.go_back()
        page.locator("#listing a.view").first.click()  # the viewer of a text file
        page.wait_for_url(re.compile(rf".*/view/{re.escape(data.after)}/.+"))
        assert page.locator("pre.log").count() == 1
    finally:
        page.remove_listener("download", on_download)
    assert downloads == []
    assert tab.record.problems() == []


# --- nothing from elsewhere -----------------------------------------------------------------


def test_no_request_leaves_the_server(site: Site, tab: Tab) -> None:
    """Every page in one tab, each request recorded (and anything not on 127.0.0.1 aborted):
    all went to the server, the bundled stylesheets and script among them."""
    for case in PAGES.values():
        tab.open(case.path(site.data), case.status)
    requested = tab.record.requests
    assert tab.record.outside() == [] and tab.record.blocked == []
    assert all(url.startswith(site.url + "/") for url in requested)
    assert f"{site.url}/static/web/dashboard.css" in requested
    assert f"{site.url}/static/web/dashboard.js" in requested
    assert len(requested) > len(PAGES)


def test_a_request_elsewhere_would_be_seen_and_stopped(tab: Tab) -> None:
    """The recorder is no blind spot: a request to another host (here from a page without
    the dashboard's policy, which would refuse it first) is recorded and aborted."""
    elsewhere = "http://192.0.2.1/pixel.png"  # TEST-NET-1: never routed
    with tab.page.expect_event("requestfailed", lambda request: request.url == elsewhere):
        tab.page.set_content(f'<img src="{elsewhere}" alt="">')
    assert tab.record.outside() == [elsewhere]
    assert tab.record.blocked == [elsewhere]
    assert f"request off the server: {elsewhere}" in tab.record.problems()
