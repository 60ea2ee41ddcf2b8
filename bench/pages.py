"""Each page of the dashboard on the 500,000-commit database, over HTTP: p50 and p95.

Generated in bench/.work/pages/ (made once, reused while its sizes match):
- the database: bench.reports' history (500,000 commits round-robin over 1,000 packages,
  `package_status` filled; the same cached file bench.reports and bench.diff use), copied and
  given bench.api's CI votes (500,000: a `consistent` vote and 9 jobs on each of 50,000
  repositories spread over the history) and promotions (20,000 over three names), three
  buildsys tags of 1,000 builds with 20 versions each and votes on them, and a GA timeline;
- the published tree: the repositories `current`, `consistent` and the three promotion
  labels point at, and the newest voted ones (the promotion candidates), each with the
  versions.csv of its 1,000 packages, as a trunk leaves them (no RPMs);
- rdoinfo with the 1,000 packages in the release `flamingo` (maintainers, upstreams) and its
  buildsys-tags files, an openstack/releases-like tree (1,000 deliverables), an
  upper-constraints.txt of 600 pins, and promotion criteria for the three names.

Measured: `conveyor serve` (uvicorn, one process) on 127.0.0.1, one httpx client, sequential
requests: each page once (a process's first request: templates compiled, caches empty), a
warm-up round, then `--rounds` rounds over every page in turn (a reader going from page to
page, so one page's cache does not stay hot for a run of its own requests); p50 and p95 of
each page. Goal (issue 14): p50 ≤ 50 ms per page. Anchor: DLRN's only HTML page over its
database, /api/civotes.html: 9.5 s (bench.api) to 28.5 s (reference/dlrn.md section 16) on
a database of this size.

    python -m bench.pages [--commits 500000] [--rounds 50] [--no-docs]

Exit status: 0 if every page met the goal, 1 if one did not, 2 if the benchmark could not run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench import api as api_bench
from bench import reports as reports_bench
from bench.common import (
    CONVEYOR,
    chunks,
    conveyor_version,
    load_average,
    machine,
    settle,
    update_docs_section,
    utc_now,
)
from conveyor.assembly.timeline import Timeline
from conveyor.domain.paths import repo_relpath
from conveyor.publish.formats import VersionsRow, versions_csv
from conveyor.store.database import Database
from conveyor.tags.state import record_version
from conveyor.tags.votes import record_tag_vote

WORK = Path(__file__).resolve().parent / ".work" / "pages"
DOCS_HEADING = "Dashboard pages on the 500,000-commit database"
GOAL_MS = 50.0
ANCHOR = "DLRN /api/civotes.html: 9.5 s (bench.api) to 28.5 s (reference/dlrn.md section 16)"
PACKAGES = 1000
SERIES = "flamingo"
TAGS = tuple(f"cloud9s-openstack-{SERIES}-{stage}" for stage in ("candidate", "testing", "release"))
TAG_VERSIONS = 20
PINS = 600
CANDIDATE_DIRS = 10  # the newest voted repositories get a folder (promotion needs one)
CRITERIA = """\
promotions:
  tripleo-ci-testing:
    candidate_label: consistent
    criteria: [periodic-job-1, periodic-job-2, periodic-job-3]
  current-tripleo:
    candidate_label: tripleo-ci-testing
    criteria: [periodic-job-4, periodic-job-5]
  current-tripleo-rdo:
    candidate_label: current-tripleo
    criteria: [periodic-job-6]
release:
  criteria: [periodic-job-7]
