"""Build driver `mock`: DLRN's. mock builds the SRPM (`--buildsrpm`) and then the binary RPMs
(`--rebuild`) in a chroot it installs from the configuration's repositories, BuildRequires
included.

conveyor writes one mock configuration per builder, `<datadir>/mock/<reponame>.cfg`, as DLRN
writes `dlrn-<worker>.cfg`: it includes `[mock] config` (the target, e.g.
/etc/mock/centos-stream-9-x86_64.cfg), defines `%dist` and `rpm_macros`, names a root of the
builder's own, and appends the build repositories (`buildrepos`: `current`, then
`deps_url`'s) to dnf.conf. The file is rewritten only when its content changes, which keeps
mock's caches. Each build gets a chroot of its own (`--uniqueext`), so parallel workers do
not wait for each other. mock's logs (build.log, root.log, state.log...) are published
beside rpmbuild.log, where DLRN keeps them.

mock needs a Fedora or CentOS host; the tests run this driver against a test double of
mock (tests/doubles/mock_double.py), since neither runs on Debian.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

from conveyor.builders.buildrepos import BuildRepos
from conveyor.builders.driver import BuildRequest
from conveyor.builders.rpmbuild import (
    BuildTimeout,
    HostLauncher,
    exit_text,
    failed,
    regular_rpms,
    run_step,
)
from conveyor.domain.builds import BuildOutcome

__all__ = ["MOCK_LOGS", "MockDriver", "mock_config_text"]

# The logs mock writes into a result folder, kept as DLRN keeps them.
MOCK_LOGS = ("build.log", "root.log", "state.log", "hw_info.log", "installed_pkgs.log")
_WHERE = " in mock"


def mock_config_text(base: Path, root: str, macros: Mapping[str, str], repos: BuildRepos) -> str:
    """The builder's mock configuration. Every value is written as a Python literal
    (`repr`): mock executes this file, so no value may end a string and add code."""
    lines = [
        "# Written by conveyor; rewritten when the builder's configuration changes.",
        f"include({str(base)!r})",
        f"config_opts['root'] = {root!r}",
    ]
    lines += [f"config_opts['macros'][{'%' + name!r}] = {body!r}" for name, body in macros.items()]
    blocks = []
    for section in repos.sections():
        options = "".join(f"{k}={v}\n" for k, v in section.options)
        blocks.append(f"\n[{section.id}]\n{options}")
    if blocks:
        lines.append(f"config_opts['dnf.conf'] += {''.join(blocks)!r}")
    return "\n".join(lines) + "\n"


class MockDriver:
    """See the module's docstring."""

    name = "mock"

    def __init__(self, executable: str, config: Path) -> None:
        self.executable = executable
        self.config = config  # the builder's own, from write_mock_config

    def build(self, request: BuildRequest) -> BuildOutcome:
        unique = uuid.uuid4().hex[:12]
        srpm_results = request.workdir / "mock-srpm"
        results = request.workdir / "mock-rebuild"
        deadline = time.monotonic() + request.timeout
        mock = [self.executable, "-r", str(self.config), "--uniqueext", unique]
        with request.log.open("a", encoding="utf-8", errors="replace") as log:
            try:
                srpm_results.mkdir()
                code = run_step(
                    [
                        *mock,
                        "--resultdir",
                        str(srpm_results),
                        "--buildsrpm",
                        "--spec",
                        str(request.spec),
                        "--sources",
                        str(request.spec.parent),
                    ],
                    HostLauncher(),
                    log,
                    deadline,
                )
                srpms = _files(srpm_results, "*.src.rpm")
                if code != 0 or len(srpms) != 1:
                    log.write(f"\nconveyor: SRPM build failed ({exit_text(code)})\n")
                    return self._failed(
                        request, srpm_results, f"SRPM build failed ({exit_text(code)})"
                    )
                results.mkdir()
                rebuild = [*mock, "--resultdir", str(results), "--rebuild", str(srpms[0])]
                code = run_step(rebuild, HostLauncher(), log, deadline)
            except BuildTimeout:
                log.write(f"\nbuild timed out after {request.timeout:.0f} s\n")
                return self._failed(
                    request, results, f"build timed out after {request.timeout:.0f} s"
                )
        binaries = [p for p in _files(results, "*.rpm") if not p.name.endswith(".src.rpm")]
        if code != 0:
            return self._failed(request, results, f"mock --rebuild failed ({exit_text(code)})")
        if not binaries:
            return self._failed(request, results, "mock produced no binary RPM")
        request.output.mkdir(parents=True, exist_ok=True)
        produced = []
        for rpm in [srpms[0], *binaries]:
            target = request.output / rpm.name
            shutil.move(rpm, target)
            produced.append(target)
        return BuildOutcome(True, tuple(produced), "OK", _logs(request, results))

    def _failed(self, request: BuildRequest, results: Path, reason: str) -> BuildOutcome:
        logs = _logs(request, results)
        # mock's build.log says why rpmbuild failed; rpmbuild.log only that mock did.
        build_log = next((p for p in logs if p.name == "build.log"), request.log)
        outcome = failed(build_log, f"{reason}{_WHERE}")
        return BuildOutcome(False, (), outcome.notes, logs)


def _files(folder: Path, pattern: str) -> list[Path]:
    """The regular files matching `pattern` in a result folder (none when it is missing)."""
    return regular_rpms(folder, pattern)[0] if folder.is_dir() else []


def _logs(request: BuildRequest, results: Path) -> tuple[Path, ...]:
    """mock's logs of the last step, moved out of the result folder for publishing."""
    kept = request.workdir / "mock-logs"
    found = []
    for name in MOCK_LOGS:
        source = results / name
        if source.is_file() and not source.is_symlink():
            kept.mkdir(exist_ok=True)
            shutil.move(source, kept / name)
            found.append(kept / name)
    return tuple(found)
