"""`make demo`: the example distribution's whole story, from upstream code to an installed release.

1. **Trunk.** Build the bundled example distribution, change it (an upstream commit, a distgit
   fix), build again; `consistent` moves, and a real `dnf install` takes from the published
   repositories (the trunk's and its dependencies repository, as RDO's delorean-deps.repo).
2. **CI and promotion.** A CI job votes on `consistent`'s repository through the API
   (`conveyor serve`), and the promoter moves `current-passed-ci`.
3. **A release.** Upstream's release team branches `stable/azalea`, rdoinfo gains the release,
   `conveyor release-branch` prepares the stable builder, which builds the stable branches;
   `conveyor release-status` shows what GA still needs.
4. **GA.** `conveyor release-ga` builds the releases into the -candidate buildsys tag, moves
   them to -testing and waits for the CI; a CI vote on the -testing tag lets it finish in
   -release, and a real `dnf install` takes from the release repository.

Every step is a `conveyor` command a user could type; the demo plays only the developers,
upstream's release team and the CI (whose votes are HTTP requests, as a CI job sends them).
Run again on the same folder, each step is skipped or resumed.
"""

from __future__ import annotations

import argparse
import base64
import configparser
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from examples.distribution import (
    CI_JOB,
    PROMOTED_LABEL,
    RELEASE_CI_JOB,
    Distribution,
    DistributionError,
    Release,
    add_promotion_criteria,
    add_release,
    add_upstream_commit,
    find_release,
    fix_broken_package,
    generate,
)

# The published names with conveyor's default reponame, `delorean`.
REPO_FILE = "delorean.repo"
DEPS_REPO_FILE = "delorean-deps.repo"

SERIES = "azalea"
# The CI's account on each builder's API (`conveyor user create`), as RDO's CI has one.
CI_USER = "ci"
CI_PASSWORD = "example-ci-password"  # noqa: S105 - a demo's throw-away local account
CI_URL = "https://ci.example.org/jobs"

# `conveyor release-ga` exit codes.
GA_DONE, GA_FAILED, GA_BAD_INPUT, GA_WAITING = 0, 1, 2, 4
GA_EXITS = {
    GA_DONE: "GA done, the release repository is published",
    GA_FAILED: "a step failed",
    GA_BAD_INPUT: "bad input",
    3: "another process is running this builder",
    GA_WAITING: "waiting for CI votes on the testing tag",
}


class DemoError(Exception):
    """The demo's last step failed; the message says what and why."""


def heading(text: str) -> None:
    print(f"\n{'=' * 4} {text} {'=' * max(4, 92 - len(text))}", flush=True)


def conveyor(*args: str) -> int:
    command = [sys.executable, "-m", "conveyor", *args]
    print(f"\n$ conveyor {' '.join(args)}", flush=True)
    return subprocess.run(command, check=False).returncode


def conveyor_output(*args: str, show: bool = True) -> tuple[int, str]:
    """Run a command, its output captured (and printed unless `show` is false)."""
    command = [sys.executable, "-m", "conveyor", *args]
    print(f"\n$ conveyor {' '.join(args)}", flush=True)
    result = subprocess.run(command, check=False, capture_output=True, text=True)
    output = result.stdout + result.stderr
    if show and output:
        print(output, end="" if output.endswith("\n") else "\n", flush=True)
    return result.returncode, output


# --- 1. trunk -----------------------------------------------------------------------------------


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
    return make_reposdir(
        root / "yum.repos.d", (repos / "consistent" / REPO_FILE, repos / DEPS_REPO_FILE)
    )


def make_reposdir(reposdir: Path, sources: Sequence[Path]) -> Path:
    """`reposdir` holding copies of the .repo files `sources`, as a user downloads them."""
    for source in sources:
        if not source.is_file():
            raise DemoError(f"{source} was not published")
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


def install_and_show(reposdir: Path, package: str) -> list[tuple[str, str]]:
    """The dnf command a user types, then the real install and what it installed."""
    names = " and ".join(p.name for p in sorted(reposdir.glob("*.repo"), key=_main_first))
    print(f"\ninstall {package} from {names} (in {reposdir}):")
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
    return installed


def _main_first(path: Path) -> tuple[bool, str]:
    """The distribution's own .repo file before its dependencies'."""
    return (path.name == DEPS_REPO_FILE, path.name)


def show_install(root: Path, dist: Distribution) -> None:
    reposdir = reposdir_of(root, root / "data" / "repos")
    install_and_show(reposdir, dist.dependency[0])


# --- the CI: votes over HTTP --------------------------------------------------------------------


