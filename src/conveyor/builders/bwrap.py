"""Build driver `bwrap`: rpmbuild inside a bubblewrap sandbox, and the sandbox itself, which
the spec readers (`spec`, `deps`) use too.

A distgit is not trusted: its spec runs shell code when rpm parses it (`%(...)`, Lua) and when
it builds (`%prep`, `%build`, `%install`). In the sandbox that code
- runs as an unprivileged user, with no capability: inside it is `builder` (uid 1000); on the
  host it is conveyor's own user, or `nobody` when conveyor runs as root, so that no file it
  writes belongs to root and no root-only file is readable to it;
- sees the host's /usr (and /bin, /lib... as the host has them) and a short list of /etc
  entries (`ETC_ENTRIES`), all read-only; /etc/passwd, /etc/group and /etc/hosts are
  written for the sandbox, so the host's user list stays outside;
- can write only to /build, a scratch folder made for this build alone (holding a copy of
  the sources), and to a private /tmp, /var/tmp and /dev/shm (tmpfs of `TMPFS_BYTES`);
  conveyor's data directory (database, repos/, other builds) is not mounted at all;
- has no network (its own network namespace holds only a loopback), its own process, IPC and
  host-name namespaces, a minimal /proc and /dev, a new session (no terminal to inject
  into), cannot create further user namespaces, and dies with conveyor;
- runs under limits (prlimit): processes per sandbox (a fork bomb stops there), file size,
  address space per process, CPU time per process (the build timeout), no core dumps.

Results come back through the scratch folder: only regular files are taken, owned again by
conveyor's user, and the scratch folder is removed. The build log is written by conveyor,
outside the sandbox's reach.
"""

from __future__ import annotations

import functools
import math
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from conveyor.builders.driver import BuildRequest
from conveyor.builders.rpmbuild import NO_MACROS, BuildPaths, failed, make_top, run_rpmbuild
from conveyor.domain.builds import BuildOutcome

__all__ = [
    "BWRAP",
    "ETC_ENTRIES",
    "INSIDE",
    "BwrapDriver",
    "Limits",
    "Sandbox",
    "SandboxError",
    "hand_over",
    "make_scratch",
    "problem",
    "remove_scratch",
]

BWRAP = "bwrap"
INSIDE = Path("/build")  # the writable scratch folder, as the sandbox sees it
BUILDER_UID = 1000  # the sandbox's user, as it sees itself
TMPFS_BYTES = 1 << 30  # each of /tmp, /var/tmp, /dev/shm; TMPDIR points into /build
# What rpmbuild and the usual build tools read in /etc (Debian's rpm has no /etc/rpm, but a
# host may). Anything else there (shadow, ssh host keys, conveyor.toml...) stays outside.
ETC_ENTRIES = (
    "alternatives",  # /usr/bin/awk and friends are links through it
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "nsswitch.conf",
    "localtime",
    "os-release",
    "debian_version",
    "rpm",
    "magic",
    "mime.types",
    "protocols",
    "services",
    "perl",
    "python3",
    "python3.11",
    "python3.12",
    "python3.13",
)
_SYSTEM_DIRS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
_TMPFS = ("/tmp", "/var/tmp", "/dev/shm")  # noqa: S108 - the sandbox's own, private tmpfs
_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"


class SandboxError(Exception):
    """The sandbox cannot be set up; the message says why."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of everything that runs in a sandbox (0: no limit)."""

    processes: int = 1024  # in the whole sandbox: its own user namespace counts them
    file_bytes: int = 16 << 30
    address_space_bytes: int = 32 << 30  # per process
    cpu_seconds: int = 0  # per process; a build sets its timeout

    def prlimit(self) -> list[str]:
        """`prlimit` arguments that set the limits and run the command that follows."""
        args = ["prlimit", f"--nproc={self.processes}", f"--fsize={self.file_bytes}", "--core=0"]
        if self.address_space_bytes:
            args.append(f"--as={self.address_space_bytes}")
        if self.cpu_seconds:
            args.append(f"--cpu={self.cpu_seconds}")
        return [*args, "--"]


@functools.cache
def _host_user() -> tuple[int, int] | None:
    """The host user a sandbox runs as when it is not conveyor's own: `nobody` for root."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam("nobody")
        return entry.pw_uid, entry.pw_gid
    except KeyError:
        return 65534, 65534


def reachable(path: Path) -> bool:
    """Whether the sandbox's host user can reach `path` (bwrap opens what it mounts as that
    user). Conveyor's own user made the folders it mounts; `nobody` needs them searchable."""
    if _host_user() is None:
        return True
    path = path.resolve()
    return all(p.stat().st_mode & stat.S_IXOTH for p in [*reversed(path.parents), path])


