"""Validation of everything that becomes part of a filesystem path.

Package names, hashes, labels and components come from metadata files, git and API callers;
none may reach the filesystem before passing these checks.
"""

from __future__ import annotations

import re

_PACKAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,255}$")
_HEX_HASH = re.compile(r"^[0-9a-f]{7,64}$")
_EXTENDED_HASH = re.compile(r"^[0-9a-f]{7,64}(_[0-9a-f]{7,64})?$")
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")


class InvalidName(ValueError):
    """A name or hash that would be unsafe or meaningless as part of a path."""


def _check(value: str, pattern: re.Pattern[str], what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value) or ".." in value:
        raise InvalidName(f"invalid {what} {value!r}")
    return value


def check_package_name(name: str) -> str:
    return _check(name, _PACKAGE_NAME, "package name")


def check_component(name: str) -> str:
    return _check(name, _PACKAGE_NAME, "component name")


def check_hash(value: str, what: str = "hash") -> str:
    return _check(value, _HEX_HASH, what)


def check_extended_hash(value: str) -> str:
    return _check(value, _EXTENDED_HASH, "extended hash")


def check_label(name: str) -> str:
    return _check(name, _LABEL, "label")
