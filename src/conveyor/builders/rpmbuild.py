"""rpmbuild's command lines and the bookkeeping around them, shared by the build drivers, and
the driver `rpmbuild`: the host's rpmbuild, unconfined.

A build is two rpmbuild calls, as DLRN's: the SRPM from the prepared spec, then the binary
RPMs from that SRPM. Both drivers run exactly these command lines; `bwrap` only starts them
inside a sandbox, where the build's folders have other names (`BuildPaths`).

The `rpmbuild` driver runs a spec's shell snippets and build scripts as conveyor's own user,
with conveyor's files in reach: it is for specs as trusted as conveyor itself.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import IO, Protocol

from conveyor.builders.driver import BuildRequest
from conveyor.domain.builds import BuildOutcome
from conveyor.publish.logs import read_excerpt

RPMBUILD = "rpmbuild"
# %_topdir's folders. `tmp` is %_tmppath, where rpm writes its scriptlets.
TOP_FOLDERS = ("BUILD", "BUILDROOT", "RPMS", "SRPMS", "SOURCES", "SPECS", "tmp")
# A failed build's notes carry the log lines around the first error (the FTBFS mail shows
# more of them): the first line says what failed, the rest why.
NOTE_EXCERPT_LINES = 20
NO_MACROS: Mapping[str, str] = MappingProxyType({})


class BuildTimeout(Exception):
    pass


@dataclass(frozen=True)
class BuildPaths:
    """One build's folders as rpmbuild sees them: host paths for the `rpmbuild` driver,
    paths inside the sandbox for `bwrap`."""

    top: Path  # %_topdir
    spec: Path  # the prepared spec; its folder is %_sourcedir of the SRPM build

    def defines(self, sourcedir: Path, macros: Mapping[str, str]) -> list[str]:
        """`--define` arguments: the folders, then `macros` (dist and `rpm_macros`)."""
        folders = {
            "_topdir": self.top,
            "_builddir": self.top / "BUILD",
            "_buildrootdir": self.top / "BUILDROOT",
            "_rpmdir": self.top / "RPMS",
            "_srcrpmdir": self.top / "SRPMS",
            "_specdir": self.top / "SPECS",
            "_tmppath": self.top / "tmp",
            "_sourcedir": sourcedir,
        }
        return define_args({**{k: str(v) for k, v in folders.items()}, **macros})


def define_args(macros: Mapping[str, str]) -> list[str]:
    return [arg for name, body in macros.items() for arg in ("--define", f"{name} {body}")]


def srpm_command(paths: BuildPaths, macros: Mapping[str, str]) -> list[str]:
    # --nodeps: Debian's rpm database is empty, so BuildRequires cannot be checked.
    defines = paths.defines(paths.spec.parent, macros)
    return [RPMBUILD, "-bs", "--nodeps", *defines, str(paths.spec)]


def rebuild_command(
    paths: BuildPaths, srpm_name: str, macros: Mapping[str, str], check_deps: bool = False
) -> list[str]:
    # The SRPM unpacks into a folder of its own, as in a fresh chroot. BuildRequires are
    # checked only where a driver installed them (`check_deps`).
    defines = paths.defines(paths.top / "SOURCES", macros)
    nodeps = [] if check_deps else ["--nodeps"]
    return [RPMBUILD, "--rebuild", *nodeps, *defines, str(paths.top / "SRPMS" / srpm_name)]


def make_top(top: Path) -> None:
    for folder in TOP_FOLDERS:
        (top / folder).mkdir(parents=True, exist_ok=True)


class Preparation(Protocol):
    """What a driver does between the two rpmbuild calls (install the SRPM's BuildRequires):
    None when done, else why the build fails. Raises BuildTimeout past `deadline`."""

    def __call__(self, srpm: Path, log: IO[str], deadline: float) -> str | None: ...


class Launcher(Protocol):
    """Starts one command line of a build, its output going to `log`."""

    def start(self, command: Sequence[str], log: IO[str]) -> subprocess.Popen[bytes]: ...


class HostLauncher:
    """The command as it is, on the host."""

    def start(self, command: Sequence[str], log: IO[str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            list(command),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # A session of its own, so a timeout kills every process the build started.
            start_new_session=True,
            env={**os.environ, "LC_ALL": "C.UTF-8"},
        )


def run_step(
    command: list[str], launcher: Launcher, log: IO[str], deadline: float, shown: str = ""
) -> int:
    """Runs one command of a build, its line (or `shown`, without host folders: a build log
    is published) and output in the log; BuildTimeout past `deadline`, the command's
    process group killed."""
    log.write(f"+ {shown or ' '.join(command)}\n")
    log.flush()
    proc = launcher.start(command, log)
    try:
        return proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise BuildTimeout from None


def exit_text(code: int) -> str:
    """`exit 1`; `killed by SIGKILL` for a signal; bwrap reports its command's signal as
    128 + the signal, which says which limit was hit (SIGXCPU, SIGXFSZ)."""
    if code < 0:
        return f"killed by {_signal_name(-code)}"
    if code > 128 and _signal_name(code - 128).startswith("SIG"):
        return f"exit {code}, {_signal_name(code - 128)}"
    return f"exit {code}"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def failed(log: Path, reason: str) -> BuildOutcome:
    """A failed outcome whose notes give `reason`, then the log lines that show the cause."""
    lines = read_excerpt(log, NOTE_EXCERPT_LINES)
    return BuildOutcome(False, (), f"{reason}\n{lines}" if lines else reason)


def regular_rpms(folder: Path, pattern: str) -> tuple[list[Path], list[str]]:
    """Regular files matching `pattern` below `folder`, and the names of anything else
    there that is not a regular file or a folder (a link a build planted, for one)."""
    found, strange = [], []
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in [*dirs, *files]:
            path = Path(root) / name
            if path.is_symlink() or not (path.is_dir() or path.is_file()):
                strange.append(str(path.relative_to(folder)))
            elif path.is_file() and path.match(pattern):
                found.append(path)
    return sorted(found), sorted(strange)


def run_rpmbuild(
    request: BuildRequest,
    host_top: Path,
    seen: BuildPaths,
    macros: Mapping[str, str],
    launcher: Launcher,
    where: str = "",
    prepare: Preparation | None = None,
) -> BuildOutcome:
    """Both rpmbuild calls of a build; the RPMs end in `request.output`.

    `host_top` is %_topdir on the host, `seen` the build's folders as the commands see them;
    `where` ends a failure's first line (" in the bwrap sandbox"); `prepare`, when given,
    runs between the two calls, and the second one then checks BuildRequires.
    Only regular files are taken from %_topdir: whatever else a build left there (a link to
    the database, say) fails the build.
    """
    deadline = time.monotonic() + request.timeout
    with request.log.open("a", encoding="utf-8", errors="replace") as log:
        try:
            code = run_step(srpm_command(seen, macros), launcher, log, deadline)
            srpms, strange = regular_rpms(host_top / "SRPMS", "*.src.rpm")
            if code != 0 or len(srpms) != 1 or strange:
                log.write(f"\nconveyor: SRPM build failed ({exit_text(code)})\n")
                log.flush()
                return failed(request.log, f"SRPM build failed ({exit_text(code)}){where}")
            if prepare is not None:
                problem = prepare(srpms[0], log, deadline)
                if problem is not None:
                    log.write(f"\nconveyor: {problem}\n")
                    log.flush()
                    return failed(request.log, f"{problem}{where}")
            rebuild = rebuild_command(seen, srpms[0].name, macros, prepare is not None)
            code = run_step(rebuild, launcher, log, deadline)
        except BuildTimeout:
            log.write(f"\nbuild timed out after {request.timeout:.0f} s\n")
            log.flush()
            return failed(request.log, f"build timed out after {request.timeout:.0f} s")
    if code != 0:
        return failed(request.log, f"rpmbuild failed ({exit_text(code)}){where}")
    binaries, strange = regular_rpms(host_top / "RPMS", "*.rpm")
    if strange:
        with request.log.open("a", encoding="utf-8", errors="replace") as log:
            log.write(f"\nconveyor: not a file or folder in RPMS: {', '.join(strange)}\n")
        return failed(request.log, f"rpmbuild left something other than files in RPMS{where}")
    if not binaries:
        return failed(request.log, f"rpmbuild produced no binary RPM{where}")
    request.output.mkdir(parents=True, exist_ok=True)
    produced = []
    for rpm in [srpms[0], *binaries]:
        target = request.output / rpm.name
        shutil.move(rpm, target)  # a sandbox's scratch folder may be elsewhere
        produced.append(target)
    return BuildOutcome(True, tuple(produced), "OK")


class RpmbuildDriver:
    """Builds on the host, unconfined (see the module's docstring). Debian's rpm database is
    empty, so BuildRequires cannot be checked (`--nodeps`); what the build needs must be on
    the host."""

    name = "rpmbuild"

    def __init__(self, macros: Mapping[str, str] = NO_MACROS, warning: str = "") -> None:
        self.macros = dict(macros)
        self.warning = warning  # written into every build log (why not a sandbox)

    def build(self, request: BuildRequest) -> BuildOutcome:
        top = request.workdir / "rpmbuild"
        make_top(top)
        if self.warning:
            with request.log.open("a", encoding="utf-8") as log:
                log.write(f"conveyor: WARNING: {self.warning}\n")
        return run_rpmbuild(
            request, top, BuildPaths(top, request.spec), self.macros, HostLauncher()
        )