"""


class BenchError(Exception):
    """The benchmark cannot run."""


@dataclass(frozen=True)
class Sizes:
    commits: int
    votes: int
    promotions: int

    @property
    def tag(self) -> str:
        return f"{self.commits}-{self.votes}-{self.promotions}"


def _name(package: int) -> str:
    return reports_bench._name(package)


# --- the database -------------------------------------------------------------------------


def _successes(db: sqlite3.Connection) -> list[api_bench.Voted]:
    return [
        api_bench.Voted(int(i), str(c), str(d), int(t))
        for i, c, d, t in db.execute(
            "SELECT id, commit_hash, distro_hash, dt_build FROM commits "
            "WHERE status = 'SUCCESS' ORDER BY id"
        )
    ]


def _add_votes(path: Path, sizes: Sizes) -> list[api_bench.Voted]:
    """bench.api's votes and promotions, on the history's successful commits; the voted
    repositories, oldest first."""
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("PRAGMA synchronous=OFF")
        db.execute("INSERT INTO users (username, password, roles) VALUES ('ci-bot', '!', 'voter')")
        voted = api_bench._voted(
            _successes(db), api_bench.Sizes(sizes.commits, sizes.votes, sizes.promotions)
        )
        columns = "id, commit_id, ci_name, ci_url, ci_vote, ci_in_progress, timestamp, notes, "
        for chunk in chunks(api_bench._vote_rows(sizes.votes, voted)):
            db.executemany(
                f"INSERT INTO civotes ({columns}user, component) VALUES ({', '.join('?' * 10)})",
                chunk,
            )
        for chunk in chunks(api_bench._promotion_rows(sizes.promotions, voted)):
            db.executemany(
                "INSERT INTO promotions (id, commit_id, promotion_name, timestamp, user, "
                "component, aggregate_hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
                chunk,
            )
    return voted


def _add_tags_and_timeline(path: Path) -> None:
    """TAGS, each with TAG_VERSIONS versions of the 1,000 packages (a tenth of them moved by
    each version), votes on the testing tag, and three release-ga runs of SERIES."""
    db = Database(f"sqlite:///{path}")
    try:
        with db.transaction() as session:
            for stage, tag in enumerate(TAGS):
                for version in range(1, TAG_VERSIONS + 1):
                    content = {
                        _name(p): f"{_name(p)}-1.{stage}.{version if p % 10 == version % 10 else 0}"
                        "-1.el9s"
                        for p in range(PACKAGES)
                    }
                    record_version(
                        session, tag, content, content, [], "bench", f"version {version}"
                    )
                    if stage == 1:
                        record_tag_vote(
                            session,
                            tag,
                            version,
                            "periodic-job-7",
                            version % 3 != 0,
                            "https://ci.example.org/periodic-job-7",
                            "",
                            reports_bench._T0 + version,
                            "ci-bot",
                        )
        for run in range(3):
            timeline = Timeline(db, SERIES)
            for step in ("status", "closure", "release-build"):
                state = "failed" if (run, step) == (1, "release-build") else "done"
                timeline.end(timeline.start(step), state, f"{PACKAGES} packages")
    finally:
        db.close()


def _made(marker: Path, tag: str) -> bool:
    try:
        return marker.read_text() == tag
    except OSError:
        return False


def build_database(sizes: Sizes, packages: int) -> tuple[Path, float, float]:
    """The database (made once): its path, the seconds the history took (0 when it was
    there) and the seconds the votes, promotions and tags took (0 likewise)."""
    reports_bench.WORK.mkdir(parents=True, exist_ok=True)
    history = reports_bench.WORK / f"history-{sizes.commits}-{packages}.sqlite"
    history_s = reports_bench.build_history(history, sizes.commits, packages)
    path = WORK / f"pages-{sizes.tag}.sqlite"
    marker = path.with_suffix(".done")
    if _made(marker, sizes.tag) and path.exists():
        return path, history_s, 0.0
    start = time.perf_counter()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(history, path)
    voted = _add_votes(path, sizes)
    _add_tags_and_timeline(path)
    (WORK / f"voted-{sizes.tag}.json").write_text(
        json.dumps([[v.id, v.commit_hash, v.distro_hash] for v in voted[-CANDIDATE_DIRS:]])
    )
    marker.write_text(sizes.tag)
    return path, history_s, time.perf_counter() - start


# --- the published tree, the metadata, the release data -----------------------------------


def _repository_rows(db: sqlite3.Connection, up_to: int) -> list[VersionsRow]:
    """versions.csv of the repository of commit `up_to`: each package's newest success."""
    rows = []
    for project, sha, distro, built, artifacts in db.execute(
        "SELECT c.project_name, c.commit_hash, c.distro_hash, c.dt_build, c.artifacts "
        "FROM commits c JOIN (SELECT max(id) AS id FROM commits WHERE status = 'SUCCESS' "
        "AND id <= ? GROUP BY project_name) newest ON newest.id = c.id "
        "ORDER BY c.project_name",
        (up_to,),
    ):
        nvr = str(artifacts).split(",")[-1].rsplit("/", 1)[-1].removesuffix(".noarch.rpm")
        rows.append(
            VersionsRow(
                project=project,
                source_repo=f"https://opendev.org/openstack/{project}",
                source_sha=sha,
                dist_repo=f"https://opendev.org/openstack/{project}-distgit",
                dist_sha=distro,
                status="SUCCESS",
                last_success=built,
                component=None,
                extended_sha=None,
                nvr=nvr,
            )
        )
    return rows


