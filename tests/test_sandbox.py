"""Untrusted specs: the `bwrap` driver with the real rpmbuild, sanitized and sandboxed spec
parsing, the dist tag, and what a failed build's notes say.

Each attack runs against a data directory laid out as conveyor's (a database file, a
published tree, the build's own folder under builds/), reachable by the sandbox's user, so
that the build's scratch folder lies inside it as in production: the spec knows every path
and still reaches nothing.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.support import fresh_trunk, tree_digest

from conveyor.builders import bwrap, deps, registry, spec
from conveyor.builders.bwrap import BwrapDriver, Limits
from conveyor.builders.driver import BuildRequest
from conveyor.builders.rpmbuild import RpmbuildDriver
from conveyor.config import Config, ConfigError, parse_config
from conveyor.domain.builds import BuildOutcome
from conveyor.domain.version import BuildVersion

SANDBOX = bwrap.problem()
needs_bwrap = pytest.mark.skipif(SANDBOX is not None, reason=f"no sandbox here: {SANDBOX}")
needs_rpmbuild = pytest.mark.skipif(shutil.which("rpmbuild") is None, reason="no rpmbuild")


def real_build(test: Callable[..., None]) -> Callable[..., None]:
    """A test that builds with the real rpmbuild in the sandbox."""
    return pytest.mark.slow(needs_bwrap(needs_rpmbuild(test)))


SECRET = "conveyor-test-secret-" + uuid.uuid4().hex


@dataclass(frozen=True)
class Site:
    data: Path  # datadir: commits.sqlite, repos/, builds/

    def snapshot(self) -> tuple[str, str, list[str]]:
        """Everything outside builds/: the tree, the database, the other entries."""
        names = sorted(p.name for p in self.data.iterdir())
        return tree_digest(self.data / "repos"), (self.data / "commits.sqlite").read_text(), names


@pytest.fixture
def site() -> Iterator[Site]:
    # Searchable by `nobody` (pytest's own folders are not): the scratch folder then lies in
    # the build's folder, inside the data directory, as in production.
    base = Path(tempfile.mkdtemp(prefix="conveyor-test-sandbox-"))
    base.chmod(0o755)
    data = base / "data"
    (data / "repos" / "current").mkdir(parents=True)
    (data / "repos" / "current" / "delorean.repo").write_text("[delorean]\n")
    (data / "commits.sqlite").write_text(SECRET)
    (data / "builds").mkdir()
    try:
        yield Site(data)
    finally:
        bwrap.remove_scratch(base)


def spec_text(build: str = "", install: str = "", header: str = "", name: str = "evil") -> str:
    return f"""{header}
Name: {name}
Version: 1
Release: 1%{{?dist}}
Summary: sandbox test
License: MIT
BuildArch: noarch

%description
sandbox test

%prep

%build
{build}

%install
mkdir -p %{{buildroot}}/usr/share/{name}
echo ok > %{{buildroot}}/usr/share/{name}/file
{install}

