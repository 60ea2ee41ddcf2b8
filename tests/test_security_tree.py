"""Issue 9's attacks on the published tree and on what `conveyor serve` answers, each one
reproduced and now failing safely: label names that collide with the repository layout,
links out of repos/, the headers and content types of answers, the documentation pages
without a CDN, and request heads that never finish."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from tests.support import Trunk, basic, cli, example_git, tree_digest, users_database

from conveyor.api import create_app
from conveyor.api.auth import delete_user, update_user
from conveyor.api.serving import head_deadline_protocol
from conveyor.config import ApiConfig, Config, load_config
from conveyor.domain.labels import LabelCollision, check_promotion_label, layout_collision
from conveyor.domain.names import InvalidName
from conveyor.promote.criteria import CriteriaError, load_criteria
from conveyor.publish.repostore import HashDirContent, PublishError, RepoStore
from conveyor.retention import check_trunk
from conveyor.store.database import Database
from conveyor.store.models import Commit

C1, D1 = "1" * 40, "a" * 40
C2, D2 = "2" * 40, "b" * 40
H1 = f"11/11/{C1}_{D1[:8]}"
H2 = f"22/22/{C2}_{D2[:8]}"
PASSWORD = "promote-secret"
PROMOTER = basic("p", PASSWORD)

COLLIDING = [
    "29",  # a free shard: the next build of a 29… commit would be published through it
    "cd",  # an existing shard
    "AB",
    "component",
    "report.html",
    "status_report.html",
    "status_report.csv",
    "queue.html",
    "styles.css",
    "sortable.js",
    "index.html",
    "delorean.repo",
    "build.log",
    "repodata",
]


# -- the rule ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", COLLIDING)
def test_layout_names_are_not_labels(name: str) -> None:
    assert layout_collision(name) is not None
    with pytest.raises(LabelCollision, match="reserved by the repository layout"):
        check_promotion_label(name)


@pytest.mark.parametrize(
    "name",
    ["current-passed-ci", "tripleo-ci-testing", "puppet-ci-testing", "current-podified", "v2.1"],
)
def test_rdo_label_names_stay_valid(name: str) -> None:
    assert check_promotion_label(name) == name


@pytest.mark.parametrize("name", ["current", "consistent", "../x", "a/b", ".hidden", ""])
def test_other_bad_names_are_not_collisions(name: str) -> None:
    with pytest.raises(InvalidName) as raised:
        check_promotion_label(name)
    assert not isinstance(raised.value, LabelCollision)


def test_criteria_refuse_a_colliding_target(tmp_path: Path) -> None:
    criteria = tmp_path / "promotions.yaml"
    criteria.write_text(
        "promotions:\n  report.html:\n    candidate_label: consistent\n    criteria: [job]\n"
    )
    with pytest.raises(CriteriaError, match=r"promotions\.yaml:2: .*report file"):
        load_criteria(criteria)


# -- the API ----------------------------------------------------------------------------------


@dataclass
class Env:
    client: TestClient
    config: Config
    db: Database

    @property
    def repos(self) -> Path:
        return self.config.repos_dir

    def listing(self) -> dict[str, str]:
        """Every entry of repos/, links with their targets: what an attack could change."""
        found = {}
        for path in sorted(self.repos.rglob("*")):
            relpath = path.relative_to(self.repos).as_posix()
            found[relpath] = os.readlink(path) if path.is_symlink() else path.stat().st_mode
        return found


@pytest.fixture(scope="module")
def users_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("users") / "commits.sqlite"
    return users_database(path, {"p": (PASSWORD, ["promoter"])})


@pytest.fixture
def env(tmp_path: Path, users_db: Path) -> Iterator[Env]:
    datadir = tmp_path / "data"
    datadir.mkdir()
    (datadir / "commits.sqlite").write_bytes(users_db.read_bytes())
    config = Config(datadir=datadir, baseurl="http://example.com/repos")
    db = Database(config.database_url)
    with db.transaction() as session:
        for commit_hash, distro_hash in ((C1, D1), (C2, D2)):
            session.add(
                Commit(
                    project_name="python-foo",
                    commit_hash=commit_hash,
                    distro_hash=distro_hash,
                    status="SUCCESS",
                    dt_build=int(time.time()),
                    type="rpm",
                )
            )
    for relpath, rpm in ((H1, "foo-1.0-1.noarch.rpm"), (H2, "bar-1.0-1.noarch.rpm")):
        directory = config.repos_dir / relpath
        (directory / "repodata").mkdir(parents=True)
        (directory / rpm).write_bytes(b"RPM " + rpm.encode())
        (directory / "delorean.repo").write_text("[delorean]\nbaseurl=x\n")
        (directory / "rpmbuild.log").write_text("<script>alert(1)</script>\n")
        (directory / "commit.yaml").write_text("commits: []\n")
        (directory / "versions.csv").write_text("Project,Source Repo\n")
        (directory / "delorean.repo.md5").write_text("d41d8cd98f00b204e9800998ecf8427e")
    # DLRN's layout: a repository links to the other packages' newest RPMs, relatively.
    (config.repos_dir / H2 / "foo-1.0-1.noarch.rpm").symlink_to(
        f"../../../{H1}/foo-1.0-1.noarch.rpm"
    )
    (config.repos_dir / "cd").mkdir()  # a shard holding nothing yet
    (config.repos_dir / "report.html").write_text("<html>builds</html>")
    client = TestClient(create_app(config, db))
    yield Env(client, config, db)
    db.close()


def _promote(env: Env, name: str) -> tuple[int, str]:
    body = {"commit_hash": C1, "distro_hash": D1, "promote_name": name}
    response = env.client.post("/api/promote", json=body, headers=PROMOTER)
    return response.status_code, response.json()["message"] if response.status_code != 201 else ""


@pytest.mark.parametrize("name", COLLIDING)
def test_promote_refuses_layout_names_and_changes_nothing(env: Env, name: str) -> None:
    before = env.listing()
    status, message = _promote(env, name)
    assert status == 400
    assert f"Invalid promote_name: label {name!r} is reserved by the repository layout" in message
    assert env.listing() == before
    assert (env.repos / "report.html").read_text() == "<html>builds</html>"


def test_promote_never_replaces_a_file_or_folder_it_did_not_make(env: Env) -> None:
    (env.repos / "notes").write_text("kept")
    (env.repos / "old-trunk").mkdir()
    before = env.listing()
    for name in ("notes", "old-trunk"):
        status, message = _promote(env, name)
        assert status == 409
        assert message.startswith(f"repos/{name} is a ")
        assert "not a label link" in message and str(env.repos) not in message
    assert env.listing() == before
    assert (env.repos / "notes").read_text() == "kept"


def test_a_link_in_place_of_a_shard_stops_a_publish(tmp_path: Path) -> None:
    """A `29` label made before names were checked: a build of a 29… commit must not be
    published through it into the directory it points at."""
    repos = tmp_path / "repos"
    target = repos / H1
    target.mkdir(parents=True)
    (repos / "29").symlink_to(H1)
    store = RepoStore(repos, tmp_path / "cache")
    relpath = PurePosixPath("29", "99", "2999" + "0" * 36 + "_12345678")
    with pytest.raises(PublishError, match="repos/29 is a link where the tree needs a folder"):
        store.publish_failure(relpath, HashDirContent(files={"notes.log": "x"}, log=None))
    assert list(target.iterdir()) == []


def test_fsck_reports_names_that_collide_with_the_layout(tmp_path: Path) -> None:
    config_path = tmp_path / "conveyor.toml"
    config_path.write_text('datadir = "data"\n')
    config = load_config(config_path)
    repos = config.repos_dir
    (repos / H1 / "repodata").mkdir(parents=True)
    (repos / "29").symlink_to(H1)  # a label named like a shard
    (repos / "report.html").symlink_to(H1)  # a label over a report
    (repos / "ab").write_text("")  # a file where a shard folder belongs
    (repos / "status_report.csv").mkdir()  # a folder named like a report
    (repos / "current-passed-ci").symlink_to(H1)  # a fine label
    (repos / "status_report.html").write_text("")  # a fine report
    Database(config.database_url).close()
    problems = {
        (Path(p.path).relative_to(repos.resolve()).as_posix(), p.message)
        for p in check_trunk(config)
    }
    expected = {
        (
            "29",
            "label name collides with the repository layout: "
            "two hexadecimal digits name a folder of hash directories",
        ),
        ("report.html", "label name collides with the repository layout: it is a report file"),
        ("ab", "a file where the repository layout needs a folder"),
        ("status_report.csv", "folder collides with the repository layout: it is a report file"),
    }
    assert expected <= problems  # besides the orphan hash directory, which has no row
    flagged = {path for path, _ in problems}
    assert not flagged & {"current-passed-ci", "status_report.html"}


# -- /repos/ ----------------------------------------------------------------------------------


def test_repos_never_serves_what_a_link_out_of_the_tree_reaches(env: Env) -> None:
    (env.repos / "x").symlink_to("/etc")
    (env.repos / "db").symlink_to("../commits.sqlite")
    (env.repos / H1 / "passwd").symlink_to("/etc/passwd")
    for path in ("/repos/x/passwd", "/repos/x/hostname", "/repos/db", f"/repos/{H1}/passwd"):
        response = env.client.get(path)
        assert response.status_code == 404, path
        assert b"root:" not in response.content and b"SQLite" not in response.content


def test_repos_follows_links_that_stay_inside(env: Env) -> None:
    (env.repos / "current-passed-ci").symlink_to(H2)
    linked = env.client.get("/repos/current-passed-ci/foo-1.0-1.noarch.rpm")
    assert (linked.status_code, linked.content) == (200, b"RPM foo-1.0-1.noarch.rpm")
    assert env.client.get(f"/repos/{H2}/bar-1.0-1.noarch.rpm").status_code == 200


@pytest.mark.parametrize(
    "name", ["rpmbuild.log", "commit.yaml", "delorean.repo", "versions.csv", "delorean.repo.md5"]
)
def test_text_files_are_shown_as_plain_text(env: Env, name: str) -> None:
    response = env.client.get(f"/repos/{H1}/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path", ["/api/health", "/repos/report.html", "/repos/missing", "/docs"])
def test_every_answer_forbids_sniffing_and_framing(env: Env, path: str) -> None:
    response = env.client.get(path)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_documentation_pages_need_no_cdn(env: Env, page: str) -> None:
    response = env.client.get(page)
    html = response.text
    assert "https://" not in html and "http://" not in html
    # ReDoc's bundle would fetch its logo from a CDN: the page's policy forbids any other host.
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assets = re.findall(r'(?:src|href)="(/static/docs/[^"]+)"', html)
    assert any(a.endswith(".js") for a in assets)
    for asset in assets:
        response = env.client.get(asset)
        assert response.status_code == 200 and len(response.content) > 100, asset


# -- request heads ----------------------------------------------------------------------------


@pytest.fixture
def server(env: Env) -> Iterator[int]:
    """A real uvicorn on loopback with a half-second deadline for request heads."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        create_app(env.config.model_copy(update={"api": ApiConfig(head_timeout=0.5)}), env.db),
        host="127.0.0.1",
        port=port,
        http=head_deadline_protocol(0.5),
        log_level="warning",
    )
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not running.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    yield port
    running.should_exit = True
    thread.join(10)


