"""`conveyor bisect` end to end: the example distribution where a new upstream commit of
python-examplelib drops the file /usr/bin/examplelib-compat, which python-exampleclient
requires, among harmless changes of other packages and harmless commits of examplelib
itself. A scripted CI job (dnf installs everything from the step's repository) votes through
the DLRN API (`report_result` with the step's hash): the bisection names that commit within
⌈log2 N⌉ + 1 + ⌈log2 m⌉ steps. A job that always fails is called flaky, not a culprit."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.support import Trunk, basic, cli, dnf_install, example, example_git, fresh_trunk

from conveyor.api import create_app
from conveyor.api.auth import create_user
from conveyor.store.database import Database

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("rpmbuild") is None or shutil.which("dnf") is None,
        reason="rpmbuild and dnf are needed",
    ),
]

LIB, CLIENT = "python-examplelib", "python-exampleclient"
COMPAT = "examplelib-compat"
JOB = "example-install"
CI = basic("ci", "ci-secret")


@dataclass(frozen=True)
class Broken:
    trunk: Trunk
    good: str  # the repository of the first run, below repos/
    bad: str  # `current` after the second
    culprit: str  # the examplelib commit that removed the file
    last_good: str  # the one before it
    harmless: tuple[str, ...]  # the other packages changed


def _commit(repo: Path, message: str) -> str:
    example_git(repo, "add", "-A")
    example_git(repo, "commit", "-q", "-m", message)
    return example_git(repo, "rev-parse", "HEAD")


def _prepare(trunk: Trunk) -> None:
    """examplelib ships every upstream script in bin/ (one of them examplelib-compat), and
    exampleclient requires that file: a file dependency, resolved from primary.xml."""
    lib_distgit = trunk.dist.distgits["examplelib"]
    spec = lib_distgit / f"{LIB}.spec"
    text = spec.read_text()
    text = text.replace(
        "install -D -m 0755 bin/examplelib-greet %{buildroot}%{_bindir}/examplelib-greet",
        "install -d %{buildroot}%{_bindir}\ninstall -m 0755 bin/* %{buildroot}%{_bindir}/",
    ).replace("%{_bindir}/examplelib-greet\n", "%{_bindir}/*\n")
    spec.write_text(text)
    _commit(lib_distgit, "Ship every script")
    client_distgit = trunk.dist.distgits["exampleclient"]
    spec = client_distgit / f"{CLIENT}.spec"
    spec.write_text(
        spec.read_text().replace("Requires:", f"Requires:       /usr/bin/{COMPAT}\nRequires:", 1)
    )
    _commit(client_distgit, f"Require {COMPAT}")
    upstream = trunk.dist.upstreams["examplelib"]
    script = upstream / "bin" / COMPAT
    script.write_text("#!/bin/sh\necho compat\n")
    script.chmod(0o755)
    _commit(upstream, "Add examplelib-compat")


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broken]:
    trunk = fresh_trunk(tmp_path_factory.mktemp("bisect") / "dist")
    _prepare(trunk)
    code, output = trunk.run()
    assert code == 1, output  # example-broken fails on purpose
    good = os.readlink(trunk.repos / "current")
    harmless = ("examplecli", "exampleplugin", "exampledashboard")
    for project in harmless:
        example.add_upstream_commit(trunk.root, project, "A harmless change")
    upstream = trunk.dist.upstreams["examplelib"]
    example.add_upstream_commit(trunk.root, "examplelib", "Tidy the docs")
    last_good = example.add_upstream_commit(trunk.root, "examplelib", "Tidy more")
    (upstream / "bin" / COMPAT).unlink()
    culprit = _commit(upstream, "Drop the compat script")
    example.add_upstream_commit(trunk.root, "examplelib", "Later work")
    code, output = trunk.run()
    assert code == 0, output
    bad = os.readlink(trunk.repos / "current")
    db = Database(f"sqlite:///{trunk.db}")
    create_user(db, "ci", "ci-secret", ["admin"])
    create_user(db, "reader", "reader-secret", ["voter"])
    db.close()
    yield Broken(trunk, good, bad, culprit, last_good, harmless)


def _install_everything(scratch: Path, step: dict[str, Any]) -> bool:
    """The scripted CI job: install every package of the step's repository."""
    reposdir = scratch / "repos.d"
    reposdir.mkdir(parents=True)
    url = step["url"].removeprefix("file://")
    shutil.copy(Path(url) / "delorean.repo", reposdir / "delorean.repo")
    try:
        dnf_install(scratch, [f"--setopt=reposdir={reposdir}"], "*")
    except subprocess.CalledProcessError:
        return False
    return True


def _vote(client: TestClient, step: dict[str, Any], success: bool, job: str = JOB) -> None:
    answer = client.post(
        "/api/report_result",
        json={
            "aggregate_hash": step["hash"],
            "job_id": job,
            "success": success,
            "url": f"http://ci.example.org/{step['hash']}",
            "timestamp": int(time.time()),
        },
        headers=CI,
    )
    assert answer.status_code == 201, answer.text


def _drive(client: TestClient, bisection: dict[str, Any], ci: Any) -> dict[str, Any]:
    for _ in range(20):
        if bisection["state"] != "running":
            return bisection
        step = bisection["pending"]
        assert step is not None
        _vote(client, step, ci(step), bisection["job_id"])
        bisection = client.get(f"/api/bisections/{bisection['id']}").json()
    raise AssertionError("the bisection does not end")


