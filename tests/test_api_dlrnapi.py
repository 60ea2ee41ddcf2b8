"""`conveyor serve` on 127.0.0.1 driven by the real `dlrnapi` CLI (dlrnapi-client 0.13.1)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conveyor.api.auth import create_user
from conveyor.store.database import Database
from conveyor.store.models import Commit

DLRNAPI = shutil.which("dlrnapi") or str(Path(sys.executable).parent / "dlrnapi")
pytestmark = pytest.mark.skipif(not Path(DLRNAPI).exists(), reason="dlrnapi-client not installed")
C, D = "ab" * 20, "cd" * 20
SERVE = (
    "import sys, typer; from conveyor.cli import api; app = typer.Typer(); "
    "app.command('noop')(lambda: None); api.register(app); app(sys.argv[1:])"
)


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    data = tmp_path / "data"
    config = tmp_path / "conveyor.toml"
    config.write_text(f'datadir = "{data}"\n')
    db = Database(f"sqlite:///{data / 'commits.sqlite'}")
    create_user(db, "ci", "pw", ["admin"])
    with db.transaction() as session:
        session.add(
            Commit(project_name="p", commit_hash=C, distro_hash=D, status="SUCCESS", type="rpm")
        )
    db.close()
    (data / "repos" / C[:2] / C[2:4] / f"{C}_{D[:8]}").mkdir(parents=True)
    port = _port()
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, "serve", "--config", str(config), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(f"{url}/api/health", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url, data
    finally:
        process.terminate()
        process.wait(timeout=10)


def dlrnapi(url: str, *args: str) -> object:
    env = {**os.environ, "DLRNAPI_USERNAME": "ci", "DLRNAPI_PASSWORD": "pw"}
    result = subprocess.run(
        [DLRNAPI, "--url", url, *args], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_real_client(server: tuple[str, Path]) -> None:
    url, data = server
    hashes = ["--commit-hash", C, "--distro-hash", D]
    vote = dlrnapi(
        url,
        "report-result",
        *hashes,
        "--job-id",
        "job",
        "--info-url",
        "http://ci",
        "--timestamp",
        "1700000000",
        "--success",
        "true",
    )
    assert isinstance(vote, dict) and vote["job_id"] == "job" and vote["success"] is True
    status = dlrnapi(url, "repo-status", *hashes)
    assert isinstance(status, list) and status[0]["job_id"] == "job"
    promoted = dlrnapi(url, "repo-promote", *hashes, "--promote-name", "tested")
    assert isinstance(promoted, dict) and promoted["promote_name"] == "tested"
    assert os.readlink(data / "repos" / "tested") == f"{C[:2]}/{C[2:4]}/{C}_{D[:8]}"
    promotions = dlrnapi(url, "promotion-get", "--promote-name", "tested")
    assert isinstance(promotions, list) and len(promotions) == 1
    repo = dlrnapi(url, "repo-get", "--max-age", "0")
    assert isinstance(repo, dict) and repo["commit_hash"] == C