def _labels(db: sqlite3.Connection, voted: list[list[object]]) -> dict[str, int]:
    """label -> the commit id it points at: current (the newest success), consistent (the
    newest voted repository), each promotion name's newest promotion."""
    labels = {
        "current": int(
            db.execute("SELECT max(id) FROM commits WHERE status = 'SUCCESS'").fetchone()[0]
        ),
        "consistent": int(str(voted[-1][0])),
    }
    for name in api_bench.PROMOTION_NAMES:
        (commit_id,) = db.execute(
            "SELECT commit_id FROM promotions WHERE promotion_name = ? ORDER BY id DESC LIMIT 1",
            (name,),
        ).fetchone()
        labels[name] = int(commit_id)
    return labels


def build_tree(database: Path, sizes: Sizes, datadir: Path) -> str:
    """The published tree of the labels and the candidates; returns `current`'s path
    below repos/."""
    repos = datadir / "repos"
    shutil.rmtree(datadir, ignore_errors=True)
    repos.mkdir(parents=True)
    voted = json.loads((WORK / f"voted-{sizes.tag}.json").read_text())
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        labels = _labels(db, voted)
        wanted = {*labels.values(), *(int(v[0]) for v in voted)}
        folders = {}
        for commit_id in sorted(wanted):
            sha, distro = db.execute(
                "SELECT commit_hash, distro_hash FROM commits WHERE id = ?", (commit_id,)
            ).fetchone()
            relpath = repo_relpath(sha, distro).as_posix()
            folder = repos / relpath
            folder.mkdir(parents=True)
            (folder / "versions.csv").write_text(versions_csv(_repository_rows(db, commit_id)))
            (folder / "rpmbuild.log").write_text(
                "".join(f"+ step {i} of the build\n" for i in range(2000))
            )
            folders[commit_id] = relpath
    for label, commit_id in labels.items():
        (repos / label).symlink_to(folders[commit_id])
    return folders[labels["current"]]


def write_inputs(root: Path) -> None:
    """rdoinfo (rdo.yml, buildsys-tags), the releases tree, upper-constraints.txt."""
    info = root / "rdoinfo"
    shutil.rmtree(info, ignore_errors=True)
    (info / "buildsys-tags").mkdir(parents=True)
    lines = [
        "releases:",
        f"- name: {SERIES}",
        "  status: development",
        f"  branch: {SERIES}-rdo",
        "  repos:",
        "  - name: el9s",
        f"    buildsys: cbs/cloud9s-openstack-{SERIES}-el9s",
        "package-default:",
        "  name: python-%(project)s",
        "  upstream: https://opendev.org/openstack/%(project)s",
        "  maintainers:",
        "  - bench@example.org",
        "package-configs:",
        "  lib: {}",
        "packages:",
    ]
    lines += [
        f"- {{project: pkg{p:04d}, conf: lib, tags: {{{SERIES}: null}}}}" for p in range(PACKAGES)
    ]
    (info / "rdo.yml").write_text("\n".join(lines) + "\n")
    for stage, tag in enumerate(TAGS):
        body = ["packages:"]
        for p in range(PACKAGES):
            body += [
                f"- project: pkg{p:04d}",
                "  buildsys-tags:",
                f"    {tag}: {_name(p)}-1.{stage}.0-1.el9s",
            ]
        (info / "buildsys-tags" / f"{tag}.yml").write_text("\n".join(body) + "\n")
    releases = root / "releases"
    shutil.rmtree(releases, ignore_errors=True)
    (releases / "data").mkdir(parents=True)
    (releases / "data" / "series_status.yaml").write_text(
        f"- name: {SERIES}\n  release-id: 2025.2\n  status: development\n"
    )
    deliverables = releases / "deliverables" / SERIES
    deliverables.mkdir(parents=True)
    for p in range(PACKAGES):
        (deliverables / f"pkg{p:04d}.yaml").write_text(
            "team: t\ntype: library\nreleases:\n"
            + "".join(
                f"- version: 1.{minor}.0\n  projects:\n  - repo: openstack/pkg{p:04d}\n"
                f"    hash: {reports_bench._sha('r', p, minor)}\n"
                for minor in range(p % 3 + 1)
            )
        )
    (root / "upper-constraints.txt").write_text(
        "".join(f"pkg{p:04d}==={1 + p % 2}.{p % 3}.0\n" for p in range(PINS))
    )
    (root / "promotions.yaml").write_text(CRITERIA)


