"""Remote import (`conveyor import`), end to end: builder A builds part of the example
distribution with real rpmbuild; builder B, with its own data directory and the same
metadata, imports A's hash directories over HTTP on 127.0.0.1 (or file://). Bad input is
served by the same local server; nothing leaves the machine."""

from __future__ import annotations

import contextlib
import csv
import importlib
import os
import shutil
import socket
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from tests.support import fresh_trunk
from typer.testing import CliRunner

from conveyor.assembly.builder import import_commit, run_cycle
from conveyor.cli.remote import register
from conveyor.config import Config, load_config
from conveyor.publish.locks import builder_lock
from conveyor.remote import (
    ArtifactError,
    CommitRecordError,
    FetchError,
    ImportRefused,
    Limits,
    parse_commit_record,
)
from conveyor.trunk.cycle import CycleOptions

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
example = importlib.import_module("examples.distribution")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("rpmbuild") is None, reason="rpmbuild is not installed"),
]

LIB = "python-examplelib"
HTML_PAGE = b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>no</body></html>\n"


# --- builder A and the server -------------------------------------------------------------------


@dataclass(frozen=True)
class BuilderA:
    config: Config
    repos: Path
    lib_old: Path  # python-examplelib, first commit
    lib_new: Path  # python-examplelib, one upstream commit later
    broken: Path  # example-broken, FAILED


