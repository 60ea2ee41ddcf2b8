"""The price of the `podman` driver: one build of the sandbox benchmark's small spec in a
container of the test image (tests/images/build_test_image.py, cached by podman) against the
bare host `rpmbuild`, alternating, median of each. Goal: ≤ 2 s more per build.

A podman build is one container for the build and a short-lived one for `dnf builddep`: the
second costs a container start and dnf's start-up even when the package needs nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
from pathlib import Path

from tests.images.build_test_image import IMAGE

from bench.common import WORK, conveyor_version, machine, settle, update_docs_section, utc_now
from bench.sandbox import MACROS, build_once, prepared_sources
from conveyor.builders import podman
from conveyor.builders.buildrepos import load_build_repos
from conveyor.builders.bwrap import Limits
from conveyor.builders.driver import BuildDriver
from conveyor.builders.rpmbuild import RpmbuildDriver
from conveyor.config import PodmanConfig

GOAL_SECONDS = 2.0
DOCS_HEADING = "Container overhead: podman against the host's rpmbuild"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--builds", type=int, default=6, help="builds per driver")
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args(argv)
    settings = PodmanConfig(image=IMAGE, runtime="runc" if shutil.which("runc") else "")
    problem = podman.problem(settings, Limits()) if shutil.which("podman") else "no podman"
    if problem is not None or shutil.which("rpmbuild") is None:
        print(f"cannot run: {problem or 'rpmbuild is not installed'} (make test-image)")
        return 2
    root = WORK / "podman"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    prepared = prepared_sources(root / "prepared")
    repos = load_build_repos("", "delorean", Path(root / "no-repos"))
    drivers: list[BuildDriver] = [
        RpmbuildDriver(MACROS),
        podman.PodmanDriver(settings, repos, MACROS),
    ]
    load = settle()
    times: dict[str, list[float]] = {d.name: [] for d in drivers}
    for driver in drivers:  # warm-up: page cache, the image's layers
        build_once(driver, prepared, root, -1)
    for index in range(args.builds):
        for driver in drivers if index % 2 == 0 else reversed(drivers):
            times[driver.name].append(build_once(driver, prepared, root, index))
    host = statistics.median(times["rpmbuild"])
    boxed = statistics.median(times["podman"])
    overhead = boxed - host
    version = subprocess.run(
        ["podman", "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    user = "root (rootful podman, builds as `nobody`)" if os.geteuid() == 0 else "rootless"
    ok = overhead <= GOAL_SECONDS
    verdict = "met" if ok else "NOT met"

    def listing(values: list[float]) -> str:
        return ", ".join(f"{v:.2f}" for v in values)

    print(
        f"rpmbuild median {host:.3f} s, podman median {boxed:.3f} s: overhead {overhead:+.3f} s "
        f"per build (goal ≤ {GOAL_SECONDS} s: {verdict})"
    )
    if not args.no_docs:
        update_docs_section(
            DOCS_HEADING,
            f"""\
Goal: the `podman` driver costs ≤ {GOAL_SECONDS} s more per build than the bare host `rpmbuild`,
image cached. Script: `python -m bench podman` (`bench/podman.py`): the sandbox benchmark's
package; one warm-up build per driver, then {args.builds} builds each, alternating, timed around
`driver.build()`: the build container's start, `rpmbuild -bs`, the `dnf builddep` container
(nothing to install here), `rpmbuild --rebuild`, the container's removal.

- Date: {utc_now()}
- Machine: {machine()}
- conveyor: {conveyor_version()}; {version}, runtime {settings.runtime or "default"}, image
  {IMAGE} (Debian bookworm, rpm, dnf); conveyor as {user}; 1-min load average before: {load}

| driver | median per build | all builds (s) |
| --- | --- | --- |
| rpmbuild (host, unconfined) | {host:.3f} s | {listing(times["rpmbuild"])} |
| podman (container) | {boxed:.3f} s | {listing(times["podman"])} |
| **overhead** | **{overhead:+.3f} s** | goal ≤ {GOAL_SECONDS} s: {verdict} |
""",
        )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
