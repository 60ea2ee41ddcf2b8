"""dnf ``.repo`` files as uc-report inputs (report-uc.py's ``--repo-url`` and ``--repos-dir``).

A ``.repo`` file is INI: one ``[id]`` section per repository with ``baseurl=`` (one or more
URLs, separated by commas or whitespace, possibly on indented continuation lines) and
``enabled=``. Every enabled section becomes one source named by its id. As dnf does, the
URLs of one section are mirrors of the same repository: the first that can be read is used.
``mirrorlist=``/``metalink=`` need a network service this tool does not talk to, so a section
with only those is an error rather than a silently empty source.
"""

from __future__ import annotations

import configparser
import re
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from conveyor.domain.distros import DISTROS
from conveyor.uc.errors import UCError
from conveyor.uc.inputs import MAX_INPUT, read_bounded

MAX_REPO_FILE = MAX_INPUT

_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
_REPO_ID = re.compile(r"^[A-Za-z0-9_.:-]+$")
_TRUE = {"1", "yes", "true", "on"}
_FALSE = {"0", "no", "false", "off"}


@dataclass(frozen=True)
class RepoSection:
    ident: str
    baseurls: tuple[str, ...]


def distro_versions(distro: str) -> tuple[str, str]:
    """The release version and Python version of ``distro``; an unknown one is an error."""
    try:
        return DISTROS[distro]
    except KeyError:
        raise UCError(f"unknown distro {distro!r}; expected one of {', '.join(DISTROS)}") from None


def repo_variables(distro: str = "centos9", basearch: str = "x86_64") -> dict[str, str]:
    """The dnf variables report-uc.py sets for ``distro`` (``$releasever``, ``$basearch``…)."""
    releasever = distro_versions(distro)[0]
    return {
        "releasever": releasever,
        "releasever_major": releasever,
        "stream": f"{releasever}-stream",
        "basearch": basearch,
        "arch": basearch,
        "contentdir": "centos",
    }


def is_repo_file(location: str) -> bool:
    """Whether a ``--repo`` argument names a ``.repo`` file rather than a repository."""
    path = urllib.parse.urlparse(location).path if "://" in location else location
    return path.endswith(".repo")


def _substitute(value: str, variables: Mapping[str, str], where: str) -> str:
    def one(found: re.Match[str]) -> str:
        name = found[1] or found[2]
        if name not in variables:
            known = ", ".join(f"${k}" for k in sorted(variables))
            raise UCError(f"{where}: unknown variable ${name} (known: {known})")
        return variables[name]

    return _VARIABLE.sub(one, value)


def _check_url(url: str, where: str) -> str:
    scheme = urllib.parse.urlparse(url).scheme
    if scheme in ("http", "https", "file") or (not scheme and url.startswith("/")):
        return url
    if not scheme:
        raise UCError(f"{where}: baseurl {url!r} is not absolute")
    raise UCError(f"{where}: baseurl {url!r}: unsupported scheme {scheme!r}")


def parse_repo_file(
    text: str, source: str, variables: Mapping[str, str] | None = None
) -> list[RepoSection]:
    """The enabled sections of a ``.repo`` file, variables substituted in their baseurls."""
    parser = configparser.ConfigParser(
        interpolation=None, strict=True, default_section="\0no-defaults"
    )
    try:
        parser.read_string(text, source)
    except configparser.Error as exc:
        reason = str(exc).replace("\n", " ")
        raise UCError(f"{source}: not a .repo file: {reason}") from None
    if not parser.sections():
        raise UCError(f"{source}: not a .repo file: no [repository] section")
    found: list[RepoSection] = []
    for name in parser.sections():
        where = f"{source} [{name}]"
        ident = _substitute(name, variables or {}, where)  # dnf expands ids too
        if not _REPO_ID.match(ident):
            raise UCError(f"{where}: invalid repository id")
        section = parser[name]
        enabled = section.get("enabled", "1").strip().lower()
        if enabled not in _TRUE | _FALSE:
            raise UCError(f"{where}: enabled={section['enabled']!r} is not 0/1 (or yes/no)")
        if enabled in _FALSE:
            continue
        urls = re.split(r"[\s,]+", section.get("baseurl", "").strip())
        urls = [u for u in urls if u]
        if not urls:
            other = [k for k in ("mirrorlist", "metalink") if k in section]
            why = f" ({'/'.join(other)} not supported)" if other else ""
            raise UCError(f"{where}: no baseurl{why}")
        urls = [_check_url(_substitute(u, variables or {}, where), where) for u in urls]
        found.append(RepoSection(ident, tuple(urls)))
    if not found:
        raise UCError(f"{source}: no enabled repository")
    return found


def read_repo_file(location: str) -> str:
    """The text of a local ``.repo`` file or of one at an http(s)/file URL."""
    parsed = urllib.parse.urlparse(location)
    data: bytes
    if parsed.scheme in ("http", "https"):
        try:
            with urllib.request.urlopen(location, timeout=60) as resp:  # noqa: S310
                data = resp.read(MAX_REPO_FILE + 1)
        except OSError as exc:
            raise UCError(f"{location}: cannot read: {exc}") from None
        if len(data) > MAX_REPO_FILE:
            raise UCError(f"{location}: larger than {MAX_REPO_FILE} bytes; refused")
    elif parsed.scheme in ("", "file"):
        data = read_bounded(Path(parsed.path if parsed.scheme else location), MAX_REPO_FILE)
    else:
        raise UCError(f"{location}: unsupported URL scheme {parsed.scheme!r}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UCError(f"{location}: not a .repo file: {exc}") from None


def load_repo_file(location: str, variables: Mapping[str, str] | None = None) -> list[RepoSection]:
    return parse_repo_file(read_repo_file(location), location, variables)


def repo_files_in(directory: Path) -> list[str]:
    """The ``*.repo`` files of a dnf ``reposdir``, sorted (report-uc.py's ``-R``)."""
    if not directory.is_dir():
        raise UCError(f"{directory}: not a directory")
    files = sorted(str(p) for p in directory.glob("*.repo") if p.is_file())
    if not files:
        raise UCError(f"{directory}: no .repo files")
    return files
