"""The build driver protocol: rpmbuild now; mock, koji and copr later plug in here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from conveyor.domain.builds import BuildOutcome


@dataclass(frozen=True)
class BuildRequest:
    spec: Path  # prepared spec; its folder holds every source the spec names
    workdir: Path  # scratch space owned by this build
    output: Path  # where the driver leaves *.rpm and *.src.rpm
    log: Path  # every line the build prints goes here (rpmbuild.log)
    timeout: float


class BuildDriver(Protocol):
    name: str

    def build(self, request: BuildRequest) -> BuildOutcome: ...
