"""Which build driver a builder uses: the one `build_driver` names in conveyor.toml."""

from __future__ import annotations

import logging
import shutil

from conveyor.builders import bwrap, podman
from conveyor.builders.buildrepos import BuildRepos, DepsError, load_build_repos
from conveyor.builders.driver import BuildDriver
from conveyor.builders.mock import MockDriver, mock_config_text
from conveyor.builders.rpmbuild import RpmbuildDriver
from conveyor.config import BuildDriverName, Config, ConfigError
from conveyor.publish.files import write_if_changed

log = logging.getLogger(__name__)

_MIB = 1 << 20


def limits_of(config: Config) -> bwrap.Limits:
    """The sandbox limits `build_max_*` set (CPU time follows each build's timeout)."""
    return bwrap.Limits(
        processes=config.build_max_processes,
        file_bytes=config.build_max_file_mb * _MIB,
        address_space_bytes=config.build_max_memory_mb * _MIB,
    )


def build_repos(config: Config) -> BuildRepos:
    """This cycle's build repositories; an unreadable `deps_url` is a ConfigError."""
    try:
        return load_build_repos(config.deps_url, config.reponame, config.repos_dir)
    except DepsError as exc:
        raise ConfigError(str(exc)) from None


def driver_for(config: Config, repos: BuildRepos | None = None) -> BuildDriver:
    """The build driver `build_driver` names, checked before any build: `bwrap` on a host
    where the sandbox cannot run, a podman image that is not here or a mock configuration
    that does not exist is a ConfigError; `auto` falls back to `rpmbuild` where bwrap cannot
    run, with a warning logged here and written into every build log (see
    `BuildDriverName`). `podman` and `mock` install BuildRequires from `repos`."""
    macros = config.rpm_defines
    match config.build_driver:
        case BuildDriverName.PODMAN:
            reason = podman.problem(config.podman, limits_of(config))
            if reason is not None:
                raise ConfigError(f'build_driver = "podman", but {reason}')
            repos = repos or build_repos(config)
            return podman.PodmanDriver(config.podman, repos, macros, limits_of(config))
        case BuildDriverName.MOCK:
            return _mock_driver(config, repos or build_repos(config))
        case BuildDriverName.RPMBUILD:
            return RpmbuildDriver(macros)
        case BuildDriverName.BWRAP:
            reason = bwrap.problem()
            if reason is not None:
                raise ConfigError(f'build_driver = "bwrap", but {reason}')
            return bwrap.BwrapDriver(macros, limits_of(config))
        case BuildDriverName.AUTO:
            reason = bwrap.problem()
            if reason is None:
                return bwrap.BwrapDriver(macros, limits_of(config))
            warning = f"building without a sandbox, with the host's rpmbuild: {reason}"
            log.warning("build_driver = auto: %s", warning)
            return RpmbuildDriver(macros, warning=warning)


def _mock_driver(config: Config, repos: BuildRepos) -> MockDriver:
    settings = config.mock
    if shutil.which(settings.executable) is None:
        raise ConfigError(f'build_driver = "mock", but {settings.executable} is not installed')
    base = settings.config
    if base is None or not base.is_file():
        raise ConfigError(f'build_driver = "mock", but [mock] config {base} does not exist')
    root = f"conveyor-{config.reponame}"
    path = config.datadir / "mock" / f"{config.reponame}.cfg"
    # Rewritten only when it changes: that keeps mock's caches.
    write_if_changed(path, mock_config_text(base, root, config.rpm_defines, repos).encode())
    return MockDriver(settings.executable, path)