class Api:
    """`conveyor serve` on a free loopback port, for as long as the `with` block lasts; the
    CI's requests go to it as a CI job sends them (JSON, HTTP basic auth)."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log = log
        self.url = ""

    @contextmanager
    def serving(self) -> Iterator[Api]:
        port = _free_port()
        args = ["serve", "--config", str(self.config), "--port", str(port)]
        print(f"\n$ conveyor {' '.join(args)} &    # log: {self.log}", flush=True)
        with self.log.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "conveyor", *args], stdout=log, stderr=subprocess.STDOUT
            )
        self.url = f"http://127.0.0.1:{port}"
        try:
            self._wait_ready(process)
            yield self
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            print("(conveyor serve stopped)")

    def _wait_ready(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise DemoError(f"conveyor serve exited with {process.returncode}; see {self.log}")
            try:
                self.request("GET", "/api/health", auth=False)
                return
            except (DemoError, OSError):
                time.sleep(0.2)
        raise DemoError(f"conveyor serve did not answer within 60 s; see {self.log}")

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, auth: bool = True
    ) -> Any:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if auth:
            token = base64.b64encode(f"{CI_USER}:{CI_PASSWORD}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        request = urllib.request.Request(  # noqa: S310 - http://127.0.0.1 only
            self.url + path, data=data, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
                text = answer.read().decode()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace").strip()
            raise DemoError(f"{method} {path}: HTTP {exc.code}: {detail}") from None
        return json.loads(text) if text else None

    def vote(self, path: str, body: dict[str, Any]) -> Any:
        """POST a CI job's result, printed as the curl command a CI job would run."""
        shown = json.dumps(body)
        print(
            f"\nthe CI job {body['job_id']} reports its result:\n"
            f"  curl -u {CI_USER}:… -H 'Content-Type: application/json' "
            f"-d '{shown}' {self.url}{path}"
        )
        answer = self.request("POST", path, body)
        print(f"  -> 201 {json.dumps(answer)[:160]}…")
        return answer


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def ensure_ci_user(config: Path) -> None:
    """The CI's account on a builder's API; kept when an earlier run created it."""
    code, output = conveyor_output(
        "user",
        "create",
        "--username",
        CI_USER,
        "--password",
        CI_PASSWORD,
        "--role",
        "voter",
        "--config",
        str(config),
        show=False,
    )
    if code == 0:
        print(output.strip())
    elif "already exists" in output:
        print(f"(user {CI_USER} exists already, from an earlier run: kept)")
    else:
        raise DemoError(f"cannot create the CI's user: {output.strip()}")


def _result(job: str, build: str) -> dict[str, Any]:
    return {
        "job_id": job,
        "success": True,
        "url": f"{CI_URL}/{job}/{build}",
        "timestamp": int(time.time()),
    }


# --- 2. CI votes, promotion ---------------------------------------------------------------------


def promote(root: Path, dist: Distribution) -> None:
    """The CI votes on `consistent`'s repository; `current-passed-ci` follows."""
    repos = root / "data" / "repos"
    consistent, promoted = repos / "consistent", repos / PROMOTED_LABEL
    if promoted.exists() and promoted.resolve() == consistent.resolve():
        print(f"\n{PROMOTED_LABEL} points at `consistent`'s repository already (an earlier run).")
    else:
        ensure_ci_user(dist.config)
        commit = yaml.safe_load((consistent / "commit.yaml").read_text())["commits"][0]
        hashes = {"commit_hash": commit["commit_hash"], "distro_hash": commit["distro_hash"]}
        with Api(dist.config, root / "serve.log").serving() as api:
            api.vote("/api/report_result", {**hashes, **_result(CI_JOB, "1")})
            # `serve` evaluates the criteria after a vote that can complete them.
            if _wait_for(promoted.exists, 10):
                print(f"serve promoted {PROMOTED_LABEL} at once: the vote completed its criteria")
        # What a scheduled promoter would do (it promotes when serve did not).
        code = conveyor("promote", "--once", "--explain", "--config", str(dist.config))
        if code != 0:
            raise DemoError(f"conveyor promote exited with {code}")
    if not promoted.exists():
        raise DemoError(f"{PROMOTED_LABEL} was not promoted")
    print(f"\n{PROMOTED_LABEL} -> {promoted.resolve()}")


def _wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return bool(condition())


# --- 3. a release -------------------------------------------------------------------------------


