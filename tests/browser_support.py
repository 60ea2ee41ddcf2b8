"""What tests/test_web_browser.py needs besides its tests: the example distribution after two
real trunk runs with something on every dashboard page, a real uvicorn serving it on loopback,
Debian's chromium driven by Playwright, and a record of what a page did in the browser.

The data (`dashboard_data`), in one folder made once per module:
- the example distribution built by `conveyor run` (example-broken fails on purpose), then a
  new upstream commit of examplelib built by a second run: `before` and `after` are where
  `current` pointed after each;
- promotion criteria (ci-testing from `current` with no jobs, current-passed-ci with three),
  ci-testing promoted by the real engine, CI votes on the two newest repositories;
- the release `azalea` (examples.distribution.add_release) shown on /releases, its -testing
  buildsys tag applied twice (the trunk's RPMs, published as `conveyor tags apply` leaves a
  version) with votes on it;
- an upper-constraints.txt for the builder's own release (`master`) on /constraints.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
import uvicorn
from tests.support import Trunk, built_example, default_first_cycle, example, rows

from conveyor.api import create_app
from conveyor.config import Config, DashboardConfig
from conveyor.domain.tags import ActionKind, TagAction
from conveyor.promote.criteria import load_criteria
from conveyor.promote.engine import evaluate
from conveyor.store.database import Database
from conveyor.store.models import CIVote
from conveyor.tags.service import repo_file, store_of
from conveyor.tags.state import record_version
from conveyor.tags.votes import record_tag_vote

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page, Request, Response, Route

CHROMIUM = Path("/usr/bin/chromium")
LIB = "python-examplelib"
SERIES = "azalea"
TESTING_TAG = f"cloud9s-example-{SERIES}-testing"
WAITING_TARGET = "current-passed-ci"
PROMOTED_TARGET = "ci-testing"
CRITERIA = """\
promotions:
  ci-testing:
    candidate_label: current
    criteria: []
  current-passed-ci:
    candidate_label: current
    criteria: [tempest-full, packstack-scenario001, unit-tests]
release:
  criteria: [example-stable-ci]
"""
# Pins of `master`: one equal to what trunk builds, one greater (the package is older), one
# that no package provides.
CONSTRAINTS = "examplelib===1.1.1\nexample.config===3.2.0\nrequests===2.32.3\n"


@dataclass(frozen=True)
class Data:
    trunk: Trunk
    config: Config  # what the server serves
    before: str  # where `current` pointed after the first run, below repos/
    after: str  # ... and after the second
    old_nvr: str  # python-examplelib's NVR in `before`
    new_nvr: str  # ... and in `after`
    failed_dir: str  # example-broken's failed build, below repos/
    voted: tuple[str, str]  # (commit hash, distro hash) of the newest repository voted on
    voted_package: str  # the package whose build made it


def _vote(db: Database, commit_id: int, job: str, success: bool, when: int) -> None:
    with db.transaction() as session:
        session.add(
            CIVote(
                commit_id=commit_id,
                ci_name=job,
                ci_url=f"https://ci.example.org/{job}",
                ci_vote=success,
                ci_in_progress=False,
                timestamp=when,
                notes="",
            )
        )


def _nvr_of(trunk: Trunk, relpath: str, package: str) -> str:
    """`package`'s NVR in the repository `relpath` (from its versions.csv)."""
    for line in (trunk.repos / relpath / "versions.csv").read_text().splitlines()[1:]:
        fields = line.split(",")
        if fields[0] == package:
            nvr = fields[-1]
            return nvr
    raise AssertionError(f"{package} not in {relpath}/versions.csv")


def _apply_tag(config: Config, db: Database, trunk: Trunk, relpath: str) -> None:
    """TESTING_TAG as `conveyor tags apply` leaves it: version 1 with every RPM of the
    repository `relpath`, version 2 without python-examplelib; a vote on each."""
    builds: dict[str, list[Path]] = {}
    for rpm in sorted((trunk.repos / relpath).glob("*.rpm")):
        if rpm.name.endswith(".src.rpm"):
            continue
        nvr = rpm.name.rsplit(".", 2)[0]
        builds.setdefault(nvr, []).append(rpm.resolve())
    assert builds, f"no RPM in {relpath}"
    store = store_of(config)
    for version, (content, reason) in enumerate(
        (
            (builds, "first content"),
            ({n: p for n, p in builds.items() if not n.startswith(LIB + "-")}, "drop examplelib"),
        ),
        start=1,
    ):
        names = {nvr.rsplit("-", 2)[0]: nvr for nvr in content}
        actions = [TagAction(TESTING_TAG, ActionKind.TAG, n, nvr) for n, nvr in names.items()]
        with db.transaction() as session:
            applied = record_version(session, TESTING_TAG, names, names, actions, "alice", reason)
            assert applied.version == version
        files = {nvr: store.add_build(nvr, paths) for nvr, paths in content.items()}
        store.refresh_index(files)
        text = repo_file(config, TESTING_TAG, version)
        store.publish_version(TESTING_TAG, version, files, text)
        store.point(TESTING_TAG, version)
        with db.transaction() as session:
            record_tag_vote(
                session,
                TESTING_TAG,
                version,
                "example-stable-ci",
                version == 1,
                "https://ci.example.org/example-stable-ci",
                "",
                1_900_000_000 + version,
                "ci",
            )