def write_config(root: Path, database: Path) -> Path:
    config = root / "conveyor.toml"
    config.write_text(
        f'datadir = "{root / "data"}"\n'
        f'database = "sqlite:///{database}"\n'
        'baseurl = "https://trunk.example.org/repos"\n'
        f'promotion_criteria = "{root / "promotions.yaml"}"\n'
        "\n[metadata]\n"
        f'path = "{root / "rdoinfo"}"\n'
        f'release = "{SERIES}"\n'
        "\n[dashboard]\n"
        f'releases = "{root / "releases"}"\n'
        f'constraints = {{{SERIES} = "{root / "upper-constraints.txt"}"}}\n'
    )
    return config


# --- the measurement ----------------------------------------------------------------------


def pages(current: str, voted: tuple[str, str], package: str) -> dict[str, str]:
    """name -> path of every page measured."""
    commit_hash, distro_hash = voted
    return {
        "/ (trunk)": "/",
        "/package/NAME": f"/package/{package}",
        "/ftbfs": "/ftbfs",
        "/ftbfs.atom": "/ftbfs.atom",
        "/search?q=NAME": "/search?q=pkg0042",
        "/search?q=HASH": f"/search?q={commit_hash[:10]}",
        "/promotions": "/promotions",
        "/promotions/TARGET": "/promotions/tripleo-ci-testing",
        "/buildsys": "/buildsys",
        "/buildsys/TAG": f"/buildsys/{TAGS[1]}",
        "/releases": "/releases",
        f"/releases/{SERIES}": f"/releases/{SERIES}",
        "/constraints": "/constraints",
        f"/constraints/{SERIES}": f"/constraints/{SERIES}",
        "/diff?from=consistent&to=current": "/diff?from=consistent&to=current",
        "/repos/": "/repos/",
        "/repos/HASH/": f"/repos/{current}/",
        "/view/HASH/rpmbuild.log": f"/view/{current}/rpmbuild.log",
        "/api/civotes.html": "/api/civotes.html",
        "/api/civotes_agg.html": "/api/civotes_agg.html",
        "/api/civotes_detail.html?HASHES": (
            f"/api/civotes_detail.html?commit_hash={commit_hash}&distro_hash={distro_hash}"
        ),
    }


@dataclass
class Timing:
    first: float
    times: list[float]
    size: int

    @property
    def p50(self) -> float:
        return statistics.median(self.times)

    @property
    def p95(self) -> float:
        return api_bench.percentile(self.times, 0.95)


def _get(client: httpx.Client, path: str) -> tuple[float, int]:
    start = time.perf_counter()
    response = client.get(path)
    seconds = time.perf_counter() - start
    if response.status_code != 200:
        raise BenchError(f"GET {path}: {response.status_code} {response.text[:300]}")
    return seconds * 1000, len(response.content)


def measure(url: str, paths: dict[str, str], rounds: int) -> dict[str, Timing]:
    found: dict[str, Timing] = {}
    with httpx.Client(base_url=url, timeout=120) as client:
        for name, path in paths.items():
            first, size = _get(client, path)
            found[name] = Timing(first, [], size)
        for path in paths.values():  # a warm-up round
            _get(client, path)
        for _ in range(rounds):
            for name, path in paths.items():
                found[name].times.append(_get(client, path)[0])
    return found


def _server(config: Path) -> api_bench.Server:
    server = api_bench.Server(
        "conveyor serve",
        [str(CONVEYOR), "serve", "--config", str(config), "--port"],
        WORK / "serve.log",
    )
    try:
        server.wait_ready()
    except api_bench.BenchError as exc:
        server.stop()
        raise BenchError(str(exc)) from None
    return server


def _ms(value: float) -> str:
    return f"{value:.1f} ms" if value < 1000 else f"{value / 1000:.2f} s"


