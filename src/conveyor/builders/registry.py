"""Which build driver a builder uses: the one `build_driver` names in conveyor.toml."""

from __future__ import annotations

import logging

from conveyor.builders import bwrap
from conveyor.builders.driver import BuildDriver
from conveyor.builders.rpmbuild import RpmbuildDriver
from conveyor.config import BuildDriverName, Config, ConfigError

log = logging.getLogger(__name__)

_MIB = 1 << 20


def limits_of(config: Config) -> bwrap.Limits:
    """The sandbox limits `build_max_*` set (CPU time follows each build's timeout)."""
    return bwrap.Limits(
        processes=config.build_max_processes,
        file_bytes=config.build_max_file_mb * _MIB,
        address_space_bytes=config.build_max_memory_mb * _MIB,
    )


def driver_for(config: Config) -> BuildDriver:
    """The build driver `build_driver` names. `bwrap` on a host where the sandbox cannot
    run is a ConfigError; `auto` falls back to `rpmbuild` there, with a warning logged here
    and written into every build log (see `BuildDriverName`)."""
    macros = config.rpm_defines
    match config.build_driver:
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
