"""Helpers shared by the benchmarks: the machine, versions, timed runs, conveyor's config, the
results file and the sections of ``docs/benchmarks.md``."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from bench.gitfarm import WORK, Farm
from conveyor.domain.builds import BuildTarget

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
RESULTS = WORK / "results"
CONVEYOR = ROOT / ".venv" / "bin" / "conveyor"


# --- the machine and the versions ---------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def memory_total_gib() -> int:
    """`free -g`'s total (kB from /proc/meminfo, truncated to GiB as free -g does)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // (1024 * 1024)
    except OSError:
        pass
    return 0


def machine() -> str:
    cpus = os.cpu_count()
    return f"{cpus} CPUs ({cpu_model()}), {memory_total_gib()} GiB RAM, {platform.system()}"


def load_average() -> str:
    """The 1-minute load average: other work on the machine skews a benchmark on 2 CPUs."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except (OSError, IndexError):
        return "unknown"


def settle(below: float = 1.0, max_wait: float = 60.0) -> str:
    """Wait (at most `max_wait` s) for the 1-minute load average to fall under `below`, so a
    measured run does not start in the wake of the warm-up; returns the load average then."""
    deadline = time.monotonic() + max_wait
    while time.monotonic() < deadline:
        load = load_average()
        try:
            if float(load) < below:
                return load
        except ValueError:
            return load
        time.sleep(2.0)
    return load_average()


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def conveyor_version() -> str:
    """`git describe` of the tree, with ' + working tree' when it has changes, or 'working tree'."""
    describe = subprocess.run(
        ["git", "describe", "--always", "--dirty=-dirty"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if describe.returncode != 0 or not describe.stdout.strip():
        return "working tree (no commit yet)"
    text = describe.stdout.strip()
    if text.endswith("-dirty"):
        return f"{text.removesuffix('-dirty')} + working tree changes"
    return text


# --- runs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunResult:
    seconds: float
    returncode: int
    log: Path


def timed_run(
    command: list[str], log: Path, cwd: Path | None = None, env: dict[str, str] | None = None
) -> RunResult:
    """Run `command`, stdout and stderr to `log`; wall time measured around the process."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        start = time.perf_counter()
        proc = subprocess.run(
            command, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env, check=False
        )
        seconds = time.perf_counter() - start
    return RunResult(seconds, proc.returncode, log)


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


@dataclass(frozen=True)
class ConveyorRunner:
    """How conveyor is started: the project venv's `conveyor` script."""

    def command(self, *args: str) -> list[str]:
        return [str(CONVEYOR), *args]

    @property
    def env(self) -> dict[str, str] | None:
        return None  # inherit

    def describe(self) -> str:
        proc = subprocess.run(
            [
                str(ROOT / ".venv" / "bin" / "python"),
                "-c",
                "import platform; print(platform.python_version())",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        return f"Python {proc.stdout.strip() or 'unknown'}, project venv"


VENV_RUNNER = ConveyorRunner()


def check_conveyor_cli(runner: ConveyorRunner = VENV_RUNNER) -> str | None:
    """None if `conveyor run --help` works, else what it printed (the CLI may be unfinished)."""
    if not CONVEYOR.exists():
        return f"{CONVEYOR} does not exist (is the venv installed?)"
    proc = subprocess.run(
        runner.command("run", "--help"),
        capture_output=True,
        text=True,
        check=False,
        env=runner.env,
    )
    if proc.returncode == 0:
        return None
    return (proc.stdout + proc.stderr).strip()


def write_conveyor_config(farm: Farm, root: Path, workers: int, git_jobs: int) -> Path:
    """`root/conveyor.toml` for `farm`; `root/data` (conveyor's datadir) is made empty."""
    datadir = root / "data"
    if datadir.exists():
        shutil.rmtree(datadir)
    datadir.mkdir(parents=True)
    config = root / "conveyor.toml"
    config.write_text(
        f'datadir = "{datadir}"\n'
        'baseurl = "http://localhost:8080/repos"\n'
        f"workers = {workers}\n"
        f"git_jobs = {git_jobs}\n"
        "\n"
        "[metadata]\n"
        f'path = "{farm.metadata_dir}"\n'
        'tag = "master"\n'
    )
    return config


def count_rows(database: Path, status: str) -> int:
    """Rows of `commits` with `status`, read with the stdlib sqlite3 (DLRN's and conveyor's)."""
    import sqlite3

    with sqlite3.connect(database) as db:
        row = db.execute("SELECT COUNT(*) FROM commits WHERE status = ?", (status,)).fetchone()
    return int(row[0])


# --- results and docs ---------------------------------------------------------------------


def save_result(name: str, data: dict[str, object]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")


def load_result(name: str) -> dict[str, object] | None:
    path = RESULTS / f"{name}.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def update_docs_section(heading: str, body: str, docs: Path = DOCS) -> None:
    """Replace the section `## heading` of `docs` (up to the next `## `) or append it.

    Other benchmarks own other sections of the same file; only this one is touched.
    """
    title = f"## {heading}"
    section = f"{title}\n\n{body.strip()}\n"
    text = docs.read_text() if docs.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(title)}[ \t]*\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _m: section + "\n", text, count=1).rstrip("\n") + "\n"
    else:
        text = text.rstrip("\n") + "\n\n" + section
    docs.parent.mkdir(parents=True, exist_ok=True)
    docs.write_text(text)


def bench_target(name: str, forge: str = "https://opendev.org/openstack") -> BuildTarget:
    """A package as the metadata would give it, for benchmarks that skip the metadata."""
    return BuildTarget(
        name=name,
        project=name,
        upstream=f"{forge}/{name}",
        distgit=f"{forge}/{name}-distgit",
        source_branch="master",
        distro_branch="rpm-master",
        distgit_path=None,
        component=None,
        maintainers=("bench@example.org",),
        under_review=False,
    )


T = TypeVar("T")

# Rows per executemany when a benchmark generates a big database.
INSERT_CHUNK = 20_000


def chunks(rows: Iterable[T]) -> Iterator[list[T]]:
    """`rows` in lists of INSERT_CHUNK: bounded memory for generated tables."""
    chunk: list[T] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == INSERT_CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