def report(
    timings: dict[str, Timing],
    sizes: Sizes,
    rounds: int,
    load: tuple[str, str],
    made: tuple[float, float],
    cpu: float,
) -> str:
    rows = "\n".join(
        f"| `{name}` | {_ms(t.first)} | **{_ms(t.p50)}** | {_ms(t.p95)} | {t.size / 1024:,.0f} KiB "
        f"| {'met' if t.p50 <= GOAL_MS else '**not met**'} |"
        for name, t in timings.items()
    )
    slowest = max(timings.items(), key=lambda item: item[1].p50)
    met = sum(t.p50 <= GOAL_MS for t in timings.values())
    history_s, extra_s = made
    made_note = (
        f"generated in {history_s + extra_s:.0f} s by this run"
        if history_s or extra_s
        else "generated data reused from bench/.work/pages/"
    )
    return f"""\
Measured {utc_now()} on {machine()};
conveyor {conveyor_version()}; 1-min load average {load[0]} before the run and {load[1]}
after (other work shared the 2 CPUs: the p95 above all moves with it).
`python -m bench.pages`: {sizes.commits:,} commits over {PACKAGES:,} packages (bench.reports'
history), {sizes.votes:,} CI votes and {sizes.promotions:,} promotions (bench.api's), three
buildsys tags of {PACKAGES:,} builds with {TAG_VERSIONS} versions each, rdoinfo of {PACKAGES:,}
packages, {PACKAGES:,} deliverables, {PINS} upper-constraints pins; {made_note}.
`conveyor serve` (uvicorn, one process) on 127.0.0.1, one httpx client, sequential requests:
each page once ("first": the process's first request of it), a warm-up round, then {rounds}
rounds over all the pages in turn; p50 and p95 of those {rounds}. The server used {cpu:.1f} s
of CPU for the {rounds * len(timings) + 2 * len(timings):,} requests.

| page | first | p50 | p95 | size | goal p50 ≤ {GOAL_MS:.0f} ms |
| --- | --- | --- | --- | --- | --- |
{rows}

{met} of {len(timings)} pages met the goal; the slowest p50: `{slowest[0]}`, {_ms(slowest[1].p50)}.
Anchor: {ANCHOR}; conveyor's /api/civotes.html here: {_ms(timings["/api/civotes.html"].p50)}.
The tags' repositories are not published here (no RPMs): /buildsys/TAG shows "no verdict"
for the closure instead of reading a repository (a verdict, once read, is kept per version).
/diff reads two versions.csv of 1,000 packages; no upstream mirror is there, so no `git log`
runs (bench.diff measures that). "first" of /releases and /constraints is the series' release
status and uc-report computed (rdoinfo, 1,000 deliverables, three buildsys-tags files); both
are kept while their files stay as they were. The p95 of the biggest pages
(/releases/{SERIES}, /constraints/{SERIES}) is Python's full garbage collection: a gen-2
collection of ~0.1 s every ~7 requests of a 600 KiB page (seen in-process with
`gc.callbacks`, 2026-12-03); `gc.freeze()` once the server started would shorten them.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commits", type=int, default=500_000)
    parser.add_argument("--votes", type=int, default=500_000)
    parser.add_argument("--promotions", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--no-docs", action="store_true", help="do not update the docs")
    args = parser.parse_args(argv)
    sizes = Sizes(args.commits, args.votes, args.promotions)
    WORK.mkdir(parents=True, exist_ok=True)
    try:
        template, history_s, extra_s = build_database(sizes, PACKAGES)
        if history_s or extra_s:
            print(f"data made: history {history_s:.1f} s, votes/promotions/tags {extra_s:.1f} s")
        database = WORK / "run.sqlite"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(template, database)
        current = build_tree(database, sizes, WORK / "data")
        write_inputs(WORK)
        config = write_config(WORK, database)
        voted = json.loads((WORK / f"voted-{sizes.tag}.json").read_text())[-1]
        paths = pages(current, (str(voted[1]), str(voted[2])), _name(7))
        load_before = settle(below=1.5)
        server = _server(config)
        try:
            cpu_before = server.cpu_seconds()[1]
            timings = measure(server.url, paths, args.rounds)
            cpu = server.cpu_seconds()[1] - cpu_before
        finally:
            server.stop()
    except BenchError as exc:
        print(f"bench.pages: {exc}")
        return 2
    load_after = load_average()
    for name, t in timings.items():
        print(
            f"{name:40} first {_ms(t.first):>9}  p50 {_ms(t.p50):>9}  p95 {_ms(t.p95):>9}  "
            f"{t.size / 1024:7,.0f} KiB"
        )
    body = report(timings, sizes, args.rounds, (load_before, load_after), (history_s, extra_s), cpu)
    print()
    print(f"## {DOCS_HEADING}\n\n{body}")
    if not args.no_docs:
        update_docs_section(DOCS_HEADING, body)
    return 0 if all(t.p50 <= GOAL_MS for t in timings.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
