"""Bisection: composing one step's repository of 1,000 packages, and the steps a bisection
takes for N = 10, 100 and 1,000 changed packages against ⌈log2 N⌉ + 1 + ⌈log2 m⌉.

The trunk is bench/publish.py's (1,000 packages, one published build each, their XML cached).
A step repository is composed as `conveyor bisect` composes it (`publish_step`): 2,000
relative links, repodata from the cached XML, delorean.repo, its .md5 and versions.csv.
Goal ≤ 0.5 s (issue 16). The steps come from the pure rules against a model CI with one
culprit at every position (a sample of them for N = 1,000), the culprit package having 8
builds after its good one.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from bench.common import conveyor_version, machine, settle, update_docs_section, utc_now
from bench.publish import setup_trunk
from conveyor.bisect.plan import Bisectable, BuildInfo
from conveyor.bisect.service import publish_step, step_hash
from conveyor.domain.bisect import Change, Plan, content_key, decide, step_bound
from conveyor.domain.paths import commit_relpath
from conveyor.publish.repostore import RepoStore
from conveyor.store.database import Database
from conveyor.store.models import Bisection, Commit

WORK = Path(__file__).resolve().parent / ".work" / "bisect"
GOAL_S = 0.5
DOCS_HEADING = "Bisection"
BUILDS = 8  # the culprit package's builds after its good one


def _bisectable(database_url: str) -> Bisectable:
    """A plan whose good repository is the whole trunk (its content is the step's)."""
    db = Database(database_url)
    builds = {}
    with db.reader() as session:
        for commit in session.query(Commit):
            path = commit_relpath(commit).as_posix()
            builds[path] = BuildInfo(
                package=commit.project_name,
                path=path,
                commit_id=commit.id,
                commit_hash=commit.commit_hash,
                distro_hash=commit.distro_hash,
                extended_hash=None,
                component=None,
                nvr=None,
                files=tuple(a.rsplit("/", 1)[1] for a in commit.artifact_list),
                dt_commit=commit.dt_commit,
                dt_build=commit.dt_build,
                source_repo="https://example.org/x",
                dist_repo=None,
            )
    db.close()
    good = {info.package: path for path, info in builds.items()}
    first = next(iter(good))
    changes = (Change(first, good[first], "elsewhere"),)
    return Bisectable(Plan(good, changes), builds)


def compose_times(rounds: int) -> list[float]:
    config, _ = setup_trunk(WORK / "trunk", 1000)
    bisectable = _bisectable(config.database_url)
    store = RepoStore.of(config)
    content = dict(bisectable.plan.good)
    times = []
    for number in range(rounds):
        row = Bisection(id=number + 1)
        hash_ = step_hash(row.id, content_key(content))
        start = time.perf_counter()
        publish_step(config, store, bisectable, row, content, hash_)
        times.append(time.perf_counter() - start)
    return times


def _between(package: int) -> tuple[str, ...]:
    return tuple(f"p{package}@{n}" for n in range(1, BUILDS))


def steps_taken(changes: int) -> tuple[int, int]:
    """The most steps over culprits at every position (every 37th for 1,000), and the bound."""
    good = {f"p{i}": f"p{i}@0" for i in range(changes)}
    plan = Plan(
        good,
        tuple(
            Change(
                f"p{i}", f"p{i}@0", f"p{i}@{BUILDS}", tuple(f"p{i}@{n}" for n in range(1, BUILDS))
            )
            for i in range(changes)
        ),
    )
    most = 0
    for culprit in range(0, changes, 1 if changes <= 100 else 37):
        first_bad = 1 + culprit % BUILDS
        verdicts: dict[frozenset[tuple[str, str]], bool] = {}
        steps = 0
        while (progress := decide(plan, verdicts)).step is not None:
            found = progress.step.content.get(f"p{culprit}", "x@0")
            verdicts[progress.step.key] = int(found.split("@")[1]) < first_bad
            steps += 1
        assert progress.conclusion is not None and progress.conclusion.change == culprit
        most = max(most, steps)
    return most, step_bound(changes, BUILDS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-docs", action="store_true", help="do not update the docs")
    args = parser.parse_args(argv)
    load = settle()
    times = compose_times(args.rounds)
    median = statistics.median(times)
    summary = (
        f"median {median * 1000:.0f} ms (min {min(times) * 1000:.0f}, "
        f"max {max(times) * 1000:.0f}, {args.rounds} rounds)"
    )
    print(f"compose one step repository of 1,000 packages: {summary}")
    rows = []
    for changes in (10, 100, 1000):
        most, bound = steps_taken(changes)
        print(f"N = {changes}: at most {most} steps, bound {bound}")
        rows.append(f"| {changes} | {BUILDS} | {most} | {bound} |")
    table = "\n".join(rows)
    if not args.no_docs:
        update_docs_section(
            DOCS_HEADING,
            f"""\
Measured {utc_now()} on {machine()}; conveyor {conveyor_version()}; 1-min load before: {load}.
`python -m bench bisect`: one step repository of 1,000 packages composed as `conveyor
bisect` composes it (`publish_step`): 2,000 relative links to the builds' RPMs, repodata
written from the per-build XML cache, delorean.repo, its .md5 and versions.csv, staged and
renamed into `repos/bisect/`.

| | time | goal |
| --- | --- | --- |
| compose one step of 1,000 packages | **{summary}** | ≤ {GOAL_S * 1000:.0f} ms |

Steps to name the culprit build (pure rules, a model CI with one culprit at every position,
every 37th for N = 1,000; the culprit package has m = {BUILDS} builds after its good one),
against the bound ⌈log2 N⌉ + 1 + ⌈log2 m⌉:

| changed packages N | m | most steps taken | bound |
| --- | --- | --- | --- |
{table}
""",
        )
    return 0 if median <= GOAL_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
