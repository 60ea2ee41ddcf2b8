"""Upstream (PEP 440) versions against RPM versions, as RDO packages pre-releases.

OpenStack tags release candidates ``31.0.0.0rc1`` (pbr adds a ``.0`` before the pre-release
tag); other projects write ``1.2.0rc1``. RDO's RPMs carry either the Fedora form, Version
``1.2.0~rc1`` (``~`` sorts before anything, so the final ``1.2.0`` is newer), or the older
milestone form, Version ``1.2.0`` with Release ``0.1.0rc1%{?dist}``. Both sides are put in
the ``~`` form and compared with ``rpm.labelCompare``, so an rc pin against its rc RPM is
``equal`` rather than ``greater`` or ``lower``.
"""

from __future__ import annotations

import re

import rpm
from packaging.version import InvalidVersion, Version

# Release of a milestone build: ``0.<n>.<milestone>`` with n small (DLRN's trunk Release is
# ``0.<14-digit date>.<hash>``, whose hash may start with ``0b``/``0a``: n rules it out).
_MILESTONE = re.compile(r"^0\.\d{1,3}\.0?(?P<tag>a|b|rc)(?P<num>\d+)(?:\.|$)")


def rpm_form(version: str) -> str:
    """``1.2.0.0rc1``/``1.2.0rc1`` → ``1.2.0~rc1``; ``2.0.dev3`` → ``2.0~dev3``.

    Final and post releases are returned unchanged (``1.2.3.post1`` already sorts after
    ``1.2.3`` in RPM order), as is anything that is not a PEP 440 version.
    """
    try:
        parsed = Version(version)
    except InvalidVersion:
        return version
    if parsed.pre is None and parsed.dev is None:
        return version
    release = list(parsed.release)
    if parsed.pre is not None and len(release) == 4 and release[3] == 0:
        release.pop()  # pbr's X.Y.Z.0rcN names the X.Y.Z release candidate
    text = ".".join(str(part) for part in release)
    if parsed.pre is not None:
        text += f"~{parsed.pre[0]}{parsed.pre[1]}"
    if parsed.post is not None:
        text += f".post{parsed.post}"
    if parsed.dev is not None:
        text += f"~dev{parsed.dev}"
    return text


def package_form(version: str, release: str = "") -> str:
    """An RPM's Version in the ``~`` form, reading a milestone Release (``0.1.0rc1``)."""
    found = _MILESTONE.match(release)
    if found and "~" not in version:
        return f"{version}~{found['tag']}{found['num']}"
    return version


def compare(uc_version: str, pkg_version: str, pkg_release: str = "") -> str:
    """``equal``, ``lower`` (package older than the pin) or ``greater``, in RPM ordering."""
    result = rpm.labelCompare(
        ("0", rpm_form(uc_version), "1"), ("0", package_form(pkg_version, pkg_release), "1")
    )
    return "equal" if result == 0 else ("lower" if result > 0 else "greater")