def open_release(root: Path, dist: Distribution) -> Release:
    """Upstream's release team and the rdoinfo review; then the stable builder."""
    release = find_release(root, SERIES)
    if release is None:
        release = add_release(root, SERIES)
        print(
            f"\nupstream's release team branches {release.upstream_branch} at each newest release:"
        )
    else:
        print(f"\n{SERIES} was opened by an earlier run:")
    for project, version in sorted(release.versions.items()):
        print(f"  {project:18} {version:8} {release.hashes[project][:8]}")
    print(
        f"rdoinfo: release {SERIES} (distgit branch {release.distgit_branch}, buildsys tags "
        f"{release.family}-candidate|testing|release), every package tagged {SERIES}"
    )
    print(f"openstack/releases data: {release.releases}")

    code, output = conveyor_output("info", "-l", str(dist.metadata), f"tags:{SERIES}", show=False)
    if code != 0:
        raise DemoError(f"conveyor info failed: {output}")
    names = [
        line.removeprefix("name: ") for line in output.splitlines() if line.startswith("name: ")
    ]
    found = output.splitlines()[0].rstrip(":")
    print(f"{found} (names only): {', '.join(names)}")

    stable = root / SERIES
    config = stable / "conveyor.toml"
    if config.is_file():
        print(f"\n{stable} exists (an earlier run): release-branch is not run again.")
    else:
        code = conveyor(
            "release-branch",
            SERIES,
            "--config",
            str(dist.config),
            "--out",
            str(stable),
            "--create-branches",
            "--releases",
            str(release.releases),
        )
        if code != 0:
            raise DemoError(f"conveyor release-branch exited with {code}")
    print(f"\nthe {SERIES} builder builds the stable branches, as the master builder does master:")
    code = conveyor("run", "--config", str(config))
    if code != 0:
        raise DemoError(f"the {SERIES} builder's trunk run exited with {code}")
    code = conveyor(*_release_status(release, dist, config))
    if code != 0:
        raise DemoError(f"conveyor release-status exited with {code}")
    return release


def _release_status(release: Release, dist: Distribution, config: Path) -> list[str]:
    return [
        "release-status",
        "--series",
        SERIES,
        "--releases",
        str(release.releases),
        "--info",
        str(dist.metadata),
        "--config",
        str(config),
    ]


# --- 4. GA --------------------------------------------------------------------------------------


def general_availability(root: Path, dist: Distribution, release: Release) -> None:
    """release-ga until GA is done, the CI voting on the -testing tag when it waits; then an
    install from the release repository."""
    stable = root / SERIES
    config = stable / "conveyor.toml"
    ga = [
        "release-ga",
        "--series",
        SERIES,
        "--releases",
        str(release.releases),
        "--config",
        str(config),
        "--family",
        release.family,
    ]
    code = _release_ga(ga)
    votes = 0
    while code == GA_WAITING and votes < 2:
        print(f"\nGA waits for {RELEASE_CI_JOB} on {release.testing_tag}: the CI tests it.")
        ensure_ci_user(config)
        with Api(config, stable / "serve.log").serving() as api:
            testing = api.request("GET", f"/api/tags/{release.testing_tag}")
            print(f"  GET /api/tags/{release.testing_tag} -> version {testing['version']}")
            body = {"version": testing["version"], **_result(RELEASE_CI_JOB, str(votes + 1))}
            api.vote(f"/api/tags/{release.testing_tag}/report_result", body)
        votes += 1
        code = _release_ga(ga)
    if code != GA_DONE:
        raise DemoError(f"conveyor release-ga exited with {code} ({GA_EXITS.get(code, '?')})")
    code = conveyor(*_release_status(release, dist, config))
    if code != 0:
        raise DemoError(f"conveyor release-status exited with {code}")

    # Both published by release-ga's last step, side by side.
    release_repo = stable / "data" / "tags" / "repos" / f"{release.release_tag}.repo"
    deps_repo = release_repo.with_name(DEPS_REPO_FILE)
    reposdir = make_reposdir(stable / "yum.repos.d", (release_repo, deps_repo))
    installed = install_and_show(reposdir, dist.dependency[0])
    if not any(nvr.rsplit("-", 1)[-1] == "1.el9" for nvr, _ in installed):
        raise DemoError(f"no release build (Release 1.el9) was installed: {installed}")


def _release_ga(args: Sequence[str]) -> int:
    code = conveyor(*args)
    print(f"-> release-ga exit {code}: {GA_EXITS.get(code, 'unexpected')}")
    return code


# --- the story ----------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, default=Path("demo"), help="where to generate")
    root = parser.parse_args().dir.resolve()
    fresh = not root.exists()
    started = time.monotonic()
    try:
        dist = generate(root, deps=True)
        add_promotion_criteria(root)
    except DistributionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"example distribution in {root} ({len(dist.packages)} packages)")
    print(f"deps_url: {dist.deps_repo}, published as data/repos/{DEPS_REPO_FILE}")

    heading("1. Trunk: every upstream commit built, `consistent` moves")
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
        heading(f"2. CI votes on `consistent`, the promoter moves {PROMOTED_LABEL}")
        promote(root, dist)
        heading(f"3. A release: {SERIES}")
        release = open_release(root, dist)
        heading(f"4. GA: {release.candidate_tag} -> testing -> release")
        general_availability(root, dist, release)
    except (DemoError, DistributionError) as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 1
    elapsed = time.monotonic() - started
    story = "the whole story, from code to an installed release"
    print(f"\n{story}, took {elapsed:.0f} s; it is all in {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