def _closed_after(sock: socket.socket, trickle: bytes) -> float:
    """Send `trickle` a byte every 0.1 s until the server closes; seconds until it did."""
    start = time.monotonic()
    sock.settimeout(0.1)
    for byte in trickle:
        try:
            if sock.recv(1) == b"":
                return time.monotonic() - start
        except TimeoutError:
            pass
        except ConnectionResetError:
            return time.monotonic() - start
        try:
            sock.send(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - start
    return float("inf")


def test_a_head_that_never_finishes_is_cut_off(server: int) -> None:
    slow_head = b"GET /api/health HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 200
    with socket.create_connection(("127.0.0.1", server)) as silent:
        silent.settimeout(5)
        start = time.monotonic()
        assert silent.recv(1) == b""  # nothing sent at all: closed at the deadline
        assert time.monotonic() - start < 3
    with socket.create_connection(("127.0.0.1", server)) as trickling:
        assert _closed_after(trickling, slow_head) < 3
    with socket.create_connection(("127.0.0.1", server)) as prompt:
        prompt.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        prompt.settimeout(5)
        answer = b""
        while chunk := prompt.recv(4096):
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200") and b'{"result":"ok"}' in answer


def test_the_database_never_lives_under_repos(tmp_path: Path) -> None:
    (tmp_path / "data" / "repos").mkdir(parents=True)
    config = tmp_path / "conveyor.toml"
    config.write_text(
        f'datadir = "data"\ndatabase = "sqlite:///{tmp_path}/data/repos/commits.sqlite"\n'
    )
    code, output = cli("status", "--config", str(config))
    assert code == 2
    assert "option 'database'" in output and "served over HTTP" in output
    assert list((tmp_path / "data" / "repos").iterdir()) == []


def test_a_body_that_never_arrives_is_answered_408(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server)) as slow:
        slow.sendall(
            b"GET /api/repo_status HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\nConnection: close\r\n\r\n{"
        )
        slow.settimeout(5)
        start = time.monotonic()
        answer = b""
        while chunk := slow.recv(4096):
            answer += chunk
        assert time.monotonic() - start < 3
    assert answer.startswith(b"HTTP/1.1 408") and b"not received within 0.5 s" in answer


