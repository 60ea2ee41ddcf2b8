"""Build driver `podman`: each build in a container of `[podman] image`, its BuildRequires
installed by dnf from the build repositories (`buildrepos`), the build itself offline.

One build is one container, created with no network and only the build's folders mounted:
1. the SRPM is made in it, as the build user (rpmbuild -bs, the spec's macros run there);
2. a second, short-lived container of the same image resolves the SRPM's BuildRequires and
   downloads them (`dnf builddep --downloadonly`): it runs dnf alone, no code of the spec,
   with the build repositories mounted or reached over `[podman] fetch_network`, and writes
   to a folder that the build container sees read-only, so that what the spec's code did in
   step 1 cannot choose what is installed;
3. the downloaded packages are installed in the build container as its root (`dnf
   install`, no repository enabled);
4. the binary RPMs are built in it, as the build user, with BuildRequires checked.
The build user is `nobody` when conveyor runs as root (podman rootful), else conveyor's own
user mapped into the container (rootless podman, `--userns=keep-id`), the recommended way.
Every container has `no-new-privileges` and the resource limits of `build_max_*`.
"""

from __future__ import annotations

import math
import os
import resource
import shutil
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import IO

from conveyor.builders.buildrepos import BuildRepos
from conveyor.builders.bwrap import (
    INSIDE,
    Limits,
    SandboxError,
    hand_over,
    make_scratch,
    remove_scratch,
    take_back,
)
from conveyor.builders.driver import BuildRequest
from conveyor.builders.rpmbuild import (
    BuildPaths,
    HostLauncher,
    exit_text,
    failed,
    make_top,
    run_rpmbuild,
    run_step,
)
from conveyor.config import PodmanConfig
from conveyor.domain.builds import BuildOutcome

__all__ = ["PodmanDriver", "problem"]

_WHERE = " in a podman container"
FETCHED = PurePosixPath("/conveyor/fetched")  # the downloaded BuildRequires
REPOS_D = PurePosixPath("/conveyor/repos.d")  # the build repositories' .repo file
_PROBE = (
    "command -v rpmbuild >/dev/null || { echo 'the image has no rpmbuild (rpm-build)'; exit 3; }"
    "; dnf builddep --help >/dev/null 2>&1"
    " || { echo 'the image has no dnf builddep (dnf-plugins-core)'; exit 3; }"
)
_PROBE_TIMEOUT = 120.0


def _rootless() -> bool:
    return os.geteuid() != 0


def _build_user() -> str:
    if _rootless():
        return f"{os.geteuid()}:{os.getegid()}"
    return "65534:65534"  # nobody: bwrap's sandboxes run as that host user too


def _ulimits(limits: Limits) -> list[str]:
    # Podman's default open-files limit may exceed what this process may grant (the
    # container would not start): ask for what we have.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    values = {
        "nproc": limits.processes,
        "fsize": limits.file_bytes,
        "core": 0,
        "nofile": soft if hard == resource.RLIM_INFINITY else min(soft, hard),
    }
    if limits.cpu_seconds:
        values["cpu"] = limits.cpu_seconds
    # podman has no address-space ulimit: the build user's commands run under prlimit.
    return [
        arg for name, value in values.items() for arg in ("--ulimit", f"{name}={value}:{value}")
    ]


@dataclass(frozen=True)
class Podman:
    """podman's command lines for one `[podman]` configuration."""

    settings: PodmanConfig
    limits: Limits

    def command(self, *args: str) -> list[str]:
        return [self.settings.executable, *args]

    def run_options(self, network: str, as_root: bool = False) -> list[str]:
        """`podman run`'s options. Rootless, a container keeps conveyor's user as itself
        (`--userns=keep-id`: the build user owns the build's folders), except one that runs
        as its root (`as_root`: dnf), whose root is then conveyor's user on the host."""
        options = ["--rm", "--pull=never", "--security-opt=no-new-privileges"]
        if self.settings.runtime:
            options = ["--runtime", self.settings.runtime, *options]
        if network:
            options.append(f"--network={network}")
        if as_root:
            options.append("--user=0:0")
        elif _rootless():
            options.append("--userns=keep-id")
        return [*options, *_ulimits(self.limits), "--env", "LANG=C.UTF-8"]


