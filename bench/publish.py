"""Publishing one new build into a trunk of 1,000 packages.

Measures what happens after a build: the hash directory with links to every other package's
newest RPMs, repodata, versions.csv, the database rows and the label moves. Goal ≤ 0.5 s
(DLRN: ≈ 3 s with an index, minutes without; reference/dlrn.md section 16).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from sqlalchemy import insert

from bench.common import (
    bench_target,
    conveyor_version,
    machine,
    settle,
    update_docs_section,
    utc_now,
)
from conveyor.config import Config
from conveyor.domain.builds import BuildJob, BuildOutcome, BuildResult, BuildTarget, Mirrors
from conveyor.domain.paths import repo_relpath
from conveyor.publish.repodata import read_package_xml
from conveyor.store.database import Database
from conveyor.store.models import Commit
from conveyor.store.package_status import rebuild_package_status
from conveyor.trunk.publishing import Publisher

WORK = Path(__file__).resolve().parent / ".work" / "publish"

SPEC = """Name: {name}
Version: 1.0.0
Release: {release}
Summary: bench
License: ASL 2.0
BuildArch: noarch
%description
bench
%install
mkdir -p %{{buildroot}}/usr/share/{name} && echo {name} > %{{buildroot}}/usr/share/{name}/f
%files
/usr/share/{name}
"""


def rpmbuild(name: str, into: Path, release: str = "0.20260101000000.abcdef0") -> list[Path]:
    """A noarch package and its source RPM, built for real."""
    into.mkdir(parents=True, exist_ok=True)
    top = into / "top"
    spec = into / f"{name}.spec"
    spec.write_text(SPEC.format(name=name, release=release))
    subprocess.run(
        ["rpmbuild", "-ba", "--nodeps", "--define", f"_topdir {top}", str(spec)],
        check=True,
        capture_output=True,
    )
    return sorted(top.rglob("*.rpm"))


def _sha(i: int, salt: str) -> str:
    import hashlib

    return hashlib.sha1(f"{salt}{i}".encode()).hexdigest()  # a fake git hash


def setup_trunk(
    root: Path,
    packages: int,
    database: str | None = None,
    history: Callable[[list[BuildTarget]], list[dict[str, object]]] | None = None,
) -> tuple[Config, list[BuildTarget]]:
    """A trunk where every package already has one published build (in `database`, or the
    data directory's SQLite), after the `commits` rows `history` gives (older builds)."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    settings = {"database": database} if database else {}
    config = Config(datadir=root / "data", baseurl="http://localhost/repos", **settings)
    template = rpmbuild("pkg-template", root / "template")
    xml = {rpm.name: read_package_xml(rpm) for rpm in template}
    targets = [bench_target(f"pkg{i:04d}", "https://example.org") for i in range(packages)]
    db = Database(config.database_url)
    with db.transaction() as session:
        older = history(targets) if history is not None else []
        if older:  # ids before the newest builds'
            session.execute(insert(Commit), older)
        for i, target in enumerate(targets):
            commit, distro = _sha(i, "c"), _sha(i, "d")
            relpath = repo_relpath(commit, distro)
            directory = config.repos_dir / relpath
            directory.mkdir(parents=True)
            cached = []
            for rpm in template:
                filename = rpm.name.replace("pkg-template", target.name)
                shutil.copyfile(rpm, directory / filename)
                entry = asdict(xml[rpm.name])
                cached.append({k: v.replace("pkg-template", target.name) for k, v in entry.items()})
            cache = config.datadir / "cache" / "repodata" / f"{relpath}.json"
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps(cached))
            session.add(
                Commit(
                    project_name=target.name,
                    commit_hash=commit,
                    distro_hash=distro,
                    commit_branch="master",
                    status="SUCCESS",
                    dt_commit=1_700_000_000 + i,
                    dt_build=1_700_000_000 + i,
                    artifacts=",".join(f"repos/{relpath}/{c['filename']}" for c in cached),
                    notes="OK",
                    flags=0,
                )
            )
    with db.engine.begin() as connection:
        rebuild_package_status(connection)  # as an imported or migrated history gets it
    db.close()
    return config, targets


def publish_once(config: Config, targets: list[BuildTarget], round_: int, scratch: Path) -> float:
    target = targets[round_ % len(targets)]
    built = scratch / f"round{round_}"
    rpms = rpmbuild(target.name, built)
    log = built / "rpmbuild.log"
    log.write_text("bench\n")
    job = BuildJob(
        target=target,
        mirrors=Mirrors(Path("/nonexistent"), Path("/nonexistent")),
        commit_hash=_sha(round_, "new"),
        dt_commit=1_800_000_000 + round_,
        commit_branch="master",
        distro_hash=_sha(round_, "newd"),
        dt_distro=1_800_000_000,
    )
    result = BuildResult(
        job=job,
        dt_build=int(datetime.now(UTC).timestamp()),
        outcome=BuildOutcome(True, tuple(rpms), "OK"),
        version=None,
        workdir=built,
        log=log,
    )
    db = Database(config.database_url)
    publisher = Publisher(config, db, targets)
    start = time.perf_counter()
    published = publisher.publish(result)
    elapsed = time.perf_counter() - start
    db.close()
    assert published.relpath == PurePosixPath(repo_relpath(job.commit_hash, job.distro_hash))
    # A benchmark that published nothing would be fast: check the repository is complete.
    directory = config.repos_dir / published.relpath
    links = sum(1 for entry in directory.iterdir() if entry.is_symlink())
    assert links == 2 * (len(targets) - 1), f"{links} links in {directory}"
    return elapsed


GOAL_S = 0.5
ANCHOR = "DLRN ≈ 3 s with an index, minutes without (reference/dlrn.md §16, not re-run)"
DOCS_HEADING = "Publishing one build into a trunk of 1,000 packages"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--packages", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-docs", action="store_true", help="do not update the docs")
    args = parser.parse_args(argv)
    config, targets = setup_trunk(WORK, args.packages)
    load = settle()
    times = [publish_once(config, targets, r, WORK / "scratch") for r in range(args.rounds)]
    median = statistics.median(times)
    summary = (
        f"median {median * 1000:.0f} ms (min {min(times) * 1000:.0f}, "
        f"max {max(times) * 1000:.0f}, {args.rounds} rounds)"
    )
    print(f"publish one build into {args.packages} packages: {summary}")
    if not args.no_docs:
        update_docs_section(
            DOCS_HEADING,
            f"""\
Measured {utc_now()} on {machine()}; conveyor {conveyor_version()}; 1-min load before: {load}.
`python -m bench publish`: a trunk of {args.packages} packages, each with a published build
(two RPMs), then one new real rpmbuild output published through `Publisher.publish`: the
hash directory, {2 * (args.packages - 1)} relative links, repodata written from the
per-build XML cache, versions.csv, commit.yaml, the database rows and the `current` /
`consistent` moves.

| | time | goal | anchor |
| --- | --- | --- | --- |
| conveyor | **{summary}** | ≤ {GOAL_S * 1000:.0f} ms | {ANCHOR} |
""",
        )
    return 0 if median <= GOAL_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
