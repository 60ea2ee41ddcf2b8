"""`conveyor serve` on 127.0.0.1 driven by the real `dlrnapi` CLI (dlrnapi-client 0.13.1):
every one of its ten subcommands, the JSON it prints and the labels it moves on disk."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from conveyor.api.auth import create_user
from conveyor.assembly.builder import run_cycle
from conveyor.config import load_config
from conveyor.store.database import Database
from conveyor.store.models import Commit, Promotion
from conveyor.trunk.cycle import CycleOptions

DLRNAPI = shutil.which("dlrnapi") or str(Path(sys.executable).parent / "dlrnapi")
pytestmark = pytest.mark.skipif(not Path(DLRNAPI).exists(), reason="dlrnapi-client not installed")
C, D = "ab" * 20, "cd" * 20
C2, D2, E2 = "12" * 20, "34" * 20, "56" * 20  # a build with an extended hash
CF, DF = "ef" * 20, "ee" * 20  # a failed build
AGG = "0f" * 16  # the aggregate hash of an earlier promotion
DAY = 1705320000  # 2024-01-15 12:00 UTC: when the seeded builds ran
SERVE = (
    "import sys, typer; from conveyor.cli import api; app = typer.Typer(); "
    "app.command('noop')(lambda: None); api.register(app); app(sys.argv[1:])"
)
PROXIES = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _environment() -> dict[str, str]:
    # The server's remote import and the client talk to 127.0.0.1 only: no proxy may see it.
    env = {k: v for k, v in os.environ.items() if k not in PROXIES}
    return {**env, "no_proxy": "127.0.0.1,localhost", "NO_PROXY": "127.0.0.1,localhost"}


def _hash_dir(commit_hash: str, distro_hash: str, extended_hash: str | None = None) -> str:
    name = f"{commit_hash}_{distro_hash[:8]}"
    if extended_hash:
        name += f"_{extended_hash[:8]}"
    return f"{commit_hash[:2]}/{commit_hash[2:4]}/{name}"


@contextmanager
def serving(config: Path) -> Iterator[str]:
    """`conveyor serve --config config` until the block ends; its base URL."""
    port = _port()
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, "serve", "--config", str(config), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_environment(),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(f"{url}/api/health", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, "conveyor serve exited"
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    data = tmp_path / "data"
    config = tmp_path / "conveyor.toml"
    config.write_text(f'datadir = "{data}"\nbaseurl = "http://trunk.example.org/repos"\n')
    db = Database(f"sqlite:///{data / 'commits.sqlite'}")
    create_user(db, "ci", "ci-secret", ["admin"])
    with db.transaction() as session:
        first = Commit(
            project_name="p", commit_hash=C, distro_hash=D, status="SUCCESS", dt_build=DAY
        )
        session.add_all(
            [
                first,
                Commit(
                    project_name="q",
                    commit_hash=C2,
                    distro_hash=D2,
                    extended_hash=E2,
                    status="SUCCESS",
                    dt_build=DAY + 60,
                ),
                Commit(
                    project_name="q", commit_hash=CF, distro_hash=DF, status="FAILED", dt_build=DAY
                ),
            ]
        )
        session.flush()
        # What a promotion with use_components = true leaves: a label with an aggregate hash.
        session.add(
            Promotion(commit_id=first.id, promotion_name="old", timestamp=DAY, aggregate_hash=AGG)
        )
    db.close()
    for relpath in (_hash_dir(C, D), _hash_dir(C2, D2, E2)):
        (data / "repos" / relpath).mkdir(parents=True)
    with serving(config) as url:
        yield url, data


def run_dlrnapi(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**_environment(), "DLRNAPI_USERNAME": "ci", "DLRNAPI_PASSWORD": "ci-secret"}
    return subprocess.run(
        [DLRNAPI, "--url", url, *args], capture_output=True, text=True, env=env, timeout=60
    )


def dlrnapi(url: str, *args: str) -> Any:
    result = run_dlrnapi(url, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def refused(url: str, *args: str) -> str:
    """What the client says when the server refuses the call."""
    result = run_dlrnapi(url, *args)
    assert result.returncode != 0, result.stdout
    return result.stdout + result.stderr


def vote(url: str, *target: str, job: str = "job", success: str = "true") -> Any:
    return dlrnapi(
        url,
        "report-result",
        *target,
        "--job-id",
        job,
        "--info-url",
        f"http://ci/{job}",
        "--timestamp",
        str(int(time.time())),
        "--success",
        success,
    )


def test_real_client(server: tuple[str, Path]) -> None:
    url, data = server
    hashes = ["--commit-hash", C, "--distro-hash", D]
    reported = vote(url, *hashes)
    assert reported["job_id"] == "job" and reported["success"] is True
    status = dlrnapi(url, "repo-status", *hashes)
    assert isinstance(status, list) and status[0]["job_id"] == "job"
    promoted = dlrnapi(url, "repo-promote", *hashes, "--promote-name", "tested")
    assert promoted["promote_name"] == "tested"
    assert os.readlink(data / "repos" / "tested") == _hash_dir(C, D)
    promotions = dlrnapi(url, "promotion-get", "--promote-name", "tested")
    assert isinstance(promotions, list) and len(promotions) == 1
    repo = dlrnapi(url, "repo-get", "--max-age", "0")
    assert repo["commit_hash"] == C


def test_repo_use_takes_the_repo_and_marks_it_in_progress(server: tuple[str, Path]) -> None:
    url, _ = server
    vote(url, "--commit-hash", C2, "--distro-hash", D2, job="upstream")
    before = int(time.time())
    taken = dlrnapi(
        url, "repo-use", "--max-age", "1", "--job-id", "upstream", "--reporting-job-id", "next"
    )
    assert taken == {
        "commit_hash": C2,
        "distro_hash": D2,
        "extended_hash": E2,
        "job_id": "next",
        "success": False,
        "in_progress": True,
        "timestamp": taken["timestamp"],
        "user": "ci",
        "component": None,
    }
    assert taken["timestamp"] >= before
    votes = dlrnapi(url, "repo-status", "--commit-hash", C2, "--distro-hash", D2)
    assert [(v["job_id"], v["in_progress"]) for v in votes] == [
        ("upstream", False),
        ("next", True),
    ]
    # Sequential mode: the repo `upstream` tested, whatever voted since.
    again = dlrnapi(
        url,
        "repo-use",
        "--reporting-job-id",
        "third",
        "--sequential-mode",
        "--previous-job-id",
        "upstream",
    )
    assert (again["commit_hash"], again["job_id"]) == (C2, "third")
    assert "No vote found" in refused(
        url, "repo-use", "--reporting-job-id", "x", "--sequential-mode", "--previous-job-id", "y"
    )


def test_repo_promote_batch_moves_every_label(server: tuple[str, Path]) -> None:
    url, data = server
    promoted = dlrnapi(
        url,
        "repo-promote-batch",
        "--hash-pairs",
        f"{C}_{D},{C2}_{D2}_{E2}",
        "--promote-name",
        "batch",
    )
    # The answer describes the last pair, as DLRN's.
    assert promoted == {
        "commit_hash": C2,
        "distro_hash": D2,
        "extended_hash": E2,
        "aggregate_hash": None,
        "promote_name": "batch",
        "timestamp": promoted["timestamp"],
        "user": "ci",
        "repo_hash": f"{C2}_{D2[:8]}",
        "repo_url": f"http://trunk.example.org/repos/{_hash_dir(C2, D2, E2)}",
        "component": None,
    }
    assert os.readlink(data / "repos" / "batch") == _hash_dir(C2, D2, E2)
    rows = dlrnapi(url, "promotion-get", "--promote-name", "batch")
    assert [(r["commit_hash"], r["promote_name"]) for r in rows] == [(C2, "batch"), (C, "batch")]

    # Every pair is checked before any label moves: an unknown pair leaves `batch` alone.
    output = refused(
        url, "repo-promote-batch", "--hash-pairs", f"{C}_{D},{CF}_{DF}", "--promote-name", "batch"
    )
    assert "(400)" in output and "not found" in output
    assert os.readlink(data / "repos" / "batch") == _hash_dir(C2, D2, E2)
    assert len(dlrnapi(url, "promotion-get", "--promote-name", "batch")) == 2
    # A pair of an explicit `None` extended hash, as the client writes it, matches any.
    dlrnapi(url, "repo-promote-batch", "--hash-pairs", f"{C}_{D}_None", "--promote-name", "batch")
    assert os.readlink(data / "repos" / "batch") == _hash_dir(C, D)
    assert "(403)" in refused(
        url, "repo-promote-batch", "--hash-pairs", f"{C}_{D}", "--promote-name", "current"
    )


def test_agg_status_lists_the_votes_on_an_aggregate(server: tuple[str, Path]) -> None:
    url, _ = server
    assert dlrnapi(url, "agg-status", "--agg-hash", AGG) == []
    reported = vote(url, "--agg-hash", AGG, job="agg-job")
    assert reported["aggregate_hash"] == AGG and reported["commit_hash"] is None
    vote(url, "--agg-hash", AGG, job="agg-fail", success="false")
    votes = dlrnapi(url, "agg-status", "--agg-hash", AGG)
    assert [(v["job_id"], v["success"], v["in_progress"]) for v in votes] == [
        ("agg-job", True, False),
        ("agg-fail", False, False),
    ]
    assert votes[0]["aggregate_hash"] == AGG and votes[0]["url"] == "http://ci/agg-job"
    passed = dlrnapi(url, "agg-status", "--agg-hash", AGG, "--success", "true")
    assert [v["job_id"] for v in passed] == ["agg-job"]
    assert dlrnapi(url, "agg-status", "--agg-hash", "1" * 32) == []
    assert "aggregate_hash not found" in refused(
        url,
        "report-result",
        "--agg-hash",
        "1" * 32,
        "--job-id",
        "j",
        "--info-url",
        "http://ci/j",
        "--timestamp",
        "1",
        "--success",
        "true",
    )


def test_build_metrics_counts_builds_of_a_day_range(server: tuple[str, Path]) -> None:
    url, _ = server
    day = ["--start-date", "2024-01-15", "--end-date", "2024-01-16"]
    assert dlrnapi(url, "build-metrics", *day) == {"succeeded": 2, "failed": 1, "total": 3}
    assert dlrnapi(url, "build-metrics", *day, "--package-name", "q") == {
        "succeeded": 1,
        "failed": 1,
        "total": 2,
    }
    before = ["--start-date", "2024-01-14", "--end-date", "2024-01-15"]
    assert dlrnapi(url, "build-metrics", *before) == {"succeeded": 0, "failed": 0, "total": 0}
    assert "(400)" in refused(url, "build-metrics", "--start-date", "15/01/2024", "--end-date", "x")


# -- commit-import, and promotions of components ----------------------------------------------


@dataclass(frozen=True)
class Published:
    """Builder A's repos/ served over HTTP on 127.0.0.1."""

    url: str
    relpaths: dict[str, str]  # package -> hash directory under repos/
    hashes: dict[str, tuple[str, str]]  # package -> (commit_hash, distro_hash)
    metadata: Path
    tag: str