def problem(settings: PodmanConfig, limits: Limits) -> str | None:
    """Why builds cannot run with these settings, or None: podman is installed, the image is
    here (a build never pulls), and a container of it starts with rpmbuild and dnf builddep."""
    podman = Podman(settings, limits)
    if shutil.which(settings.executable) is None:
        return f"{settings.executable} is not installed (Debian package podman)"
    try:
        exists = subprocess.run(
            podman.command("image", "exists", settings.image),
            capture_output=True,
            timeout=_PROBE_TIMEOUT,
            check=False,
        )
        if exists.returncode != 0:
            return (
                f"podman image {settings.image} is not here; pull or build it first "
                f"(podman pull {settings.image})"
            )
        probe = subprocess.run(
            podman.command("run", *podman.run_options("none"), settings.image, "sh", "-c", _PROBE),
            capture_output=True,
            text=True,
            errors="replace",
            timeout=_PROBE_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"podman does not answer: {exc}"
    if probe.returncode != 0:
        said = (probe.stdout + probe.stderr).strip().splitlines()
        detail = said[-1] if said else exit_text(probe.returncode)
        return f"a container of {settings.image} does not start: {detail}"
    return None


@dataclass(frozen=True)
class _Exec:
    """The Launcher of one build's container: `podman exec` as `user`."""

    podman: Podman
    container: str
    user: str
    limited: bool = True  # under the limits' prlimit (the build user's commands)

    def start(self, command: Sequence[str], log: IO[str]) -> subprocess.Popen[bytes]:
        prlimit = self.podman.limits.prlimit() if self.limited else []
        argv = self.podman.command(
            "exec",
            "--user",
            self.user,
            "--workdir",
            str(INSIDE),
            self.container,
            *prlimit,
            *command,
        )
        return HostLauncher().start(argv, log)


@dataclass(frozen=True)
class _Folders:
    scratch: Path  # /build: sources, %_topdir; the build user's
    fetched: Path  # FETCHED: written by the download container only
    repos_d: Path  # REPOS_D: the .repo file, read-only everywhere
    mounts: tuple[tuple[Path, PurePosixPath], ...]  # local repositories, read-only


class PodmanDriver:
    """See the module's docstring."""

    name = "podman"

    def __init__(
        self,
        settings: PodmanConfig,
        repos: BuildRepos,
        macros: Mapping[str, str],
        limits: Limits | None = None,
    ) -> None:
        self.settings = settings
        self.repos = repos
        self.macros = dict(macros)
        self.limits = limits or Limits()

    def build(self, request: BuildRequest) -> BuildOutcome:
        made: list[Path] = []
        container = f"conveyor-build-{uuid.uuid4().hex[:16]}"
        limits = replace(self.limits, cpu_seconds=math.ceil(request.timeout))
        podman = Podman(self.settings, limits)
        try:
            for _ in range(3):
                made.append(make_scratch(request.workdir))
            folders = self._prepare(request, *made)
            started = self._start(podman, container, folders, request)
            if started is not None:
                return started
            seen = BuildPaths(INSIDE / "rpmbuild", INSIDE / "SOURCES" / request.spec.name)

            def install(srpm: Path, log: IO[str], deadline: float) -> str | None:
                return self._install(podman, container, folders, srpm, log, deadline)

            launcher = _Exec(podman, container, _build_user())
            outcome = run_rpmbuild(
                request, folders.scratch / "rpmbuild", seen, self.macros, launcher, _WHERE, install
            )
            take_back(outcome.rpms)
            return outcome
        except (OSError, shutil.Error, SandboxError) as exc:
            with request.log.open("a", encoding="utf-8") as log:
                log.write(f"conveyor: podman build: {exc}\n")
            return failed(request.log, f"podman build: {exc}")
        finally:
            subprocess.run(
                podman.command("rm", "--force", "--time", "0", "--ignore", container),
                capture_output=True,
                timeout=_PROBE_TIMEOUT,
                check=False,
            )
            for folder in made:
                remove_scratch(folder)

    def _prepare(
        self, request: BuildRequest, scratch: Path, fetched: Path, repos_d: Path
    ) -> _Folders:
        shutil.copytree(request.spec.parent, scratch / "SOURCES", symlinks=True)
        make_top(scratch / "rpmbuild")
        (scratch / "home").mkdir()
        (scratch / "tmp").mkdir()
        hand_over(scratch)
        text, mounts = self.repos.for_container()
        (repos_d / "conveyor.repo").write_text(text or "", encoding="utf-8")
        for folder in (fetched, repos_d):
            folder.chmod(0o755)
        (repos_d / "conveyor.repo").chmod(0o644)
        return _Folders(scratch, fetched, repos_d, tuple(mounts))

    def _start(
        self, podman: Podman, container: str, folders: _Folders, request: BuildRequest
    ) -> BuildOutcome | None:
        """Starts the build's container (it ends itself after the timeout); None when up."""
        lifetime = str(math.ceil(request.timeout) + 60)
        argv = podman.command(
            "run",
            "--detach",
            "--name",
            container,
            *podman.run_options("none"),
            *_volume(folders.scratch, INSIDE),
            *_volume(folders.fetched, FETCHED, readonly=True),
            "--workdir",
            str(INSIDE),
            "--env",
            f"HOME={INSIDE}/home",
            "--env",
            f"TMPDIR={INSIDE / 'tmp'}",
            self.settings.image,
            "sleep",
            lifetime,
        )
        with request.log.open("a", encoding="utf-8") as log:
            log.write(f"conveyor: container: {_describe(argv, folders)}\n")
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=_PROBE_TIMEOUT,
            check=False,
        )
        if done.returncode == 0:
            return None
        said = done.stderr.strip() or exit_text(done.returncode)
        with request.log.open("a", encoding="utf-8") as log:
            log.write(f"conveyor: the container did not start: {said}\n")
        return failed(request.log, f"the build container did not start: {said.splitlines()[-1]}")

    def _install(
        self,
        podman: Podman,
        container: str,
        folders: _Folders,
        srpm: Path,
        log: IO[str],
        deadline: float,
    ) -> str | None:
        inside = INSIDE / srpm.relative_to(folders.scratch)
        network = self.settings.fetch_network if self.repos.needs_network else "none"
        mounts = [arg for host, seen in folders.mounts for arg in _volume(host, seen, True)]
        download = podman.command(
            "run",
            *podman.run_options(network, as_root=True),
            *_volume(folders.scratch, INSIDE, readonly=True),
            *_volume(folders.fetched, FETCHED),
            *_volume(folders.repos_d, REPOS_D, readonly=True),
            *mounts,
            self.settings.image,
            "dnf",
            "builddep",
            "--assumeyes",
            "--downloadonly",
            f"--destdir={FETCHED}",
            "--disableplugin=local",
            f"--setopt=reposdir={REPOS_D}",
            f"--setopt=cachedir={FETCHED}/.cache",
            str(inside),
        )
        code = run_step(download, HostLauncher(), log, deadline, _describe(download, folders))
        if code != 0:
            return f"BuildRequires cannot be resolved (dnf builddep, {exit_text(code)})"
        packages = sorted(p.name for p in folders.fetched.glob("*.rpm") if _regular(p))
        if not packages:
            return None  # the image has everything
        install = ["dnf", "install", "--assumeyes", "--disableplugin=local", "--disablerepo=*"]
        launcher = _Exec(podman, container, "0:0", limited=False)
        code = run_step([*install, *(str(FETCHED / p) for p in packages)], launcher, log, deadline)
        if code != 0:
            return f"BuildRequires could not be installed (dnf install, {exit_text(code)})"
        return None


def _regular(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def _volume(host: Path, inside: PurePosixPath | Path, readonly: bool = False) -> list[str]:
    # `:` in a host path would be read as the separator: scratch folders are conveyor's
    # own, and repository folders come from the configuration, where conveyor refuses it.
    if ":" in str(host) or "," in str(host):
        raise SandboxError(f"cannot mount a folder whose path holds ':' or ',': {host}")
    return ["--volume", f"{host}:{inside}:{'ro' if readonly else 'rw'}"]


def _describe(argv: Sequence[str], folders: _Folders) -> str:
    """The command line for a build log (published): host folders not named."""
    hidden = {
        str(folders.scratch): "<scratch>",
        str(folders.fetched): "<fetched>",
        str(folders.repos_d): "<repos.d>",
        **{str(host): f"<repository {seen.name}>" for host, seen in folders.mounts},
    }
    return " ".join(
        hidden.get(arg.split(":", 1)[0], "") + _after(arg)
        if arg.split(":", 1)[0] in hidden
        else arg
        for arg in argv
    )


def _after(arg: str) -> str:
    return ":" + arg.split(":", 1)[1] if ":" in arg else ""
