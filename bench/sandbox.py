"""The price of the sandbox: one build of a small spec with the `bwrap` driver against the
bare host `rpmbuild` driver, alternating, median of each. Goal: ≤ 0.3 s more per build.

Also measured, because every sandboxed build pays them too: the spec preparation with
specfile in the sandboxed worker against in conveyor's process, and one `rpmspec` dependency
query (`build_order = "dependencies"`) in the sandbox against on the host.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import WORK, conveyor_version, machine, settle, update_docs_section, utc_now
from conveyor.builders import bwrap, deps, spec
from conveyor.builders.driver import BuildDriver, BuildRequest
from conveyor.builders.rpmbuild import RpmbuildDriver
from conveyor.domain.version import BuildVersion

GOAL_SECONDS = 0.3
DOCS_HEADING = "Sandbox overhead: bwrap against the host's rpmbuild"
MACROS = {"dist": ".el9"}
VERSION = BuildVersion("1.0.1", "0.20260101000000.abcdef1", "1.0.1.dev1")
# As the example distribution's packages: a tarball, %setup, a shell check, an install.
SPEC = """\
%{!?upstream_version: %global upstream_version %{version}}
Name:           benchpkg
Version:        XXX
Release:        XXX
Summary:        A small package for the sandbox benchmark
License:        ASL 2.0
Source0:        benchpkg-%{upstream_version}.tar.gz
BuildArch:      noarch
AutoReq:        no

%description
A small package for the sandbox benchmark.

%prep
%setup -q -n benchpkg-%{upstream_version}

%build
sh -n bin/benchpkg

%install
install -D -m 0755 bin/benchpkg %{buildroot}%{_bindir}/benchpkg
install -d -m 0755 %{buildroot}%{_datadir}/%{name}
cp -pr README.md benchpkg %{buildroot}%{_datadir}/%{name}/

%files
%doc README.md
%{_bindir}/benchpkg
%{_datadir}/%{name}/

