"""The dashboard's buildsys tags pages (`/buildsys`, `/buildsys/{tag}`) on tags applied as
`conveyor tags apply` leaves them (real RPMs, a published repository per version): content
with a filter box, history, the closure verdict of the version shown, the CI votes on it
and the GA criteria they meet."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conveyor.api import create_app
from conveyor.config import Config
from conveyor.domain.tags import ActionKind, TagAction
from conveyor.store.database import Database
from conveyor.tags.service import repo_file, store_of
from conveyor.tags.state import record_version
from conveyor.tags.votes import record_tag_vote

FOO, BAR = "foo-1.0-1", "bar-1.0-1"
TAG = "cloud9s-example-azalea-testing"
CRITERIA = """\
promotions:
  current-passed-ci:
    candidate_label: consistent
    criteria: [job]
release:
  criteria: [example-stable-ci, extra-job, smoke]
  alternative_criteria:
    smoke: [smoke-internal]
"""


def _spec(name: str, version: str, requires: str = "") -> str:
    return (
        f"Name: {name}\nVersion: {version}\nRelease: 1\nSummary: t\nLicense: MIT\n"
        "BuildArch: noarch\nAutoReqProv: no\n"
        + (f"Requires: {requires}\n" if requires else "")
        + "%description\nt\n%files\n%changelog\n"
    )


@dataclass(frozen=True)
class Env:
    config: Config
    db: Database
    client: TestClient


def _build(base: Path) -> dict[str, list[Path]]:
    """foo (which needs bar) and bar, built by the real rpmbuild."""
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
    return builds


def _publish(
    config: Config, db: Database, tag: str, builds: dict[str, list[Path]], **how: object
) -> int:
    """A version as `tags apply` leaves it: recorded, its repository published, pointed at."""
    content = {nvr.rsplit("-", 2)[0]: nvr for nvr in builds}
    actions = [TagAction(tag, ActionKind.TAG, name, nvr) for name, nvr in content.items()]
    with db.transaction() as session:
        applied = record_version(
            session,
            tag,
            content,
            content,
            actions,
            str(how.get("author", "alice")),
            str(how.get("reason", "first")),
            forced=bool(how.get("forced", False)),
        )
    store = store_of(config)
    files = {nvr: store.add_build(nvr, paths) for nvr, paths in builds.items()}
    store.refresh_index(files)
    store.publish_version(tag, applied.version, files, repo_file(config, tag, applied.version))
    store.point(tag, applied.version)
    return applied.version


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """TAG: version 1 holds foo and bar (closed), version 2 foo alone, forced past the gate
    (foo needs bar); votes on version 2. Another tag, t2, holds bar."""
    if shutil.which("rpmbuild") is None or shutil.which("createrepo_c") is None:
        pytest.skip("rpmbuild and createrepo_c needed")
    base = tmp_path_factory.mktemp("web-tags")
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_CACHE_HOME", str(base / "cache"))  # libsolv's cache
    builds = _build(base)
    (base / "promotions.yaml").write_text(CRITERIA)
    config = Config(
        datadir=base / "data",
        baseurl="http://trunk.example.org/repos",
        promotion_criteria=base / "promotions.yaml",
    )
    (base / "data").mkdir()
    db = Database(config.database_url)
    _publish(config, db, TAG, builds)
    _publish(config, db, TAG, {FOO: builds[FOO]}, author="bob", reason="drop bar <b>", forced=True)
    _publish(config, db, "t2", {BAR: builds[BAR]}, author="carol", reason="bar alone")
    with db.transaction() as session:
        for job, success in (("example-stable-ci", False), ("smoke-internal", True)):
            record_tag_vote(
                session,
                TAG,
                2,
                job,
                success,
                f"https://ci.example.org/{job}",
                "",
                1_900_000_000,
                "ci",
            )
        record_tag_vote(session, TAG, 1, "example-stable-ci", True, "", "", 1_800_000_000, "ci")
    with TestClient(create_app(config, db)) as client:
        yield Env(config, db, client)
    db.close()
    mp.undo()


def test_the_list_of_applied_tags(env: Env) -> None:
    answer = env.client.get("/buildsys")
    assert answer.status_code == 200
    html = answer.text
    assert 'href="/buildsys" aria-current="page"' in html
    assert 'data-filter="#tags"' in html
    assert f'<a href="/buildsys/{TAG}">{TAG}</a>' in html
    assert f'href="/tags/{TAG}/"' in html
    row = html.split(f'<a href="/buildsys/{TAG}">')[0].rsplit("<tr", 1)[1]
    assert 'class="retry"' in row  # the newest version was forced
    after = html.split(f'<a href="/buildsys/{TAG}">')[1].split("</tr>")[0]
    assert "<td>2</td>" in after and "<td>1</td>" in after  # version 2, one build
    assert "drop bar &lt;b&gt;" in after and "bob" in after
    assert ">t2<" in html


def test_a_tag_shows_content_history_verdict_and_votes(env: Env) -> None:
    answer = env.client.get(f"/buildsys/{TAG}")
    assert answer.status_code == 200
    html = answer.text
    # Content of version 2: foo alone, with a filter box.
    content = html.split('id="content"')[1].split("</table>")[0]
    assert "<td>foo</td>" in content and FOO in content and BAR not in content
    assert 'data-filter="#content"' in html
    # The closure verdict: foo needs bar, which version 2 lacks.
    closure = html.split('id="closure"')[1].split("</div>")[0]
    assert "Not closed" in closure and "foo-1.0-1.noarch" in closure and "needs bar" in closure
    # History, newest first, with who, why, forced and the actions.
    history = html.split('id="history"')[1]
    assert history.index("?version=2") < history.index("?version=1")
    assert "bob" in history and "drop bar &lt;b&gt;" in history and "(forced)" in history
    assert f"tag {FOO} into {TAG}" in history
    # The votes on version 2 and the GA criteria: one failed, one missing, one by alternative.
    ci = html.split('id="ci"')[1].split("</div>")[0]
    assert "example-stable-ci failed" in ci and "extra-job missing" in ci
    assert "smoke (by smoke-internal) passed" in ci
    votes = html.split('id="votes"')[1].split("</table>")[0]
    assert 'href="https://ci.example.org/example-stable-ci"' in votes and "failure" in votes
    # The repositories.
    assert f'href="/tags/versions/{TAG}/2/"' in html and f'href="/tags/{TAG}/"' in html
    assert env.client.get(f"/tags/versions/{TAG}/2/{TAG}.repo").status_code == 200


def test_a_past_version(env: Env) -> None:
    answer = env.client.get(f"/buildsys/{TAG}", params={"version": "1"})
    assert answer.status_code == 200
    html = answer.text
    assert f"{TAG} version 1" in html and "not the newest" in html
    assert "Closed:" in html.split('id="closure"')[1].split("</div>")[0]
    content = html.split('id="content"')[1].split("</table>")[0]
    assert FOO in content and BAR in content
    ci = html.split('id="ci"')[1].split("</div>")[0]
    assert "example-stable-ci passed" in ci and "1 vote(s)" in ci


def test_a_tag_that_is_not_a_testing_tag_has_no_ga_criteria(env: Env) -> None:
    html = env.client.get("/buildsys/t2").text
    assert "GA criteria" not in html and "Closed:" in html


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("/buildsys/nope", {}, "nope: no such tag"),
        (f"/buildsys/{TAG}", {"version": "9"}, f"{TAG}: no version 9"),
        (f"/buildsys/{TAG}", {"version": "x<b>"}, "version must be a whole number"),
        ("/buildsys/<img src=x onerror=alert(1)>", {}, "invalid buildsys tag name"),
        ("/buildsys/index", {}, "reserved"),
    ],
)
def test_unknown_tags_and_versions_are_404_pages(
    env: Env, path: str, params: dict[str, str], message: str
) -> None:
    answer = env.client.get(path, params=params)
    assert answer.status_code == 404
    assert message in answer.text and 'href="/buildsys"' in answer.text
    assert "<img" not in answer.text and "<b>" not in answer.text


def test_the_api_closure_answers_as_before(env: Env) -> None:
    verdict = env.client.get(f"/api/tags/{TAG}/closure").json()
    assert verdict["closed"] is False and verdict["unresolved"][0]["missing"] == ["bar"]
    assert env.client.get(f"/api/tags/{TAG}/closure", params={"version": 1}).json()["closed"]


def test_a_tag_whose_repository_is_gone_says_so(env: Env) -> None:
    store = store_of(env.config)
    version = store.version_dir("t2", 1)
    moved = version.with_name("moved")
    version.rename(moved)
    try:
        from conveyor.tags import verdict

        verdict._kept.clear()
        html = env.client.get("/buildsys/t2").text
        assert "No verdict" in html and "repository unreadable" in html
        assert env.client.get("/api/tags/t2/closure").status_code == 500
    finally:
        moved.rename(version)
