"""The diff of two 1,000-package repositories, the folder listing and the log viewer of such a
repository, and a /metrics scrape on a 500,000-commit database.

Generated in bench/.work/diff/ (made once, reused while its sizes match):
- two published repositories of `--packages` packages each, as a trunk writes them
  (`repos/<c[0:2]>/<c[2:4]>/<commit>_<distro[:8]>/versions.csv`, conveyor.publish.formats):
  from the first to the second, 10 % of the packages changed (a new upstream commit and NVR),
  1 % added and 1 % removed; `consistent` points at the first, `current` at the second. The
  second holds one RPM link per package into a third folder (a trunk repository links every
  package's newest RPMs: 2,000 links for 1,000 packages) and a 5 MB build log;
- a bare git mirror (`<datadir>/sources/<package>/upstream.git`, made by `git fast-import`)
  for each changed package, with 3 upstream commits between its two builds.

Measured (medians): the diff without `git log` (versions.csv read cold, then from the cache of
parsed files); with `git log` for every changed package, cold (each range asked of git, 4 at
a time, within the CLI's 2 s budget) and warm (answers between two fixed hashes are kept);
the /diff page, the /repos/ listing of the second repository and /view/ of its log (p50 of
20 requests through the ASGI app, warm); and /metrics on bench.reports' 500,000-commit,
1,000-package history (first scrape of a process: the 30-s cached count by status included;
then p50 of 20).

Goals (issue 14): a diff of two 1,000-package repositories ≤ 100 ms; each page p50 ≤ 50 ms.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from bench import reports as reports_bench
from bench.common import conveyor_version, machine, settle, update_docs_section, utc_now
from conveyor.config import Config
from conveyor.publish.formats import VersionsRow, versions_csv
from conveyor.reports import diff as service

WORK = Path(__file__).resolve().parent / ".work" / "diff"
DOCS_HEADING = "Diff of two 1,000-package repositories, browsing, /metrics"
DIFF_GOAL_MS = 100.0
PAGE_GOAL_MS = 50.0
COMMITS_BETWEEN = 3
LOG_BYTES = 5 * 1024 * 1024
_T0 = 1_700_000_000


def _sha(*parts: object) -> str:
    return hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()  # a fake git hash


def _name(index: int) -> str:
    return f"python-pkg{index:04d}"


def _relpath(commit: str, distro: str) -> str:
    return f"{commit[:2]}/{commit[2:4]}/{commit}_{distro[:8]}"


def _row(index: int, commit: str, version: str) -> VersionsRow:
    name = _name(index)
    return VersionsRow(
        project=name,
        source_repo=f"https://opendev.org/openstack/{name}",
        source_sha=commit,
        dist_repo=f"https://opendev.org/openstack/{name}-distgit",
        dist_sha=_sha("d", index),
        status="SUCCESS",
        last_success=_T0 + index,
        component=None,
        extended_sha=None,
        nvr=f"{name}-{version}-0.{_T0 + index}.{commit[:7]}.el9",
    )


def _fast_import(mirror: Path, subjects: list[str]) -> list[str]:
    """A bare repository at `mirror` with one commit per subject on main; their hashes."""
    mirror.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "--bare", str(mirror)], check=True)
    stream = []
    for i, subject in enumerate(subjects, start=1):
        message = subject.encode()
        stream.append(
            b"commit refs/heads/main\n"
            + f"mark :{i}\n".encode()
            + f"committer Bench <bench@example.org> {_T0 + i} +0000\n".encode()
            + f"data {len(message)}\n".encode()
            + message
            + b"\n"
            + (f"from :{i - 1}\n".encode() if i > 1 else b"")
            + f"M 644 inline CHANGES.md\ndata {len(message) + 1}\n".encode()
            + message
            + b"\n\n"
        )
    subprocess.run(
        ["git", "--git-dir", str(mirror), "fast-import", "--quiet"],
        input=b"".join(stream),
        check=True,
    )
    log = subprocess.run(
        ["git", "--git-dir", str(mirror), "log", "--reverse", "--format=%H", "main"],
        check=True,
        capture_output=True,
        text=True,
    )
    return log.stdout.split()


def generate(root: Path, packages: int) -> tuple[str, str, int]:
    """The two repositories (their paths below repos/) and the number of changed packages;
    made once for `packages`."""
    marker = root / "made"
    if marker.exists() and marker.read_text().startswith(f"{packages} "):
        old, new, changed = marker.read_text().split()[1:]
        return old, new, int(changed)
    shutil.rmtree(root, ignore_errors=True)
    repos, sources = root / "data" / "repos", root / "data" / "sources"
    before, after = [], []
    changed = 0
    for index in range(packages):
        if index % 100 == 1:  # removed
            before.append(_row(index, _sha("c", index), "1.0.0"))
            continue
        if index % 100 == 2:  # added
            after.append(_row(index, _sha("c", index), "1.0.0"))
            continue
        if index % 10 == 0:  # changed: a mirror with the commits between
            subjects = ["old"] + [f"change {k} of {_name(index)}" for k in range(COMMITS_BETWEEN)]
            hashes = _fast_import(sources / _name(index) / "upstream.git", subjects)
            before.append(_row(index, hashes[0], "1.0.0"))
            after.append(_row(index, hashes[-1], "1.0.1"))
            changed += 1
            continue
        same = _row(index, _sha("c", index), "1.0.0")
        before.append(same)
        after.append(same)
    old = _relpath(_sha("repo", "old"), _sha("distro", "old"))
    new = _relpath(_sha("repo", "new"), _sha("distro", "new"))
    pool = _relpath(_sha("repo", "pool"), _sha("distro", "pool"))
    for relpath, rows in ((old, before), (new, after)):
        (repos / relpath).mkdir(parents=True)
        (repos / relpath / "versions.csv").write_text(versions_csv(rows))
    (repos / pool).mkdir(parents=True)
    depth = "../../../"
    for row in after:
        for arch in ("noarch", "src"):
            filename = f"{row.nvr}.{arch}.rpm"
            (repos / pool / filename).write_bytes(b"RPM")
            (repos / new / filename).symlink_to(f"{depth}{pool}/{filename}")
    line = "+ make -j2 some/long/target/path/that/is/built.o CFLAGS='-O2 -g -pipe -Wall'\n"
    with (repos / new / "rpmbuild.log").open("w") as log:
        for _ in range(LOG_BYTES // len(line)):
            log.write(line)
        log.write("error: Bad exit status from /build/rpmbuild/tmp/rpm-tmp.x (%build)\n")
    (repos / "consistent").symlink_to(old)
    (repos / "current").symlink_to(new)
    marker.write_text(f"{packages} {old} {new} {changed}\n")
    return old, new, changed


def _median_ms(func: Callable[[], object], runs: int, before: Callable[[], None] | None) -> float:
    times = []
    for _ in range(runs):
        if before is not None:
            before()
        start = time.perf_counter()
        func()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _clear_parsed() -> None:
    service._CACHE.clear()


def _clear_all() -> None:
    service._CACHE.clear()
    service._LOG_CACHE.clear()


def _forget_pages() -> None:
    """Empty every in-process cache the pages keep (listings, viewed files, rendered diffs,
    parsed versions.csv files, `git log` answers)."""
    from conveyor.api import serving
    from conveyor.web.pages import browse, diff

    serving._LISTINGS = serving._ListingCache()
    browse._SHOWN.clear()
    diff._PAGES = diff._PageCache()
    _clear_all()


Timings = tuple[float, float, float]  # first, p50 with nothing kept, p50


def _pages(config: Config, paths: list[str], runs: int = 20) -> dict[str, Timings]:
    """Milliseconds of each path through the ASGI app: the first request, the median with
    every cache emptied before each request, and the median of the requests after."""
    from fastapi.testclient import TestClient

    from conveyor.api import create_app

    found = {}
    with TestClient(create_app(config)) as client:
        for path in paths:
            _forget_pages()
            start = time.perf_counter()
            response = client.get(path)
            first = (time.perf_counter() - start) * 1000
            assert response.status_code == 200, (path, response.status_code)
            cold = []
            for _ in range(max(5, runs // 4)):
                _forget_pages()
                start = time.perf_counter()
                client.get(path)
                cold.append((time.perf_counter() - start) * 1000)
            client.get(path)
            warm = []
            for _ in range(runs):
                start = time.perf_counter()
                client.get(path)
                warm.append((time.perf_counter() - start) * 1000)
            found[path] = (first, statistics.median(cold), statistics.median(warm))
    return found


def metrics_scrape(commits: int, packages: int) -> tuple[float, float, float]:
    """(first, p50 of 20, history build seconds) of /metrics on bench.reports' history."""
    reports_bench.WORK.mkdir(parents=True, exist_ok=True)
    template = reports_bench.WORK / f"history-{commits}-{packages}.sqlite"
    made_in = reports_bench.build_history(template, commits, packages)
    database = WORK / "metrics.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(template, database)
    datadir = WORK / "metrics-data"
    shutil.rmtree(datadir, ignore_errors=True)
    config = Config(datadir=datadir, database=f"sqlite:///{database}")
    first, _, p50 = _pages(config, ["/metrics"])["/metrics"]
    return first, p50, made_in


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--packages", type=int, default=1000)
    parser.add_argument("--commits", type=int, default=500_000, help="of the /metrics history")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--no-metrics", action="store_true", help="skip the /metrics scrape")
    parser.add_argument("--no-docs", action="store_true", help="do not update the docs")
    args = parser.parse_args(argv)
    WORK.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    old, new, changed = generate(WORK / f"trunk-{args.packages}", args.packages)
    datadir = WORK / f"trunk-{args.packages}" / "data"
    repos = datadir / "repos"
    print(f"repositories ready in {time.perf_counter() - started:.1f} s: {old} → {new}")
    load = settle()

    def plain() -> object:
        return service.diff_repositories(repos, datadir, old, new, commits=False)

    def with_git() -> object:
        return service.diff_repositories(repos, datadir, old, new, commits=True)

    result = service.diff_repositories(repos, datadir, old, new)
    assert len(result.changed) == changed, len(result.changed)
    assert all(c.commits_state == "listed" for c in result.changed)
    assert all(len(c.commits) == COMMITS_BETWEEN for c in result.changed)
    cold = _median_ms(plain, args.runs, _clear_parsed)
    warm = _median_ms(plain, args.runs, None)
    git_cold = _median_ms(with_git, 5, _clear_all)
    git_warm = _median_ms(with_git, args.runs, None)
    config = Config(datadir=datadir, database=f"sqlite:///{WORK / 'pages.sqlite'}")
    pages = _pages(
        config,
        [
            f"/diff?from={old}&to={new}",
            "/diff?from=consistent&to=current",
            f"/repos/{new}/",
            f"/view/{new}/rpmbuild.log",
        ],
        args.runs,
    )
    scrape = None if args.no_metrics else metrics_scrape(args.commits, 1000)
    rows = [
        ("diff, versions.csv read and parsed (no git)", cold, DIFF_GOAL_MS),
        ("diff, parsed files kept (no git)", warm, DIFF_GOAL_MS),
        (f"diff + `git log` of the {changed} changed packages, cold", git_cold, None),
        (f"diff + `git log` of the {changed} changed packages, kept", git_warm, DIFF_GOAL_MS),
    ]
    for label, ms, _goal in rows:
        print(f"{label}: {ms:.1f} ms")
    for path, (first, cold_p50, p50) in pages.items():
        print(f"GET {path}: first {first:.1f} ms, nothing kept {cold_p50:.1f} ms, p50 {p50:.1f} ms")
    if scrape is not None:
        first, p50 = scrape[0], scrape[1]
        print(f"GET /metrics on {args.commits:,} commits: first {first:.1f} ms, p50 {p50:.1f} ms")
    table = "\n".join(
        f"| {label} | **{ms:.1f} ms** | {'' if goal is None else f'≤ {goal:.0f} ms'} |"
        for label, ms, goal in rows
    )
    links = 2 * (args.packages - args.packages // 100)
    page_names = {
        f"/diff?from={old}&to={new}": "/diff of the two hash paths",
        "/diff?from=consistent&to=current": "/diff of two labels",
        f"/repos/{new}/": f"/repos/ listing of a repository ({links:,} RPM links)",
        f"/view/{new}/rpmbuild.log": "/view/ of a 5 MB log (its last 512 KiB)",
    }
    page_rows = "\n".join(
        f"| {page_names[path]} | {first:.1f} ms | {cold_p50:.1f} ms | **{p50:.1f} ms** "
        f"| ≤ {PAGE_GOAL_MS:.0f} ms |"
        for path, (first, cold_p50, p50) in pages.items()
    )
    metrics_row = (
        ""
        if scrape is None
        else f"| /metrics, {args.commits:,} commits, 1,000 packages | {scrape[0]:.1f} ms | "
        f"| **{scrape[1]:.1f} ms** | |\n"
    )
    body = f"""\
Measured {utc_now()} on {machine()}; conveyor {conveyor_version()}; 1-min load before: {load}.
`python -m bench.diff`: two synthetic published repositories of {args.packages:,} packages
(versions.csv as a trunk writes it); from the first to the second {changed} packages changed
(a new upstream commit, {COMMITS_BETWEEN} commits between the two in a bare mirror made by
`git fast-import`), {args.packages // 100} added, {args.packages // 100} removed. Medians of
{args.runs} runs (5 for the cold `git log`).

| diff (conveyor.reports.diff, in-process) | time | goal |
| --- | --- | --- |
{table}

The cold `git log` runs one `git log` per changed package, 4 at a time, within a budget (2 s
for the CLI, 1 s for the page; what it does not reach is marked "not looked up"); answers
between two fixed hashes are kept, as are parsed versions.csv files (by path, size, mtime).

| page, through the ASGI app (TestClient) | first | p50, nothing kept | p50 | goal |
| --- | --- | --- | --- | --- |
{page_rows}
{metrics_row}
"first" is a process's first request (templates compiled); "nothing kept" empties the
caches before each request: the listing of a folder (kept while its inode and mtime stay,
at most a minute), the viewed part of a log (while its size and mtime stay), a rendered diff
(by the folders its names resolved to), parsed versions.csv files and `git log` answers;
"p50" is what a reader sees once a page was asked for. /metrics runs on bench.reports'
history: its first scrape counts the builds by status in full (again once an hour); later
scrapes add the builds recorded since, and read labels, queue, package_status, outbox and
tags each time.
"""
    print()
    print(f"## {DOCS_HEADING}\n\n{body}")
    if not args.no_docs:
        update_docs_section(DOCS_HEADING, body)
    met = warm <= DIFF_GOAL_MS and cold <= DIFF_GOAL_MS and git_warm <= DIFF_GOAL_MS
    met = met and all(p50 <= PAGE_GOAL_MS for _, _, p50 in pages.values())
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