def _rows(db: Path, query: str, *params: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(query, params).fetchall()


def _hash_dir(repos: Path, relpath: object) -> Path:
    return repos / str(relpath)


@pytest.fixture(scope="module")
def builder_a(tmp_path_factory: pytest.TempPathFactory) -> BuilderA:
    dist = fresh_trunk(tmp_path_factory.mktemp("a") / "dist").dist
    config = load_config(dist.config)
    first = run_cycle(config, CycleOptions(only=[LIB, dist.failing_package]))
    by_name = {r.job.target.name: p.relpath for r, p in first.published}
    example.add_upstream_commit(dist.root, dist.projects[LIB], "A newer commit")
    second = run_cycle(config, CycleOptions(only=[LIB]))
    ((_, newer),) = second.published
    repos = config.repos_dir
    return BuilderA(
        config=config,
        repos=repos,
        lib_old=_hash_dir(repos, by_name[LIB]),
        lib_new=_hash_dir(repos, newer.relpath),
        broken=_hash_dir(repos, by_name[dist.failing_package]),
    )


class _Handler(SimpleHTTPRequestHandler):
    """Static files, plus the misbehaving servers the tests need."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/html/"):  # a login page or proxy error for every path
            self._reply(200, HTML_PAGE, "text/html; charset=utf-8")
        elif self.path.startswith("/stall/"):
            time.sleep(1.5)
            self._reply(200, b"late", "text/plain")
        elif self.path.startswith("/trickle/"):
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            with contextlib.suppress(OSError):  # the client gives up, as it should
                for _ in range(20):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.05)
        elif self.path.startswith(("/to-file/", "/to-ftp/")):
            scheme = "file" if self.path.startswith("/to-file/") else "ftp"
            self.send_response(302)
            self.send_header("Location", f"{scheme}:///etc/passwd")
            self.end_headers()
        elif self.path.startswith("/error/"):
            self._reply(500, b"oops", "text/plain")
        else:
            super().do_GET()

    def _reply(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(OSError):  # the client gave up (timeouts are tested)
            self.wfile.write(body)


@dataclass(frozen=True)
class Server:
    root: Path  # served as /
    url: str

    def of(self, directory: Path) -> str:
        return f"{self.url}/{directory.relative_to(self.root)}/"


@pytest.fixture(scope="module")
def server(builder_a: BuilderA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("served")
    (root / "a").symlink_to(builder_a.repos)
    handler = _handler_for(root)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield Server(root, f"http://127.0.0.1:{httpd.server_address[1]}")
    finally:
        httpd.shutdown()
        httpd.server_close()


def _handler_for(root: Path) -> Callable[..., _Handler]:
    def make(*args: Any, **kwargs: Any) -> _Handler:
        return _Handler(*args, directory=str(root), **kwargs)

    return make


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy from the environment must not see (or break) the loopback traffic.
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def served(builder_a: BuilderA, server: Server, directory: Path) -> str:
    return server.of(server.root / "a" / directory.relative_to(builder_a.repos))


# --- builder B ----------------------------------------------------------------------------------


@dataclass
class BuilderB:
    config: Config
    config_path: Path

    @property
    def db(self) -> Path:
        return self.config.datadir / "commits.sqlite"

    @property
    def repos(self) -> Path:
        return self.config.repos_dir

    def commits(self) -> list[tuple[Any, ...]]:
        if not self.db.exists():
            return []
        return _rows(
            self.db,
            "select project_name, status, commit_hash, distro_hash, artifacts, notes, dt_build "
            "from commits order by id",
        )

    def assert_nothing_imported(self) -> None:
        assert self.commits() == []
        assert not list(self.repos.glob("??/??/*"))  # an empty list when repos/ is absent
        imports = self.config.datadir / "imports"
        assert not imports.exists() or not any(imports.iterdir())


@pytest.fixture
def builder_b(builder_a: BuilderA, tmp_path: Path) -> BuilderB:
    datadir = tmp_path / "b" / "data"
    path = tmp_path / "b" / "conveyor.toml"
    path.parent.mkdir()
    path.write_text(
        f'datadir = "{datadir}"\n'
        'baseurl = "http://b.example.org/repos"\n'
        "[metadata]\n"
        f'path = "{builder_a.config.metadata.path}"\n'
        f'release = "{builder_a.config.metadata.release}"\n'
    )
    return BuilderB(load_config(path), path)


def cli(*args: str) -> tuple[int, str]:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """conveyor (test)"""

    register(app)
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def record_of(directory: Path) -> dict[str, str]:
    return yaml.safe_load((directory / "commit.yaml").read_text())["commits"][0]


def craft(
    server: Server,
    name: str,
    source: Path,
    edit: Callable[[dict[str, str]], None] | None = None,
    files: dict[str, bytes] | None = None,
    remove: tuple[str, ...] = (),
) -> str:
    """A copy of hash directory `source` on the server, with its record or files changed."""
    target = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=server.root))
    for item in source.iterdir():
        if item.is_file() and not item.is_symlink():
            shutil.copyfile(item, target / item.name)
    if edit is not None:
        record = record_of(source)
        edit(record)
        (target / "commit.yaml").write_text(yaml.safe_dump({"commits": [record]}))
    for filename, content in (files or {}).items():
        (target / filename).write_bytes(content)
    for filename in remove:
        (target / filename).unlink()
    return server.of(target)


def rpm_names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("*.rpm") if not p.is_symlink())


# --- success ------------------------------------------------------------------------------------


def test_import_over_http_publishes_like_a_local_build(builder_a, server, builder_b):
    source = builder_a.lib_old
    code, output = cli(
        "import", served(builder_a, server, source), "--config", str(builder_b.config_path)
    )
    assert code == 0, output
    assert "imported SUCCESS python-examplelib" in output

    remote = record_of(source)
    ((project, status, commit, distro, artifacts, notes, dt_build),) = builder_b.commits()
    assert (project, status, notes) == (LIB, "SUCCESS", "OK")
    assert (commit, distro) == (remote["commit_hash"], remote["distro_hash"])
    assert str(dt_build) == remote["dt_build"]  # the NVRs carry the remote build time
    assert artifacts == remote["artifacts"]  # same layout, so the same paths

    hash_dir = builder_b.repos / source.relative_to(builder_a.repos)
    assert rpm_names(hash_dir) == rpm_names(source)
    for name in rpm_names(source):
        assert (hash_dir / name).read_bytes() == (source / name).read_bytes()
    assert (hash_dir / "repodata" / "repomd.xml").is_file()
    repo_file = (hash_dir / "delorean.repo").read_text()
    assert (
        f"baseurl=http://b.example.org/repos/{source.relative_to(builder_a.repos)}\n" in repo_file
    )
    table = list(csv.reader((hash_dir / "versions.csv").read_text().splitlines()))
    assert [row[:3] for row in table[1:]] == [[LIB, table[1][1], commit]]
    local = record_of(hash_dir)
    assert local["commit_hash"] == commit and local["status"] == "SUCCESS"
    assert local["repo_dir"].startswith(str(builder_b.config.datadir))  # B's values, not A's
    log = (hash_dir / "rpmbuild.log").read_text()
    assert log.startswith((source / "rpmbuild.log").read_text())
    assert log.endswith(f"conveyor: imported from {served(builder_a, server, source)}\n")
    assert (builder_b.repos / "current").resolve() == hash_dir
    assert not any((builder_b.config.datadir / "imports").iterdir())


def test_import_from_a_file_url(builder_a, builder_b):
    report = import_commit(builder_b.config, builder_a.lib_new.as_uri())
    assert report.published is not None and report.published.status == "SUCCESS"
    assert (builder_b.repos / "current").resolve().name == builder_a.lib_new.name


def test_newer_commit_moves_current(builder_a, server, builder_b):
    import_commit(builder_b.config, served(builder_a, server, builder_a.lib_old))
    report = import_commit(builder_b.config, served(builder_a, server, builder_a.lib_new))
    assert report.published is not None
    assert [row[1] for row in builder_b.commits()] == ["SUCCESS", "SUCCESS"]
    assert (builder_b.repos / "current").resolve().name == builder_a.lib_new.name


def test_failed_build_is_imported_as_failed(builder_a, server, builder_b):
    report = import_commit(builder_b.config, served(builder_a, server, builder_a.broken))
    assert report.published is not None and report.published.status == "FAILED"
    ((project, status, _, _, artifacts, notes, _),) = builder_b.commits()
    assert (project, status, artifacts) == ("example-broken", "FAILED", None)
    assert notes == record_of(builder_a.broken)["notes"]
    hash_dir = builder_b.repos / builder_a.broken.relative_to(builder_a.repos)
    assert {p.name for p in hash_dir.iterdir()} == {"rpmbuild.log", "notes.log", "commit.yaml"}
    assert "failing on purpose" in (hash_dir / "rpmbuild.log").read_text()
    assert notes in (hash_dir / "notes.log").read_text()
    assert not (builder_b.repos / "current").exists()


# --- skips --------------------------------------------------------------------------------------


def test_already_imported_commit_is_skipped(builder_a, server, builder_b):
    url = served(builder_a, server, builder_a.lib_old)
    import_commit(builder_b.config, url)
    code, output = cli("import", url, "--config", str(builder_b.config_path))
    assert code == 0, output
    assert "skipped" in output and "already recorded here" in output
    assert len(builder_b.commits()) == 1


def test_older_commit_is_skipped(builder_a, server, builder_b):
    import_commit(builder_b.config, served(builder_a, server, builder_a.lib_new))
    report = import_commit(builder_b.config, served(builder_a, server, builder_a.lib_old))
    assert report.published is None and "is not older than" in (report.skipped or "")
    assert len(builder_b.commits()) == 1
    assert not (builder_b.repos / builder_a.lib_old.relative_to(builder_a.repos)).exists()


# --- refusals: nothing written ------------------------------------------------------------------


def test_unreachable_url_writes_nothing(builder_b):
    with socket.socket() as probe:  # a port that was free a moment ago and is closed now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code, output = cli(
        "import", f"http://127.0.0.1:{port}/repos/ab/cd/x/", "--config", str(builder_b.config_path)
    )
    assert code == 2
    assert f"http://127.0.0.1:{port}/repos/ab/cd/x/commit.yaml: cannot connect" in output
    assert not builder_b.config.datadir.exists()


def test_html_page_instead_of_commit_yaml(server, builder_b):
    with pytest.raises(FetchError, match=r"commit\.yaml: the server returned an HTML page"):
        import_commit(builder_b.config, f"{server.url}/html/repos/ab/cd/x/")
    assert not builder_b.config.datadir.exists()


def test_html_body_without_html_content_type(builder_a, server, builder_b):
    url = craft(server, "html-yaml", builder_a.lib_old, files={"commit.yaml": HTML_PAGE})
    with pytest.raises(FetchError, match=r"HTML page instead of commit\.yaml"):
        import_commit(builder_b.config, url)


def test_html_page_instead_of_an_rpm(builder_a, server, builder_b):
    (noarch,) = [n for n in rpm_names(builder_a.lib_old) if n.endswith(".noarch.rpm")]
    url = craft(server, "html-rpm", builder_a.lib_old, files={noarch: HTML_PAGE * 3})
    with pytest.raises(FetchError, match=f"{noarch}: the server returned an HTML page instead"):
        import_commit(builder_b.config, url)
    builder_b.assert_nothing_imported()


@pytest.mark.parametrize(
    "artifact",
    ["../../etc/passwd.rpm", "a/b.rpm", "repos/ab/cd/passwd.rpm", "/etc/x.rpm", "x.rpm"],
)
def test_artifacts_outside_the_hash_directory_are_refused(builder_a, server, builder_b, artifact):
    def edit(record: dict[str, str]) -> None:
        record["artifacts"] += "," + artifact

    url = craft(server, "bad-path", builder_a.lib_old, edit)
    with pytest.raises(CommitRecordError, match=r"key 'artifacts': .* is refused"):
        import_commit(builder_b.config, url)
    builder_b.assert_nothing_imported()


def test_corrupted_rpm_is_refused(builder_a, server, builder_b):
    (noarch,) = [n for n in rpm_names(builder_a.lib_old) if n.endswith(".noarch.rpm")]
    data = bytearray((builder_a.lib_old / noarch).read_bytes())
    data[-100] ^= 0xFF  # in the compressed payload
    url = craft(server, "corrupt-payload", builder_a.lib_old, files={noarch: bytes(data)})
    with pytest.raises(ArtifactError, match="payload digest mismatch"):
        import_commit(builder_b.config, url)
    builder_b.assert_nothing_imported()


def test_rpm_with_a_broken_header_is_refused(builder_a, server, builder_b):
    (noarch,) = [n for n in rpm_names(builder_a.lib_old) if n.endswith(".noarch.rpm")]
    data = (builder_a.lib_old / noarch).read_bytes()
    url = craft(server, "truncated", builder_a.lib_old, files={noarch: data[:6000]})
    with pytest.raises(ArtifactError, match="not a valid RPM package"):
        import_commit(builder_b.config, url)
    url = craft(server, "not-rpm", builder_a.lib_old, files={noarch: b"\x00" * 4096})
    with pytest.raises(ArtifactError, match="no RPM lead"):
        import_commit(builder_b.config, url)
    builder_b.assert_nothing_imported()


def test_rpm_whose_header_disagrees_with_its_name(builder_a, server, builder_b):
    (noarch,) = [n for n in rpm_names(builder_a.lib_old) if n.endswith(".noarch.rpm")]
    renamed = "python-examplelib-9.9-1.noarch.rpm"

    def edit(record: dict[str, str]) -> None:
        record["artifacts"] = record["artifacts"].replace(noarch, renamed)

    url = craft(
        server,
        "renamed",
        builder_a.lib_old,
        edit,
        files={renamed: (builder_a.lib_old / noarch).read_bytes()},
    )
    with pytest.raises(ArtifactError, match=f"the package inside is {noarch}, not {renamed}"):
        import_commit(builder_b.config, url)
    builder_b.assert_nothing_imported()


def test_package_unknown_to_local_metadata(builder_a, server, builder_b):
    def edit(record: dict[str, str]) -> None:
        record["project_name"] = "python-unheard-of"

    url = craft(server, "unknown", builder_a.lib_old, edit)
    code, output = cli("import", url, "--config", str(builder_b.config_path))
    assert code == 2
    assert "package 'python-unheard-of' is not in the local metadata" in output
    builder_b.assert_nothing_imported()


def test_missing_rpm_is_an_error(builder_a, server, builder_b):
    (noarch,) = [n for n in rpm_names(builder_a.lib_old) if n.endswith(".noarch.rpm")]
    url = craft(server, "missing-rpm", builder_a.lib_old, remove=(noarch,))
    with pytest.raises(FetchError, match=r"not found \(HTTP 404\)"):
        import_commit(builder_b.config, url)
    builder_b.assert_nothing_imported()


def test_import_publishes_while_a_loop_holds_the_builder(builder_a, server, builder_b):
    """`run --loop` holds the builder for its whole life; imports only wait for publishing."""
    url = served(builder_a, server, builder_a.lib_old)
    with builder_lock(builder_b.config):
        report = import_commit(builder_b.config, url)
    assert report.published is not None and report.skipped is None


# --- the downloader's limits --------------------------------------------------------------------


def test_size_limit(builder_a, server, builder_b):
    limits = Limits(max_rpm_bytes=1000)
    with pytest.raises(FetchError, match="more than the 1000-byte limit"):
        import_commit(builder_b.config, served(builder_a, server, builder_a.lib_old), limits)
    builder_b.assert_nothing_imported()


def test_stalled_and_trickling_servers_time_out(server, builder_b):
    limits = Limits(timeout=0.3)
    with pytest.raises(FetchError, match=r"no answer within 0\.3 s|stalled"):
        import_commit(builder_b.config, f"{server.url}/stall/x/", limits)
    with pytest.raises(FetchError, match=r"not downloaded within 0\.3 s"):
        import_commit(builder_b.config, f"{server.url}/trickle/x/", limits)


def test_redirect_to_a_local_file_and_server_errors(server, builder_b):
    with pytest.raises(FetchError, match="Redirection to url 'file:///etc/passwd' is not allowed"):
        import_commit(builder_b.config, f"{server.url}/to-file/x/")
    with pytest.raises(FetchError, match="redirected to 'ftp:///etc/passwd', which is not http"):
        import_commit(builder_b.config, f"{server.url}/to-ftp/x/")
    with pytest.raises(FetchError, match="HTTP 500"):
        import_commit(builder_b.config, f"{server.url}/error/x/")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.org/repos/x/", "unsupported URL"),
        ("https:///repos/x/", "no host"),
        ("http://127.0.0.1/repos/x/?a=b", "no query"),
        ("file://remote-host/repos/x/", "local path"),
    ],
)
def test_bad_urls(builder_b, url, message):
    with pytest.raises(ImportRefused, match=message):
        import_commit(builder_b.config, url)
    assert not builder_b.config.datadir.exists()


# --- commit.yaml checks (no network) ------------------------------------------------------------


GOOD = {
    "commit_hash": "e7805ad242bd072e25f4d5161407ef2cce714e3a",
    "distro_hash": "589d98b2269aad9de0d49e96a23427e54caaf79d",
    "project_name": LIB,
    "status": "SUCCESS",
    "dt_commit": "1767301200.0",
    "dt_distro": "1769936400",
    "dt_build": "1795303230",
    "commit_branch": "master",
    "extended_hash": "None",
    "notes": "OK",
    "type": "rpm",
    "artifacts": "repos/e7/80/e7805ad242bd072e25f4d5161407ef2cce714e3a_589d98b2/a-1-1.src.rpm,"
    "repos/component/tools/e7/80/e7805ad242bd072e25f4d5161407ef2cce714e3a_589d98b2/"
    "a-1-1.noarch.rpm",
}


def parse(**changes: object) -> Any:
    record = {**GOOD, **changes}
    record = {k: v for k, v in record.items() if v is not None}
    return parse_commit_record(yaml.safe_dump({"commits": [record]}).encode(), "URL/commit.yaml")


def test_good_record():
    commit = parse()
    assert commit.dt_commit == 1767301200  # DLRN's older float form
    assert commit.artifacts == ("a-1-1.src.rpm", "a-1-1.noarch.rpm")
    assert parse(status="FAILED", artifacts="None").artifacts == ()
    # Older DLRN: `rpms` instead of `artifacts`, and no type, branch or extended hash.
    old = parse(artifacts=None, rpms=GOOD["artifacts"], type=None, extended_hash=None)
    assert old.artifacts == commit.artifacts and old.commit_branch == "master"
    with pytest.raises(CommitRecordError, match=r"key 'rpms': '/x\.rpm' is refused"):
        parse(artifacts=None, rpms="/x.rpm")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"commit_hash": "../../etc"}, "key 'commit_hash': invalid commit hash"),
        ({"distro_hash": "None"}, "key 'distro_hash': is required"),
        ({"project_name": "../x"}, "key 'project_name': invalid package name"),
        ({"project_name": None}, "key 'project_name' is missing"),
        ({"status": "RETRY"}, "key 'status': 'RETRY'"),
        ({"status": "BOGUS"}, "key 'status': 'BOGUS' is not SUCCESS or FAILED"),
        ({"dt_build": "yesterday"}, "key 'dt_build': 'yesterday' is not a time"),
        ({"dt_commit": "99999999999"}, "key 'dt_commit': .* is not a time|out of range"),
        ({"dt_distro": ["1"]}, "key 'dt_distro': expected a string, found list"),
        ({"extended_hash": "abcdef12"}, "key 'extended_hash': .* not supported"),
        ({"type": "container"}, "key 'type': 'container'"),
        ({"artifacts": "None"}, "key 'artifacts': is required"),
        ({"artifacts": GOOD["artifacts"].split(",")[1]}, "exactly one .src.rpm, found 0"),
        ({"artifacts": GOOD["artifacts"] + ","}, "not a plain relative path"),
        ({"artifacts": GOOD["artifacts"] + "," + GOOD["artifacts"]}, "the same file twice"),
        ({"artifacts": GOOD["artifacts"].replace(".noarch.rpm", ".txt")}, "not an RPM file"),
        ({"commit_branch": "x\n"}, "key 'commit_branch'"),
    ],
)
def test_bad_records_name_the_key(changes, message):
    with pytest.raises(CommitRecordError, match=message) as info:
        parse(**changes)
    assert str(info.value).startswith("URL/commit.yaml:")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"commits: [\n", "malformed YAML"),
        (b"- a\n", "top level must be a mapping"),
        (b"commits: []\n", "exactly one commit"),
        (b"commits: [a]\n", "must be a mapping"),
        (b"other: 1\n", "exactly one commit"),
        (b"commits:\n- &a [*a]\n", "URL/commit.yaml:2: recursive YAML alias"),
        (b"commits:\n- {status: SUCCESS}\n", "URL/commit.yaml:2: key 'commit_hash' is missing"),
    ],
)
def test_malformed_records(text, message):
    with pytest.raises(CommitRecordError, match=message):
        parse_commit_record(text, "URL/commit.yaml")


def test_rpm_magic_alone_is_not_enough(tmp_path):
    from conveyor.remote.rpmcheck import read_rpm

    fake = tmp_path / "a-1-1.noarch.rpm"
    fake.write_bytes(b"\xed\xab\xee\xdb" + os.urandom(2000))
    with pytest.raises(ArtifactError, match="not a valid RPM package"):
        read_rpm(fake, "URL/a-1-1.noarch.rpm")


def test_an_imported_build_notifies_and_updates_the_reports_as_a_local_one(
    builder_a, server, builder_b
):
    """One composition root: `conveyor import` publishes with the listeners a cycle has, so
    an imported FTBFS mails its maintainers and the imported builds show in the reports."""
    from tests.test_notify import SmtpServer

    with SmtpServer() as smtp:
        builder_b.config_path.write_text(
            builder_b.config_path.read_text()
            + f'[notifications]\nsmtp_server = "127.0.0.1"\nsmtp_port = {smtp.port}\n'
        )
        config = load_config(builder_b.config_path)
        import_commit(config, served(builder_a, server, builder_a.lib_new))
        report = import_commit(config, served(builder_a, server, builder_a.broken))
        assert report.published is not None and report.published.status == "FAILED"
        ((recipients, mail),) = smtp.inbox.messages
    assert "example-broken" in mail["Subject"] and recipients
    kinds = _rows(builder_b.db, "select kind, project_name, sent is not null from notifications")
    assert kinds == [("ftbfs", "example-broken", 1)]
    report_html = (builder_b.repos / "report.html").read_text()
    assert "example-broken" in report_html and "python-examplelib" in report_html
    status_csv = (builder_b.repos / "status_report.csv").read_text()
    assert "example-broken" in status_csv
