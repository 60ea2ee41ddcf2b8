"""Drivers that install BuildRequires: `podman` (a real rootful/rootless podman and an image
built from Debian's packages by tests/images/build_test_image.py, which `make test` runs) and
`mock` (against tests/doubles/mock_double.py, a TEST DOUBLE: mock and a CentOS root cannot
run on Debian); and `deps_url`, the repositories both take BuildRequires from."""

from __future__ import annotations

import functools
import http.server
import io
import os
import re
import shutil
import socket
import subprocess
import tarfile
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.images.build_test_image import IMAGE
from tests.support import Trunk, fresh_trunk, rows

from conveyor.builders import podman, registry
from conveyor.builders.buildrepos import load_build_repos
from conveyor.builders.bwrap import Limits, remove_scratch
from conveyor.builders.driver import BuildRequest
from conveyor.builders.mock import mock_config_text
from conveyor.config import Config, ConfigError, PodmanConfig, load_config

MOCK_DOUBLE = Path(__file__).parent / "doubles" / "mock_double.py"
needs_rpmbuild = pytest.mark.skipif(shutil.which("rpmbuild") is None, reason="no rpmbuild")


def _settings(image: str = IMAGE) -> PodmanConfig:
    # crun cannot start containers on hosts with hybrid cgroups (this one); runc can.
    return PodmanConfig(image=image, runtime="runc" if shutil.which("runc") else "")


@functools.cache
def _podman_problem() -> str | None:
    if shutil.which("podman") is None:
        return "podman is not installed"
    return podman.problem(_settings(), Limits())


def needs_podman(test: Any) -> Any:
    reason = _podman_problem()
    return pytest.mark.slow(pytest.mark.skipif(reason is not None, reason=f"{reason}")(test))


# --- a dependencies repository and specs that need it -------------------------------------------

TOOL_SPEC = """\
Name: conveyor-buildtool
Version: 1.0
Release: 1
Summary: a tool builds need
License: MIT
BuildArch: noarch
AutoReqProv: no
%description
t
%install
mkdir -p %{buildroot}/usr/bin
printf '#!/bin/sh\\necho tool-ran > "$1"\\n' > %{buildroot}/usr/bin/conveyor-buildtool
chmod 755 %{buildroot}/usr/bin/conveyor-buildtool
%files
/usr/bin/conveyor-buildtool
"""


def app_spec(
    requires: str = "conveyor-buildtool", build: str = "conveyor-buildtool out.txt"
) -> str:
    return f"""\
Name: app
Version: 1.0
Release: 1%{{?dist}}
Summary: needs the tool to build
License: MIT
BuildArch: noarch
AutoReqProv: no
{"BuildRequires: " + requires if requires else ""}
%description
t
%build
{build}
%install
mkdir -p %{{buildroot}}/usr/share/app
cp out.txt %{{buildroot}}/usr/share/app/
%files
/usr/share/app
"""


@dataclass(frozen=True)
class Deps:
    folder: Path  # a repository holding conveyor-buildtool
    repo_file: Path  # the .repo file naming it


@pytest.fixture(scope="module")
def deps() -> Iterator[Deps]:
    if shutil.which("rpmbuild") is None or shutil.which("createrepo_c") is None:
        pytest.skip("rpmbuild and createrepo_c needed")
    base = Path(tempfile.mkdtemp(prefix="conveyor-test-deps-"))
    base.chmod(0o755)
    (base / "tool.spec").write_text(TOOL_SPEC)
    top = base / "top"
    subprocess.run(
        ["rpmbuild", "-bb", "--define", f"_topdir {top}", str(base / "tool.spec")],
        check=True,
        capture_output=True,
    )
    folder = base / "repo"
    folder.mkdir()
    for rpm in top.rglob("*.rpm"):
        shutil.copy(rpm, folder)
    subprocess.run(["createrepo_c", "-q", str(folder)], check=True)
    repo_file = base / "deps.repo"
    repo_file.write_text(f"[deps]\nname=deps\nbaseurl={folder.as_uri()}\ngpgcheck=0\n")
    try:
        yield Deps(folder, repo_file)
    finally:
        shutil.rmtree(base)


def _request(workdir: Path, spec: str, timeout: float = 300) -> BuildRequest:
    (workdir / "SOURCES").mkdir(parents=True)
    path = workdir / "SOURCES" / "app.spec"
    path.write_text(spec)
    return BuildRequest(path, workdir, workdir / "output", workdir / "rpmbuild.log", timeout)


