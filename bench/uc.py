"""`uc-report` over 600 pins and a 2,000-package repository: goal ≤ 1 s.

The repository is synthetic: repodata written with createrepo_c's Python API (primary,
filelists and other XML, gzip, repomd.xml) for 2,000 noarch packages, each with a few
provides, 1,500 of them a ``python3dist(...)``. The UC file has 600 pins: 500 provided (a
third equal, a third lower, a third greater), 100 missing, 20 with a python_version marker.

Measured twice: in-process (parse UC, read the repository, compare, CSV) and as a new
process running the `uc-report` command (interpreter start-up and imports included).

    python -m bench.uc [--runs 5]

Prints a markdown section for docs/benchmarks.md (it does not edit the file).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import createrepo_c as cr

from conveyor.uc import ProviderIndex, add_repository, build_report, load_constraints, to_csv

GOAL_S = 1.0
PACKAGES = 2000
PINS = 600


def make_repo(path: Path) -> None:
    repodata = path / "repodata"
    repodata.mkdir(parents=True)
    files = {
        "primary": (cr.PrimaryXmlFile, cr.xml_dump_primary),
        "filelists": (cr.FilelistsXmlFile, cr.xml_dump_filelists),
        "other": (cr.OtherXmlFile, cr.xml_dump_other),
    }
    writers = {k: cls(str(repodata / f"{k}.xml.gz")) for k, (cls, _) in files.items()}
    for w in writers.values():
        w.set_num_of_pkgs(PACKAGES)
    for i in range(PACKAGES):
        pkg = cr.Package()
        pkg.name = f"python3-mod{i}" if i < 1500 else f"lib-other{i}"
        pkg.epoch, pkg.version, pkg.release, pkg.arch = "0", f"1.{i % 3}.0", "1.el9s", "noarch"
        pkg.pkgId = f"{i:064x}"
        pkg.checksum_type = "sha256"
        pkg.location_href = f"{pkg.name}-{pkg.version}-1.el9s.noarch.rpm"
        pkg.summary = pkg.description = "synthetic"
        provides: list[tuple[str, str, str, str, str | None, bool]] = [
            (pkg.name, "EQ", "0", pkg.version, "1.el9s", False)
        ]
        if i < 1500:
            provides.append((f"python3dist(mod{i})", "EQ", "0", pkg.version, None, False))
            provides.append((f"python3.9dist(mod{i})", "EQ", "0", pkg.version, None, False))
        pkg.provides = provides
        pkg.requires = [("python(abi)", "EQ", "0", "3.9", None, False)]
        for w in writers.values():
            w.add_pkg(pkg)
    repomd = cr.Repomd()
    for kind, w in writers.items():
        w.close()
        record = cr.RepomdRecord(kind, str(repodata / f"{kind}.xml.gz"))
        record.fill(cr.SHA256)
        repomd.set_record(record)
    (repodata / "repomd.xml").write_text(repomd.xml_dump())


def make_uc(path: Path) -> None:
    lines = ["# synthetic upper-constraints"]
    for i in range(PINS):
        mod = f"mod{i}" if i < 500 else f"absent{i}"
        marker = ";python_version=='3.9'" if i % 30 == 0 else ""
        lines.append(f"{mod}===1.1.0{marker}")
    path.write_text("\n".join(lines) + "\n")


def in_process(repo: Path, uc: Path) -> tuple[float, int]:
    start = time.perf_counter()
    pins = load_constraints(uc)
    index = ProviderIndex()
    add_repository(index, str(repo))
    rows = build_report("bench", pins, index)
    to_csv(rows)
    return time.perf_counter() - start, len(rows)


CLI = (
    "import sys, typer; from conveyor.cli import packaging; app = typer.Typer(); "
    "packaging.register(app); app(sys.argv[1:])"
)


def as_command(repo: Path, uc: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", CLI, "uc-report", "-r", "bench", "--uc", str(uc),
         "--repo", str(repo)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return time.perf_counter() - start


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.uc")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-uc-") as tmp:
        repo, uc = Path(tmp) / "repo", Path(tmp) / "uc.txt"
        make_repo(repo)
        make_uc(uc)
        runs = [in_process(repo, uc) for _ in range(args.runs)]
        rows = runs[0][1]
        inproc = [t for t, _ in runs]
        command = [as_command(repo, uc) for _ in range(args.runs)]
    best, median = min(command), statistics.median(command)
    ok = median <= GOAL_S
    print("## uc-report: 600 pins x 2,000-package repository\n")
    print(f"Goal: ≤ {GOAL_S:.0f} s. {rows} rows; {args.runs} runs each.\n")
    print("| measure | best | median |")
    print("| --- | --- | --- |")
    print(f"| in-process (UC + repodata + compare + CSV) | {min(inproc):.3f} s "
          f"| {statistics.median(inproc):.3f} s |")  # fmt: skip
    print(f"| `uc-report` as a new process | {best:.3f} s | {median:.3f} s |")
    print(f"\nResult: {'met' if ok else 'NOT met'}.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
