"""Downloaded RPMs are checked before they are published: each must be a real package whose
header digests and payload digest hold, named as its header says, and all of them one build
(one source RPM, every binary built from it).

Signatures are not checked: trunk packages are unsigned, and a key the local host lacks must
not make a good package look corrupt. The digests catch truncation and corruption in transit.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rpm

from conveyor.remote.errors import ArtifactError

_LEAD_MAGIC = b"\xed\xab\xee\xdb"
# RPMTAG_PAYLOADDIGESTALGO values (PGP hash algorithm numbers) that hashlib knows.
_DIGEST_NAMES = {1: "md5", 2: "sha1", 8: "sha256", 9: "sha384", 10: "sha512", 11: "sha224"}
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class RpmIdentity:
    name: str
    version: str
    release: str
    arch: str  # "src" for a source package, whatever arch its header records
    source_rpm: str | None  # the file name of the SRPM a binary was built from

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}-{self.release}.{self.arch}.rpm"


def _text(value: Any) -> str:
    # python3-rpm returns str since rpm 4.16, bytes before.
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _payload_digest_matches(fd: int, header: Any, shown: str) -> None:
    """Hash what follows the header (the compressed payload) and compare it with the header's
    RPMTAG_PAYLOADDIGEST; hdrFromFdno leaves the file offset at the payload's start."""
    digests = header[rpm.RPMTAG_PAYLOADDIGEST]
    if not digests:
        return  # built by rpm < 4.14: only the header digests exist, and they were checked
    algorithm = _DIGEST_NAMES.get(int(header[rpm.RPMTAG_PAYLOADDIGESTALGO] or 0))
    if algorithm is None:
        raise ArtifactError(f"{shown}: unknown payload digest algorithm")
    digest = hashlib.new(algorithm)
    while chunk := os.read(fd, _CHUNK):
        digest.update(chunk)
    if digest.hexdigest() != _text(digests[0]):
        raise ArtifactError(f"{shown}: payload digest mismatch (corrupt or truncated package)")


def read_rpm(path: Path, shown: str) -> RpmIdentity:
    """The package identity of `path`; `shown` (its URL) names it in errors."""
    # A raw descriptor, not a buffered file: rpm and the payload hash read from its offset.
    fd = os.open(path, os.O_RDONLY)
    try:
        if os.pread(fd, len(_LEAD_MAGIC), 0) != _LEAD_MAGIC:
            raise ArtifactError(f"{shown}: not an RPM package (no RPM lead)")
        ts = rpm.TransactionSet()
        # Header digests stay on (the default); signatures off, as the module docstring says.
        ts.setVSFlags(rpm._RPMVSF_NOSIGNATURES)
        try:
            header = ts.hdrFromFdno(fd)
        except rpm.error as exc:
            raise ArtifactError(
                f"{shown}: not a valid RPM package (its header is unreadable or fails its "
                f"digest: {exc})"
            ) from None
        _payload_digest_matches(fd, header, shown)
    finally:
        os.close(fd)
    source = header[rpm.RPMTAG_SOURCERPM]
    is_source = bool(header.isSource())
    return RpmIdentity(
        name=_text(header[rpm.RPMTAG_NAME]),
        version=_text(header[rpm.RPMTAG_VERSION]),
        release=_text(header[rpm.RPMTAG_RELEASE]),
        arch="src" if is_source else _text(header[rpm.RPMTAG_ARCH]),
        source_rpm=None if is_source or not source else _text(source),
    )


def check_build(packages: Sequence[tuple[Path, str]]) -> list[RpmIdentity]:
    """Check (path, URL) pairs as the packages of one build; returns their identities."""
    identities = []
    for path, shown in packages:
        identity = read_rpm(path, shown)
        if identity.filename != path.name:
            raise ArtifactError(
                f"{shown}: the package inside is {identity.filename}, not {path.name}"
            )
        identities.append(identity)
    sources = [i.filename for i in identities if i.arch == "src"]
    if len(sources) != 1:
        raise ArtifactError(f"a build has exactly one source RPM, found {len(sources)}")
    for (_, shown), identity in zip(packages, identities, strict=True):
        if identity.arch != "src" and identity.source_rpm != sources[0]:
            raise ArtifactError(f"{shown}: built from {identity.source_rpm}, not from {sources[0]}")
    return identities
