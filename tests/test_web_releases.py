"""The dashboard's releases page (release readiness: `release-status --config` per series, the
GA timeline) and upper-constraints page (the uc-report per release), on small data made here
and on the real data of /work/shared/data (skipped when it is absent)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conveyor.api import create_app
from conveyor.assembly.timeline import Timeline
from conveyor.config import Config, DashboardConfig, MetadataConfig, parse_config
from conveyor.store.database import Database
from conveyor.tags.state import record_version

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
RDOINFO = DATA / "rdoinfo-2cdac3d7e"
RELEASES = DATA / "openstack-releases-02df7c9a3"
REQUIREMENTS = DATA / "openstack-requirements-335367772"
needs_data = pytest.mark.skipif(
    not (RDOINFO.is_dir() and RELEASES.is_dir() and REQUIREMENTS.is_dir()),
    reason="shared/data is absent",
)

RDO_YML = """\
releases:
- name: epoxy
  status: maintained
  branch: epoxy-rdo
  repos:
  - name: el9s
    buildsys: cbs/cloud9s-openstack-epoxy-el9s
package-default:
  name: python-%(project)s
  upstream: https://opendev.org/openstack/%(project)s
  maintainers:
  - rel@example.org
package-configs:
  lib: {}
packages:
- {project: alpha, conf: lib, tags: {epoxy: {source-branch: 1.2.0}}}
- {project: beta, conf: lib, tags: {epoxy: {source-branch: 2.1.0}}}
- {project: gamma, conf: lib, tags: {epoxy: {source-branch: 3.0.0}}}
- {project: zeta, conf: lib, tags: {epoxy: null}}
- project: iota
  conf: lib
  upstream: https://github.com/example/iota
  tags: {epoxy: null}
"""
NVRS = {
    "alpha": "python-alpha-1.2.0-1.el9s",
    "beta": "python-beta-2.0.0-1.el9s",
    "gamma": "python-gamma-3.0.0-1.el9s",
    "zeta": "python-zeta-6.1.0-1.el9s",
}
RELEASED = {
    "alpha": ["1.1.0", "1.2.0"],
    "beta": ["2.0.0", "2.1.0"],
    "gamma": ["3.0.0", "3.0.1"],
    "zeta": ["6.1.0"],
    "omega": ["1.0.0"],  # released, packaged by nobody
}


def _small_data(root: Path) -> tuple[Path, Path]:
    info = root / "rdoinfo"
    (info / "buildsys-tags").mkdir(parents=True)
    (info / "rdo.yml").write_text(RDO_YML)
    lines = ["packages:"]
    for project, nvr in NVRS.items():
        lines += [f"- project: {project}", "  buildsys-tags:"]
        lines.append(f"    cloud9s-openstack-epoxy-release: {nvr}")
    (info / "buildsys-tags" / "cloud9s-openstack-epoxy-release.yml").write_text(
        "\n".join(lines) + "\n"
    )
    releases = root / "releases"
    (releases / "data").mkdir(parents=True)
    (releases / "data" / "series_status.yaml").write_text(
        "- name: flamingo\n  release-id: 2025.2\n  status: development\n"
        "- name: epoxy\n  release-id: 2025.1\n  status: maintained\n"
    )
    deliverables = releases / "deliverables" / "epoxy"
    deliverables.mkdir(parents=True)
    for project, versions in RELEASED.items():
        body = "team: t\ntype: library\nreleases:\n"
        for version in versions:
            body += f"- version: {version}\n  projects:\n  - repo: openstack/{project}\n"
            body += "    hash: 0123456789abcdef0123456789abcdef01234567\n"
        (deliverables / f"{project}.yaml").write_text(body)
    return info, releases


@dataclass(frozen=True)
class Env:
    config: Config
    client: TestClient
    releases: Path


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """epoxy (five packages; alpha in -candidate, zeta in -release) and flamingo (no
    deliverables), with two release-ga runs of epoxy."""
    root = tmp_path_factory.mktemp("web-releases")
    info, releases = _small_data(root)
    config = Config(
        datadir=root / "builder",
        metadata=MetadataConfig(path=info, release="epoxy"),
        dashboard=DashboardConfig(releases=releases, series=("flamingo",)),
    )
    (root / "builder").mkdir()
    db = Database(config.database_url)
    with db.transaction() as session:
        for tag, content in {
            "cloud9s-openstack-epoxy-candidate": {"python-alpha": NVRS["alpha"]},
            "cloud9s-openstack-epoxy-release": {"python-zeta": NVRS["zeta"]},
        }.items():
            record_version(session, tag, content, content, [], "rel", "seed")
    first = Timeline(db, "epoxy")
    first.end(first.start("status"), "done", "5 packages")
    first.end(first.start("release-build"), "failed", "python-beta: <script>x</script> failed")
    second = Timeline(db, "epoxy")
    second.end(second.start("status"), "done", "5 packages")
    second.start("closure")  # still running
    with TestClient(create_app(config, db)) as client:
        yield Env(config, client, releases)
    db.close()


def _text(html: str) -> str:
    """What a reader sees of `html`: its text, spaces collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def _row(html: str, text: str) -> list[str]:
    for row in re.findall(r"<tr[^>]*>.*?</tr>", html, flags=re.DOTALL):
        if text in row:
            cells = re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.DOTALL)
            return [_text(c) for c in cells]
    raise AssertionError(f"no row with {text!r}")