def _rpm_file(rpm: Path, member: str) -> str:
    with rpm.open("rb") as stream:
        archive = subprocess.run(
            ["rpm2archive", "-"], stdin=stream, capture_output=True, check=True
        )
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        extracted = tar.extractfile(member)
        assert extracted is not None
        return extracted.read().decode()


@pytest.fixture
def workdir() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="conveyor-test-driver-"))
    base.chmod(0o755)
    try:
        yield base / "build"
    finally:
        remove_scratch(base)


# --- podman -------------------------------------------------------------------------------------


@needs_podman
def test_podman_installs_build_requires_from_the_deps_repositories(deps, workdir):
    repos = load_build_repos(str(deps.repo_file), "delorean", workdir / "no-repos")
    driver = podman.PodmanDriver(_settings(), repos, {"dist": ".el9"})
    outcome = driver.build(_request(workdir, app_spec()))
    log = (workdir / "rpmbuild.log").read_text()
    assert outcome.success, outcome.notes
    names = sorted(p.name for p in outcome.rpms)
    assert names == ["app-1.0-1.el9.noarch.rpm", "app-1.0-1.el9.src.rpm"]
    # The tool came from the deps repository and ran in %build.
    assert "Installing       : conveyor-buildtool-1.0-1.noarch" in log
    assert _rpm_file(workdir / "output" / names[0], "./usr/share/app/out.txt") == "tool-ran\n"
    # Host folders are not named in the (published) log; nothing is left behind.
    assert str(workdir) not in log
    assert sorted(p.name for p in workdir.iterdir()) == ["SOURCES", "output", "rpmbuild.log"]
    containers = subprocess.run(
        ["podman", "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True
    )
    assert "conveyor-build-" not in containers.stdout


@needs_podman
def test_podman_missing_build_requires_fail_with_the_reason(deps, workdir):
    repos = load_build_repos(str(deps.repo_file), "delorean", workdir / "no-repos")
    driver = podman.PodmanDriver(_settings(), repos, {})
    outcome = driver.build(_request(workdir, app_spec(requires="no-such-tool")))
    assert not outcome.success
    first = outcome.notes.splitlines()[0]
    assert first.startswith("BuildRequires cannot be resolved (dnf builddep, exit 1)")
    assert "no-such-tool" in outcome.notes  # dnf's own words are in the notes


@needs_podman
def test_podman_build_is_offline_unprivileged_and_cannot_choose_what_is_installed(deps, workdir):
    secret = workdir.parent / f"secret-{uuid.uuid4().hex}"
    secret.write_text("secret")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    probes = (
        f"if (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null; then echo net-open; "
        "else echo net-closed; fi > out.txt\n"
        "if touch /conveyor/fetched/planted.rpm 2>/dev/null; then echo fetched-writable; "
        "else echo fetched-readonly; fi >> out.txt\n"
        f"if test -e {secret}; then echo host-visible; else echo host-hidden; fi >> out.txt\n"
        "id -u >> out.txt\n"
        "conveyor-buildtool /dev/null\n"
    )
    # The SRPM step's macros run in the container too, and plant an RPM where they can.
    spec = "%global planted %(touch /build/evil.rpm /conveyor/fetched/evil.rpm 2>&1)\n"
    spec += app_spec(build=probes)
    repos = load_build_repos(str(deps.repo_file), "delorean", workdir / "no-repos")
    try:
        outcome = podman.PodmanDriver(_settings(), repos, {}).build(_request(workdir, spec))
    finally:
        listener.close()
    assert outcome.success, outcome.notes
    binary = next(p for p in outcome.rpms if not p.name.endswith(".src.rpm"))
    lines = _rpm_file(binary, "./usr/share/app/out.txt").split()
    assert lines[:3] == ["net-closed", "fetched-readonly", "host-hidden"]
    assert lines[3] != "0"  # not root inside
    log = (workdir / "rpmbuild.log").read_text()
    assert "evil.rpm" not in log.split("dnf install", 1)[-1].split("rpmbuild --rebuild")[0]


def _no_build_containers() -> bool:
    listing = subprocess.run(
        ["podman", "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True
    )
    return "conveyor-build-" not in listing.stdout


@needs_podman
def test_podman_fork_bomb_stops_at_the_process_limit(workdir):
    repos = load_build_repos("", "delorean", workdir / "no-repos")
    driver = podman.PodmanDriver(_settings(), repos, {}, Limits(processes=64))
    body = "bash -c ':(){ :|:& };:' || true\nsleep 2\nexit 1\n"
    outcome = driver.build(_request(workdir, app_spec(requires="", build=body), timeout=120))
    assert not outcome.success
    assert outcome.notes.startswith("rpmbuild failed (exit 1) in a podman container")
    assert "Resource temporarily unavailable" in (workdir / "rpmbuild.log").read_text()
    assert _no_build_containers()
    assert subprocess.run(["true"], check=False).returncode == 0


@needs_podman
def test_podman_timeout_ends_the_container(workdir):
    repos = load_build_repos("", "delorean", workdir / "no-repos")
    driver = podman.PodmanDriver(_settings(), repos, {})
    spec = app_spec(requires="", build="sleep 1000")
    outcome = driver.build(_request(workdir, spec, timeout=5))
    assert not outcome.success
    assert outcome.notes.startswith("build timed out after 5 s")
    assert "+ sleep 1000" in (workdir / "rpmbuild.log").read_text()  # ended in %build
    assert _no_build_containers()


@pytest.mark.slow
def test_podman_image_that_is_not_here_stops_the_cycle_before_any_build(tmp_path):
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed")
    trunk = fresh_trunk(tmp_path / "dist")
    missing = f"localhost/conveyor-no-such-image:{uuid.uuid4().hex[:8]}"
    _insert_top_level(trunk.config_path, 'build_driver = "podman"')
    with trunk.config_path.open("a") as config:
        config.write(f'[podman]\nimage = "{missing}"\n')
    code, output = trunk.run()
    assert code != 0
    assert f"podman image {missing} is not here" in output
    assert not trunk.db.exists() or rows(trunk.db, "select count(*) from commits") == [(0,)]


@needs_podman
def test_podman_builds_the_example_distribution(tmp_path):
    trunk = fresh_trunk(tmp_path / "dist")
    settings = _settings()
    with trunk.config_path.open("a") as config:
        config.write(f'[podman]\nimage = "{settings.image}"\nruntime = "{settings.runtime}"\n')
    _insert_top_level(trunk.config_path, 'build_driver = "podman"')
    # A package that builds and the one that fails on purpose: what the driver does for the
    # other six is what it does for the first (the bwrap driver's tests build all eight).
    chosen = (trunk.dist.packages[0], trunk.dist.failing_package)
    code, output = trunk.run(*(f"--package={name}" for name in chosen))
    assert code == 1, output  # the example's one failing package
    built = rows(trunk.db, "select project_name, status from commits order by id")
    assert sorted(name for name, _ in built) == sorted(chosen)
    assert {status for name, status in built if name != trunk.dist.failing_package} == {"SUCCESS"}
    _, commit_hash, distro_hash, artifacts, _, _ = trunk.newest(trunk.dist.packages[0])
    assert ".el9." in artifacts
    log = (trunk.hash_dir(commit_hash, distro_hash) / "rpmbuild.log").read_text()
    assert "conveyor: container: podman run" in log
    failing = trunk.newest(trunk.dist.failing_package)
    assert "failing on purpose" in failing[4]


def _insert_top_level(path: Path, line: str) -> None:
    """A top-level option goes before the first [section]."""
    text = path.read_text()
    head, sep, rest = text.partition("\n[")
    path.write_text(f"{head}\n{line}\n{sep.lstrip()}{rest}" if sep else f"{text}\n{line}\n")


# --- mock (TEST DOUBLE) -------------------------------------------------------------------------


def _mock_config(tmp_path: Path, deps: Deps | None, **extra: str) -> Path:
    base = tmp_path / "centos-stream-9-x86_64.cfg"
    base.write_text("config_opts['root'] = 'centos-stream-9-x86_64'\n")
    trunk = fresh_trunk(tmp_path / "dist")
    options = ['build_driver = "mock"', 'rpm_macros = { with_tests = "0" }']
    if deps is not None:
        options.append(f'deps_url = "{deps.repo_file}"')
    for line in options:
        _insert_top_level(trunk.config_path, line)
    with trunk.config_path.open("a") as config:
        config.write(f'[mock]\nconfig = "{base}"\nexecutable = "{MOCK_DOUBLE}"\n')
        for key, value in extra.items():
            config.write(f'{key} = "{value}"\n')
    return trunk.config_path


@needs_rpmbuild
@pytest.mark.slow
def test_mock_driver_builds_with_the_builders_own_config_and_keeps_mocks_logs(tmp_path, deps):
    config_path = _mock_config(tmp_path, deps)
    trunk = Trunk(tmp_path / "dist")
    # A package that builds and the one that fails on purpose.
    chosen = (trunk.dist.packages[0], trunk.dist.failing_package)
    code, output = trunk.run(*(f"--package={name}" for name in chosen))
    assert code == 1, output  # the example's failing package
    config = load_config(config_path)
    written = (config.datadir / "mock" / "delorean.cfg").read_text()
    assert f"include('{tmp_path / 'centos-stream-9-x86_64.cfg'}')" in written
    assert "config_opts['root'] = 'conveyor-delorean'" in written
    assert "config_opts['macros']['%dist'] = '.el9'" in written
    assert "config_opts['macros']['%with_tests'] = '0'" in written
    assert "[deps]" in written
    status, commit_hash, distro_hash, artifacts, _, _ = trunk.newest(trunk.dist.packages[0])
    assert status == "SUCCESS" and ".el9." in artifacts
    hash_dir = trunk.hash_dir(commit_hash, distro_hash)
    for name in ("rpmbuild.log", "build.log", "root.log", "state.log"):
        assert (hash_dir / name).is_file(), name
    assert "--uniqueext" in (hash_dir / "rpmbuild.log").read_text()
    # The failing package's notes quote mock's build.log, where rpmbuild said why.
    failing = trunk.newest(trunk.dist.failing_package)
    assert failing[4].startswith("mock --rebuild failed (exit 30) in mock")
    assert "failing on purpose" in failing[4]
    # Consumers get the deps .repo beside the repositories.
    assert (trunk.repos / "delorean-deps.repo").read_text() == deps.repo_file.read_text()


@needs_rpmbuild
@pytest.mark.slow
def test_mock_driver_installs_build_requires_from_current_and_deps(tmp_path, deps):
    config = load_config(_mock_config(tmp_path, deps))
    (config.repos_dir).mkdir(parents=True, exist_ok=True)
    driver = registry.driver_for(config)
    request = _request(tmp_path / "work", app_spec())
    outcome = driver.build(request)
    assert outcome.success, outcome.notes
    root_log = next(p for p in outcome.logs if p.name == "root.log").read_text()
    assert "installed BuildRequires: conveyor-buildtool" in root_log
    missing = driver.build(_request(tmp_path / "work2", app_spec(requires="no-such-tool")))
    assert not missing.success
    assert missing.notes.startswith("mock --rebuild failed (exit 30) in mock")
    assert [p.name for p in missing.logs] == ["root.log", "state.log"]


def test_mock_config_values_cannot_become_code(tmp_path):
    hostile = "x''' + __import__('os').system('touch /tmp/pwned') + '''\"\"\"\\"
    repos = load_build_repos("", "delorean", tmp_path / "repos")
    text = mock_config_text(tmp_path / "base.cfg", "conveyor-delorean", {"evil": hostile}, repos)
    opts: dict[str, Any] = {"macros": {}}
    exec(text, {"config_opts": opts, "include": lambda _name: None})
    assert opts["macros"] == {"%evil": hostile}


def test_mock_config_or_command_missing_is_a_clear_error_before_any_build(tmp_path):
    base = tmp_path / "base.cfg"
    config = Config(
        datadir=tmp_path / "data",
        build_driver="mock",
        mock={"config": base, "executable": str(MOCK_DOUBLE)},
    )
    with pytest.raises(ConfigError, match=re.escape(f"[mock] config {base} does not exist")):
        registry.driver_for(config)
    base.write_text("")
    absent = Config(
        datadir=tmp_path / "data",
        build_driver="mock",
        mock={"config": base, "executable": "no-such-mock"},
    )
    with pytest.raises(ConfigError, match="no-such-mock is not installed"):
        registry.driver_for(absent)
    with pytest.raises(ValueError, match=r"needs \[mock\] config"):
        Config(build_driver="mock")


def test_mock_config_is_rewritten_only_when_it_changes(tmp_path):
    base = tmp_path / "base.cfg"
    base.write_text("")
    config = Config(
        datadir=tmp_path / "data",
        build_driver="mock",
        mock={"config": base, "executable": str(MOCK_DOUBLE)},
    )
    registry.driver_for(config)
    written = tmp_path / "data" / "mock" / "delorean.cfg"
    before = written.stat().st_mtime_ns
    os.utime(written, ns=(before - 10**9, before - 10**9))
    registry.driver_for(config)
    assert written.stat().st_mtime_ns == before - 10**9
    registry.driver_for(config.model_copy(update={"dist": ".el10"}))
    assert ".el10" in written.read_text()


# --- deps_url -----------------------------------------------------------------------------------


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *_args: object) -> None:
        pass


def test_deps_url_is_read_over_http_and_from_file_urls(tmp_path):
    (tmp_path / "deps.repo").write_text("[a]\nbaseurl=https://mirror.example.org/a\n")
    handler = functools.partial(_Quiet, directory=str(tmp_path))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/deps.repo"
        repos = load_build_repos(url, "delorean", tmp_path / "repos")
        server.shutdown()
    assert [s.id for s in repos.sections()] == ["a"]
    assert repos.needs_network
    local = load_build_repos((tmp_path / "deps.repo").as_uri(), "delorean", tmp_path / "r")
    assert local.deps_text == repos.deps_text


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("[a]\nname=a\n", "repository [a] has no baseurl, mirrorlist or metalink"),
        ("baseurl=x\n", "not a .repo file"),
        ("", "no repository in it"),
        ("[a]\nbaseurl=x\n[a]\nbaseurl=y\n", "not a .repo file"),
    ],
)
def test_a_bad_deps_file_stops_the_cycle_before_any_build(tmp_path, content, error):
    trunk = fresh_trunk(tmp_path / "dist")
    bad = tmp_path / "bad.repo"
    bad.write_text(content)
    _insert_top_level(trunk.config_path, f'deps_url = "{bad}"')
    code, output = trunk.run()
    assert code != 0
    assert error in output
    assert not (trunk.repos / "delorean-deps.repo").exists()
    assert not trunk.db.exists() or rows(trunk.db, "select count(*) from commits") == [(0,)]