def make_scratch(near: Path | None = None) -> Path:
    """A new empty folder, `near` if the sandbox user can reach it, else in the temporary
    folder (TMPDIR). Mode 0700: only conveyor and the sandbox (after `hand_over`) enter."""
    for base in ([near] if near is not None else []) + [Path(tempfile.gettempdir())]:
        if base.is_dir() and reachable(base):
            return Path(tempfile.mkdtemp(prefix="conveyor-sandbox-", dir=base))
    raise SandboxError(
        f"no folder the sandbox user can reach: {near or ''} {tempfile.gettempdir()} "
        "(make one searchable, set TMPDIR, or run conveyor as an unprivileged user)"
    )


def hand_over(folder: Path) -> None:
    """Give `folder` and everything in it to the sandbox's host user (no-op unless root)."""
    user = _host_user()
    if user is None:
        return
    for root, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            os.chown(Path(root) / name, *user, follow_symlinks=False)
    os.chown(folder, *user)


def take_back(files: Sequence[Path]) -> None:
    """Make files a sandbox wrote conveyor's own again: owner, and mode 0644."""
    if _host_user() is None:
        return
    for path in files:
        os.chown(path, os.geteuid(), os.getegid(), follow_symlinks=False)
        path.chmod(0o644, follow_symlinks=False)


def remove_scratch(folder: Path) -> None:
    """Remove a scratch folder, also when a build left folders without permissions."""

    def retry(func: Any, name: str, _exc: Any) -> None:
        path = Path(name)
        try:
            path.parent.chmod(0o700)
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o700)
            func(name)
        except OSError:
            pass

    shutil.rmtree(folder, onerror=retry)


