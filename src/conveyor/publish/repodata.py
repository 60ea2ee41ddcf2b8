"""Repository metadata without re-reading every RPM on every publish.

Each trunk repository holds the new build's RPMs plus links to the newest good RPMs of every
other package, so running createrepo over the directory costs one header read per package of
the whole distribution, after every build. RPMs in a published hash directory never change, so
the XML createrepo_c makes for them is made once, cached per build, and every later repository
is written from the cached chunks.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import createrepo_c as cr


@dataclass(frozen=True)
class PackageXml:
    filename: str
    primary: str
    filelists: str
    other: str


def read_package_xml(rpm: Path) -> PackageXml:
    # location_href is the bare file name: every RPM of a repository sits in its top folder.
    package = cr.package_from_rpm(str(rpm), cr.SHA256, rpm.name, None, 10)
    primary, filelists, other = cr.xml_dump(package)
    return PackageXml(rpm.name, primary, filelists, other)


@dataclass(frozen=True)
class Relations:
    """What a build's binary packages provide (names and the files primary lists) and
    require, from their primary XML."""

    provides: frozenset[str]
    requires: frozenset[str]


_RPM_NS = "http://linux.duke.edu/metadata/rpm"
_ENTRY = f"{{{_RPM_NS}}}entry"


def relations(packages: Iterable[PackageXml]) -> Relations:
    """The binary packages' relations (a source package's requires are its BuildRequires)."""
    provides: set[str] = set()
    requires: set[str] = set()
    for package in packages:
        if package.filename.endswith(".src.rpm"):
            continue
        # A chunk uses the rpm: prefix without declaring it: the wrapper declares it. The XML
        # is createrepo_c's, made from RPM headers: no DTD, nothing for an entity to expand.
        root = ET.fromstring(f'<chunk xmlns:rpm="{_RPM_NS}">{package.primary}</chunk>')  # noqa: S314
        for kind, found in (("provides", provides), ("requires", requires)):
            for section in root.iter(f"{{{_RPM_NS}}}{kind}"):
                found.update(e.get("name", "") for e in section.iter(_ENTRY))
        provides.update(f.text or "" for f in root.iter("file"))
    return Relations(frozenset(provides - {""}), frozenset(requires - {""}))


_StatKey = tuple[int, int, int]


def _stat_key(info: os.stat_result) -> _StatKey:
    # A cache file is replaced by rename, never written in place: a new one has a new inode.
    return (info.st_ino, info.st_mtime_ns, info.st_size)


class PackageXmlCache:
    """Cached XML of one build's RPMs, keyed by the build's repository path: a JSON file per
    build, and the files this process read or wrote kept in memory (a publish reads one per
    package: parsing them again each time was a third of a publish). A file's stat says
    whether what memory holds is still its content."""

    # Builds kept in memory: every package of a large trunk. A publish holds all of them at
    # once anyway (the repodata lists every package), so keeping them does not raise its peak.
    MEMORY = 4096

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir
        self._memory: OrderedDict[str, tuple[_StatKey, list[PackageXml]]] = OrderedDict()

    def _path(self, repo_relpath: str) -> Path:
        return self.cache_dir / (repo_relpath + ".json")

    def _remember(self, repo_relpath: str, path: Path, packages: list[PackageXml]) -> None:
        info = path.stat()
        self._memory[repo_relpath] = (_stat_key(info), packages)
        self._memory.move_to_end(repo_relpath)
        while len(self._memory) > self.MEMORY:
            self._memory.popitem(last=False)

    def store(self, repo_relpath: str, packages: Sequence[PackageXml]) -> None:
        path = self._path(repo_relpath)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps([asdict(p) for p in packages]), encoding="utf-8")
        tmp.replace(path)
        self._remember(repo_relpath, path, list(packages))

    def _cached(self, repo_relpath: str) -> list[PackageXml]:
        path = self._path(repo_relpath)
        info = path.stat()
        known = self._memory.get(repo_relpath)
        if known is not None and known[0] == _stat_key(info):
            self._memory.move_to_end(repo_relpath)
            return known[1]
        data = json.loads(path.read_text(encoding="utf-8"))
        cached = [PackageXml(**item) for item in data]
        self._remember(repo_relpath, path, cached)
        return cached

    def load(self, repo_relpath: str, repo_dir: Path, filenames: Iterable[str]) -> list[PackageXml]:
        """The build's package XML; read from its RPMs (and cached) when missing or stale."""
        wanted = set(filenames)
        try:
            cached = self._cached(repo_relpath)
            if {p.filename for p in cached} >= wanted:
                return [p for p in cached if p.filename in wanted]
        except (OSError, ValueError, TypeError):
            pass
        packages = [read_package_xml(repo_dir / name) for name in sorted(wanted)]
        self.store(repo_relpath, packages)
        return packages


_KINDS = (
    ("primary", cr.PrimaryXmlFile),
    ("filelists", cr.FilelistsXmlFile),
    ("other", cr.OtherXmlFile),
)


def write_repodata(repo_dir: Path, packages: Sequence[PackageXml]) -> None:
    """Write `repodata/` (gzip: libsolv and older dnf read it, zstd they may not)."""
    repodata = repo_dir / "repodata"
    repodata.mkdir()
    ordered = sorted(packages, key=lambda p: p.filename)
    repomd = cr.Repomd()
    for kind, xml_class in _KINDS:
        path = repodata / f"{kind}.xml.gz"
        xml_file = xml_class(str(path), cr.GZ_COMPRESSION)
        xml_file.set_num_of_pkgs(len(ordered))
        for package in ordered:
            xml_file.add_chunk(getattr(package, kind))
        xml_file.close()
        record = cr.RepomdRecord(kind, str(path))
        record.fill(cr.SHA256)
        record.rename_file()
        repomd.set_record(record)
    (repodata / "repomd.xml").write_text(repomd.xml_dump(), encoding="utf-8")
