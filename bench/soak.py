"""Soak: continuous mode for many cycles on the example distribution, a new upstream commit
every cycle. Goal: memory flat (growth ≤ 10 MB after warm-up), no leaked file descriptors,
threads or child processes.

The real `run_loop` runs in this process; its per-cycle callback adds the next upstream commit
and samples the process, so what is measured is exactly the loop a `conveyor run --loop` runs.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from examples.distribution import add_upstream_commit, fix_broken_package, generate

from bench.common import WORK, conveyor_version, machine, update_docs_section, utc_now
from conveyor.assembly.builder import run_loop
from conveyor.config import load_config
from conveyor.trunk.cycle import CycleOptions, CycleReport

GOAL_GROWTH_MB = 10.0
WARMUP_CYCLES = 20
DOCS_HEADING = "Soak: continuous mode, a new upstream commit every cycle"


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _children() -> int:
    count = 0
    for task in Path("/proc/self/task").iterdir():
        try:
            count += len((task / "children").read_text().split())
        except OSError:
            continue
    return count


@dataclass
class Sample:
    cycle: int
    rss_mb: float
    fds: int
    threads: int
    children: int
    built: int


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args(argv)
    root = WORK / "soak"
    shutil.rmtree(root, ignore_errors=True)
    dist = generate(root)
    fix_broken_package(root)  # every cycle should build and publish
    samples: list[Sample] = []
    options = CycleOptions()
    started = time.monotonic()

    def on_cycle(report: CycleReport) -> None:
        cycle = len(samples) + 1
        samples.append(
            Sample(
                cycle,
                _rss_mb(),
                len(os.listdir("/proc/self/fd")),
                threading.active_count(),
                _children(),
                len(report.published),
            )
        )
        if cycle % 100 == 0:
            s = samples[-1]
            print(f"cycle {cycle}: rss {s.rss_mb:.1f} MB, fds {s.fds}, threads {s.threads}")
        if cycle >= args.cycles:
            options.stop.set()
        else:
            add_upstream_commit(root, "examplelib", f"soak commit {cycle}")

    run_loop(lambda: load_config(dist.config), 0.0, options, on_cycle=on_cycle)
    elapsed = time.monotonic() - started
    warm = samples[min(WARMUP_CYCLES, len(samples)) - 1]
    last = samples[-1]
    growth = last.rss_mb - warm.rss_mb
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    unbuilt = sum(1 for s in samples[1:] if s.built != 1)
    # Descriptors come and go within a cycle (SQLite's WAL files): compare peaks, not samples.
    warm_fds = max(x.fds for x in samples[WARMUP_CYCLES - 1 : WARMUP_CYCLES + 99])
    late_fds = max(x.fds for x in samples[-100:])
    leaked = late_fds > warm_fds or last.children != 0 or last.threads > warm.threads
    ok = growth <= GOAL_GROWTH_MB and not leaked and unbuilt == 0
    print(
        f"{len(samples)} cycles in {elapsed:.0f} s; RSS {warm.rss_mb:.1f} MB at cycle "
        f"{warm.cycle} → {last.rss_mb:.1f} MB (growth {growth:+.1f} MB, peak {peak:.1f} MB); "
        f"fds (peaks) {warm_fds} → {late_fds}; threads {warm.threads} → {last.threads}; "
        f"children at the end {last.children}; cycles without exactly one build: {unbuilt}"
    )
    goal = f"growth ≤ {GOAL_GROWTH_MB:.0f} MB"
    verdict = "met" if ok else "NOT met"
    if not args.no_docs:
        update_docs_section(
            DOCS_HEADING,
            f"""\
Measured {utc_now()} on {machine()}; conveyor {conveyor_version()}.
`python -m bench soak`: `run_loop` in-process on the example distribution, interval 0,
one new upstream commit before every cycle (so every cycle detects, builds with rpmbuild,
publishes and moves labels), {len(samples)} cycles in {elapsed:.0f} s.

| | after cycle {warm.cycle} (warm) | after cycle {last.cycle} | goal |
| --- | --- | --- | --- |
| RSS | {warm.rss_mb:.1f} MB | {last.rss_mb:.1f} MB (**{growth:+.1f} MB**) | {goal} |
| open file descriptors (peak over 100 cycles) | {warm_fds} | {late_fds} | no growth |
| threads | {warm.threads} | {last.threads} | no growth |
| child processes | {warm.children} | {last.children} | none left |

Cycles that did not build exactly the one new commit: {unbuilt}. Verdict: {verdict}.
""",
        )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
