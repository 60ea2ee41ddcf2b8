"""The build driver protocol: rpmbuild now; mock, koji and copr later plug in here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class BuildRequest:
    spec: Path  # prepared spec; its folder holds every source the spec names
    workdir: Path  # scratch space owned by this build
    output: Path  # where the driver leaves *.rpm and *.src.rpm
    log: Path  # every line the build prints goes here (rpmbuild.log)
    timeout: float


@dataclass(frozen=True)
class BuildOutcome:
    success: bool
    rpms: tuple[Path, ...]
    notes: str  # "OK", or why the build failed (commits.notes)


class BuildDriver(Protocol):
    name: str

    def build(self, request: BuildRequest) -> BuildOutcome: ...
