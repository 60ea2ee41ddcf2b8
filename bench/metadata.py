"""Loading rdoinfo's ``rdo-full.yml`` (1,369 packages, 100 files): conveyor vs distroinfo 0.6.3.

Goals: ≤ 1.5 s cold (no parse cache), ≤ 0.3 s warm (parse cache filled), and `conveyor info`
with a filter on the full database ≤ 0.5 s wall including interpreter start (rdopkg: 4.5 s).
Each load runs in-process after the imports, the median of ``--runs``; distroinfo's full
``get_info()`` (fetch + merge + parse) is measured in the same run. The CLI is timed as a new
process; if `conveyor info` is not registered yet, through a small shim that registers it.

    python -m bench.metadata [--data DIR] [--runs 5]

Prints a markdown section for docs/benchmarks.md (it does not edit the file).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "rdoinfo-2cdac3d7e"
PYTHON = ROOT / ".venv" / "bin" / "python"
CONVEYOR = ROOT / ".venv" / "bin" / "conveyor"
FILTER = ["conf:client", "maintainers:jcapitao"]

SHIM = (
    "import sys\n"
    "from conveyor.cli import main, metadata\n"
    "metadata.register(main.app)\n"
    "sys.argv[0] = 'conveyor'\n"
    "main.app()\n"
)


def median_time(action: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cli_command(data: Path) -> list[str]:
    registered = (
        subprocess.run(
            [str(CONVEYOR), "info", "--help"], capture_output=True, check=False
        ).returncode
        == 0
    )
    args = ["info", "-l", str(data), *FILTER]
    return [str(CONVEYOR), *args] if registered else [str(PYTHON), "-c", SHIM, *args]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    data: Path = options.data
    entry = data / "rdo-full.yml"

    from conveyor.metadata import load_database
    from conveyor.metadata.cache import ParseCache

    rows: list[tuple[str, float]] = []
    rows.append(("conveyor, no cache", median_time(lambda: load_database(entry), options.runs)))
    with tempfile.TemporaryDirectory() as directory:

        def cold() -> None:
            with tempfile.TemporaryDirectory(dir=directory) as fresh:
                load_database(entry, cache=ParseCache(Path(fresh)))

        rows.append(("conveyor, empty cache (parse + fill)", median_time(cold, options.runs)))
        cache = ParseCache(Path(directory) / "warm")
        load_database(entry, cache=cache)
        rows.append(
            (
                "conveyor, warm cache",
                median_time(lambda: load_database(entry, cache=cache), options.runs),
            )
        )
    try:
        from distroinfo.info import DistroInfo  # type: ignore[import-untyped]

        info = DistroInfo("rdo-full.yml", local_info=str(data))
        rows.append(
            ("distroinfo 0.6.3 get_info()", median_time(info.get_info, max(1, options.runs // 2)))
        )
    except ImportError:
        rows.append(("distroinfo 0.6.3 (not installed)", float("nan")))

    command = cli_command(data)
    subprocess.run(command, capture_output=True, check=True)  # fill the user's parse cache
    walls = []
    for _ in range(options.runs):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        walls.append(time.perf_counter() - start)
    import_wall = []
    for _ in range(options.runs):
        start = time.perf_counter()
        subprocess.run([str(PYTHON), "-c", "import conveyor.cli.main"], check=True)
        import_wall.append(time.perf_counter() - start)

    print(f"## rdoinfo metadata load ({data.name}/rdo-full.yml)\n")
    print("| what | median time |")
    print("| --- | --- |")
    for label, seconds in rows:
        print(f"| {label} | {seconds:.3f} s |")
    shim = "" if command[0] == str(CONVEYOR) else " (via a registering shim)"
    print(
        f"| `conveyor info {' '.join(FILTER)}` wall, new process{shim} | "
        f"{statistics.median(walls):.3f} s |"
    )
    print(f"| of which `import conveyor.cli.main` wall | {statistics.median(import_wall):.3f} s |")
    print(f"\nPython {sys.version.split()[0]}, {options.runs} runs each.")


if __name__ == "__main__":
    main()
