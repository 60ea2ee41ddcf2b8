"""Python distribution name → RPM package name, after pymod2pkg's RDO/Fedora rules.

Only what an NVR list needs: a short table of one-off names, OpenStack services packaged as
``openstack-<name>``, and the default rule (``_``/``.`` → ``-``, lower case, ``python-``
prefix). Callers may pass their own override table (``--name-map``); it wins over everything
here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from conveyor.metadata.errors import MetadataError
from conveyor.metadata.safeyaml import parse_yaml
from conveyor.uc.errors import UCError

# pymod2pkg's one-off RDO rules that the default rule gets wrong, plus rdoinfo's own names
# where they differ from pymod2pkg's (horizon).
OVERRIDES: dict[str, str] = {
    "dnspython": "python-dns",
    "pyjwt": "python-jwt",
    "pyopenssl": "python-pyOpenSSL",
    "prometheus-client": "python-prometheus_client",
    "horizon": "python-django-horizon",
    "pycrypto": "python-crypto",
    "pyzmq": "python-zmq",
    "pysaml2": "python-pysaml2",
    "beautifulsoup4": "python-beautifulsoup4",
    "msgpack-python": "python-msgpack",
    "pillow": "python-pillow",
    "python-ldap": "python-ldap",
    "pyyaml": "python-pyyaml",
    "pastedeploy": "python-paste-deploy",
    "pastescript": "python-paste-script",
    "sqlalchemy-utils": "python-sqlalchemy-utils",
    "babel": "python-babel",
    "jinja2": "python-jinja2",
    "markupsafe": "python-markupsafe",
    "diskimage-builder": "diskimage-builder",
    "dib-utils": "dib-utils",
}

# OpenStack services RDO ships as openstack-<name>.
_SERVICE_LIST = """aodh barbican ceilometer cinder cloudkitty designate glance heat ironic
ironic-inspector keystone magnum manila masakari mistral neutron nova octavia placement swift
trove watcher zaqar ironic-python-agent"""
SERVICES = frozenset(_SERVICE_LIST.split())


def normalise(name: str) -> str:
    """pymod2pkg's default normalisation: ``_``/``.`` → ``-``, lower case, no ``-python``."""
    key = name.lower().replace("_", "-").replace(".", "-")
    return key.removesuffix("-python") if key != "-python" else key


def rpm_name(name: str) -> str:
    """``python3-foo``, ``python3dist(foo)`` → ``python-foo``; other names unchanged.

    reqcheck compares spec Requires and requirements.txt in this spelling (rdopkg's).
    """
    if name.startswith("python3dist(") and name.endswith(")"):
        return "python-" + normalise(name[len("python3dist(") : -1])
    if name.startswith("python3-"):
        return "python-" + name.removeprefix("python3-")
    return name


def package_candidates(name: str, overrides: Mapping[str, str] | None = None) -> list[str]:
    """RPM names that may ship ``name``, most likely first."""
    key = normalise(name)
    table = {normalise(k): v for k, v in (overrides or {}).items()}
    found: list[str] = []
    for mapping in (table, OVERRIDES):
        if key in mapping:
            found.append(mapping[key])
    if key in SERVICES:
        found.append(f"openstack-{key}")
    if key.startswith("python-"):
        found += [key, "python3-" + key.removeprefix("python-")]
    else:
        found += [f"python-{key}", f"python3-{key}", key]
    if key.endswith(("-dashboard", "-ui")):
        found.append("openstack-" + key.removesuffix("-dashboard").removesuffix("-ui") + "-ui")
    if key.endswith("-tempest-plugin"):
        found.append("python-" + key.removesuffix("-tempest-plugin") + "-tests-tempest")
    return list(dict.fromkeys(found))


_MODULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_PACKAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
MAX_NAME_MAP = 1_000_000


def _check_pair(module: object, package: object, where: str) -> tuple[str, str]:
    if not isinstance(module, str) or not _MODULE.match(module):
        raise UCError(f"{where}: invalid module name {module!r}")
    if not isinstance(package, str) or not _PACKAGE.match(package):
        raise UCError(f"{where}: invalid package name {package!r} for {module}")
    return module, package


def parse_name_map(text: str, source: str) -> dict[str, str]:
    """``module package`` per line (``#`` comments); a module may appear once."""
    table: dict[str, str] = {}
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        where = f"{source}:{number}"
        if len(fields) != 2:
            raise UCError(f"{where}: expected 'module package', got {raw.strip()!r}")
        module, package = _check_pair(fields[0], fields[1], where)
        key = normalise(module)
        if key in seen:
            raise UCError(f"{where}: {module} is already mapped on line {seen[key]}")
        seen[key] = number
        table[module] = package
    return table


def load_name_map(path: Path) -> dict[str, str]:
    """A module → package table: ``module package`` lines, or a YAML mapping (.yml/.yaml)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UCError(f"{path}: cannot read: {exc}") from None
    if len(data) > MAX_NAME_MAP:
        raise UCError(f"{path}: larger than {MAX_NAME_MAP} bytes; refused")
    if path.suffix not in (".yml", ".yaml"):
        try:
            return parse_name_map(data.decode("utf-8"), str(path))
        except UnicodeDecodeError as exc:
            raise UCError(f"{path}: not text: {exc}") from None
    try:
        doc = parse_yaml(data, path)
    except MetadataError as exc:
        raise UCError(str(exc)) from None
    table: dict[str, str] = {}
    seen: dict[str, object] = {}
    for module, package in doc.data.items():
        where = str(doc.location(module))
        _check_pair(module, package, where)
        key = normalise(module)
        if key in seen:
            raise UCError(f"{where}: {module} maps the same module as {seen[key]}")
        seen[key] = module
        table[module] = package
    return table
