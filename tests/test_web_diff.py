"""The diff of two repositories (`conveyor diff`, /diff): on the example distribution after a
real change (a new upstream commit built by a second trunk run), the changed package with its
two NVRs and the upstream commit between them; labels, hash paths and commit hashes as names;
bad names answered 400 and unknown ones 404, with the navigation; and, on synthetic
versions.csv files, the rules (columns, forge links, mirrors missing, bounds)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.support import Trunk, built_example, cli, default_first_cycle, example, example_git

from conveyor.api import create_app
from conveyor.config import Config
from conveyor.publish.formats import VersionsRow, versions_csv
from conveyor.reports import diff as service
from conveyor.reports.diff import (
    BadReference,
    UnknownRepository,
    diff_repositories,
    parse_versions,
    resolve_repository,
)

LIB = "python-examplelib"
NAV = ('href="/"', 'href="/ftbfs"', 'href="/diff" aria-current="page"', "dashboard.css")
PACKAGE_KEYS = {
    "package",
    "nvr",
    "commit_hash",
    "distro_hash",
    "extended_hash",
    "status",
    "component",
    "url",
}

NO_RPMBUILD = shutil.which("rpmbuild") is None


@dataclass(frozen=True)
class Changed:
    trunk: Trunk
    config: Config
    client: TestClient
    before: str  # what `current` pointed at after the first run, below repos/
    after: str  # what it points at after the second
    old_commit: str  # python-examplelib's upstream commit built by the first run
    new_commit: str  # the commit added before the second run
    failed_dir: str  # example-broken's failed build directory, below repos/


@pytest.fixture(scope="module")
def changed() -> Iterator[Changed]:
    """The example after its first run, then a new upstream commit of examplelib built by a
    second run."""
    with built_example("default", default_first_cycle).changed() as trunk:
        before = os.readlink(trunk.repos / "current")
        old_commit = trunk.newest(LIB)[1]
        broken = trunk.newest(trunk.dist.failing_package)
        failed_dir = trunk.hash_dir(broken[1], broken[2]).relative_to(trunk.repos).as_posix()
        new_commit = example.add_upstream_commit(trunk.root, "examplelib", "Add <b>a</b> feature")
        code, output = trunk.run()
        assert code == 0, output
        after = os.readlink(trunk.repos / "current")
        assert after != before and trunk.newest(LIB)[1] == new_commit
        config = trunk.config()
        with TestClient(create_app(config)) as client:
            yield Changed(trunk, config, client, before, after, old_commit, new_commit, failed_dir)


# --- the real trunk -------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(NO_RPMBUILD, reason="rpmbuild is not installed")
def test_cli_json_shows_the_change_with_nvrs_and_the_commit_between(changed: Changed) -> None:
    code, output = cli(
        "diff", f"repos/{changed.before}", "current", "--json", "--config",
        str(changed.trunk.config_path),
    )  # fmt: skip
    assert code == 0, output
    result = json.loads(output)
    assert set(result) == {"from", "to", "summary", "added", "removed", "changed"}
    assert result["from"] == {
        "ref": f"repos/{changed.before}",
        "path": changed.before,
        "label": None,
        "packages": len(changed.trunk.dist.packages),
    }
    assert result["to"]["label"] == "current" and result["to"]["path"] == changed.after
    assert result["summary"] == {
        "added": 0,
        "removed": 0,
        "changed": 1,
        "unchanged": len(changed.trunk.dist.packages) - 1,
    }
    assert result["added"] == result["removed"] == []
    (change,) = result["changed"]
    assert set(change) == {"package", "old", "new", "commits", "commits_state"}
    assert change["package"] == LIB
    old, new = change["old"], change["new"]
    assert set(old) == set(new) == PACKAGE_KEYS
    assert (old["commit_hash"], new["commit_hash"]) == (changed.old_commit, changed.new_commit)
    assert old["nvr"].startswith(f"{LIB}-") and changed.old_commit[:7] in old["nvr"]
    assert new["nvr"].startswith(f"{LIB}-") and changed.new_commit[:7] in new["nvr"]
    assert old["nvr"] != new["nvr"]
    assert change["commits_state"] == "listed"
    assert change["commits"] == [
        {"hash": changed.new_commit, "subject": "Add <b>a</b> feature", "url": None}
    ]


@pytest.mark.slow
@pytest.mark.skipif(NO_RPMBUILD, reason="rpmbuild is not installed")
def test_cli_table_and_errors(changed: Changed) -> None:
    config = str(changed.trunk.config_path)
    name = changed.before.rsplit("/", 1)[-1]
    code, output = cli("diff", name, "current", "--config", config)
    assert code == 0, output
    assert "1 changed, 0 added, 0 removed" in output and LIB in output
    assert "Add <b>a</b> feature" in output
    code, output = cli("diff", "no-such-label", "current", "--config", config)
    assert code == 2 and "no-such-label: no such repository" in output
    code, output = cli("diff", "../../etc", "current", "--config", config)
    assert code == 2 and "`..`" in output
    code, output = cli("diff", changed.failed_dir, "current", "--config", config)
    assert code == 2 and "not a published repository" in output


@pytest.mark.slow
@pytest.mark.skipif(NO_RPMBUILD, reason="rpmbuild is not installed")
def test_page_shows_both_nvrs_and_the_upstream_commit(changed: Changed) -> None:
    response = changed.client.get("/diff", params={"from": changed.before, "to": "current"})
    assert response.status_code == 200
    html = response.text
    assert all(part in html for part in NAV)
    result = diff_repositories(
        changed.config.repos_dir, changed.config.datadir, changed.before, "current"
    )
    (change,) = result.changed
    assert change.old.nvr and change.new.nvr
    assert change.old.nvr in html and change.new.nvr in html
    assert changed.new_commit[:12] in html
    assert "Add &lt;b&gt;a&lt;/b&gt; feature" in html and "<b>a</b>" not in html
    assert f'href="/repos/{changed.before}/"' in html and f'href="/repos/{changed.after}/"' in html
    assert f'<a href="/package/{LIB}">{LIB}</a>' in html
    assert "1 changed, 0 added, 0 removed" in html
    assert '<option value="current">' in html  # the labels are suggested
    # The other way round, the commit is one the older repository goes back over.
    back = changed.client.get("/diff", params={"from": "current", "to": changed.before})
    assert back.status_code == 200 and "the new build is older" in back.text
    assert changed.new_commit[:12] in back.text


@pytest.mark.slow
@pytest.mark.skipif(NO_RPMBUILD, reason="rpmbuild is not installed")
@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({}, 200, "A repository is a hash"),
        ({"from": "current"}, 400, "Give both repositories"),
        ({"from": "../../etc", "to": "current"}, 400, "no empty, `.` or `..` parts"),
        ({"from": "/etc", "to": "current"}, 400, "not an absolute path"),
        ({"from": '"><script>alert(1)</script>', "to": "current"}, 400, "not a repository path"),
        ({"from": '"><img src=x onerror=alert(1)>', "to": "current"}, 400, "neither a repository"),
        ({"from": "report.html", "to": "current"}, 400, "it is a report file"),
        ({"from": "no-such-label", "to": "current"}, 404, "no such repository"),
        ({"from": "ab" * 20 + "_12345678", "to": "current"}, 404, "no such repository"),
        ({"from": "f" * 40, "to": "current"}, 404, "no published repository of commit"),
    ],
)
def test_page_answers_bad_and_unknown_names(
    changed: Changed, params: dict[str, str], status: int, message: str
) -> None:
    response = changed.client.get("/diff", params=params)
    assert response.status_code == status
    html = response.text
    assert all(part in html for part in NAV)
    assert message in html.replace("&#39;", "'").replace("&#96;", "`")
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "Traceback" not in html


@pytest.mark.slow
@pytest.mark.skipif(NO_RPMBUILD, reason="rpmbuild is not installed")
def test_a_failed_build_directory_is_no_repository(changed: Changed) -> None:
    response = changed.client.get("/diff", params={"from": changed.failed_dir, "to": "current"})
    assert response.status_code == 404
    assert "not a published repository" in response.text


@pytest.mark.slow
@pytest.mark.skipif(NO_RPMBUILD, reason="rpmbuild is not installed")
def test_names_of_one_repository(changed: Changed) -> None:
    repos = changed.config.repos_dir
    name = changed.after.rsplit("/", 1)[-1]
    commit = name.split("_")[0]
    for ref in ("current", name, changed.after, f"repos/{changed.after}/", commit, commit[:10]):
        assert resolve_repository(repos, ref).relpath == changed.after, ref
    assert resolve_repository(repos, "current").label == "current"


# --- the rules, on synthetic repositories ----------------------------------------------------


def _row(name: str, commit: str, nvr: str | None, **extra: object) -> VersionsRow:
    fields: dict[str, object] = {
        "project": name,
        "source_repo": f"https://github.com/example/{name}",
        "source_sha": commit,
        "dist_repo": f"https://github.com/example/{name}-distgit",
        "dist_sha": "d" * 40,
        "status": "SUCCESS",
        "last_success": 1_700_000_000,
        "component": None,
        "extended_sha": None,
        "nvr": nvr,
    }
    return VersionsRow(**(fields | extra))  # type: ignore[arg-type]


def _publish(repos: Path, commit: str, rows: list[VersionsRow]) -> str:
    relpath = f"{commit[:2]}/{commit[2:4]}/{commit}_dddddddd"
    (repos / relpath).mkdir(parents=True)
    (repos / relpath / "versions.csv").write_text(versions_csv(rows))
    return relpath


def test_added_removed_changed_and_forge_links(tmp_path: Path) -> None:
    repos = tmp_path / "repos"
    a, b, c = "a" * 40, "b" * 40, "c" * 40
    kept = _row("kept", a, "kept-1-1")
    before = [_row("gone", a, "gone-1-1"), kept, _row("moved", a, "moved-1-1")]
    after = [kept, _row("moved", b, "moved-2-1"), _row("new", c, None, status="FAILED")]
    old = _publish(repos, "1" * 40, before)
    new = _publish(repos, "2" * 40, after)
    (repos / "current-passed-ci").symlink_to(new)
    result = diff_repositories(repos, tmp_path, old, "current-passed-ci")
    assert [p.package for p in result.added] == ["new"]
    assert result.added[0].nvr is None and result.added[0].status == "FAILED"
    assert [p.package for p in result.removed] == ["gone"]
    assert result.unchanged == 1
    (change,) = result.changed
    assert (change.old.nvr, change.new.nvr) == ("moved-1-1", "moved-2-1")
    assert change.commits_state == "no-mirror" and change.commits == ()
    assert change.new.url == f"https://github.com/example/moved/commit/{b}"
    assert result.new.label == "current-passed-ci"


def test_old_versions_csv_without_the_last_columns(tmp_path: Path) -> None:
    text = (
        "Project,Source Repo,Source Sha,Dist Repo,Dist Sha,Status,Last Success Timestamp\n"
        "foo,https://opendev.org/openstack/foo,abcdef1,https://x/foo,1234567,SUCCESS,1700000000\n"
        "bar,None,abcdef2,None,None,FAILED,None\n"
    )
    parsed = parse_versions(text)
    assert parsed["foo"].nvr is None and parsed["foo"].last_success == 1_700_000_000
    assert parsed["foo"].url == "https://opendev.org/openstack/foo/commit/abcdef1"
    assert parsed["bar"].source_repo is None and parsed["bar"].distro_hash is None
    with pytest.raises(service.DiffError, match="no Project"):
        parse_versions("a,b\n1,2\n")


@pytest.mark.parametrize(
    ("ref", "error"),
    [
        ("", BadReference),
        ("/etc/passwd", BadReference),
        ("ab/cd/../../x", BadReference),
        ("component/../x", BadReference),
        ("component/c", BadReference),
        ("x" * 600, BadReference),
        ("a\\b", BadReference),
        ("zz/yy/name", BadReference),
        ("ab/cd/ef12_x", BadReference),
        ("29", BadReference),  # a shard folder
        ("repodata", BadReference),
        ("outside", UnknownRepository),  # a link out of the tree
        ("missing-label", UnknownRepository),
        ("1" * 40 + "_eeeeeeee", UnknownRepository),
    ],
)
def test_names_that_are_refused(tmp_path: Path, ref: str, error: type[Exception]) -> None:
    repos = tmp_path / "repos"
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "versions.csv").write_text(versions_csv([_row("x", "a" * 40, "x-1-1")]))
    repos.mkdir()
    (repos / "outside").symlink_to(outside)
    with pytest.raises(error):
        resolve_repository(repos, ref)


def test_an_abbreviated_commit_naming_two_repositories_is_ambiguous(tmp_path: Path) -> None:
    repos = tmp_path / "repos"
    commit = "3" * 40
    _publish(repos, commit, [_row("x", "a" * 40, "x-1-1")])
    other = repos / commit[:2] / commit[2:4] / f"{commit}_eeeeeeee"
    other.mkdir()
    (other / "versions.csv").write_text(versions_csv([]))
    with pytest.raises(BadReference, match="several repositories"):
        resolve_repository(repos, commit[:12])


def _mirror(datadir: Path, package: str, subjects: list[str]) -> list[str]:
    """A bare mirror of `package` whose history is `subjects`; the commit hashes, oldest
    first."""
    work = datadir / "work" / package
    work.mkdir(parents=True)
    example_git(work, "init", "-q", "-b", "main")
    hashes = []
    for subject in subjects:
        example_git(work, "commit", "-q", "--allow-empty", "-m", subject)
        hashes.append(example_git(work, "rev-parse", "HEAD"))
    mirror = datadir / "sources" / package / "upstream.git"
    subprocess.run(
        ["git", "clone", "-q", "--bare", str(work), str(mirror)], check=True, capture_output=True
    )
    return hashes


def test_commits_between_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repos = tmp_path / "repos"
    hashes = _mirror(tmp_path, "pkg", ["one", "two", "three", "four", "five"])
    old = _publish(repos, "4" * 40, [_row("pkg", hashes[0], "pkg-1-1")])
    new = _publish(repos, "5" * 40, [_row("pkg", hashes[4], "pkg-1-2")])
    monkeypatch.setattr(service, "MAX_COMMITS", 3)
    (change,) = diff_repositories(repos, tmp_path, old, new).changed
    assert change.commits_state == "truncated"
    assert [c.subject for c in change.commits] == ["five", "four", "three"]
    assert change.commits[0].url == f"https://github.com/example/pkg/commit/{hashes[4]}"
    # Out of time: nothing is looked up, and the page says so.
    skipped = diff_repositories(repos, tmp_path, new, old, budget=0.0).changed[0]
    assert skipped.commits_state == "skipped" and skipped.note == "commits not looked up"
    # A hash the mirror does not know.
    stray = _publish(repos, "6" * 40, [_row("pkg", "9" * 40, "pkg-9-1")])
    unknown = diff_repositories(repos, tmp_path, old, stray).changed[0]
    assert unknown.commits_state == "unknown"
    # Without asking, no git at all.
    quiet = diff_repositories(repos, tmp_path, old, new, commits=False).changed[0]
    assert quiet.commits_state == "skipped"
