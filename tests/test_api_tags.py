"""The buildsys tags over HTTP (conveyor.api.tags): the applied tags and their versions, the
declared state against the applied one, a tag version's closure, and the tag store served at
/tags/ with the same link containment and credentials as /repos/."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.support import basic, users_database

from conveyor.api import create_app
from conveyor.config import ApiConfig, Config, MetadataConfig, TagsConfig
from conveyor.domain.tags import ActionKind, TagAction
from conveyor.store.database import Database
from conveyor.tags.service import repo_file, store_of
from conveyor.tags.state import AppliedTag, record_version

PASSWORD = "reader-secret"
READER = basic("reader", PASSWORD)
FOO, FOO_OLD, BAR = "foo-1.0-1", "foo-0.9-1", "bar-1.0-1"


def _spec(name: str, version: str, requires: str = "") -> str:
    return (
        f"Name: {name}\nVersion: {version}\nRelease: 1\nSummary: t\nLicense: MIT\n"
        "BuildArch: noarch\nAutoReqProv: no\n"
        + (f"Requires: {requires}\n" if requires else "")
        + "%description\nt\n%files\n%changelog\n"
    )


@dataclass(frozen=True)
class Rpms:
    builds: dict[str, list[Path]]  # NVR -> its binary RPMs
    bar_repo: Path  # a repository holding bar alone, a lookaside that closes foo


@pytest.fixture(scope="module")
def rpms(tmp_path_factory: pytest.TempPathFactory) -> Rpms:
    """foo (which needs bar) and bar, built by the real rpmbuild: once per module."""
    if shutil.which("rpmbuild") is None or shutil.which("createrepo_c") is None:
        pytest.skip("rpmbuild and createrepo_c needed")
    base = tmp_path_factory.mktemp("rpms")
    builds: dict[str, list[Path]] = {}
    for nvr, spec in ((FOO, _spec("foo", "1.0", "bar")), (BAR, _spec("bar", "1.0"))):
        (base / f"{nvr}.spec").write_text(spec)
        top = base / nvr
        subprocess.run(
            ["rpmbuild", "-bb", "--define", f"_topdir {top}", str(base / f"{nvr}.spec")],
            check=True,
            capture_output=True,
        )
        builds[nvr] = sorted(top.rglob("*.noarch.rpm"))
    bar_repo = base / "bar-repo"
    bar_repo.mkdir()
    for rpm in builds[BAR]:
        shutil.copy(rpm, bar_repo)
    subprocess.run(["createrepo_c", "-q", str(bar_repo)], check=True)
    return Rpms(builds, bar_repo)


@pytest.fixture(scope="module")
def users_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("users") / "commits.sqlite"
    return users_database(path, {"reader": (PASSWORD, ["voter"])})


@pytest.fixture
def rdoinfo(tmp_path: Path) -> Path:
    """An rdoinfo folder declaring foo-1.0-1 in t1."""
    folder = tmp_path / "rdoinfo"
    (folder / "buildsys-tags").mkdir(parents=True)
    (folder / "buildsys-tags.yml").write_text("import: [buildsys-tags/t1.yml]\n")
    (folder / "buildsys-tags" / "t1.yml").write_text(
        f"packages:\n- project: foo\n  buildsys-tags:\n    t1: {FOO}\n"
    )
    return folder


@dataclass
class Env:
    config: Config
    db: Database

    def client(self, **api: bool) -> TestClient:
        config = self.config.model_copy(update={"api": ApiConfig(**api)})
        return TestClient(create_app(config, self.db))

    def record(self, tag: str, content: dict[str, str], author: str = "alice") -> AppliedTag:
        actions = [TagAction(tag, ActionKind.TAG, name, nvr) for name, nvr in content.items()]
        with self.db.transaction() as session:
            return record_version(
                session, tag, content, content, actions, author, f"by {author}", forced=False
            )

    def publish(self, tag: str, builds: dict[str, list[Path]]) -> AppliedTag:
        """A version as `tags apply` leaves it: recorded, its repository published, pointed at."""
        applied = self.record(tag, {nvr.rsplit("-", 2)[0]: nvr for nvr in builds})
        store = store_of(self.config)
        files = {nvr: store.add_build(nvr, paths) for nvr, paths in builds.items()}
        store.refresh_index(files)
        number = applied.version
        store.publish_version(tag, number, files, repo_file(self.config, tag, number))
        store.point(tag, number)
        return applied


@pytest.fixture
def env(
    tmp_path: Path, users_db: Path, rdoinfo: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Env]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # libsolv's cache
    datadir = tmp_path / "data"
    datadir.mkdir()
    shutil.copy(users_db, datadir / "commits.sqlite")
    config = Config(
        datadir=datadir,
        baseurl="http://trunk.example.org/repos",
        metadata=MetadataConfig(path=rdoinfo),
    )
    db = Database(config.database_url)
    yield Env(config, db)
    db.close()


# -- reading the applied state ---------------------------------------------------------------


def test_list_show_and_history(env: Env) -> None:
    env.record("t1", {"foo": FOO_OLD}, author="alice")
    env.record("t1", {"foo": FOO, "bar": BAR}, author="bob")
    env.record("a0", {"bar": BAR})
    client = env.client()

    listed = client.get("/api/tags").json()
    assert [(t["tag"], t["version"], t["builds"], t["author"]) for t in listed] == [
        ("a0", 1, 1, "alice"),
        ("t1", 2, 2, "bob"),
    ]
    assert all(isinstance(t["created"], int) for t in listed)

    newest = client.get("/api/tags/t1").json()
    assert newest["version"] == 2 and newest["builds"] == {"bar": BAR, "foo": FOO}
    assert newest["reason"] == "by bob" and newest["forced"] is False
    assert {"tag": "t1", "action": "tag", "name": "foo", "nvr": FOO} in newest["actions"]
    first = client.get("/api/tags/t1", params={"version": 1}).json()
    assert first["version"] == 1 and first["builds"] == {"foo": FOO_OLD}

    versions = client.get("/api/tags/t1/history").json()
    assert [(v["version"], v["author"], v["builds"]) for v in versions] == [
        (1, "alice", 1),
        (2, "bob", 2),
    ]
    assert {"actions", "reason", "forced", "created"} <= set(versions[0])


def test_no_tag_applied_yet(env: Env) -> None:
    assert env.client().get("/api/tags").json() == []


@pytest.mark.parametrize(
    ("path", "params", "status", "message"),
    [
        ("/api/tags/nope", None, 404, "nope: no such tag"),
        ("/api/tags/t1", {"version": 7}, 404, "t1: no version 7"),
        ("/api/tags/nope/history", None, 404, "nope: no such tag"),
        ("/api/tags/nope/closure", None, 404, "nope: no such tag"),
        ("/api/tags/t1/closure", {"version": 7}, 404, "t1: no version 7"),
        ("/api/tags/..t1", None, 400, "invalid buildsys tag name"),
        ("/api/tags/versions", None, 400, "reserved"),
        ("/api/tags/a%20b/history", None, 400, "invalid buildsys tag name"),
        ("/api/tags/a%20b/closure", None, 400, "invalid buildsys tag name"),
        ("/api/tags/t1", {"version": 0}, 400, "Invalid request"),
        ("/api/tags/t1", {"version": "x"}, 400, "Invalid request"),
        ("/api/tags/t1", {"version": 2**64}, 400, "Invalid request"),
    ],
)
def test_unknown_and_invalid_tags(
    env: Env, path: str, params: dict[str, object] | None, status: int, message: str
) -> None:
    env.record("t1", {"foo": FOO})
    answer = env.client().get(path, params=params)
    assert answer.status_code == status, answer.text
    assert message in answer.json()["message"]


# -- the declared state against the applied one ----------------------------------------------


def test_diff_against_rdoinfo(env: Env) -> None:
    client = env.client()
    tag_foo = {"tag": "t1", "action": "tag", "name": "foo", "nvr": FOO}
    register = {"tag": "t1", "action": "register", "name": "foo"}
    assert client.get("/api/tags/diff").json() == {"actions": [register, tag_foo]}

    env.record("t1", {"foo": FOO_OLD})
    replace = {**tag_foo, "replaces": FOO_OLD}
    assert client.get("/api/tags/diff").json() == {"actions": [replace]}
    assert client.get("/api/tags/diff", params={"tag": "t1"}).json() == {"actions": [replace]}

    env.record("t1", {"foo": FOO})
    assert client.get("/api/tags/diff").json() == {"actions": []}


def test_diff_of_one_tag_that_is_undeclared_or_invalid(env: Env) -> None:
    client = env.client()
    undeclared = client.get("/api/tags/diff", params={"tag": "t2"})
    assert undeclared.status_code == 404
    assert undeclared.json() == {"message": "t2: no such tag declared"}
    invalid = client.get("/api/tags/diff", params={"tag": "../t1"})
    assert invalid.status_code == 400 and "invalid buildsys tag name" in invalid.text


def test_diff_with_malformed_declarations_is_a_conflict(env: Env, rdoinfo: Path) -> None:
    (rdoinfo / "buildsys-tags" / "t1.yml").write_text("packages: {foo: 1}\n")
    answer = env.client().get("/api/tags/diff")
    assert answer.status_code == 409
    assert "'packages' must be a list" in answer.json()["message"]
    (rdoinfo / "buildsys-tags.yml").unlink()
    assert "file not found" in env.client().get("/api/tags/diff").json()["message"]


# -- closure ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_closure_of_a_tag_version(env: Env, rpms: Rpms) -> None:
    env.publish("t1", {FOO: rpms.builds[FOO]})
    env.publish("t1", {FOO: rpms.builds[FOO], BAR: rpms.builds[BAR]})
    client = env.client()

    assert client.get("/api/tags/t1/closure").json() == {
        "tag": "t1",
        "version": 2,
        "closed": True,
        "unresolved": [],
    }
    assert client.get("/api/tags/t1/closure", params={"version": 1}).json() == {
        "tag": "t1",
        "version": 1,
        "closed": False,
        "unresolved": [{"package": "foo-1.0-1.noarch", "repo": "t1", "missing": ["bar"]}],
    }

    env.config = env.config.model_copy(update={"tags": TagsConfig(lookaside=(rpms.bar_repo,))})
    closed = env.client().get("/api/tags/t1/closure", params={"version": 1}).json()
    assert closed["closed"] is True and closed["unresolved"] == []


@pytest.mark.slow
def test_closure_with_an_unreadable_lookaside_is_unavailable(
    env: Env, rpms: Rpms, tmp_path: Path
) -> None:
    env.publish("t1", {BAR: rpms.builds[BAR]})
    missing = tmp_path / "baseos"
    env.config = env.config.model_copy(update={"tags": TagsConfig(lookaside=(missing,))})
    answer = env.client().get("/api/tags/t1/closure")
    assert answer.status_code == 503
    assert answer.json()["message"].startswith("lookaside repository unavailable: ")
    assert "not a repository" in answer.json()["message"]


def test_closure_of_a_version_never_published_is_a_server_error(env: Env) -> None:
    env.record("t1", {"foo": FOO})
    answer = env.client().get("/api/tags/t1/closure")
    assert answer.status_code == 500
    assert "t1 version 1: repository unreadable" in answer.json()["message"]


# -- the tag store under /tags/ --------------------------------------------------------------


@pytest.mark.slow
def test_the_tag_store_is_served(env: Env, rpms: Rpms) -> None:
    env.publish("t1", {FOO: rpms.builds[FOO]})
    client = env.client()
    repo = client.get("/tags/t1/t1.repo")
    assert repo.status_code == 200
    assert repo.headers["content-type"] == "text/plain; charset=utf-8"
    assert "baseurl=http://trunk.example.org/tags/versions/t1/1\n" in repo.text
    assert client.get("/tags/versions/t1/1/repodata/repomd.xml").status_code == 200
    rpm = client.get(f"/tags/t1/{rpms.builds[FOO][0].name}")
    assert rpm.status_code == 200 and rpm.content == rpms.builds[FOO][0].read_bytes()


def test_links_out_of_the_tag_store_answer_404(env: Env, tmp_path: Path) -> None:
    secret = tmp_path / "outside"
    secret.mkdir()
    (secret / "secret.txt").write_text("not for you")
    tags_dir = env.config.tags_dir
    tags_dir.mkdir(parents=True)
    (tags_dir / "inside.txt").write_text("public")
    (tags_dir / "file-link").symlink_to(secret / "secret.txt")
    (tags_dir / "dir-link").symlink_to(secret)
    (tags_dir / "inner-link").symlink_to("inside.txt")
    client = env.client()
    assert client.get("/tags/inside.txt").text == "public"
    assert client.get("/tags/inner-link").text == "public"  # links inside are followed
    assert client.get("/tags/file-link").status_code == 404
    assert client.get("/tags/dir-link/secret.txt").status_code == 404
    assert client.get("/tags/..%2Foutside/secret.txt").status_code == 404


def test_an_empty_store_answers_404(tmp_path: Path) -> None:
    """No tag applied yet, no tags/ folder: the server starts, and /tags/ has nothing."""
    config = Config(datadir=tmp_path / "fresh")
    db = Database(config.database_url)
    try:
        client = TestClient(create_app(config, db))
        assert client.get("/tags/t1/t1.repo").status_code == 404
        assert client.get("/api/tags").json() == []
    finally:
        db.close()


# -- credentials -----------------------------------------------------------------------------


def _plant(env: Env) -> None:
    env.config.tags_dir.mkdir(parents=True)
    (env.config.tags_dir / "hello.txt").write_text("hello")


@pytest.mark.parametrize(
    "path", ["/api/tags", "/api/tags/t1", "/api/tags/diff", "/api/tags/t1/history"]
)
def test_reads_need_credentials_with_read_auth(env: Env, path: str) -> None:
    env.record("t1", {"foo": FOO})
    client = env.client(read_auth=True)
    anonymous = client.get(path)
    assert anonymous.status_code == 401 and anonymous.text == "Unauthorized Access"
    assert client.get(path, headers=basic("reader", "wrong-password")).status_code == 401
    assert client.get(path, headers=READER).status_code == 200


@pytest.mark.parametrize(
    ("api", "open_api", "open_files"),
    [
        ({}, True, True),
        ({"read_auth": True}, False, True),  # as /repos/: dnf clients read without
        ({"repos_auth": True}, True, False),  # as /repos/: the repositories are protected
        ({"read_auth": True, "repos_auth": True}, False, False),
    ],
)
def test_the_tag_store_needs_credentials_as_the_repositories_do(
    env: Env, api: dict[str, bool], open_api: bool, open_files: bool
) -> None:
    _plant(env)
    client = env.client(**api)
    assert client.get("/api/tags").status_code == (200 if open_api else 401)
    files = client.get("/tags/hello.txt")
    assert files.status_code == (200 if open_files else 401)
    if not open_files:
        assert files.text == "Unauthorized Access"
        assert files.headers["www-authenticate"] == 'Basic realm="Authentication Required"'
        assert client.get("/tags/hello.txt", headers=READER).text == "hello"


def test_the_operations_are_documented(env: Env) -> None:
    paths = env.client().get("/openapi.json").json()["paths"]
    assert {
        "/api/tags",
        "/api/tags/diff",
        "/api/tags/{tag}",
        "/api/tags/{tag}/history",
        "/api/tags/{tag}/closure",
    } <= set(paths)
    closure = paths["/api/tags/{tag}/closure"]["get"]
    assert {"400", "404", "500", "503"} <= set(closure["responses"])