%changelog
"""


def prepared_sources(root: Path) -> Path:
    """A prepared spec and its tarball in `root/SOURCES`, as `execute_build` leaves them."""
    sources = root / "SOURCES"
    sources.mkdir(parents=True)
    tree = root / "tree" / f"benchpkg-{VERSION.upstream_version}"
    (tree / "bin").mkdir(parents=True)
    (tree / "benchpkg").mkdir()
    (tree / "bin" / "benchpkg").write_text("#!/bin/sh\necho benchpkg\n")
    (tree / "benchpkg" / "__init__.py").write_text('"""benchpkg."""\n')
    (tree / "README.md").write_text("# benchpkg\n")
    with tarfile.open(sources / f"{tree.name}.tar.gz", "w:gz") as tar:
        tar.add(tree, arcname=tree.name)
    path = sources / "benchpkg.spec"
    path.write_text(SPEC)
    spec.prepare_spec(path, VERSION, f"{tree.name}.tar.gz", keep_changelog=False)
    return path


def build_once(driver: BuildDriver, prepared: Path, root: Path, index: int) -> float:
    workdir = root / f"{driver.name}-{index}"
    shutil.copytree(prepared.parent, workdir / "SOURCES")
    request = BuildRequest(
        spec=workdir / "SOURCES" / prepared.name,
        workdir=workdir,
        output=workdir / "output",
        log=workdir / "rpmbuild.log",
        timeout=600,
    )
    started = time.perf_counter()
    outcome = driver.build(request)
    seconds = time.perf_counter() - started
    if not outcome.success:
        raise RuntimeError(f"{driver.name} build failed: {outcome.notes}")
    shutil.rmtree(workdir)
    return seconds


def _timed(func: Callable[[], object]) -> float:
    started = time.perf_counter()
    func()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--builds", type=int, default=10, help="builds per driver")
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args(argv)
    problem = bwrap.problem()
    if problem is not None or shutil.which("rpmbuild") is None:
        print(f"cannot run: {problem or 'rpmbuild is not installed'}")
        return 2
    root = WORK / "sandbox"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    prepared = prepared_sources(root / "prepared")
    drivers: list[BuildDriver] = [RpmbuildDriver(MACROS), bwrap.BwrapDriver(MACROS)]
    load = settle()
    times: dict[str, list[float]] = {d.name: [] for d in drivers}
    for driver in drivers:  # warm-up: page cache, rpm's first start
        build_once(driver, prepared, root, -1)
    for index in range(args.builds):
        for driver in drivers if index % 2 == 0 else reversed(drivers):
            times[driver.name].append(build_once(driver, prepared, root, index))
    host = statistics.median(times["rpmbuild"])
    boxed = statistics.median(times["bwrap"])
    overhead = boxed - host

    text = SPEC
    request = {
        "text": text,
        "version": VERSION.version,
        "release": VERSION.release,
        "upstream_version": VERSION.upstream_version,
        "tarball": "benchpkg-1.0.1.dev1.tar.gz",
        "keep_changelog": False,
    }
    spec_path = root / "benchpkg.spec"
    spec_path.write_text(text)
    prep_host = statistics.median(_timed(lambda: spec._prepare_text(**request)) for _ in range(5))
    prep_boxed = statistics.median(
        _timed(lambda: spec._prepare_in_sandbox(spec_path, request)) for _ in range(5)
    )
    query_host = statistics.median(
        _timed(lambda: deps.read_spec_deps(spec_path, sandboxed=False)) for _ in range(5)
    )
    query_boxed = statistics.median(
        _timed(lambda: deps.read_spec_deps(spec_path, sandboxed=True)) for _ in range(5)
    )
    bwrap_version = subprocess.run(
        [bwrap.BWRAP, "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    root_user = os.geteuid() == 0
    user = "root" if root_user else "an unprivileged user"
    sandbox_user = "`nobody`" if root_user else "that user"
    ok = overhead <= GOAL_SECONDS
    verdict = "met" if ok else "NOT met"

    def listing(values: list[float]) -> str:
        return ", ".join(f"{v:.2f}" for v in values)

    print(
        f"rpmbuild median {host:.3f} s, bwrap median {boxed:.3f} s: overhead {overhead:+.3f} s "
        f"per build (goal ≤ {GOAL_SECONDS} s: {verdict}); spec preparation {prep_host:.3f} s "
        f"in-process, {prep_boxed:.3f} s sandboxed; rpmspec query {query_host:.3f} s host, "
        f"{query_boxed:.3f} s sandboxed"
    )
    if not args.no_docs:
        update_docs_section(
            DOCS_HEADING,
            f"""\
Goal: the `bwrap` driver costs ≤ {GOAL_SECONDS} s more per build than the bare host `rpmbuild`.
Script: `python -m bench sandbox` (`bench/sandbox.py`): one small noarch package as the example
distribution's (tarball, `%setup`, `%build`, `%install`), prepared once; one warm-up build per
driver, then {args.builds} builds each, alternating, each in a fresh build folder, timed
around `driver.build()` (both rpmbuild calls, the sandbox's scratch folder and its removal).

- Date: {utc_now()}
- Machine: {machine()}
- conveyor: {conveyor_version()}; {bwrap_version}; conveyor running as {user} (the sandbox
  as {sandbox_user}); 1-min load average before: {load}

| driver | median per build | all builds (s) |
| --- | --- | --- |
| rpmbuild (host, unconfined) | {host:.3f} s | {listing(times["rpmbuild"])} |
| bwrap (sandbox) | {boxed:.3f} s | {listing(times["bwrap"])} |
| **overhead** | **{overhead:+.3f} s** | goal ≤ {GOAL_SECONDS} s: {verdict} |

Paid once more per build, outside the driver (medians of 5):

| step | in conveyor / on the host | in the sandbox |
| --- | --- | --- |
| spec preparation (specfile, `prepare_spec`) | {prep_host:.3f} s | {prep_boxed:.3f} s |
| dependency query (two `rpmspec -q`, cached per distgit commit) | {query_host:.3f} s \
| {query_boxed:.3f} s |

The sandboxed spec preparation starts a Python interpreter that imports specfile and rpm: that
start-up is most of its cost.
""",
        )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
