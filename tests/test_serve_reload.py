"""`conveyor serve` follows conveyor.toml and the promotion criteria without a restart, and says
plainly which changes need one: a warning in its log and an X-Conveyor-Restart-Needed header
(conveyor.api.context.RESTART_SETTINGS)."""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.support import (
    Trunk,
    basic,
    built_example,
    default_first_cycle,
    example,
    fresh_trunk,
    rows,
)

from conveyor.api import create_app
from conveyor.api.auth import create_user
from conveyor.assembly.storage import load_builder_config
from conveyor.store.database import Database

HEADER = "X-Conveyor-Restart-Needed"
VOTER = basic("ci", "vote-secret")
CONVEYOR = Path(sys.executable).with_name("conveyor")


def criteria_text(target: str, label: str, jobs: list[str]) -> str:
    return f"promotions:\n  {target}:\n    candidate_label: {label}\n    criteria: {jobs}\n"


def edit(path: Path, text: str) -> None:
    """Write `path` as an editor would, a moment after its last change: its mtime moves on
    even when the clock's tick has not."""
    before = path.stat().st_mtime_ns if path.exists() else time.time_ns()
    path.write_text(text)
    later = max(before + 1_000_000_000, path.stat().st_mtime_ns)
    os.utime(path, ns=(later, later))


def with_criteria(trunk: Trunk, text: str) -> tuple[Path, Path]:
    """conveyor.toml naming promotions.yaml (as examples/distribution.py writes it), holding
    `text`; (the configuration file, the criteria file)."""
    criteria = example.add_promotion_criteria(trunk.root)
    edit(criteria, text)
    return trunk.config_path, criteria


# --- in process: TestClient ----------------------------------------------------------------------


