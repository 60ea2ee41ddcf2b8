"""Which build driver a builder uses: the one `build_driver` names in conveyor.toml."""

from __future__ import annotations

from conveyor.builders.driver import BuildDriver
from conveyor.builders.rpmbuild import RpmbuildDriver
from conveyor.config import BuildDriverName, Config


def driver_for(config: Config) -> BuildDriver:
    """The build driver `build_driver` names."""
    match config.build_driver:
        case BuildDriverName.RPMBUILD:
            return RpmbuildDriver()
