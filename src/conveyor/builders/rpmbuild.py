"""Build driver `rpmbuild`: the host's rpmbuild, SRPM first, then the binary RPMs from it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import IO

from conveyor.builders.driver import BuildRequest
from conveyor.domain.builds import BuildOutcome


class BuildTimeout(Exception):
    pass


def _topdir_defines(workdir: Path) -> list[str]:
    top = workdir / "rpmbuild"
    defines = {
        "_topdir": top,
        "_builddir": top / "BUILD",
        "_buildrootdir": top / "BUILDROOT",
        "_rpmdir": top / "RPMS",
        "_srcrpmdir": top / "SRPMS",
    }
    args = []
    for macro, path in defines.items():
        path.mkdir(parents=True, exist_ok=True)
        args += ["--define", f"{macro} {path}"]
    return args


def _run(cmd: list[str], log: IO[str], deadline: float) -> int:
    log.write(f"+ {' '.join(cmd)}\n")
    log.flush()
    # A session of its own, so a timeout kills every process the build started.
    proc = subprocess.Popen(
        cmd,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "LC_ALL": "C.UTF-8"},
    )
    try:
        return proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise BuildTimeout from None


class RpmbuildDriver:
    """Builds on the host. Debian's rpm database is empty, so BuildRequires cannot be checked
    (`--nodeps`); what the build needs must be on the host."""

    name = "rpmbuild"

    def build(self, request: BuildRequest) -> BuildOutcome:
        defines = [
            *_topdir_defines(request.workdir),
            "--define",
            f"_sourcedir {request.spec.parent}",
        ]
        deadline = time.monotonic() + request.timeout
        top = request.workdir / "rpmbuild"
        with request.log.open("a", encoding="utf-8", errors="replace") as log:
            try:
                code = _run(
                    ["rpmbuild", "-bs", "--nodeps", *defines, str(request.spec)], log, deadline
                )
                srpms = sorted((top / "SRPMS").glob("*.src.rpm"))
                if code != 0 or len(srpms) != 1:
                    return BuildOutcome(False, (), f"SRPM build failed (exit {code})")
                code = _run(
                    ["rpmbuild", "--rebuild", "--nodeps", *defines, str(srpms[0])], log, deadline
                )
            except BuildTimeout:
                log.write(f"\nbuild timed out after {request.timeout:.0f} s\n")
                return BuildOutcome(False, (), f"build timed out after {request.timeout:.0f} s")
        if code != 0:
            return BuildOutcome(False, (), f"rpmbuild failed (exit {code})")
        binaries = sorted((top / "RPMS").rglob("*.rpm"))
        if not binaries:
            return BuildOutcome(False, (), "rpmbuild produced no binary RPM")
        request.output.mkdir(parents=True, exist_ok=True)
        produced = []
        for rpm in [srpms[0], *binaries]:
            target = request.output / rpm.name
            rpm.replace(target)
            produced.append(target)
        return BuildOutcome(True, tuple(produced), "OK")
