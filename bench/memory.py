"""Peak memory of a conveyor cycle over N packages with nothing new (goal, N = 1,000: ≤ 150 MB).

A farm of N packages (bench/gitfarm.py) is run once to clone everything and record one FAILED
build per package; then a second cycle, with nothing new, is measured:

* peak RSS of the conveyor process: ``ru_maxrss`` from ``wait4`` on it (the largest of the
  process and its reaped children, i.e. conveyor itself: its git children are a few MB each),
  the same number ``/usr/bin/time -v`` prints as "Maximum resident set size";
* peak RSS of the whole process tree (conveyor plus its concurrent git processes), sampled from
  /proc every 50 ms, for information.

    python -m bench.memory [--packages 1000] [--no-docs]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    VENV_RUNNER,
    check_conveyor_cli,
    conveyor_version,
    count_rows,
    machine,
    save_result,
    update_docs_section,
    utc_now,
    write_conveyor_config,
)
from bench.gitfarm import WORK, ensure_farm

GOAL_MB = 150.0
DOCS_HEADING = "Peak memory, 1,000-package cycle with nothing new"
_PAGE = os.sysconf("SC_PAGE_SIZE")
MB = 1024 * 1024


@dataclass(frozen=True)
class PeakMemory:
    seconds: float
    returncode: int
    process_mb: float  # ru_maxrss of the conveyor process
    tree_mb: float  # sampled peak of conveyor + descendants, summed
    log: Path


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def _tree_rss(root: int) -> int:
    children = _children_map()
    total = 0
    stack = [root]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, ()))
        try:
            resident = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        total += resident * _PAGE
    return total


def measure(
    command: list[str], log: Path, env: dict[str, str] | None = None, interval: float = 0.05
) -> PeakMemory:
    """Run `command` to completion; its peak RSS (wait4) and its tree's sampled peak RSS."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        tree_peak = 0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid != 0:
                break
            tree_peak = max(tree_peak, _tree_rss(proc.pid))
            time.sleep(interval)
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped: keep Popen quiet
    process_bytes = usage.ru_maxrss * 1024  # kB on Linux
    return PeakMemory(
        seconds=seconds,
        returncode=proc.returncode,
        process_mb=process_bytes / MB,
        tree_mb=max(tree_peak, process_bytes) / MB,
        log=log,
    )


def _docs_body(packages: int, warm: PeakMemory, steady: PeakMemory) -> str:
    verdict = "met" if steady.process_mb <= GOAL_MB else "NOT met"
    return "\n".join(
        [
            f"Goal: ≤ {GOAL_MB:g} MB peak for a cycle over {packages:,} packages with nothing",
            "new. Script: `python -m bench memory` (`bench/memory.py`): a warm-up cycle clones",
            f"the {2 * packages:,} local `file://` repositories and records one failed build per",
            "package, then a second cycle is measured. Peak RSS of the conveyor process is its",
            "`ru_maxrss` (what `/usr/bin/time -v` reports); the tree figure adds its concurrent",
            "git children, sampled every 50 ms.",
            "",
            f"- Date: {utc_now()}",
            f"- Machine: {machine()}",
            f"- conveyor: {conveyor_version()} ({VENV_RUNNER.describe()});",
            "  `conveyor run`, workers = 2, git_jobs = 16",
            "",
            "| cycle | wall time | peak RSS, conveyor process | peak RSS, process tree |",
            "| --- | --- | --- | --- |",
            f"| warm-up (clones + {packages:,} failed builds) | {warm.seconds:.1f} s "
            f"| {warm.process_mb:.0f} MB | {warm.tree_mb:.0f} MB |",
            f"| nothing new (measured) | {steady.seconds:.1f} s "
            f"| **{steady.process_mb:.0f} MB** | {steady.tree_mb:.0f} MB |",
            "",
            f"Goal ≤ {GOAL_MB:g} MB: {verdict}. (MB = 2^20 bytes.)",
        ]
    )


def run(packages: int = 1000, docs: bool = True) -> int:
    problem = check_conveyor_cli(VENV_RUNNER)
    if problem is not None:
        print(f"memory benchmark: `conveyor run` does not work:\n{problem}", file=sys.stderr)
        return 2
    farm = ensure_farm(packages)
    root = WORK / f"memory-{packages}" / "conveyor"
    config = write_conveyor_config(farm, root, workers=2, git_jobs=16)
    args = ("run", "--config", str(config))
    warm = measure(VENV_RUNNER.command(*args), root / "warmup.log", VENV_RUNNER.env)
    failed = count_rows(root / "data" / "commits.sqlite", "FAILED")
    print(
        f"warm-up: {warm.seconds:.1f} s, exit {warm.returncode}, {failed} FAILED row(s), "
        f"peak {warm.process_mb:.0f} MB (tree {warm.tree_mb:.0f} MB)"
    )
    if failed != packages:
        print(f"memory benchmark: expected {packages} FAILED rows: see {warm.log}", file=sys.stderr)
        return 2
    steady = measure(VENV_RUNNER.command(*args), root / "run.log")
    if steady.returncode != 0 or "0 build(s)" not in steady.log.read_text(errors="replace"):
        print(f"memory benchmark: second cycle was not a no-op: see {steady.log}", file=sys.stderr)
        return 2
    print(
        f"nothing new: {steady.seconds:.1f} s, peak RSS {steady.process_mb:.1f} MB "
        f"(process tree {steady.tree_mb:.1f} MB); goal ≤ {GOAL_MB:g} MB"
    )
    save_result(
        f"memory-{packages}",
        {
            "date": utc_now(),
            "warmup": {"seconds": warm.seconds, "process_mb": warm.process_mb},
            "steady": {
                "seconds": steady.seconds,
                "process_mb": steady.process_mb,
                "tree_mb": steady.tree_mb,
            },
        },
    )
    if docs and packages == 1000:
        update_docs_section(DOCS_HEADING, _docs_body(packages, warm, steady))
    return 0 if steady.process_mb <= GOAL_MB else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=1000)
    parser.add_argument("--no-docs", action="store_true", help="do not update the docs")
    args = parser.parse_args(argv)
    return run(args.packages, not args.no_docs)


if __name__ == "__main__":
    sys.exit(main())
