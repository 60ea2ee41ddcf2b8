"""Run conveyor's benchmarks: ``python -m bench [NAME...]`` (all of them when no NAME is given).

Each benchmark is a module of this package with a ``main(argv) -> int``; it prints its numbers
and updates its own section of ``docs/benchmarks.md``. To add one, add a ``(name, callable,
summary)`` entry to ``BENCHMARKS`` below. ``python -m bench --list`` lists them; a single
benchmark takes its own options when run as ``python -m bench.NAME --help``.

Benchmarks:
  refresh   refresh of 200 packages (400 git repos) with nothing new; conveyor vs DLRN 0.26.1
  memory    peak RSS of a 1,000-package cycle with nothing new
  publish   publishing one new build into a trunk of 1,000 packages
  soak      1,000 cycles of continuous mode, a new upstream commit each: no growth, no leaks
  reports   report update after one build, 500,000 commits and 1,000 packages
  purge     purge --dry-run --older-than 1 on 60,000 commits
  uc        uc-report over 600 pins and a 2,000-package repository
  metadata  rdo-full.yml load (cold, warm) vs distroinfo 0.6.3; `conveyor info` with a filter
  api       the DLRN API on 500,000 commits and 500,000 votes; conveyor vs DLRN 0.26.1
  sandbox   overhead per build of the bwrap sandbox against the host's bare rpmbuild
  podman    overhead per build of the podman driver against the host's bare rpmbuild
  closure   `conveyor closure` on 20,000 synthetic packages, cold and warm; vs dnf repoclosure
  tags      the tag closure gate (1,400 + 10,000 lookaside) and an apply of 400 moves
  ga        `release-ga` of flamingo (real deliverables x rdoinfo): time outside the builds
  diff      diff of two 1,000-package repositories; listing, log viewer, /metrics scrape
  pages     each dashboard page over HTTP on 500,000 commits: p50 and p95 per page
  scale     PostgreSQL: builds by 1/2/4 workers, the queue's overhead per build, votes
            over two server processes
  bisect    composing one bisection step of 1,000 packages; steps for N = 10, 100, 1,000
  farm      PostgreSQL: a simulated farm with the publisher in the loop, up to 2,000
            packages x 50 commits: where the publisher saturates

Generated data (git farms, DLRN's venv, data directories, logs, results/*.json) goes to
bench/.work/, which git ignores.

Exit status: 0 if every selected benchmark met its goal, 1 if one did not, 2 if one could not
run (the first non-zero status of the selected benchmarks, all of which are run).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from bench import (
    api,
    bisect,
    closure,
    diff,
    farm,
    ga,
    memory,
    metadata,
    pages,
    podman,
    publish,
    purge,
    refresh,
    reports,
    sandbox,
    scale,
    soak,
    tags,
    uc,
)

Benchmark = tuple[str, Callable[[list[str]], int], str]

BENCHMARKS: list[Benchmark] = [
    ("refresh", refresh.main, "refresh of 200 packages with nothing new, conveyor vs DLRN"),
    ("memory", memory.main, "peak RSS of a 1,000-package cycle with nothing new"),
    ("publish", publish.main, "publish one new build into a trunk of 1,000 packages"),
    ("soak", soak.main, "1,000 cycles of continuous mode: memory, descriptors, processes"),
    ("reports", reports.main, "report update after one build, 500k commits / 1,000 packages"),
    ("purge", purge.main, "purge --dry-run on 60,000 commits"),
    ("uc", uc.main, "uc-report: 600 pins against a 2,000-package repository"),
    ("metadata", metadata.main, "rdo-full.yml load vs distroinfo; conveyor info with a filter"),
    ("api", api.main, "DLRN API on the big database (latency, votes/s, vote to promotion)"),
    ("sandbox", sandbox.main, "bwrap sandbox vs bare rpmbuild: overhead per build"),
    ("podman", podman.main, "podman container vs bare rpmbuild: overhead per build"),
    ("closure", closure.main, "closure of 20,000 synthetic packages vs dnf repoclosure"),
    ("tags", tags.main, "tag closure gate and an apply of 400 moves"),
    ("ga", ga.main, "release-ga of flamingo to a published release, build time subtracted"),
    ("diff", diff.main, "diff of two 1,000-package repositories, browsing, /metrics"),
    ("pages", pages.main, "each dashboard page on 500,000 commits over HTTP (p50, p95)"),
    ("scale", scale.main, "PostgreSQL: workers 1/2/4, queue overhead, votes on 2 processes"),
    ("bisect", bisect.main, "compose a bisection step of 1,000 packages; steps vs the bound"),
    ("farm", farm.main, "simulated farm with the publisher, 2,000 packages x 50 commits"),
]


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if argv and argv[0] == "--list":
        for name, _, summary in BENCHMARKS:
            print(f"{name:10} {summary}")
        return 0
    known = {name: func for name, func, _ in BENCHMARKS}
    unknown = [name for name in argv if name not in known]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(known)}")
        return 2
    status = 0
    for name in argv or list(known):
        print(f"== {name}", flush=True)
        code = known[name]([])
        status = status or code
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
