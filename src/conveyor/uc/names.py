"""Python distribution name → RPM package name, after pymod2pkg's RDO/Fedora rules.

Only what an NVR list needs: a short table of one-off names, OpenStack services packaged as
``openstack-<name>``, and the default rule (``_``/``.`` → ``-``, lower case, ``python-``
prefix). Callers may pass their own override table; it wins over everything here.
"""

from __future__ import annotations

from collections.abc import Mapping

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