def test_wrong_password_floods_slow_only_logins(server: int) -> None:
    """Password checks have threads of their own: 80 wrong passwords at once leave the
    server's pool free for downloads and reads, and what queues beyond the bound is 503."""
    bad = basic("p", "wrong-password")
    statuses: list[int] = []

    def attack() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{server}", timeout=60) as client:
            statuses.append(client.post("/api/health", json={}, headers=bad).status_code)

    attackers = [threading.Thread(target=attack) for _ in range(80)]
    for thread in attackers:
        thread.start()
    time.sleep(0.3)  # the checks are queued now
    with httpx.Client(base_url=f"http://127.0.0.1:{server}", timeout=60) as client:
        start = time.monotonic()
        assert client.get("/repos/report.html").status_code == 200
        assert client.get("/api/repo_status", params={"commit_hash": C1, "distro_hash": D1})
        waited = time.monotonic() - start
    for thread in attackers:
        thread.join(60)
    assert waited < 1.0
    assert set(statuses) <= {401, 503} and 401 in statuses


def test_a_changed_password_stops_working_while_the_server_runs(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conveyor.api import auth

    monkeypatch.setattr(auth, "REVALIDATE", 0.0)
    health = {"json": {}, "headers": PROMOTER}
    assert env.client.post("/api/health", **health).status_code == 200  # now remembered
    update_user(env.db, "p", password="a-new-password")  # as `conveyor user update` does
    assert env.client.post("/api/health", **health).status_code == 401
    new = basic("p", "a-new-password")
    assert env.client.post("/api/health", json={}, headers=new).status_code == 200
    delete_user(env.db, "p")
    assert env.client.post("/api/health", json={}, headers=new).status_code == 401


def test_a_relative_sqlite_database_is_relative_to_the_configuration(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    path = tmp_path / "etc" / "conveyor.toml"
    path.write_text('datadir = "data"\ndatabase = "sqlite:///state/commits.sqlite"\n')
    assert load_config(path).database == f"sqlite:///{tmp_path}/etc/state/commits.sqlite"


@pytest.mark.slow
def test_a_link_in_place_of_a_shard_refuses_that_build_only(tmp_path: Path) -> None:
    """A `conveyor run` whose next build would be published through a planted shard link:
    that build is refused in one line, the other packages' builds are published."""
    trunk = Trunk(tmp_path)
    assert trunk.run()[0] == 1  # the first cycle: example-broken fails on purpose
    lib = trunk.dist.upstreams[trunk.dist.projects["python-examplelib"]]
    client = trunk.dist.upstreams[trunk.dist.projects["python-exampleclient"]]
    for upstream in (lib, client):
        example_git(upstream, "commit", "-q", "--allow-empty", "-m", "one more")
    lib_head, client_head = (example_git(u, "rev-parse", "HEAD") for u in (lib, client))
    # The client's build must not share the planted shard (1 run in 256 it did): reword its
    # commit until its hash starts elsewhere.
    while client_head[:2] == lib_head[:2]:
        example_git(client, "commit", "-q", "--amend", "--allow-empty", "-m", f"{client_head}")
        client_head = example_git(client, "rev-parse", "HEAD")
    target = trunk.hash_dir(*trunk.newest("python-exampleplugin")[1:3])
    before = tree_digest(target)
    shard = trunk.repos / lib_head[:2]
    planted = shard / lib_head[2:4] if shard.is_dir() else shard
    planted.symlink_to(os.path.relpath(target, planted.parent))
    code, output = trunk.run()
    assert code == 1
    assert f"not published: python-examplelib {lib_head[:12]}" in output
    assert "Traceback" not in output
    assert tree_digest(target) == before  # nothing went through the link
    assert trunk.newest("python-exampleclient")[:2] == ("SUCCESS", client_head)
    assert trunk.newest("python-examplelib")[1] != lib_head  # no row for the refused build
