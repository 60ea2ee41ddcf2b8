"""NVRs: how RPM names one build of a package (`name-[epoch:]version-release`), as buildsys
tags, reports, notifications and upper-constraints checks read and write them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

_SOURCE_RPM = ".src.rpm"


class Nvr(NamedTuple):
    name: str
    version: str
    release: str
    epoch: str = "0"

    @classmethod
    def parse(cls, text: str) -> Nvr:
        """`name-version-release`, the version possibly `epoch:version`; ValueError when the
        text is not one NVR."""
        nvr = text.strip()
        parts = nvr.rsplit("-", 2)
        if len(parts) != 3 or not all(parts) or any(c.isspace() for c in nvr):
            raise ValueError(f"not an NVR (name-version-release): {text!r}")
        name, version, release = parts
        epoch = "0"
        if ":" in version:
            epoch, version = version.split(":", 1)
            if not epoch.isdigit() or not version:
                raise ValueError(f"not an NVR (name-[epoch:]version-release): {text!r}")
        return cls(name, version, release, epoch)

    def __str__(self) -> str:
        return f"{self.name}-{self.version}-{self.release}"


def nvr_from_artifacts(artifacts: Iterable[str]) -> str | None:
    """A build's NVR, from the source RPM among its artifacts (paths or file names)."""
    for path in artifacts:
        name = path.rsplit("/", 1)[-1]
        if name.endswith(_SOURCE_RPM):
            return name[: -len(_SOURCE_RPM)]
    return None