@pytest.fixture
def built() -> Iterator[Trunk]:
    with built_example("default", default_first_cycle).changed() as trunk:
        yield trunk


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("rpmbuild") is None, reason="rpmbuild is not installed")
def test_criteria_and_live_settings_change_without_restart(
    built: Trunk, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="conveyor")
    toml, criteria = with_criteria(
        built, criteria_text("ci-testing", "current", ["unit", "integration"])
    )
    current = (built.repos / "current").resolve()
    commit_hash, distro8 = current.name.split("_")[:2]
    ((distro_hash,),) = [
        row
        for row in rows(
            built.db, "select distro_hash from commits where commit_hash = ?", commit_hash
        )
        if row[0].startswith(distro8)  # the build `current` points at
    ]
    config = load_builder_config(toml)
    db = Database(config.database_url)
    create_user(db, "ci", "vote-secret", ["voter"])
    app = create_app(config, db, config_file=toml)
    app.state.ctx.watcher.interval = 0  # look at the file before every request

    with TestClient(app) as client:

        def vote(job: str) -> None:
            answer = client.post(
                "/api/report_result",
                json={
                    "commit_hash": commit_hash,
                    "distro_hash": distro_hash,
                    "job_id": job,
                    "url": f"https://ci.example.org/{job}",
                    "timestamp": 1_800_000_000,
                    "success": True,
                },
                headers=VOTER,
            )
            assert answer.status_code == 201, answer.text
            assert HEADER not in answer.headers

        def status() -> dict[str, object]:
            answer = client.get("/api/v2/promotion-status", params={"target": "ci-testing"})
            assert answer.status_code == 200, answer.text
            (decision,) = answer.json()
            return decision

        vote("unit")
        assert not (built.repos / "ci-testing").exists()
        assert status()["candidates"][0]["missing"] == ["integration"]  # type: ignore[index]

        # The criteria file changes: the next decision uses it, no restart.
        edit(criteria, criteria_text("ci-testing", "current", ["unit"]))
        decision = status()
        assert decision["criteria"] == ["unit"]
        assert decision["candidates"][0]["verdict"] == "promote"  # type: ignore[index]
        vote("unit")  # a vote of a job the criteria name: evaluated, and promoted
        assert (built.repos / "ci-testing").resolve() == current

        # A live setting of conveyor.toml: the API's repo_url follows baseurl.
        edit(
            toml,
            re.sub(
                "^baseurl = .*$",
                'baseurl = "https://trunk.example.org/repos"',
                toml.read_text(),
                flags=re.MULTILINE,
            ),
        )
        (promotion,) = client.get("/api/promotions", params={"promote_name": "ci-testing"}).json()
        assert promotion["repo_url"].startswith("https://trunk.example.org/repos/")
        assert any("baseurl now in effect" in r.getMessage() for r in caplog.records)

        # promotion_criteria itself moved to another file: followed too.
        other = built.root / "other-promotions.yaml"
        edit(other, criteria_text("ci-stable", "ci-testing", ["tempest"]))
        edit(toml, toml.read_text().replace('"promotions.yaml"', '"other-promotions.yaml"'))
        assert client.get("/api/v2/promotion-status").json()[0]["target"] == "ci-stable"

        # A setting that needs a restart: said on every response and in the log; the server
        # keeps serving from where it started.
        caplog.clear()
        edit(toml, toml.read_text().replace('datadir = "data"', 'datadir = "elsewhere"'))
        answer = client.get("/api/health")
        assert answer.status_code == 200 and answer.headers[HEADER] == "datadir"
        (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
        message = warning.getMessage()
        assert "datadir" in message and "restart conveyor serve" in message
        served = client.get(f"/repos/{current.relative_to(built.repos)}/delorean.repo")
        assert served.status_code == 200 and served.headers[HEADER] == "datadir"
        assert client.get("/api/health").headers[HEADER] == "datadir"  # until the restart
        assert not (built.root / "elsewhere").exists()

        # A file that no longer loads changes nothing, and says why.
        caplog.clear()
        broken = toml.read_text()
        edit(toml, broken.replace("workers = 2", "workers = 0"))
        answer = client.get("/api/health")
        assert answer.status_code == 200 and answer.headers[HEADER] == "datadir"
        assert any(
            r.levelno == logging.ERROR and "workers" in r.getMessage() for r in caplog.records
        )

        # Back to the running datadir: nothing waits for a restart any more.
        edit(toml, broken.replace('datadir = "elsewhere"', 'datadir = "data"'))
        assert HEADER not in client.get("/api/health").headers
        assert client.get("/api/v2/promotion-status").json()[0]["target"] == "ci-stable"
    db.close()


def test_without_a_configuration_file_nothing_is_followed(tmp_path: Path) -> None:
    """create_app without `config_file` (tests, embedding) looks at no file."""
    trunk = fresh_trunk(tmp_path / "dist")
    config = load_builder_config(trunk.config_path)
    with TestClient(create_app(config)) as client:
        edit(trunk.config_path, trunk.config_path.read_text().replace("data", "elsewhere"))
        assert HEADER not in client.get("/api/health").headers
        assert client.app.state.ctx.watcher is None  # type: ignore[attr-defined]


# --- a real server: conveyor serve ----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Trunk, str, subprocess.Popen[str]]]:
    trunk = fresh_trunk(tmp_path / "dist")
    with_criteria(trunk, criteria_text("ci-testing", "consistent", ["unit"]))
    port = _free_port()
    server = subprocess.Popen(
        [str(CONVEYOR), "serve", "--config", "conveyor.toml", "--port", str(port)],
        cwd=trunk.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "TTY_COMPATIBLE": "0"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/api/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.communicate()[0]
            assert time.monotonic() < deadline, "conveyor serve did not answer"
            time.sleep(0.1)
        yield trunk, url, server
    finally:
        server.terminate()
        server.wait(timeout=30)
        if server.stdout is not None:
            server.stdout.close()


def _until(check: Callable[[], httpx.Response | None], seconds: float = 10.0) -> httpx.Response:
    """The first answer `check` accepts; the server looks at its file at most every second."""
    deadline = time.monotonic() + seconds
    while True:
        answer = check()
        if answer is not None:
            return answer
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_conveyor_serve_follows_its_files(
    served: tuple[Trunk, str, subprocess.Popen[str]],
) -> None:
    trunk, url, server = served
    criteria = trunk.root / "promotions.yaml"

    def decision() -> dict[str, object]:
        answer = httpx.get(f"{url}/api/v2/promotion-status", timeout=10)
        assert answer.status_code == 200, answer.text
        (found,) = answer.json()
        return found

    assert decision()["criteria"] == ["unit"]
    edit(criteria, criteria_text("ci-testing", "consistent", ["unit", "tempest"]))
    assert decision()["criteria"] == ["unit", "tempest"]  # the next request, no restart

    assert HEADER not in httpx.get(f"{url}/api/health", timeout=10).headers
    toml = trunk.config_path
    edit(toml, toml.read_text().replace('datadir = "data"', 'datadir = "/srv/conveyor"'))

    def restart_said() -> httpx.Response | None:
        answer = httpx.get(f"{url}/api/health", timeout=10)
        return answer if HEADER in answer.headers else None

    answer = _until(restart_said)
    assert answer.status_code == 200 and answer.headers[HEADER] == "datadir"
    server.terminate()
    output, _ = server.communicate(timeout=30)
    assert "WARNING conveyor.api.context" in output
    assert "changed datadir: restart conveyor serve for it to take effect" in output


# --- the rules, on their own ---------------------------------------------------------------------


def test_settings_that_need_a_restart_keep_their_running_values(tmp_path: Path) -> None:
    from conveyor.api.context import RESTART_SETTINGS, ConfigWatcher
    from conveyor.config import load_config

    toml = tmp_path / "conveyor.toml"
    edit(toml, 'baseurl = "http://a.example.org/repos"\n')
    started = load_config(toml)
    watcher = ConfigWatcher(toml, started, interval=0)
    assert watcher.check() is None  # unchanged: not even read
    edit(
        toml,
        'baseurl = "http://b.example.org/repos"\ndatabase = "sqlite:////srv/other.sqlite"\n'
        "[api]\nread_auth = true\nhead_timeout = 30\n",
    )
    effective = watcher.check()
    assert effective is not None and watcher.config is effective
    assert effective.baseurl == "http://b.example.org/repos"  # live
    assert watcher.restart_needed == ("database", "api.read_auth", "api.head_timeout")
    assert set(watcher.restart_needed) <= set(RESTART_SETTINGS)
    for name in ("datadir", "database"):
        assert getattr(effective, name) == getattr(started, name)
    assert effective.api == started.api
    # Throttled: within `interval`, the file is not looked at.
    watcher.interval = 3600
    edit(toml, 'baseurl = "http://c.example.org/repos"\n')
    assert watcher.check() is None and watcher.config.baseurl == "http://b.example.org/repos"
