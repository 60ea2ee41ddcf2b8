"""Who provides what: ``python3dist()`` provides from repository metadata, or NVR lists."""

from __future__ import annotations

import shutil
import tempfile
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import createrepo_c as cr
import rpm
from packaging.utils import canonicalize_name

from conveyor.domain.nvr import Nvr
from conveyor.metadata.safeyaml import parse_yaml
from conveyor.uc.errors import UCError
from conveyor.uc.repofile import RepoSection, is_repo_file, load_repo_file, repo_files_in

REPO_NS = "{http://linux.duke.edu/metadata/repo}"


@dataclass(frozen=True)
class Build:
    name: str
    epoch: str
    version: str
    release: str
    source: str

    @property
    def evr(self) -> tuple[str, str, str]:
        return (self.epoch or "0", self.version, self.release)


_Read = list[tuple[Build, list[str]]]  # a repository's builds, each with its python3dist names


def newest(builds: Iterable[Build]) -> Build | None:
    best: Build | None = None
    for build in builds:
        if best is None or rpm.labelCompare(build.evr, best.evr) > 0:
            best = build
    return best


@dataclass
class ProviderIndex:
    """``python3dist`` name (PEP 503) → builds providing it; RPM name → builds."""

    by_dist: dict[str, list[Build]] = field(default_factory=dict)
    by_name: dict[str, list[Build]] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    locations: dict[str, str] = field(default_factory=dict)  # source → where it was read

    def add(self, build: Build, dists: Iterable[str] = ()) -> None:
        self.by_name.setdefault(build.name.lower(), []).append(build)
        for dist in dists:
            self.by_dist.setdefault(dist, []).append(build)


def _split_repo_arg(arg: str) -> tuple[str, str]:
    """``ID,LOCATION`` or ``LOCATION`` (the id is then the last path component)."""
    ident, sep, location = arg.partition(",")
    if sep and "/" not in ident and ident:
        return ident, location
    name = arg.rstrip("/").rsplit("/", 1)[-1] or arg
    return name, arg


def _fetch(location: str, relpath: str, workdir: Path) -> Path:
    """A file of the repository, as a local path (downloaded when ``location`` is a URL)."""
    parsed = urllib.parse.urlparse(location)
    if parsed.scheme in ("", "file"):
        local = Path(parsed.path if parsed.scheme else location) / relpath
        if not local.is_file():
            raise UCError(f"{location}: no {relpath} (not a repository?)")
        return local
    if parsed.scheme not in ("http", "https"):
        raise UCError(f"{location}: unsupported repository URL scheme {parsed.scheme!r}")
    url = location.rstrip("/") + "/" + relpath
    target = workdir / relpath.replace("/", "_")
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, target.open("wb") as fh:  # noqa: S310
            shutil.copyfileobj(resp, fh)
    except OSError as exc:
        raise UCError(f"{url}: cannot download: {exc}") from None
    return target


def _primary_href(repomd: Path) -> str:
    try:
        root = ET.parse(repomd).getroot()  # noqa: S314 - no entities in repomd.xml
    except (ET.ParseError, OSError) as exc:
        raise UCError(f"{repomd}: cannot parse repomd.xml: {exc}") from None
    for data in root.iter(f"{REPO_NS}data"):
        if data.get("type") == "primary":
            location = data.find(f"{REPO_NS}location")
            href = location.get("href") if location is not None else None
            if href:
                return href
    raise UCError(f"{repomd}: no primary metadata listed")


def _dist_name(provide: str) -> str | None:
    if not provide.startswith("python3dist(") or not provide.endswith(")"):
        return None
    inner = provide[len("python3dist(") : -1]
    if "[" in inner:  # extras: python3dist(requests[socks])
        return None
    return str(canonicalize_name(inner))


def read_repository(ident: str, location: str) -> _Read:
    """The binary packages of the repository at ``location`` (a directory or URL), with the
    ``python3dist`` names each provides. All or nothing: a repository whose metadata breaks
    off halfway contributes no package."""
    found: _Read = []
    with tempfile.TemporaryDirectory(prefix="conveyor-uc-") as tmp:
        work = Path(tmp)
        repomd = _fetch(location, "repodata/repomd.xml", work)
        primary = _fetch(location, _primary_href(repomd), work)

        def package(pkg: cr.Package) -> bool:
            if pkg.arch == "src":
                return True
            dists = [d for d in (_dist_name(p[0]) for p in pkg.provides) if d]
            found.append(
                (Build(pkg.name, pkg.epoch or "0", pkg.version, pkg.release, ident), dists)
            )
            return True

        try:
            cr.xml_parse_primary(str(primary), pkgcb=package, do_files=False)
        except Exception as exc:  # createrepo_c raises its own CreaterepoCError
            raise UCError(f"{location}: cannot parse primary metadata: {exc}") from None
    return found


