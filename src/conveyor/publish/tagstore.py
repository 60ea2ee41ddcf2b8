"""The tag store's tree, `<datadir>/tags/`, served at `/tags/`:

    pool/<nvr>/*.rpm           every build tags may hold (imported, or taken from trunk)
    index/repodata/            the pool's metadata (what the closure gate loads)
    versions/<tag>/<n>/        one immutable repository per tag version: links to the pool's
                               RPMs, gz repodata, <tag>.repo
    <tag> -> versions/<tag>/<n>  the newest version, swapped atomically

Trunk's `repos/` keeps DLRN's layout; tags live beside it, not in it, so no tag name can
collide with a label, a shard or a report.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from conveyor.metadata.buildsys import check_tag_name
from conveyor.publish.repodata import PackageXml, PackageXmlCache, write_repodata

__all__ = ["TagStore", "TagStoreError", "check_nvr_folder"]

POOL = "pool"
INDEX = "index"
VERSIONS = "versions"


class TagStoreError(Exception):
    pass


def check_nvr_folder(nvr: str) -> str:
    """An NVR usable as a folder name (no `/`, no leading dot, no control character)."""
    if not nvr or "/" in nvr or nvr.startswith(".") or any(ord(c) < 32 for c in nvr):
        raise TagStoreError(f"not an NVR usable as a folder name: {nvr!r}")
    return nvr


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


class TagStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.xml = PackageXmlCache(root / ".xml-cache")

    @property
    def pool(self) -> Path:
        return self.root / POOL

    @property
    def index(self) -> Path:
        """The pool's repository (its repodata), for the closure gate."""
        return self.root / INDEX

    def build_dir(self, nvr: str) -> Path:
        return self.pool / check_nvr_folder(nvr)

    def add_build(self, nvr: str, rpms: Sequence[Path]) -> list[str]:
        """Put a build's RPMs into the pool (hard links where the file system allows);
        all or nothing: a half-copied build never appears. Returns the file names."""
        final = self.build_dir(nvr)
        if final.is_dir():
            return sorted(p.name for p in final.glob("*.rpm"))
        self.pool.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{nvr}.", dir=self.pool))
        try:
            for rpm in rpms:
                _link_or_copy(rpm, staging / rpm.name)
            staging.chmod(0o755)
            staging.rename(final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return sorted(rpm.name for rpm in rpms)

    def _packages(self, nvr: str, files: Sequence[str]) -> list[PackageXml]:
        return self.xml.load(f"{POOL}/{nvr}", self.build_dir(nvr), files)

    def refresh_index(self, builds: Mapping[str, Sequence[str]]) -> None:
        """Rewrite the pool's metadata for `builds` ({nvr: file names}); swapped in whole."""
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".index.", dir=self.root))
        try:
            packages = [p for nvr, files in builds.items() for p in self._packages(nvr, files)]
            write_repodata(staging, packages)
            (staging / _INDEX_BUILDS).write_text(_builds_digest(builds), encoding="utf-8")
            staging.chmod(0o755)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        old = self.index.resolve() if self.index.is_symlink() else None
        _replace_link(self.index, staging.name)
        if old is not None and old.parent == self.root.resolve():
            shutil.rmtree(old, ignore_errors=True)

    def index_holds(self, builds: Mapping[str, Sequence[str]]) -> bool:
        """Whether the pool's metadata was written for exactly `builds` (a writer that adds
        builds one by one refreshes it once at the end; one killed before that left it
        behind)."""
        try:
            written = (self.index / _INDEX_BUILDS).read_text(encoding="utf-8")
        except OSError:
            return False
        return written == _builds_digest(builds)

    def version_dir(self, tag: str, version: int) -> Path:
        return self.root / VERSIONS / check_tag_name(tag) / str(version)

    def publish_version(
        self, tag: str, version: int, builds: Mapping[str, Sequence[str]], repo_file: str
    ) -> Path:
        """Write version `version` of `tag` (links to the pool's RPMs, repodata, the .repo
        file); `point` then makes it the tag's. A version folder is never rewritten."""
        final = self.version_dir(tag, version)
        if final.exists():
            raise TagStoreError(f"{tag} version {version} is already published")
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=final.parent))
        try:
            packages = []
            for nvr, files in sorted(builds.items()):
                for name in files:
                    _link_or_copy(self.build_dir(nvr) / name, staging / name)
                packages += self._packages(nvr, files)
            write_repodata(staging, packages)
            (staging / f"{tag}.repo").write_text(repo_file, encoding="utf-8")
            staging.chmod(0o755)
            staging.rename(final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return final

    def point(self, tag: str, version: int) -> None:
        """`<tag>` -> versions/<tag>/<version>, replaced in one rename."""
        _replace_link(self.root / check_tag_name(tag), f"{VERSIONS}/{tag}/{version}")

    def sweep(self) -> list[Path]:
        """Removes what an interrupted writer left: staging folders of versions, of the
        index and of the pool, and temporary links. Only under the store's lock."""
        found = []
        for pattern in (f"{VERSIONS}/*/.*", ".index.*", f"{POOL}/.*", ".*.link"):
            for path in self.root.glob(pattern):
                if path.is_symlink() or path.is_file():
                    path.unlink()
                elif path.is_dir() and path.name != ".xml-cache":
                    if path.parent == self.root and self.index.resolve() == path.resolve():
                        continue  # the index in use
                    shutil.rmtree(path, ignore_errors=True)
                found.append(path)
        return found

    def pointed_version(self, tag: str) -> int | None:
        link = self.root / check_tag_name(tag)
        try:
            return int(link.readlink().name)
        except (OSError, ValueError):
            return None


# Beside the pool's repodata: which builds it was written for.
_INDEX_BUILDS = "builds.sha256"


def _builds_digest(builds: Mapping[str, Sequence[str]]) -> str:
    text = "\n".join(f"{nvr} {' '.join(sorted(files))}" for nvr, files in sorted(builds.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def _replace_link(link: Path, target: str) -> None:
    """Point `link` at `target` in one rename: a reader sees the old target or the new."""
    temporary = link.with_name(f".{link.name}.{os.getpid()}.link")
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(target)
    temporary.replace(link)