COMPONENTS = {"openstack-exampleservice": "common", "python-exampleclient": "clients"}


@pytest.fixture
def published(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Published]:
    """Builder A: two packages of components built with rpmbuild, served over HTTP."""
    if shutil.which("rpmbuild") is None:
        pytest.skip("rpmbuild is not installed")
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))
    example = importlib.import_module("examples.distribution")
    dist = example.generate(tmp_path / "a")
    dist.config.write_text("use_components = true\n" + dist.config.read_text())
    config = load_config(dist.config)
    cycle = run_cycle(config, CycleOptions(only=list(COMPONENTS)))
    relpaths = {result.job.target.name: str(p.relpath) for result, p in cycle.published}
    hashes = {}
    for package, relpath in relpaths.items():
        record = yaml.safe_load((config.repos_dir / relpath / "commit.yaml").read_text())
        built = record["commits"][0]
        hashes[package] = (built["commit_hash"], built["distro_hash"])
    assert set(relpaths) == set(COMPONENTS)
    handler = partial(_QuietHandler, directory=str(config.repos_dir))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield Published(
            url=f"http://127.0.0.1:{httpd.server_address[1]}",
            relpaths=relpaths,
            hashes=hashes,
            metadata=config.metadata.path,
            tag=config.metadata.release,
        )
    finally:
        httpd.shutdown()
        httpd.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.slow