def test_readiness_overview(small: Env) -> None:
    answer = small.client.get("/releases")
    assert answer.status_code == 200
    html = answer.text
    assert 'href="/releases" aria-current="page"' in html
    epoxy = _text(html.split('<a href="/releases/epoxy">')[1].split("</section>")[0])
    assert "2025.1 · maintained · 5 packages" in epoxy
    assert "1 release-build" in epoxy and "1 release-pins" in epoxy
    assert "1 propose --to testing" in epoxy and "1 done" in epoxy
    # The newest GA run first, still running its closure step.
    assert "Run 2" in epoxy and "running" in epoxy
    flamingo = html.split('<a href="/releases/flamingo">')[1].split("</section>")[0]
    assert "no deliverables for series" in flamingo


def test_one_series_with_rows_todo_and_timeline(small: Env) -> None:
    answer = small.client.get("/releases/epoxy")
    assert answer.status_code == 200
    html = answer.text
    assert 'data-filter="#packages"' in html
    alpha = _row(html, "<td>alpha</td>")
    assert alpha[:5] == ["alpha", "python-alpha", "ok", "1.2.0", "1.2.0"]
    assert "python-alpha-1.2.0-1.el9s cloud9s-openstack-epoxy-candidate" in alpha[6]
    assert alpha[7] == "propose --to testing"
    assert _row(html, "<td>beta</td>")[7] == "release-build"
    assert _row(html, "<td>gamma</td>")[7] == "release-pins"
    assert _row(html, "<td>zeta</td>")[7] == "done"
    assert _row(html, "<td>iota</td>")[2] == "not-opendev"
    assert 'class="missing"' in html  # beta, gamma: to do
    assert "built by no package of the release: openstack/omega" in html
    # Both runs, the failed step's detail escaped.
    assert "Run 1" in html and "Run 2" in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html and "<script>x" not in html


def test_unknown_series_and_hostile_input(small: Env) -> None:
    answer = small.client.get("/releases/dalmatian")
    assert answer.status_code == 404 and 'href="/releases"' in answer.text
    hostile = small.client.get("/releases/<img src=x>", params={"q": "<img>"})
    assert hostile.status_code == 404 and "<img" not in hostile.text


def test_a_new_applied_tag_shows_without_a_restart(small: Env, tmp_path: Path) -> None:
    config = small.config
    db = Database(config.database_url)
    try:
        with db.transaction() as session:
            content = {"python-alpha": NVRS["alpha"]}
            record_version(
                session, "cloud9s-openstack-epoxy-testing", content, content, [], "r", "s"
            )
    finally:
        db.close()
    time.sleep(2.1)  # files and tags are checked again every two seconds
    alpha = _row(small.client.get("/releases/epoxy").text, "<td>alpha</td>")
    assert alpha[7] == "propose --to release"