def test_the_culprit_commit_is_named(broken: Broken, tmp_path: Path) -> None:
    trunk = broken.trunk
    with TestClient(create_app(trunk.config())) as client:
        assert _install_everything(
            tmp_path / "good", {"url": f"file://{trunk.repos / broken.good}"}
        )
        answer = client.post(
            "/api/bisections",
            json={"good": f"repos/{broken.good}", "bad": "current", "job_id": JOB},
            headers=CI,
        )
        assert answer.status_code == 201, answer.text
        started = answer.json()
        packages = [c["package"] for c in started["changes"]]
        assert set(packages) == {
            LIB,
            "examplecli",
            "python-exampleplugin",
            "openstack-exampledashboard",
        }
        lib = next(c for c in started["changes"] if c["package"] == LIB)
        assert lib["builds_between"] == 3  # four new builds: three between good and bad
        counter = iter(range(100))
        bisection = _drive(
            client, started, lambda step: _install_everything(tmp_path / str(next(counter)), step)
        )
        assert bisection["state"] == "concluded"
        conclusion = bisection["conclusion"]
        assert conclusion["outcome"] == "found", conclusion
        assert conclusion["package"] == LIB
        assert conclusion["culprit"]["commit_hash"] == broken.culprit
        assert conclusion["last_good"]["commit_hash"] == broken.last_good
        assert [c["hash"] for c in conclusion["commits"]] == [broken.culprit]
        assert conclusion["commits"][0]["subject"] == "Drop the compat script"
        assert conclusion["culprit"]["repo_url"].endswith(conclusion["culprit"]["path"])
        assert len(bisection["steps"]) <= bisection["step_bound"] == 2 + 1 + 2
        # Every step is a DLRN-like repository, named by its content, never rewritten.
        for step in bisection["steps"]:
            folder = trunk.repos / "bisect" / step["hash"][:2] / step["hash"][2:4] / step["hash"]
            assert (folder / "repodata" / "repomd.xml").is_file()
            assert (folder / "delorean.repo.md5").read_text() == step["hash"]
            assert f"baseurl={step['url']}" in (folder / "delorean.repo").read_text()
        assert not (trunk.repos / "bisect" / f"current-{bisection['id']}").exists()
        page = client.get(f"/bisections/{bisection['id']}")
        assert page.status_code == 200 and broken.culprit in page.text
        assert "Drop the compat script" in page.text
        listing = client.get("/bisections")
        assert listing.status_code == 200 and f"/bisections/{bisection['id']}" in listing.text
    code, output = cli("bisect", "status", str(bisection["id"]), "--config", str(trunk.config_path))
    assert code == 0 and "found" in output and broken.culprit in output, output


def test_a_job_that_fails_everything_is_flaky(broken: Broken) -> None:
    trunk = broken.trunk
    config = str(trunk.config_path)
    code, output = cli(
        "bisect", "start", "--good", f"repos/{broken.good}", "--bad", "current",
        "--job", "always-red", "--config", config,
    )  # fmt: skip
    assert code == 0, output
    assert "changes, in order" in output and "report-result --agg-hash" in output
    code, output = cli(
        "bisect", "start", "--good", f"repos/{broken.good}", "--bad", "current",
        "--job", "always-red", "--config", config,
    )  # fmt: skip
    assert code == 2 and "is running" in output
    code, output = cli("bisect", "status", "--json", "--config", config)
    bisection = json.loads(output)
    with TestClient(create_app(trunk.config())) as client:
        ended = _drive(client, bisection, lambda _step: False)
    assert ended["conclusion"]["outcome"] == "flaky", ended["conclusion"]
    assert ended["steps"][-1]["kind"] == "retest"
    assert "culprit" not in ended["conclusion"]


def test_bad_input_is_refused_and_nothing_is_written(broken: Broken) -> None:
    trunk = broken.trunk
    with TestClient(create_app(trunk.config())) as client:
        before = client.get("/api/bisections").json()

        def start(good: str, bad: str, job: str = "checks", auth: Any = CI) -> Any:
            return client.post(
                "/api/bisections", json={"good": good, "bad": bad, "job_id": job}, headers=auth
            )

        good = f"repos/{broken.good}"
        cases = [
            (start("no-such-label", "current"), 404, "no such repository"),
            (start("../../etc", "current"), 400, "`..`"),
            (start("bisect", "current"), 400, "not a label"),
            (start("current", "current"), 400, "same repository"),
            (start("current", good), 400, "are --good and --bad swapped?"),
            (start(good, "current", job="bad job;rm"), 400, "invalid job name"),
            (start(good, "current", auth=basic("reader", "reader-secret")), 403, "promoter"),
        ]
        for answer, status, message in cases:
            assert answer.status_code == status and message in answer.json()["message"], answer.text
        assert client.get("/api/bisections").json() == before
        assert client.get("/api/bisections/999").status_code == 404
        assert client.post("/api/bisections/999/reset", headers=CI).status_code == 404
        refused = client.post(
            "/api/report_result",
            json={
                "aggregate_hash": "ab" * 16,
                "job_id": JOB,
                "success": True,
                "url": "http://ci/x",
                "timestamp": 1,
            },
            headers=CI,
        )
        assert (
            refused.status_code == 400 and refused.json()["message"] == "aggregate_hash not found"
        )
        evil = start(good, "current", job="x" * 3 + "<script>")
        assert evil.status_code == 400
    code, output = cli("bisect", "reset", "999", "--config", str(trunk.config_path))
    assert code == 2 and "no bisection 999" in output
