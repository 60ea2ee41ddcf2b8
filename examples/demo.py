"""`make demo`: build the bundled example distribution, change it, build again, show the result.

Every step is a `conveyor` command a user could type; the demo only adds the upstream and
distgit changes a developer would push.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from examples.distribution import (
    add_upstream_commit,
    fix_broken_package,
    generate,
)


def conveyor(*args: str) -> int:
    command = [sys.executable, "-m", "conveyor", *args]
    print(f"\n$ conveyor {' '.join(args)}", flush=True)
    return subprocess.run(command, check=False).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, default=Path("demo"), help="where to generate")
    root = parser.parse_args().dir.resolve()
    fresh = not root.exists()
    dist = generate(root)
    config = str(dist.config)
    print(f"example distribution in {root} ({len(dist.packages)} packages)")

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

    consistent = root / "data" / "repos" / "consistent"
    if not consistent.exists():
        print("\n`consistent` is not set: some package's newest build failed.")
        return 1
    repo = consistent.resolve()
    dependent = dist.dependency[0]
    print(f"\nconsistent -> {repo}")
    print("install from it with:")
    print(
        "  dnf --installroot=/tmp/conveyor-root --releasever=1 --nogpgcheck "
        f"--setopt=reposdir=/dev/null --repofrompath=conveyor,{repo} --repo=conveyor "
        f"install {dependent}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