@contextmanager
def dashboard_data() -> Iterator[Data]:
    """The example distribution with something on every page (see the module's docstring);
    restored for the next user afterwards (tests.support.built_example)."""
    with (
        built_example("default", default_first_cycle).changed() as trunk,
        pytest.MonkeyPatch.context() as env,
    ):
        env.setenv("XDG_CACHE_HOME", str(trunk.root / "cache"))  # libsolv's, for the closure
        before = os.readlink(trunk.repos / "current")
        broken = trunk.newest(trunk.dist.failing_package)
        failed_dir = trunk.hash_dir(broken[1], broken[2]).relative_to(trunk.repos).as_posix()
        example.add_release(trunk.root, SERIES)
        criteria = trunk.root / "promotions.yaml"
        criteria.write_text(CRITERIA)
        (trunk.root / "upper-constraints.txt").write_text(CONSTRAINTS)
        config = trunk.config(
            promotion_criteria=criteria,
            dashboard=DashboardConfig(
                releases=trunk.root / example.RELEASES_DIR,
                series=(SERIES,),
                constraints={"master": str(trunk.root / "upper-constraints.txt")},
                constraint_repos={"master": (f"trunk,{trunk.repos / 'current'}",)},
            ),
        )
        db = Database(config.database_url)
        try:
            newest, older = rows(
                trunk.db,
                "select id, commit_hash, distro_hash, project_name from commits "
                "where status = 'SUCCESS' "
                "order by id desc limit 2",
            )
            decisions = evaluate(config, db, load_criteria(criteria))
            assert [d.promoted for d in decisions] == [True, False], decisions
            _vote(db, newest[0], "tempest-full", True, 2_000_000_000)
            _vote(db, newest[0], "packstack-scenario001", False, 2_000_000_100)
            _vote(db, older[0], "tempest-full", True, 1_999_000_000)
            _apply_tag(config, db, trunk, before)
        finally:
            db.close()
        example.add_upstream_commit(trunk.root, "examplelib", "Add a feature")
        code, output = trunk.run()
        assert code == 0, output
        after = os.readlink(trunk.repos / "current")
        assert after != before
        # Served as the azalea builder's would be: `release-status --config` (/releases/azalea)
        # reads the applied tags of the builder's own release only.
        metadata = config.metadata.model_copy(update={"release": SERIES})
        yield Data(
            trunk=trunk,
            config=config.model_copy(update={"metadata": metadata}),
            before=before,
            after=after,
            old_nvr=_nvr_of(trunk, before, LIB),
            new_nvr=_nvr_of(trunk, after, LIB),
            failed_dir=failed_dir,
            voted=(newest[1], newest[2]),
            voted_package=newest[3],
        )


# --- the server ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serve(config: Config) -> Iterator[str]:
    """`conveyor serve`'s application (the API and the dashboard) on a real uvicorn on
    127.0.0.1, in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(config), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped while starting"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


# --- the browser ---------------------------------------------------------------------------------


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's chromium under Playwright (its own browser download cannot be had here);
    the calling test is skipped when either is missing."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Record:
    """What the pages of one browser page (a tab) did: every request's URL, console errors
    (a Content-Security-Policy violation is one), uncaught exceptions, requests that failed
    and answers of 400 or more (`expected` lists the URLs meant to answer so)."""

    origin: str
    requests: list[str] = field(default_factory=list)
    console_errors: list[tuple[str, str]] = field(default_factory=list)  # (text, where)
    page_errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    bad_status: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)  # aborted: not on the server
    expected: set[str] = field(default_factory=set)

    def problems(self) -> list[str]:
        """Everything that went wrong, one line each."""
        # Chrome logs the error status of a page it shows; a page meant to answer 404 does.
        console = [
            f"{text} (at {url})"
            for text, url in self.console_errors
            if not (url in self.expected and text.startswith("Failed to load resource"))
        ]
        return [
            *(f"console error: {m}" for m in console),
            *(f"page error: {m}" for m in self.page_errors),
            *(f"request failed: {m}" for m in self.failed),
            *(
                f"HTTP error: {m}"
                for m in self.bad_status
                if m.split(" ", 1)[1] not in self.expected
            ),
            *(f"request off the server: {m}" for m in self.blocked),
        ]

    def clear(self) -> None:
        for found in (
            self.requests,
            self.console_errors,
            self.page_errors,
            self.failed,
            self.bad_status,
            self.blocked,
        ):
            found.clear()
        self.expected.clear()

    def outside(self) -> list[str]:
        """Requests to anything but the server (data: URLs stay in the page)."""
        return [
            url
            for url in self.requests
            if not url.startswith("data:") and _origin(url) != _origin(self.origin)
        ]


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port


def record(page: Page, origin: str) -> Record:
    """Start recording what `page` does; anything not on `origin` is aborted (and noted)."""
    found = Record(origin)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            found.console_errors.append((message.text, str(message.location.get("url"))))

    def on_failed(request: Request) -> None:
        if request.url not in found.blocked:
            found.failed.append(f"{request.url}: {request.failure}")

    def on_response(response: Response) -> None:
        if response.status >= 400:
            found.bad_status.append(f"{response.status} {response.url}")

    page.on("request", lambda request: found.requests.append(request.url))
    page.on("console", on_console)
    page.on("pageerror", lambda error: found.page_errors.append(str(error)))
    page.on("requestfailed", on_failed)
    page.on("response", on_response)
    page.route("**/*", _guard(found))
    return found


def _guard(found: Record) -> Callable[[Route], None]:
    def route(route: Route) -> None:
        url = route.request.url
        if url.startswith("data:") or _origin(url) == _origin(found.origin):
            route.continue_()
        else:
            found.blocked.append(url)
            route.abort("blockedbyclient")

    return route


WIDE, NARROW = 1400, 400


def screenshots(page: Page, folder: Path, name: str) -> list[Path]:
    """Full-page screenshots of what `page` shows, 1400 and 400 px wide, into `folder`."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:120]
    taken = []
    for width in (WIDE, NARROW):
        path = folder / f"{safe}-{width}px.png"
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(path), full_page=True)
        taken.append(path)
    return taken
