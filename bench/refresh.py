"""Refresh of N packages (2N local ``file://`` git repositories) with nothing new: conveyor vs
DLRN 0.26.1.

Goal (N = 200, 2 CPUs): conveyor's second run ≤ 3 s; DLRN 0.26.1 took 145 s here.

For each tool, a first run (warm-up) clones the 2N repositories and records one FAILED build per
package (the farm's specs cannot build, see bench/gitfarm.py); the measured runs that follow
have nothing new to build, so they measure the refresh: fetch and reset of every repository,
detection of new commits, and the tool's start-up. Conveyor is timed 3 times (median), DLRN
once by default (it takes minutes).

    python -m bench.refresh [--packages 200] [--runs 3] [--skip-dlrn] [--no-docs]

With ``--skip-dlrn`` the last DLRN measurement for the same N (bench/.work/results/) is reused
in the ratio, and the report says so.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, dataclass, field

from bench import dlrn_env
from bench.common import (
    VENV_RUNNER,
    check_conveyor_cli,
    conveyor_version,
    count_rows,
    load_result,
    machine,
    median,
    save_result,
    settle,
    timed_run,
    update_docs_section,
    utc_now,
    write_conveyor_config,
)
from bench.gitfarm import WORK, Farm, ensure_farm

GOAL_SECONDS = 3.0
DOCS_HEADING = "Refresh of 200 packages (nothing new)"


class BenchError(Exception):
    """A run did not do what the benchmark needs (the message says what and where the log is)."""


@dataclass(frozen=True)
class ToolTiming:
    warmup: float
    runs: list[float]
    load_avg: str  # 1-minute load average just before the measured runs
    date: str = field(default_factory=utc_now)
    reused: bool = False  # loaded from an earlier run (--skip-dlrn)

    @property
    def median(self) -> float:
        return median(self.runs)

    def save(self, name: str) -> None:
        save_result(name, asdict(self))

    @classmethod
    def from_results(cls, name: str) -> ToolTiming | None:
        data = load_result(name)
        if data is None:
            return None
        try:
            return cls(**{**data, "reused": True})  # type: ignore[arg-type]
        except TypeError:
            return None  # an older or foreign file: treat as not measured


def run_conveyor(
    farm: Farm, runs: int, workers: int = 2, git_jobs: int = 16, label: str = "refresh"
) -> ToolTiming:
    problem = check_conveyor_cli(VENV_RUNNER)
    if problem is not None:
        raise BenchError(f"`conveyor run` does not work yet:\n{problem}")
    root = WORK / f"{label}-{farm.packages}" / "conveyor"
    config = write_conveyor_config(farm, root, workers=workers, git_jobs=git_jobs)
    args = ("run", "--config", str(config))
    warm = timed_run(VENV_RUNNER.command(*args), root / "warmup.log", env=VENV_RUNNER.env)
    failed = count_rows(root / "data" / "commits.sqlite", "FAILED")
    print(
        f"conveyor warm-up: {warm.seconds:.1f} s, exit {warm.returncode}, "
        f"{failed} FAILED row(s) (log {warm.log})"
    )
    if failed != farm.packages:
        raise BenchError(
            f"conveyor's warm-up recorded {failed} FAILED rows, expected {farm.packages}: "
            f"see {warm.log}"
        )
    times = []
    load = settle()
    for i in range(1, runs + 1):
        result = timed_run(VENV_RUNNER.command(*args), root / f"run{i}.log")
        text = result.log.read_text(errors="replace")
        if result.returncode != 0 or "0 build(s)" not in text:
            raise BenchError(
                f"conveyor run {i} was not a no-op (exit {result.returncode}): see {result.log}"
            )
        print(f"conveyor run {i}: {result.seconds:.2f} s")
        times.append(result.seconds)
    if count_rows(root / "data" / "commits.sqlite", "FAILED") != farm.packages:
        raise BenchError(f"conveyor's measured runs added rows: see {root}")
    return ToolTiming(warm.seconds, times, load)


def run_dlrn(farm: Farm, runs: int) -> ToolTiming:
    dlrn_env.ensure_venv()
    setup = dlrn_env.write_setup(farm, WORK / f"refresh-{farm.packages}" / "dlrn")
    command = setup.command()
    warm = timed_run(command, setup.root / "warmup.log", cwd=setup.root)
    failed = count_rows(setup.root / "commits.sqlite", "FAILED")
    print(
        f"DLRN warm-up: {warm.seconds:.1f} s, exit {warm.returncode}, "
        f"{failed} FAILED row(s) (log {warm.log})"
    )
    if failed != farm.packages:
        raise BenchError(
            f"DLRN's warm-up recorded {failed} FAILED rows, expected {farm.packages}: "
            f"see {warm.log}"
        )
    times = []
    load = settle()
    for i in range(1, runs + 1):
        result = timed_run(command, setup.root / f"run{i}.log", cwd=setup.root)
        text = result.log.read_text(errors="replace")
        if result.returncode != 0 or "No commits to build." not in text:
            raise BenchError(
                f"DLRN run {i} was not a no-op (exit {result.returncode}): see {result.log}"
            )
        print(f"DLRN run {i}: {result.seconds:.1f} s")
        times.append(result.seconds)
    return ToolTiming(warm.seconds, times, load)


def _fmt_runs(runs: list[float]) -> str:
    return ", ".join(f"{t:.2f}" for t in runs)


# Written by hand from a profile; kept in the section because a re-run does not redo it.
PROFILE_NOTES = """\
Where conveyor's time goes (profiled 2026-11-21 on conveyor 740b089, quiet machine, runs of
1.4-1.5 s; `python -X importtime`, cProfile, log timestamps):

