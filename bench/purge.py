"""`conveyor purge --dry-run --older-than 1` on a trunk of 60,000 commits over 600 packages.

Goal ≤ 2 s for the whole command (a new process: interpreter start-up, imports, database,
labels, links, plan). DLRN's `dlrn-purge --dry-run --older-than 1` took 54 s on a database
of the same size (reference/dlrn.md section 16; not re-run here).

The trunk is synthetic and built once into bench/.work/purge-*/ (reused while its parameters
match; `--rebuild` forces it): 60,000 `commits` rows written with one SQLAlchemy core bulk
insert, one hash directory per row (commit.yaml, and for a success its two tiny "RPMs"),
5 % failed builds, 100 promotions, labels `current`, `consistent`, `current-passed-ci`.

With `--links`, each package's newest repository also links, as a published one does, to the
two RPMs of every other package's newest success when it was published (~700,000 relative
symlinks, 4 GB of disk, a minute to make), so purge has links to read. Older directories hold
no links even then: with links in every directory the walk would cover the whole history.

    python -m bench.purge [--commits 60000] [--packages 600] [--runs 3] [--links] [--rebuild]

Prints a markdown section for docs/benchmarks.md (it does not edit the file).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import insert

from bench.common import conveyor_version, machine, settle, update_docs_section, utc_now
from conveyor.config import Config
from conveyor.domain.paths import repo_relpath
from conveyor.retention import purge
from conveyor.store.database import Database
from conveyor.store.models import CIVote, Commit, Promotion

WORK = Path(__file__).resolve().parent / ".work"
GOAL_S = 2.0
DAY = 86_400
ANCHOR = (
    "DLRN 0.26.1 `dlrn-purge --dry-run --older-than 1`: 54 s (reference/dlrn.md §16, not re-run)"
)

# The whole command in a new process, as cron would run it.
_CLI = """\
import sys, typer
from conveyor.cli.retention import register
app = typer.Typer()
register(app)
app(sys.argv[1:])
"""


def _sha(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()  # a fake git hash


def _rows(commits: int, packages: int, start: int) -> list[dict[str, object]]:
    rows = []
    for i in range(commits):
        package = f"pkg{i % packages:04d}"
        commit, distro = _sha(f"c{i}"), _sha(f"d{i}")
        relpath = repo_relpath(commit, distro)
        failed = i % 20 == 7 and i < commits - packages  # each package's newest succeeds
        artifacts = [f"repos/{relpath}/{package}-1.0-{i}.{a}.rpm" for a in ("src", "noarch")]
        rows.append(
            {
                "id": i + 1,
                "type": "rpm",
                "project_name": package,
                "commit_hash": commit,
                "distro_hash": distro,
                "commit_branch": "master",
                "status": "FAILED" if failed else "SUCCESS",
                "dt_commit": start + i * 60,
                "dt_distro": start,
                "dt_build": start + i * 60,
                "artifacts": None if failed else ",".join(artifacts),
                "notes": "failed" if failed else "OK",
                "flags": 0,
            }
        )
    return rows


def _write_tree(repos: Path, rows: list[dict[str, object]], packages: int, links: bool) -> int:
    """Hash directories for `rows`; returns the number of symlinks made."""
    for row in rows:
        directory = repos / repo_relpath(str(row["commit_hash"]), str(row["distro_hash"]))
        directory.mkdir(parents=True)
        (directory / "commit.yaml").write_text(f"commits:\n- id: '{row['id']}'\n")
        artifacts = str(row["artifacts"]).split(",") if row["artifacts"] else []
        for artifact in artifacts:
            (directory / artifact.rsplit("/", 1)[1]).write_bytes(b"rpm")
    made = 0
    if not links:
        return made
    newest: dict[str, dict[str, object]] = {}  # package -> its newest success so far
    last_ids = {row["id"] for row in rows[-packages:]}
    for row in rows:
        package = str(row["project_name"])
        if row["id"] in last_ids:
            directory = repos / repo_relpath(str(row["commit_hash"]), str(row["distro_hash"]))
            for other, target in newest.items():
                if other == package:
                    continue
                for artifact in str(target["artifacts"]).split(","):
                    source = repos / artifact.removeprefix("repos/")
                    link = directory / source.name
                    link.symlink_to(os.path.relpath(source, directory))
                    made += 1
        if row["status"] == "SUCCESS":
            newest[package] = row
    return made


def _label(repos: Path, name: str, row: dict[str, object]) -> None:
    target = repo_relpath(str(row["commit_hash"]), str(row["distro_hash"]))
    (repos / name).symlink_to(str(target))


def build_trunk(root: Path, commits: int, packages: int, links: bool) -> tuple[Config, int]:
    """The synthetic trunk; returns its config and the number of symlinks made."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    config = Config(datadir=root / "data")
    start = int(time.time()) - 100 * DAY - commits * 60  # every build older than 100 days
    rows = _rows(commits, packages, start)
    db = Database(config.database_url)
    with db.engine.begin() as connection:
        connection.execute(insert(Commit), rows)
        successes = [r for r in rows if r["status"] == "SUCCESS"]
        promoted = successes[:: len(successes) // 100][:100]
        connection.execute(
            insert(Promotion),
            [
                {"commit_id": r["id"], "promotion_name": "current-passed-ci", "timestamp": start}
                for r in promoted
            ],
        )
        connection.execute(
            insert(CIVote),
            [
                {
                    "commit_id": successes[-1]["id"],
                    "ci_name": "consistent",
                    "ci_vote": True,
                    "ci_in_progress": False,
                    "timestamp": start,
                }
            ],
        )
    db.close()
    made = _write_tree(config.repos_dir, rows, packages, links)
    _label(config.repos_dir, "current", successes[-1])
    _label(config.repos_dir, "consistent", successes[-1])
    _label(config.repos_dir, "current-passed-ci", promoted[-1])
    (root / "conveyor.toml").write_text(f'datadir = "{config.datadir}"\n')
    return config, made


def ensure_trunk(
    root: Path, commits: int, packages: int, links: bool, rebuild: bool
) -> tuple[Config, int, float | None]:
    """Reuse the trunk when it was built with the same parameters; else build it (timed)."""
    wanted = {"commits": commits, "packages": packages, "links": links, "format": 1}
    marker = root / "trunk.json"
    if not rebuild and marker.exists():
        built = json.loads(marker.read_text())
        if built["params"] == wanted:
            (root / "conveyor.toml").write_text(f'datadir = "{root / "data"}"\n')
            return Config(datadir=root / "data"), built["symlinks"], None
    began = time.perf_counter()
    config, made = build_trunk(root, commits, packages, links)
    marker.write_text(json.dumps({"params": wanted, "symlinks": made}))
    return config, made, time.perf_counter() - began


def time_in_process(config: Config) -> tuple[float, int]:
    began = time.perf_counter()
    report = purge(config, 1, dry_run=True)
    return time.perf_counter() - began, len(report.removed)


def time_command(root: Path) -> float:
    command = [sys.executable, "-c", _CLI, "purge", "--dry-run", "--older-than", "1"]
    command += ["--config", str(root / "conveyor.toml")]
    began = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - began


def section(
    args: argparse.Namespace,
    symlinks: int,
    load: str,
    removed: int,
    median_in: float,
    median_cmd: float,
) -> str:
    """The markdown section for docs/benchmarks.md."""
    if args.links:
        model = (
            "each package's newest repository links to the two RPMs of every other package's "
            f"newest success when it was published ({symlinks:,} symlinks; older directories "
            "hold none)"
        )
        title = f"Purge dry run on {args.commits:,} commits, with links"
    else:
        model = "no directory holds links (the model of the issue)"
        title = f"Purge dry run on {args.commits:,} commits"
    flag = " --links" if args.links else ""
    return f"""\
## {title}

Measured {utc_now()} on {machine()}; conveyor {conveyor_version()}; 1-min load before: {load}.
`python -m bench.purge{flag}`: a synthetic trunk of {args.commits:,} commits over
{args.packages} packages (5 % failed, 100 promotions, 3 labels), one hash directory each
(commit.yaml and two small RPM files), all built more than 100 days ago; {model}. The dry run
reads every row in one query, the labels, and the links of every kept directory, and plans:
{removed:,} directories would go. "Whole command" is a new Python process running
`conveyor purge --dry-run --older-than 1` (start-up and imports included); "in-process" calls
`conveyor.retention.purge(config, 1, dry_run=True)` after one warm-up call.

| | time (median of {args.runs}) | goal | anchor |
| --- | --- | --- | --- |
| whole command | **{median_cmd:.2f} s** | ≤ {GOAL_S:.0f} s | {ANCHOR} |
| in-process | {median_in:.2f} s | | |
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commits", type=int, default=60_000)
    parser.add_argument("--packages", type=int, default=600)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--links", action="store_true", help="links in the newest repositories")
    parser.add_argument("--rebuild", action="store_true", help="build the trunk again")
    args = parser.parse_args(argv)

    work = WORK / ("purge-links" if args.links else "purge")
    config, symlinks, setup = ensure_trunk(
        work, args.commits, args.packages, args.links, args.rebuild
    )
    if setup is not None:
        print(f"built the trunk in {setup:.1f} s ({symlinks} symlinks)", flush=True)
    load = settle()
    time_in_process(config)  # warm-up: page cache and imports, as on a builder in use
    in_process = [time_in_process(config) for _ in range(args.runs)]
    removed = in_process[0][1]
    command = [time_command(work) for _ in range(args.runs)]
    median_in, median_cmd = (
        statistics.median(t for t, _ in in_process),
        statistics.median(command),
    )
    print(
        f"in-process {median_in:.2f} s, whole command {median_cmd:.2f} s "
        f"(median of {args.runs}); {removed} directories would be removed"
    )
    text = section(args, symlinks, load, removed, median_in, median_cmd)
    print()
    print(text)
    heading, _, body = text.partition("\n")
    update_docs_section(heading.removeprefix("## "), body)
    return 0 if median_cmd <= GOAL_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