def test_without_a_releases_checkout_the_page_says_which_option_to_set(
    small: Env, tmp_path: Path
) -> None:
    config = small.config.model_copy(update={"dashboard": DashboardConfig()})
    with TestClient(create_app(config)) as client:
        html = client.get("/releases").text
        assert "No openstack/releases checkout configured" in html
        assert "[dashboard] releases" in html
        assert "Run 2" in html  # the builder's release: its timeline is the builder's own
        detail = client.get("/releases/epoxy")
        assert detail.status_code == 200 and "[dashboard] releases" in detail.text


def test_the_dashboard_table_is_checked_and_its_paths_resolved(tmp_path: Path) -> None:
    config = parse_config(
        {
            "dashboard": {
                "releases": "releases",
                "series": ["epoxy"],
                "constraints": {"epoxy": "uc.txt", "flamingo": "https://example.org/uc.txt"},
                "constraint_repos": {"epoxy": ["deps,repo", "x.repo"]},
            }
        },
        tmp_path / "conveyor.toml",
    )
    board = config.dashboard
    assert board.releases == tmp_path / "releases"
    assert board.constraints == {
        "epoxy": str(tmp_path / "uc.txt"),
        "flamingo": "https://example.org/uc.txt",
    }
    assert board.constraint_repos["epoxy"] == (
        f"deps,{tmp_path / 'repo'}",
        str(tmp_path / "x.repo"),
    )
    from conveyor.config import ConfigError

    for bad in (
        {"series": ["../x"]},
        {"constraints": {"epoxy": "ftp://x/uc.txt"}},
        {"constraints": {"a/b": "uc.txt"}},
        {"distro": "centos7"},
        {"unknown": 1},
    ):
        with pytest.raises(ConfigError, match="dashboard"):
            parse_config({"dashboard": bad}, tmp_path / "conveyor.toml")


# -- real data -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("web-releases-real")
    config = Config(
        datadir=root / "builder",
        metadata=MetadataConfig(path=RDOINFO, release="epoxy"),
        dashboard=DashboardConfig(
            releases=RELEASES,
            series=("flamingo",),
            constraints={
                "epoxy": str(REQUIREMENTS / "stable-2025.1" / "upper-constraints.txt"),
                "flamingo": str(REQUIREMENTS / "stable-2025.2" / "upper-constraints.txt"),
            },
        ),
    )
    (root / "builder").mkdir()
    with TestClient(create_app(config)) as client:
        yield Env(config, client, RELEASES)


@needs_data
def test_real_release_readiness(real: Env) -> None:
    answer = real.client.get("/releases/epoxy")
    assert answer.status_code == 200
    html = answer.text
    rows = html.split('id="packages"')[1].count("<tr")
    assert rows > 200  # the packages of epoxy, and the heading
    assert _row(html, "<td>nova</td>")[1] == "openstack-nova"
    assert "release-build" in html or "tags apply" in html
    overview = real.client.get("/releases").text
    assert '<a href="/releases/flamingo">' in overview and '<a href="/releases/epoxy">' in overview


@needs_data
def test_real_constraints_drift(real: Env) -> None:
    answer = real.client.get("/constraints/epoxy")
    assert answer.status_code == 200
    html = answer.text
    assert 'data-filter="#drift"' in html
    oslo = _row(html, "<td>oslo.config</td>")
    assert oslo[2] == "python-oslo-config"
    assert oslo[4].startswith("cloud9s-openstack-epoxy-") or oslo[4].startswith("cloud10s-")
    counts = re.search(r"(\d+) pins", html)
    assert counts is not None and 550 < int(counts.group(1)) < 600
    for status in ("equal", "lower", "greater", "missing"):
        assert f'href="/constraints/epoxy?status={status}"' in html
    lower = real.client.get("/constraints/epoxy", params={"status": "lower"}).text
    assert "<td>lower</td>" in lower and "<td>equal</td>" not in lower
    overview = real.client.get("/constraints").text
    assert (
        '<a href="/constraints/epoxy">' in overview
        and '<a href="/constraints/flamingo">' in overview
    )