def test_deps_url_options_are_checked_when_the_file_is_read(tmp_path):
    config_file = tmp_path / "conveyor.toml"
    config_file.write_text('deps_url = "ftp://example.org/deps.repo"\n')
    with pytest.raises(ConfigError, match="a path, or an http"):
        load_config(config_file)
    config_file.write_text('deps_url = "deps/example.repo"\n')
    assert load_config(config_file).deps_url == str(tmp_path / "deps" / "example.repo")
    config_file.write_text('build_driver = "podman"\n')
    with pytest.raises(ConfigError, match=r"needs \[podman\] image"):
        load_config(config_file)
    config_file.write_text('[podman]\nimage = "x; rm -rf /"\n')
    with pytest.raises(ConfigError, match=r"podman\.image"):
        load_config(config_file)


@pytest.mark.slow
def test_the_published_deps_file_follows_the_configuration(tmp_path, deps):
    trunk = fresh_trunk(tmp_path / "dist")
    original = trunk.config_path.read_text()
    _insert_top_level(trunk.config_path, f'deps_url = "{deps.repo_file}"')
    # Every cycle publishes it, whatever it builds: one package, then none (nothing new).
    one = ("--package", trunk.dist.packages[0])
    assert trunk.run(*one)[0] == 0
    published = trunk.repos / "delorean-deps.repo"
    assert published.read_text() == deps.repo_file.read_text()
    trunk.config_path.write_text(original)
    assert trunk.run(*one)[0] == 0
    assert rows(trunk.db, "select count(*) from commits") == [(1,)]
    assert not published.exists()


def test_rootless_podman_keeps_the_user_except_for_dnf(monkeypatch):
    # Checked by hand as an unprivileged user on this machine: dnf refuses to run as the
    # kept user ("has to be run with superuser privileges"), and the build user must own
    # the build's folders. Here the command lines that decide it.
    monkeypatch.setattr(podman.os, "geteuid", lambda: 1000)
    commands = podman.Podman(_settings(), Limits())
    assert "--userns=keep-id" in commands.run_options("none")
    as_root = commands.run_options("none", as_root=True)
    assert "--user=0:0" in as_root and "--userns=keep-id" not in as_root