%files
/usr/share/{name}/file
"""


def build(
    site: Site, text: str, *, timeout: float = 120.0, limits: Limits | None = None
) -> tuple[BuildOutcome, str, Path]:
    """Build `text` (DATADIR replaced by the data directory) in a build folder of `site`."""
    workdir = site.data / "builds" / f"evil-{uuid.uuid4().hex[:12]}"
    sources = workdir / "SOURCES"
    sources.mkdir(parents=True)
    spec_path = sources / "evil.spec"
    spec_path.write_text(text.replace("DATADIR", str(site.data)))
    driver = BwrapDriver({"dist": ".el9"}, limits or Limits())
    request = BuildRequest(
        spec_path, workdir, workdir / "output", workdir / "rpmbuild.log", timeout
    )
    outcome = driver.build(request)
    # The scratch folder is gone whatever happened; the log stays with conveyor.
    assert sorted(p.name for p in workdir.iterdir() if p.name != "output") == [
        "SOURCES",
        "rpmbuild.log",
    ]
    return outcome, request.log.read_text(errors="replace"), workdir


# --- attacks ------------------------------------------------------------------------------------


@real_build
def test_writes_outside_the_build_folder_reach_nothing(site):
    host_tmp = Path(tempfile.gettempdir()) / f"conveyor-evil-{uuid.uuid4().hex}"
    header = (
        "%global attempt %(echo pwned > DATADIR/repos/evil-macro; "
        f"echo pwned > {host_tmp}; "
        "ln -s DATADIR/commits.sqlite DATADIR/repos/current/evil-link; "
        "cp DATADIR/commits.sqlite /build/stolen; echo tried)"
    )
    body = (
        "echo %{attempt}\n"
        "touch %{_topdir}/../../escaped || echo relative escape refused\n"
        "touch /usr/evil || echo system refused\n"
        "echo pwned > DATADIR/repos/evil-build\n"
    )
    before = site.snapshot()
    outcome, log, _ = build(site, spec_text(body, header=header))
    assert not outcome.success
    assert outcome.notes.startswith("rpmbuild failed (exit 1) in the bwrap sandbox")
    assert "DATADIR/repos/evil-build".replace("DATADIR", str(site.data)) in outcome.notes
    assert "Directory nonexistent" in outcome.notes  # the cause, not only the verdict
    assert "relative escape refused" in log and "system refused" in log
    assert site.snapshot() == before
    assert not host_tmp.exists()
    assert not (Path("/escaped")).exists()


@real_build
def test_the_database_cannot_be_read(site):
    header = "%global stolen %(cat DATADIR/commits.sqlite 2>&1; ls /proc/1/root/ 2>&1)"
    body = (
        "echo 'stolen: %{stolen}'\n"
        "find / -xdev -name commits.sqlite 2>/dev/null || true\n"
        "cat DATADIR/commits.sqlite\n"
    )
    before = site.snapshot()
    outcome, log, workdir = build(site, spec_text(body, header=header))
    assert not outcome.success
    assert "No such file or directory" in outcome.notes
    assert SECRET not in log and SECRET not in outcome.notes
    assert site.snapshot() == before
    assert not (workdir / "output").exists()


@real_build
def test_no_network_not_even_the_hosts_loopback(site):
    addresses = {"127.0.0.1"}
    with contextlib.suppress(OSError):
        host = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
        addresses |= {str(info[4][0]) for info in host}
    with socket.socket() as listener:
        listener.bind(("0.0.0.0", 0))  # every address the host has
        listener.listen(8)
        port = listener.getsockname()[1]
        tries = "".join(
            f"python3 -c \"import socket; socket.create_connection(('{a}', {port}), 3)\" "
            f"|| echo refused {a}\n"
            for a in sorted(addresses)
        )
        header = (
            '%global net %(python3 -c "import socket; '
            f"socket.create_connection(('127.0.0.1', {port}), 3)\" 2>&1 | tail -1)"
        )
        body = f"echo 'at parse time: %{{net}}'\n{tries}getent hosts example.org\n"
        outcome, log, _ = build(site, spec_text(body, header=header))
        assert select.select([listener], [], [], 0.5)[0] == []  # no connection ever arrived
    assert not outcome.success  # getent finds no name: no resolver, no network
    assert "at parse time: ConnectionRefusedError" in log
    for address in addresses:
        assert f"refused {address}" in log


@real_build
def test_a_fork_bomb_stops_at_the_process_limit(site):
    baseline = len(_processes())
    peak = [baseline]
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], len(_processes()))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    body = "bash -c ':(){ :|:& };:' || true\nsleep 3\nexit 1\n"
    try:
        outcome, log, _ = build(site, spec_text(body), timeout=60, limits=Limits(processes=64))
    finally:
        done.set()
        watcher.join()
    assert not outcome.success and outcome.notes.startswith("rpmbuild failed (exit 1)")
    assert "Resource temporarily unavailable" in log  # the limit, hit
    # The sandbox held at most 64 processes (a few more for bwrap and the build's own).
    assert peak[0] - baseline < 64 + 16
    # Everything it started ended with the build, and the host still forks.
    assert not [cmd for cmd in _processes() if ":(){" in cmd]
    assert subprocess.run(["true"], check=False).returncode == 0


@real_build
def test_a_timeout_ends_every_process_of_the_sandbox(site):
    marker = f"conveyor-linger-{uuid.uuid4().hex[:8]}"
    body = f"bash -c 'exec -a {marker} sleep 1000' &\nsleep 1000\n"
    started = time.monotonic()
    outcome, _, _ = build(site, spec_text(body), timeout=3)
    assert time.monotonic() - started < 30
    assert not outcome.success and outcome.notes.startswith("build timed out after 3 s")
    time.sleep(0.5)
    assert not [cmd for cmd in _processes() if marker in cmd]


@real_build
def test_a_link_planted_among_the_rpms_fails_the_build(site):
    install = "ln -s DATADIR/commits.sqlite %{_rpmdir}/evil.noarch.rpm\n"
    outcome, _, workdir = build(site, spec_text(install=install))
    assert not outcome.success
    assert "other than files in RPMS" in outcome.notes
    assert not (workdir / "output").exists()


@real_build
def test_no_root_no_capability_a_read_only_host(site):
    body = (
        "id\n"
        "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status\n"
        "ls /etc\n"
        "test ! -e /etc/shadow\n"
        "touch /etc/evil || echo etc is read-only\n"
        "unshare -U true || echo no user namespace\n"
        "ps -e | wc -l\n"
    )
    outcome, log, _ = build(site, spec_text(body))
    assert outcome.success, outcome.notes
    assert "uid=1000(builder) gid=1000(builder) groups=1000(builder)" in log
    assert "CapEff:\t0000000000000000" in log and "NoNewPrivs:\t1" in log
    assert "etc is read-only" in log and "no user namespace" in log
    for rpm in outcome.rpms:  # conveyor's files again, whoever the sandbox ran as
        assert (rpm.stat().st_uid, rpm.stat().st_mode & 0o777) == (os.geteuid(), 0o644)
        assert rpm.name.endswith((".el9.src.rpm", ".el9.noarch.rpm"))


def _processes() -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
            except OSError:
                continue
    return found


# --- spec parsing -------------------------------------------------------------------------------

VERSION = BuildVersion("1.0", "0.20260102.abcdef1", "1.0")


def _marker_spec(marker: Path, tricky: bool = False) -> str:
    shell = f"%(touch {marker})"
    if tricky:  # specfile's sanitizer lets this one through: only the sandbox stops it
        shell = f"%{{expand:%%(touch {marker})}}"
    return spec_text(header=f"%global evil {shell}\nSource0: evil.tar.gz", name="evil").replace(
        "%build\n", "%build\necho %{evil}\n"
    )


@pytest.mark.parametrize("tricky", [False, True])
@needs_bwrap
def test_spec_parsing_runs_no_shell_in_conveyor(tmp_path, tricky):
    marker = Path(tempfile.gettempdir()) / f"marker-{uuid.uuid4().hex}"
    path = tmp_path / "evil.spec"
    path.write_text(_marker_spec(marker, tricky))
    prepared = spec.prepare_spec(path, VERSION, "evil-1.0.tar.gz", False)
    assert prepared.nvr == "evil-1.0-0.20260102.abcdef1"
    assert "Version: 1.0" in path.read_text()
    found = deps.read_spec_deps(path)
    assert found.name == "evil"
    assert not marker.exists()


def test_without_a_sandbox_parsing_is_sanitized(tmp_path, monkeypatch):
    monkeypatch.setattr(bwrap, "problem", lambda: "no sandbox in this test")
    marker = Path(tempfile.gettempdir()) / f"marker-{uuid.uuid4().hex}"
    path = tmp_path / "evil.spec"
    path.write_text(_marker_spec(marker))
    assert spec.prepare_spec(path, VERSION, "evil-1.0.tar.gz", False).name == "evil"
    assert deps.read_spec_deps(path, sandboxed=False).name == "evil"
    assert not marker.exists()


# --- dist, macros, configuration -----------------------------------------------------------------


@real_build
def test_default_config_builds_el9_nvrs(tmp_path):
    """pytest's folders are private to root: here the scratch folder goes to TMPDIR."""
    config = Config(datadir=tmp_path / "data")
    driver = registry.driver_for(config)
    assert isinstance(driver, BwrapDriver)
    workdir = tmp_path / "build"
    (workdir / "SOURCES").mkdir(parents=True)
    spec_path = workdir / "SOURCES" / "t.spec"
    spec_path.write_text(spec_text(name="t", build="echo %{?rhel_like}"))
    outcome = driver.build(
        BuildRequest(spec_path, workdir, workdir / "out", workdir / "rpmbuild.log", 120)
    )
    assert outcome.success, outcome.notes
    names = sorted(rpm.name for rpm in outcome.rpms)
    assert names == ["t-1-1.el9.noarch.rpm", "t-1-1.el9.src.rpm"]
    release = subprocess.run(
        ["rpm", "-qp", "--qf", "%{RELEASE}", str(outcome.rpms[0])],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert release == "1.el9"


def test_rpm_macros_and_dist_are_defines():
    config = parse_config({"dist": ".el10", "rpm_macros": {"rhel": "10"}}, Path("c.toml"))
    assert config.rpm_defines == {"dist": ".el10", "rhel": "10"}
    assert Config(dist="").rpm_defines == {}
    assert Config().rpm_defines == {"dist": ".el9"}
    driver = registry.driver_for(Config(build_driver="rpmbuild", rpm_macros={"rhel": "9"}))
    assert isinstance(driver, RpmbuildDriver)
    assert driver.macros == {"dist": ".el9", "rhel": "9"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"rpm_macros": {"9rhel": "9"}}, "not a macro name"),
        ({"rpm_macros": {"a-b": "9"}}, "not a macro name"),
        ({"rpm_macros": {"rhel": "9\n%define x y"}}, "single line"),
        ({"rpm_macros": {"rhel": " "}}, "empty body"),
        ({"rpm_macros": {"_topdir": "/"}}, "conveyor defines this macro itself"),
        ({"rpm_macros": {"dist": ".el8"}}, "conveyor defines this macro itself"),
        ({"dist": ".el9\n"}, "dist"),
        ({"dist": ".el9-1"}, "dist"),
        ({"build_driver": "mock"}, "build_driver"),
        ({"build_max_processes": 2}, "build_max_processes"),
    ],
)
def test_bad_build_options_are_named(data, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(data, Path("conveyor.toml"))


def test_auto_falls_back_to_rpmbuild_with_a_warning(monkeypatch, caplog, tmp_path):
    monkeypatch.setattr(bwrap, "problem", lambda: "bwrap is not installed")
    driver = registry.driver_for(Config())
    assert isinstance(driver, RpmbuildDriver)
    assert "without a sandbox" in driver.warning and "bwrap is not installed" in caplog.text
    with pytest.raises(ConfigError, match='build_driver = "bwrap", but bwrap is not installed'):
        registry.driver_for(Config(build_driver="bwrap"))


@needs_bwrap
def test_auto_is_bwrap_where_it_works():
    assert Config().build_driver == "auto"
    assert isinstance(registry.driver_for(Config()), BwrapDriver)
    assert isinstance(registry.driver_for(Config(build_driver="bwrap")), BwrapDriver)


def test_limits_become_prlimit_arguments():
    limits = registry.limits_of(
        Config(build_max_processes=100, build_max_file_mb=1, build_max_memory_mb=0)
    )
    assert limits.prlimit() == ["prlimit", "--nproc=100", "--fsize=1048576", "--core=0", "--"]


# --- notes of a failed build ---------------------------------------------------------------------


@real_build
def test_notes_log_gives_the_cause(tmp_path):
    trunk = fresh_trunk(tmp_path / "dist")
    code, output = trunk.run("--package", trunk.dist.failing_package)
    assert code == 1, output
    status, commit, distro, _, notes, _ = trunk.newest(trunk.dist.failing_package)
    assert status == "FAILED"
    note = (trunk.hash_dir(commit, distro) / "notes.log").read_text()
    assert note == notes + "\n"
    first, *lines = note.splitlines()
    assert first == "rpmbuild failed (exit 1) in the bwrap sandbox"
    assert f"{trunk.dist.failing_package}: failing on purpose" in lines
    assert any("Bad exit status" in line for line in lines)