def test_commit_import_then_promote_components(published: Published, tmp_path: Path) -> None:
    data = tmp_path / "b" / "data"
    config = tmp_path / "b" / "conveyor.toml"
    config.parent.mkdir()
    config.write_text(
        f'datadir = "{data}"\n'
        'baseurl = "http://b.example.org/repos"\n'
        "use_components = true\n"
        "[metadata]\n"
        f'path = "{published.metadata}"\n'
        f'tag = "{published.tag}"\n'
    )
    db = Database(f"sqlite:///{data / 'commits.sqlite'}")
    create_user(db, "ci", "ci-secret", ["admin"])
    db.close()
    repos = data / "repos"
    with serving(config) as url:
        for package in COMPONENTS:
            # As DLRN users write it: the hash directory's URL, without a trailing slash.
            repo_url = f"{published.url}/{published.relpaths[package]}"
            assert dlrnapi(url, "commit-import", "--repo-url", repo_url) == {"repo_url": repo_url}
            assert (repos / published.relpaths[package] / "commit.yaml").is_file()
        missing = f"{published.url}/component/common/00/00/nothing"
        assert "(500)" in refused(url, "commit-import", "--repo-url", missing)
        assert "(400)" in refused(url, "commit-import", "--repo-url", "ftp://127.0.0.1/x")

        pairs = ",".join("_".join(published.hashes[p]) for p in COMPONENTS)
        promoted = dlrnapi(
            url, "repo-promote-batch", "--hash-pairs", pairs, "--promote-name", "tested"
        )
        last = list(COMPONENTS)[-1]
        assert promoted["commit_hash"] == published.hashes[last][0]
        assert promoted["component"] == COMPONENTS[last]
        assert promoted["repo_url"] == f"http://b.example.org/repos/{published.relpaths[last]}"
        aggregate = promoted["aggregate_hash"]
        assert isinstance(aggregate, str) and len(aggregate) == 32
        for package, component in COMPONENTS.items():
            link = repos / "component" / component / "tested"
            commit_hash, distro_hash = published.hashes[package]
            assert os.readlink(link) == _hash_dir(commit_hash, distro_hash)
            assert (link / "commit.yaml").is_file()
        assert (repos / "tested" / "delorean.repo.md5").read_text().strip() == aggregate
        rows = dlrnapi(url, "promotion-get", "--promote-name", "tested")
        assert {(r["component"], r["aggregate_hash"]) for r in rows} == {
            ("common", aggregate),
            ("clients", aggregate),
        }
        assert dlrnapi(url, "promotion-get", "--agg-hash", aggregate, "--limit", "1") == rows[:1]

        vote(url, "--agg-hash", aggregate, job="integration")
        (agg_vote,) = dlrnapi(url, "agg-status", "--agg-hash", aggregate)
        assert (agg_vote["aggregate_hash"], agg_vote["job_id"]) == (aggregate, "integration")
        assert agg_vote["success"] is True and agg_vote["in_progress"] is False

        # The imported builds keep the remote build time: they count on the day they ran.
        today = time.strftime("%Y-%m-%d", time.gmtime())
        tomorrow = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86400))
        window = ["--start-date", today, "--end-date", tomorrow]
        assert dlrnapi(url, "build-metrics", *window) == {"succeeded": 2, "failed": 0, "total": 2}
        single = dlrnapi(url, "build-metrics", *window, "--package-name", last)
        assert single == {"succeeded": 1, "failed": 0, "total": 1}