- ~0.5 s imports: `conveyor.store.database` 250 ms, of which alembic 200 ms; `conveyor.config`
  (pydantic) 60 ms; `conveyor.builders.spec` (specfile) 40 ms; buildjob 30 ms; typer 25 ms.
- ~0.1 s configuration, metadata, database open.
- ~0.75 s detection: 400 `git ls-remote` (git + git-upload-pack each, ~3 ms of CPU, so ~1.2
  CPU-seconds: 0.64 s on 2 CPUs even from `xargs -P16`), plus, on conveyor's event loop,
  400 fork/exec (0.3 s), asyncio's ThreadedChildWatcher starting one thread per git process
  (0.2 s), 200 separate `last_processed` ORM queries (0.18 s), `_environment()` rebuilt for
  every git call (0.08 s) (cProfile figures, inflated by the profiler).
- ~0.15 s exit.

Cheapest gains: import alembic only when the schema is not current (read `alembic_version`
first) and specfile/build modules only when there is a build (~0.25 s); one query for every
package's last processed row instead of 200 (~0.15 s); compute the git environment once and
use `asyncio.PidfdChildWatcher` (the default from Python 3.12) instead of a thread per child
(~0.2 s of event-loop time).
"""


def _docs_body(packages: int, conveyor: ToolTiming, dlrn: ToolTiming | None) -> str:
    lines = [
        f"Goal: ≤ {GOAL_SECONDS:g} s for {packages} packages ({2 * packages} local `file://` git "
        "repositories),",
        "a second run with nothing new. Script: `python -m bench refresh` (`bench/refresh.py`):",
        "a warm-up run of each tool clones everything and records one failed build per package",
        "(the farm's specs have no `Version:`), then runs with nothing new are timed: wall time",
        "of the whole command, start-up included, after the load average settled.",
        "",
        f"- Date: {conveyor.date}",
        f"- Machine: {machine()}",
        f"- conveyor: {conveyor_version()} ({VENV_RUNNER.describe()});",
        "  `conveyor run --config conveyor.toml`, workers = 2, git_jobs = 16",
        f"- DLRN: {dlrn_env.DLRN_VERSION} from PyPI in its own venv (`bench/dlrn_env.py`; pins: "
        f"{', '.join(dlrn_env.PINS) or 'none'});",
        "  `dlrn --config-file projects.ini --info-repo FARM/metadata`, workers = 1",
        "",
        "| | warm-up (clones + one failed build per package) | nothing new "
        "| 1-min load before | goal |",
        "| --- | --- | --- | --- | --- |",
        f"| conveyor | {conveyor.warmup:.1f} s | **{conveyor.median:.2f} s** (median of "
        f"{_fmt_runs(conveyor.runs)}) | {conveyor.load_avg} | ≤ {GOAL_SECONDS:g} s: "
        f"{'met' if conveyor.median <= GOAL_SECONDS else 'NOT met'} |",
    ]
    if dlrn is not None:
        runs = "" if len(dlrn.runs) == 1 else f" (median of {_fmt_runs(dlrn.runs)})"
        lines.append(
            f"| DLRN {dlrn_env.DLRN_VERSION} | {dlrn.warmup:.1f} s | **{dlrn.median:.1f} s**{runs} "
            f"| {dlrn.load_avg} | |"
        )
        reused = f" (DLRN measured {dlrn.date}, reused by `--skip-dlrn`)" if dlrn.reused else ""
        lines += [
            "",
            f"Ratio DLRN / conveyor: **{dlrn.median / conveyor.median:.0f}x**{reused}.",
            "The reference study measured DLRN at 145 s for the same work (reference/dlrn.md",
            "section 16).",
        ]
    else:
        lines += ["", "DLRN not measured yet (`python -m bench refresh` without `--skip-dlrn`)."]
    lines += ["", PROFILE_NOTES]
    return "\n".join(lines)


def run(
    packages: int = 200,
    runs: int = 3,
    dlrn_runs: int = 1,
    skip_dlrn: bool = False,
    docs: bool = True,
) -> int:
    farm = ensure_farm(packages)
    dlrn: ToolTiming | None
    if skip_dlrn:
        dlrn = ToolTiming.from_results(f"refresh-dlrn-{packages}")
    else:
        dlrn = run_dlrn(farm, dlrn_runs)
        dlrn.save(f"refresh-dlrn-{packages}")
    conveyor = run_conveyor(farm, runs)
    conveyor.save(f"refresh-conveyor-{packages}")
    print(f"conveyor: median {conveyor.median:.2f} s of {_fmt_runs(conveyor.runs)}")
    if dlrn is not None:
        print(f"DLRN {dlrn_env.DLRN_VERSION}: {dlrn.median:.1f} s" + (" (reused)" * dlrn.reused))
        print(f"ratio DLRN / conveyor: {dlrn.median / conveyor.median:.1f}x")
    if docs and packages == 200:
        update_docs_section(DOCS_HEADING, _docs_body(packages, conveyor, dlrn))
    return 0 if conveyor.median <= GOAL_SECONDS else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3, help="timed conveyor runs (median)")
    parser.add_argument("--dlrn-runs", type=int, default=1, help="timed DLRN runs")
    parser.add_argument("--skip-dlrn", action="store_true", help="reuse the last DLRN result")
    parser.add_argument("--no-docs", action="store_true", help="do not update the docs")
    args = parser.parse_args(argv)
    try:
        return run(args.packages, args.runs, args.dlrn_runs, args.skip_dlrn, not args.no_docs)
    except BenchError as exc:
        print(f"refresh benchmark: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