def _system_mounts() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in _SYSTEM_DIRS:
        path = Path("/", name)
        if path.is_symlink():
            args += ["--symlink", str(path.readlink()), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    for name in ETC_ENTRIES:
        if os.path.lexists(f"/etc/{name}"):
            args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    return args


def _etc_files() -> dict[str, bytes]:
    host = socket.gethostname() or "localhost"
    return {
        "/etc/passwd": (
            "root:x:0:0:root:/root:/bin/sh\n"
            f"builder:x:{BUILDER_UID}:{BUILDER_UID}:builder:{INSIDE}/home:/bin/sh\n"
            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        ).encode(),
        "/etc/group": (f"root:x:0:\nbuilder:x:{BUILDER_UID}:\nnogroup:x:65534:\n").encode(),
        # rpm names the build host in every header; the name must resolve without a network.
        "/etc/hosts": f"127.0.1.1 {host}\n127.0.0.1 localhost\n::1 localhost\n".encode(),
    }


@dataclass(frozen=True)
class Sandbox:
    """What one sandboxed command sees: the host system read-only, `writable` folders and
    `readonly` ones mounted at the paths given, and nothing else of the host."""

    writable: tuple[tuple[Path, Path], ...] = ()  # (host folder, path inside)
    readonly: tuple[tuple[Path, Path], ...] = ()
    limits: Limits = field(default_factory=Limits)
    cwd: Path = INSIDE

    def arguments(self, provided: Sequence[str] = ()) -> list[str]:
        """bwrap's options; `provided` are the `--ro-bind-data` ones of `popen`."""
        args = [
            "--unshare-user",
            "--unshare-pid",
            "--unshare-net",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--disable-userns",
            "--uid",
            str(BUILDER_UID),
            "--gid",
            str(BUILDER_UID),
            "--die-with-parent",
            "--new-session",
            *_system_mounts(),
            "--proc",
            "/proc",
            "--dev",
            "/dev",
        ]
        for mountpoint in _TMPFS:
            args += ["--size", str(TMPFS_BYTES), "--tmpfs", mountpoint]
        for host, inside in self.writable:
            args += ["--bind", str(host), str(inside)]
        for host, inside in self.readonly:
            args += ["--ro-bind", str(host), str(inside)]
        args += [*provided, "--remount-ro", "/", "--chdir", str(self.cwd), "--clearenv"]
        environment = {
            "PATH": _PATH,
            "HOME": str(INSIDE / "home"),
            "TMPDIR": str(INSIDE / "tmp"),
            "USER": "builder",
            "LOGNAME": "builder",
            "SHELL": "/bin/sh",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
        }
        for name, value in environment.items():
            args += ["--setenv", name, value]
        return args

    def describe(self) -> str:
        """The command line, for a build log (host folders not named: a log is published)."""
        hidden = replace(
            self,
            writable=tuple((Path("<scratch>"), inside) for _, inside in self.writable),
            readonly=tuple((Path("<folder>"), inside) for _, inside in self.readonly),
        )
        return " ".join([BWRAP, *hidden.arguments(), "--", *self.limits.prlimit()])

    def popen(self, command: Sequence[str], **options: Any) -> subprocess.Popen[Any]:
        """Start `command` in the sandbox; `options` go to Popen (stdout, stderr, text...).
        The process leads a session of its own: killing its group ends the sandbox."""
        user = _host_user()
        descriptors: list[int] = []
        try:
            data_args = []
            for path, content in _etc_files().items():
                read, write = os.pipe()
                descriptors.append(read)
                os.write(write, content)  # far below a pipe's capacity
                os.close(write)
                data_args += ["--ro-bind-data", str(read), path]
            argv = [BWRAP, *self.arguments(data_args), "--", *self.limits.prlimit(), *command]
            options.setdefault("stdin", subprocess.DEVNULL)
            return subprocess.Popen(
                argv,
                pass_fds=descriptors,
                start_new_session=True,
                env={"PATH": os.environ.get("PATH", _PATH), "LC_ALL": "C.UTF-8"},
                user=user[0] if user else None,
                group=user[1] if user else None,
                extra_groups=[] if user else None,
                **options,
            )
        finally:
            for descriptor in descriptors:
                os.close(descriptor)

    def start(self, command: Sequence[str], log: IO[str]) -> subprocess.Popen[bytes]:
        """The build drivers' Launcher: output to the build log."""
        return self.popen(command, stdout=log, stderr=subprocess.STDOUT)


@functools.cache
def problem() -> str | None:
    """Why sandboxes cannot run on this host, or None when they can: bwrap and prlimit are
    installed, and a sandbox starts and writes to its scratch folder. Asked once a process."""
    if shutil.which(BWRAP) is None:
        return "bwrap is not installed (Debian package bubblewrap)"
    if shutil.which("prlimit") is None:
        return "prlimit is not installed (Debian package util-linux)"
    try:
        scratch = make_scratch()
    except SandboxError as exc:
        return str(exc)
    try:
        hand_over(scratch)
        sandbox = Sandbox(writable=((scratch, INSIDE),), limits=Limits(processes=64))
        proc = sandbox.popen(
            ["sh", "-c", f"echo ok > {INSIDE}/probe"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return "bwrap did not start a sandbox within 30 s"
        if proc.returncode != 0 or not (scratch / "probe").is_file():
            detail = (out.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
            return f"bwrap cannot start a sandbox here: {detail}"
    except OSError as exc:
        return f"bwrap cannot start a sandbox here: {exc}"
    finally:
        remove_scratch(scratch)
    return None


_WHERE = " in the bwrap sandbox"


class BwrapDriver:
    """rpmbuild in a bubblewrap sandbox: the same two command lines as the `rpmbuild`
    driver (see the module's docstring for what the sandbox allows)."""

    name = "bwrap"

    def __init__(self, macros: Mapping[str, str] = NO_MACROS, limits: Limits | None = None):
        self.macros = dict(macros)
        self.limits = limits or Limits()

    def build(self, request: BuildRequest) -> BuildOutcome:
        try:
            scratch = make_scratch(request.workdir)
        except SandboxError as exc:
            return BuildOutcome(False, (), f"bwrap sandbox: {exc}")
        try:
            shutil.copytree(request.spec.parent, scratch / "SOURCES", symlinks=True)
            top = scratch / "rpmbuild"
            make_top(top)
            (scratch / "home").mkdir()
            (scratch / "tmp").mkdir()
            hand_over(scratch)
            limits = replace(self.limits, cpu_seconds=math.ceil(request.timeout))
            sandbox = Sandbox(writable=((scratch, INSIDE),), limits=limits)
            with request.log.open("a", encoding="utf-8") as log:
                log.write(f"conveyor: sandbox: {sandbox.describe()}\n")
            seen = BuildPaths(INSIDE / "rpmbuild", INSIDE / "SOURCES" / request.spec.name)
            outcome = run_rpmbuild(request, top, seen, self.macros, sandbox, _WHERE)
            take_back(outcome.rpms)
            return outcome
        except (OSError, shutil.Error) as exc:
            with request.log.open("a", encoding="utf-8") as log:
                log.write(f"conveyor: bwrap sandbox: {exc}\n")
            return failed(request.log, f"bwrap sandbox: {exc}")
        finally:
            remove_scratch(scratch)
