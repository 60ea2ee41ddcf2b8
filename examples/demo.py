"""`make demo`: build the bundled example distribution, change it, build again, show the result.

Every step is a `conveyor` command a user could type; the demo only adds the upstream and
distgit changes a developer would push. The distribution has a dependencies repository
(`deps_url`, like RDO's delorean-deps.repo), so the demo ends as an RDO user would: both
published .repo files in one reposdir, and a real `dnf install` from them.
"""

from __future__ import annotations

import argparse
import configparser
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from examples.distribution import (
    Distribution,
    DistributionError,
    add_upstream_commit,
    fix_broken_package,
    generate,
)

# The published names with conveyor's default reponame, `delorean`.
REPO_FILE = "delorean.repo"
DEPS_REPO_FILE = "delorean-deps.repo"


class DemoError(Exception):
    """The demo's last step failed; the message says what and why."""


def conveyor(*args: str) -> int:
    command = [sys.executable, "-m", "conveyor", *args]
    print(f"\n$ conveyor {' '.join(args)}", flush=True)
    return subprocess.run(command, check=False).returncode


def build(root: Path, dist: Distribution, fresh: bool) -> int:
    """The conveyor runs, with the developers' pushes between them on a fresh directory;
    non-zero when the demo cannot go on."""
    config = str(dist.config)
    code = conveyor("run", "--config", config)
    if code not in (0, 1):
        return code
    if fresh:
        print(f"\n{dist.failing_package} failed on purpose, so `consistent` has not moved yet.")
        lib = dist.projects[dist.dependency[1]]
        commit = add_upstream_commit(root, lib, "Add a feature upstream")
        print(f"new upstream commit {commit[:8]} in {lib}")
        fixed = fix_broken_package(root)
        print(f"distgit fix {fixed[:8]} for {dist.failing_package}")
        code = conveyor("run", "--config", config)
        if code != 0:
            return code
    conveyor("status", "--config", config)
    return 0


def reposdir_of(root: Path, repos: Path) -> Path:
    """`<root>/yum.repos.d` holding the two published .repo files, as RDO users fetch them:
    the trunk's own repositories need the dependencies repository beside them."""
    sources = (repos / "consistent" / REPO_FILE, repos / DEPS_REPO_FILE)
    for source in sources:
        if not source.is_file():
            raise DemoError(f"{source} was not published")
    reposdir = root / "yum.repos.d"
    reposdir.mkdir(exist_ok=True)
    for source in sources:
        shutil.copyfile(source, reposdir / source.name)
    return reposdir


def dnf_install(reposdir: Path, package: str) -> list[tuple[str, str]]:
    """Install `package` with the real dnf into a scratch root; return (NVR, repository id)
    of every installed package, as dnf recorded where it took each from."""
    with tempfile.TemporaryDirectory(prefix="conveyor-demo-") as scratch:
        options = [
            f"--installroot={Path(scratch) / 'root'}",
            "--releasever=1",
            "--nogpgcheck",
            f"--setopt=reposdir={reposdir}",
            f"--setopt=cachedir={Path(scratch) / 'cache'}",
        ]
        query = ["--installed", "--qf", "%{name}-%{version}-%{release} %{from_repo}"]
        _dnf([*options, "-y", "install", package], f"install {package}")
        listing = _dnf([*options, "repoquery", *query], "list what it installed")
    rows = (line.split() for line in listing.splitlines())
    return sorted((row[0], row[1]) for row in rows if len(row) == 2)


def _dnf(args: list[str], what: str) -> str:
    try:
        # --noplugins: dnf-plugins-core's `local` plugin would answer from a host-wide
        # repository of everything installed before, whatever reposdir says.
        command = ["dnf", "-q", "--noplugins", *args]
        result = subprocess.run(command, check=True, capture_output=True, text=True)
    except FileNotFoundError:
        raise DemoError("dnf is not installed") from None
    except subprocess.CalledProcessError as exc:
        output = (exc.stderr or exc.stdout or "").strip()
        raise DemoError(f"dnf could not {what}:\n{output}") from None
    return result.stdout


def repo_files(reposdir: Path) -> dict[str, str]:
    """Repository id -> the .repo file in `reposdir` that defines it."""
    ids: dict[str, str] = {}
    for path in sorted(reposdir.glob("*.repo")):
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(path, encoding="utf-8")
        ids.update(dict.fromkeys(parser.sections(), path.name))
    return ids


def show_install(root: Path, dist: Distribution) -> None:
    reposdir = reposdir_of(root, root / "data" / "repos")
    package = dist.dependency[0]
    print(f"\ninstall {package} from {REPO_FILE} and {DEPS_REPO_FILE} (both in {reposdir}):")
    print(
        "  dnf --installroot=/tmp/conveyor-root --releasever=1 --nogpgcheck "
        f"--setopt=reposdir={reposdir} install {package}"
    )
    installed = dnf_install(reposdir, package)
    files = repo_files(reposdir)
    print("\ninstalled into a scratch --installroot:")
    width = max((len(nvr) for nvr, _ in installed), default=0)
    for nvr, repo in installed:
        print(f"  {nvr:{width}}  from [{repo}] in {files.get(repo, '?')}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, default=Path("demo"), help="where to generate")
    root = parser.parse_args().dir.resolve()
    fresh = not root.exists()
    try:
        dist = generate(root, deps=True)
    except DistributionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"example distribution in {root} ({len(dist.packages)} packages)")
    print(f"deps_url: {dist.deps_repo}, published as data/repos/{DEPS_REPO_FILE}")

    code = build(root, dist, fresh)
    if code != 0:
        return code
    consistent = root / "data" / "repos" / "consistent"
    if not consistent.exists():
        print("\n`consistent` is not set: some package's newest build failed.")
        return 1
    print(f"\nconsistent -> {consistent.resolve()}")
    try:
        show_install(root, dist)
    except DemoError as exc:
        print(
            f"\nerror: the install from the published repositories failed: {exc}", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