def _add_read(index: ProviderIndex, ident: str, location: str, builds: _Read) -> None:
    for build, dists in builds:
        index.add(build, dists)
    index.sources.append(ident)
    index.locations.setdefault(ident, location)


def add_repository(index: ProviderIndex, arg: str) -> None:
    """Add the binary packages of the repository at ``arg`` (``[ID,]DIR|URL``)."""
    ident, location = _split_repo_arg(arg)
    _add_read(index, ident, location, read_repository(ident, location))


def _read_mirrors(location: str, section: RepoSection) -> tuple[str, _Read]:
    """The first of a section's baseurls that can be read, and what it holds (dnf tries a
    section's mirrors in order)."""
    problems: list[str] = []
    for url in section.baseurls:
        try:
            return url, read_repository(section.ident, url)
        except UCError as exc:
            problems.append(str(exc))
    raise UCError(f"{location} [{section.ident}]: no baseurl could be read: " + "; ".join(problems))


def add_repo_file(
    index: ProviderIndex, location: str, variables: Mapping[str, str] | None = None
) -> None:
    """Add every enabled repository of a dnf ``.repo`` file (path or URL).

    A section's baseurls are mirrors, tried in order (as dnf does); the section fails only
    when none can be read. Nothing is added unless every section could be read.
    """
    read = [(s.ident, *_read_mirrors(location, s)) for s in load_repo_file(location, variables)]
    for ident, url, builds in read:
        _add_read(index, ident, url, builds)


def add_source(index: ProviderIndex, arg: str, variables: Mapping[str, str] | None = None) -> None:
    """A ``--repo`` argument: ``[ID,]DIR|URL`` of a repository, or a ``.repo`` file."""
    if is_repo_file(arg):
        ident, sep, _ = arg.partition(",")
        if sep and "/" not in ident and not is_repo_file(ident):
            raise UCError(f"{arg}: a .repo file names its own repository ids; drop {ident!r},")
        add_repo_file(index, arg, variables)
    else:
        add_repository(index, arg)


def index_sources(
    repos: Iterable[str] = (),
    nvr_lists: Iterable[Path] = (),
    repos_dir: Path | None = None,
    variables: Mapping[str, str] | None = None,
) -> ProviderIndex:
    """uc-report's provider index: each ``--repo`` (a repository or a ``.repo`` file), every
    ``.repo`` file of ``repos_dir`` (a dnf reposdir), then each NVR list, in that order."""
    index = ProviderIndex()
    for source in [*repos, *(repo_files_in(repos_dir) if repos_dir is not None else ())]:
        add_source(index, source, variables)
    for path in nvr_lists:
        add_nvr_list(index, path)
    return index


def add_nvr_list(index: ProviderIndex, path: Path) -> None:
    """An NVR per line, or an rdoinfo ``buildsys-tags/<tag>.yml`` file (all its NVRs)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UCError(f"{path}: cannot read: {exc}") from None
    entries: list[tuple[int, str, str]] = []  # line, source, NVR
    if path.suffix in (".yml", ".yaml"):
        doc = parse_yaml(data, path).data
        packages = doc.get("packages") if isinstance(doc, dict) else None
        if not isinstance(packages, list):
            raise UCError(f"{path}: expected a 'packages:' list of a buildsys-tags file")
        for item in packages:
            tags = item.get("buildsys-tags") if isinstance(item, dict) else None
            if isinstance(tags, dict):
                entries += [(0, str(tag), str(nvr)) for tag, nvr in tags.items() if nvr]
    else:
        for number, raw in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            if line:
                entries.append((number, path.stem, line.removesuffix(".rpm")))
    for number, source, nvr in entries:
        try:
            parsed = Nvr.parse(nvr)
        except ValueError:
            where = f"{path}:{number}" if number else str(path)
            raise UCError(f"{where}: not an NVR (name-version-release): {nvr!r}") from None
        index.add(Build(parsed.name, parsed.epoch, parsed.version, parsed.release, source))
    index.sources.append(path.stem)
    index.locations.setdefault(path.stem, str(path))
