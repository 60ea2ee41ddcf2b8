"""Browsing the published tree: folder listings under /repos/ and /tags/ (once a 404), text
files shown by the browser rather than downloaded, and the log viewer (/view/) with a failed
build's failing lines highlighted; on the example distribution after a real trunk run, and on
a small hand-made tree for hostile names, links out of the tree and traversal."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.support import Trunk, basic, built_example, default_first_cycle, users_database

from conveyor.api import create_app
from conveyor.config import ApiConfig, Config
from conveyor.web.pages.browse import SHOWN_BYTES

NO_RPMBUILD = shutil.which("rpmbuild") is None
NAV = ('href="/"', 'href="/ftbfs"', 'href="/diff"', "dashboard.css")
TEXT_FILES = ("rpmbuild.log", "commit.yaml", "versions.csv", "delorean.repo", "installed")


def _row_of(html: str, text: str) -> str:
    for row in re.findall(r"<tr[^>]*>.*?</tr>", html, flags=re.DOTALL):
        if text in row:
            return row
    raise AssertionError(f"no row with {text!r}")


def _names(html: str) -> list[str]:
    """The entries of a listing, in their order (the first cell's link text)."""
    return re.findall(r'<tr>\s*<td class="mono"><a href="[^"]*">([^<]*)</a>', html)


@dataclass(frozen=True)
class Built:
    trunk: Trunk
    client: TestClient
    success: str  # python-examplelib's repository, below repos/
    failure: str  # example-broken's failed build folder, below repos/


@pytest.fixture(scope="module")
def built() -> Iterator[Built]:
    trunk = built_example("default", default_first_cycle).shared()
    lib = trunk.newest("python-examplelib")
    broken = trunk.newest(trunk.dist.failing_package)
    success = trunk.hash_dir(lib[1], lib[2]).relative_to(trunk.repos).as_posix()
    failure = trunk.hash_dir(broken[1], broken[2]).relative_to(trunk.repos).as_posix()
    with TestClient(create_app(trunk.config())) as client:
        yield Built(trunk, client, success, failure)


# --- listings on the real trunk -------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(NO_RPMBUILD, reason="rpmbuild is not installed")
def test_the_top_of_repos_lists_shards_labels_and_reports(built: Built) -> None:
    response = built.client.get("/repos/")
    assert response.status_code == 200
    html = response.text
    assert all(part in html for part in NAV)
    assert 'href="/repos/" aria-current="page"' in html
    names = _names(html)
    assert "current/" in names and "report.html" in names
    folders = [n for n in names if n.endswith("/")]
    assert names[: len(folders)] == folders  # folders first
    current = (built.trunk.repos / "current").readlink().as_posix()
    assert f'<a href="/repos/{current}/">{current}/</a>' in _row_of(html, ">current/<")
    assert not any(n.startswith(".") for n in names)  # no lock, journal or staging folder


@pytest.mark.slow
@pytest.mark.skipif(NO_RPMBUILD, reason="rpmbuild is not installed")
def test_a_repository_lists_its_files_links_and_logs(built: Built) -> None:
    redirect = built.client.get(f"/repos/{built.success}", follow_redirects=False)
    assert redirect.status_code in (301, 307)
    assert redirect.headers["location"].endswith(f"/repos/{built.success}/")
    response = built.client.get(f"/repos/{built.success}/")
    assert response.status_code == 200
    html = response.text
    names = _names(html)
    assert names[0] == "../"
    assert names.index("repodata/") < names.index("commit.yaml")  # folders first
    for name in ("rpmbuild.log", "versions.csv", "commit.yaml", "delorean.repo"):
        assert name in names, name
    assert f'<a class="view" href="/view/{built.success}/rpmbuild.log">view</a>' in html
    assert f'href="/diff?from={built.success}&amp;to=current"' in html
    # The other packages' RPMs are links into their own repositories, shown as such.
    linked = [n for n in names if n.endswith(".rpm") and not n.startswith("python-examplelib")]
    assert linked
    row = _row_of(html, f">{linked[0]}<")
    assert re.search(r'href="/repos/[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f_]+/"', row)
    assert re.search(r'class="size">[0-9.]+ (B|KiB|MiB)<', row)
    # A shard folder lists its hash directories.
    shard = built.success.rsplit("/", 1)[0]
    listed = built.client.get(f"/repos/{shard}/").text
    assert built.success.rsplit("/", 1)[1] + "/" in _names(listed)


@pytest.mark.slow
@pytest.mark.skipif(NO_RPMBUILD, reason="rpmbuild is not installed")
def test_a_failed_build_lists_its_logs(built: Built) -> None:
    html = built.client.get(f"/repos/{built.failure}/").text
    names = _names(html)
    assert {"notes.log", "rpmbuild.log", "commit.yaml"} <= set(names)
    assert "compare with current" not in html  # no versions.csv: not a repository


@pytest.mark.slow
@pytest.mark.skipif(NO_RPMBUILD, reason="rpmbuild is not installed")
@pytest.mark.parametrize("name", TEXT_FILES)
def test_text_files_display_in_the_browser(built: Built, name: str) -> None:
    response = built.client.get(f"/repos/{built.success}/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert "attachment" not in response.headers.get("content-disposition", "")
    assert response.headers["x-content-type-options"] == "nosniff"


# --- the log viewer on the real trunk --------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(NO_RPMBUILD, reason="rpmbuild is not installed")
def test_the_viewer_highlights_a_failed_builds_failing_lines(built: Built) -> None:
    response = built.client.get(f"/view/{built.failure}/rpmbuild.log")
    assert response.status_code == 200
    html = response.text
    assert all(part in html for part in NAV)
    assert "default-src 'self'" in response.headers["content-security-policy"]
    hits = re.findall(r'<span class="line hit" id="L(\d+)">([^<]*)</span>', html)
    assert any(text.startswith("error: Bad exit status") for _, text in hits)
    assert all(re.search(r"error:|Error|FAILED|Traceback|Bad exit status", t) for _, t in hits)
    assert all("\n" not in text for _, text in hits)  # one line each
    # The lines notes.log quotes are marked too, the failure's own echo among them.
    quoted = re.findall(r'<span class="line quoted">([^<]*)</span>', html)
    assert any("example-broken: failing on purpose" in run for run in quoted)
    plain = re.findall(r'<span class="line">([^<]*)</span>', html)
    assert plain and not any("error:" in run for run in plain)
    shown = "\n".join(re.findall(r'<span class="line[^"]*"[^>]*>([^<]*)</span>', html))
    log = (built.trunk.repos / built.failure / "rpmbuild.log").read_text()
    assert shown.replace("&lt;", "<").replace("&gt;", ">").replace("&#39;", "'").replace(
        "&#34;", '"'
    ).replace("&amp;", "&") == log.rstrip("\n")  # every line, in order, once
    assert f'href="#L{hits[0][0]}"' in html  # a link to the first failing line
    assert f'href="/repos/{built.failure}/rpmbuild.log">raw file</a>' in html
    # notes.log and a successful build's log are shown too.
    assert built.client.get(f"/view/{built.failure}/notes.log").status_code == 200
    ok = built.client.get(f"/view/{built.success}/rpmbuild.log").text
    assert "no failing line" in ok or 'class="line hit"' in ok


@pytest.mark.slow
@pytest.mark.skipif(NO_RPMBUILD, reason="rpmbuild is not installed")
@pytest.mark.parametrize(
    "path",
    [
        "/view/%2e%2e/commits.sqlite",
        "/view/..%2fconveyor.toml",
        "/view/%2Fetc%2Fpasswd",
        "/view//etc/passwd",
        "/view/current/%2e%2e/%2e%2e/commits.sqlite",
        "/view/current/%2e/versions.csv",
        "/view/current/repodata/repomd.xml",  # not a text file the viewer shows
        "/view/current",  # a folder
        "/view/no/such/file.log",
    ],
)
def test_the_viewer_refuses_what_is_not_a_text_file_of_the_tree(built: Built, path: str) -> None:
    response = built.client.get(path)
    assert response.status_code == 404, path
    assert all(part in response.text for part in NAV)
    assert "SQLite" not in response.text and "root:" not in response.text


# --- a hand-made tree: hostile names, links out, /tags/, big logs, credentials ---------------

H1 = "11/11/" + "1" * 40 + "_aaaaaaaa"
H2 = "22/22/" + "2" * 40 + "_bbbbbbbb"


@dataclass
class Env:
    config: Config
    client: TestClient

    @property
    def repos(self) -> Path:
        return self.config.repos_dir


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    datadir = tmp_path / "data"
    datadir.mkdir()
    config = Config(datadir=datadir, baseurl="http://example.com/repos")
    repos = config.repos_dir
    for relpath in (H1, H2):
        (repos / relpath).mkdir(parents=True)
        (repos / relpath / "rpmbuild.log").write_text("building\n")
    (repos / H2 / "foo-1.0-1.noarch.rpm").write_bytes(b"RPM")
    (repos / H1 / "foo-1.0-1.noarch.rpm").symlink_to("../../../" + H2 + "/foo-1.0-1.noarch.rpm")
    (repos / "current").symlink_to(H1)
    with TestClient(create_app(config)) as client:
        yield Env(config, client)


def test_hostile_names_are_escaped(env: Env) -> None:
    hostile = '<img src=x onerror=alert(1)>"&.log'
    (env.repos / H1 / hostile).write_text("x\n")
    html = env.client.get(f"/repos/{H1}/").text
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;&#34;&amp;.log" in html
    assert 'href="%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E%22%26.log"' in html
    viewed = env.client.get(f"/view/{H1}/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E%22%26.log")
    assert viewed.status_code == 200 and "<img src=x" not in viewed.text


def test_links_out_of_the_tree_are_neither_listed_nor_served(env: Env) -> None:
    (env.repos / H1 / "passwd.log").symlink_to("/etc/passwd")
    (env.repos / "etc").symlink_to("/etc")
    (env.repos / H1 / "dangling.log").symlink_to("nowhere.log")
    (env.repos / ".publish-staging").mkdir()
    top = env.client.get("/repos/").text
    assert "etc/" not in _names(top) and ".publish-staging/" not in _names(top)
    listing = env.client.get(f"/repos/{H1}/").text
    names = _names(listing)
    assert "passwd.log" not in names and "dangling.log" not in names
    assert "foo-1.0-1.noarch.rpm" in names  # a link that stays inside is listed
    assert f'href="/repos/{H2}/"' in _row_of(listing, "foo-1.0-1.noarch.rpm")
    for path in ("/repos/etc/", f"/repos/{H1}/passwd.log", "/repos/%2e%2e/", "/repos/%2e%2e"):
        response = env.client.get(path)
        assert response.status_code == 404, path
        assert "root:" not in response.text
    for path in (f"/view/{H1}/passwd.log", "/view/etc/passwd", f"/view/{H1}/dangling.log"):
        response = env.client.get(path)
        assert response.status_code == 404, path
        assert "root:" not in response.text


def test_an_index_html_is_served_as_before(env: Env) -> None:
    (env.repos / H2 / "index.html").write_text("<p>own index</p>")
    assert env.client.get(f"/repos/{H2}/").text == "<p>own index</p>"


def test_tags_are_listed_as_repos_are(env: Env) -> None:
    tags = env.config.tags_dir
    (tags / "cloud9s-flamingo-candidate" / "v3").mkdir(parents=True)
    (tags / "cloud9s-flamingo-candidate" / "v3" / "versions.csv").write_text("Project\n")
    (tags / "cloud9s-flamingo-candidate" / "latest").symlink_to("v3")
    (tags / "cloud9s-flamingo-candidate" / "out").symlink_to("/etc")
    top = env.client.get("/tags/")
    assert top.status_code == 200 and "cloud9s-flamingo-candidate/" in _names(top.text)
    assert all(part in top.text for part in NAV)
    html = env.client.get("/tags/cloud9s-flamingo-candidate/").text
    names = _names(html)
    assert names[:3] == ["../", "latest/", "v3/"] and "out/" not in names
    assert 'href="/tags/cloud9s-flamingo-candidate/v3/"' in _row_of(html, ">latest/<")
    assert 'href="/buildsys" aria-current="page"' in html
    version = env.client.get("/tags/cloud9s-flamingo-candidate/v3/").text
    assert "versions.csv" in _names(version)
    assert "/view/" not in version  # the viewer shows repos/ only
    served = env.client.get("/tags/cloud9s-flamingo-candidate/latest/versions.csv")
    assert served.headers["content-type"] == "text/plain; charset=utf-8"


def test_a_big_log_is_shown_by_its_end(env: Env) -> None:
    lines = [f"line {i}" for i in range(120_000)]
    lines[-5] = "Traceback (most recent call last):"
    lines[10] = "error: too early to be shown"
    (env.repos / H1 / "big.log").write_text("\n".join(lines) + "\n")
    assert (env.repos / H1 / "big.log").stat().st_size > SHOWN_BYTES
    html = env.client.get(f"/view/{H1}/big.log").text
    assert "its last 512.0 KiB are shown" in html
    assert "line 119999" in html and "too early" not in html
    assert re.search(r'<span class="line hit" id="L\d+">Traceback', html)


def test_the_viewer_and_diff_ask_for_credentials_with_repos_auth(tmp_path: Path) -> None:
    datadir = tmp_path / "data"
    datadir.mkdir()
    users_database(datadir / "commits.sqlite", {"reader": ("reader-secret", ["voter"])})
    config = Config(
        datadir=datadir,
        baseurl="http://example.com/repos",
        api=ApiConfig(repos_auth=True),
    )
    (config.repos_dir / "11").mkdir(parents=True)
    (config.repos_dir / "11" / "a.log").write_text("error: x\n")
    with TestClient(create_app(config)) as client:
        for path in ("/repos/", "/view/11/a.log", "/diff?from=a&to=b"):
            assert client.get(path).status_code == 401, path
        reader = basic("reader", "reader-secret")
        assert client.get("/view/11/a.log", headers=reader).status_code == 200
        assert client.get("/repos/", headers=reader).status_code == 200
        assert client.get("/diff", headers=reader).status_code == 200
