"""Python distribution name → RPM package name, after pymod2pkg's RDO/Fedora rules.

Only what an NVR list needs: a short table of one-off names, OpenStack services packaged as
``openstack-<name>``, and the default rule (``_``/``.`` → ``-``, lower case, ``python-``
prefix). Callers may pass their own override table (``--name-map``); it wins over everything
here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from conveyor.metadata.errors import SourceLocation
from conveyor.uc.errors import UCError
from conveyor.uc.inputs import read_bounded, read_yaml

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


def _name_table(entries: Iterable[tuple[object, object, SourceLocation]]) -> dict[str, str]:
    """Checked ``module → package`` pairs; a module (as :func:`normalise` spells it) once."""
    table: dict[str, str] = {}
    seen: dict[str, SourceLocation] = {}
    for module, package, where in entries:
        if not isinstance(module, str) or not _MODULE.match(module):
            raise UCError(f"{where}: invalid module name {module!r}")
        if not isinstance(package, str) or not _PACKAGE.match(package):
            raise UCError(f"{where}: invalid package name {package!r} for {module}")
        key = normalise(module)
        if key in seen:
            raise UCError(f"{where}: {module} is already mapped on line {seen[key].line}")
        seen[key] = where
        table[module] = package
    return table


def _name_lines(text: str, path: Path) -> Iterator[tuple[str, str, SourceLocation]]:
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        where = SourceLocation(path, number)
        if len(fields) != 2:
            raise UCError(f"{where}: expected 'module package', got {raw.strip()!r}")
        yield fields[0], fields[1], where


def parse_name_map(text: str, source: str) -> dict[str, str]:
    """``module package`` per line (``#`` comments); a module may appear once."""
    return _name_table(_name_lines(text, Path(source)))


def load_name_map(path: Path) -> dict[str, str]:
    """A module → package table: ``module package`` lines, or a YAML mapping (.yml/.yaml)."""
    if path.suffix in (".yml", ".yaml"):
        doc = read_yaml(path)
        return _name_table((m, p, doc.location(m)) for m, p in doc.data.items())
    try:
        text = read_bounded(path).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UCError(f"{path}: not text: {exc}") from None
    return parse_name_map(text, str(path))
