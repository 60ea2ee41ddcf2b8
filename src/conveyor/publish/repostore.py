"""The published tree under `repos/`: immutable hash directories and the labels pointing at them.

A hash directory is assembled in a staging directory beside its final place (same depth, so
relative links resolve while it is built) and renamed into place in one step. A journal file
names the staging directory while that happens, so a process killed halfway leaves nothing
that the next run does not remove.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from conveyor.config import Config, RpmLinks
from conveyor.domain.names import check_label
from conveyor.publish.repodata import PackageXml, PackageXmlCache, read_package_xml, write_repodata

_JOURNAL = ".publishing"
_STAGING_PREFIX = ".staging-"
_TOP = PurePosixPath()  # labels of the whole trunk live in repos/ itself


class PublishError(Exception):
    pass


@dataclass(frozen=True)
class LinkedBuild:
    """Another package's newest good build, whose RPMs a new repository links to."""

    relpath: PurePosixPath  # below repos/
    filenames: tuple[str, ...]


@dataclass(frozen=True)
class HashDirContent:
    """What goes into a hash directory besides RPMs: file name to text."""

    files: Mapping[str, str]
    log: Path | None  # the build log, moved in as rpmbuild.log
    extra: Sequence[Path] = ()  # other logs, under their own names


class RepoStore:
    def __init__(
        self,
        repos_dir: Path,
        cache_dir: Path,
        include_srpm: bool = True,
        hardlinks: bool = False,
    ) -> None:
        self.repos_dir = repos_dir
        self.xml_cache = PackageXmlCache(cache_dir)
        self.include_srpm = include_srpm
        self.hardlinks = hardlinks

    @classmethod
    def of(cls, config: Config) -> RepoStore:
        """The repository tree a builder's configuration describes."""
        return cls(
            config.repos_dir,
            config.datadir / "cache" / "repodata",
            config.include_srpm_in_repo,
            hardlinks=config.link_rpms is RpmLinks.HARDLINK,
        )

    def path_of(self, relpath: PurePosixPath) -> Path:
        return self.repos_dir.joinpath(*relpath.parts)

    # -- crash recovery ---------------------------------------------------------------------

    def recover(self, published: Callable[[PurePosixPath], bool]) -> list[Path]:
        """Remove what an interrupted publish left: its staging directory, and its final
        directory when the database never recorded it (so no label or link can point there),
        and the temporary link of a label move cut short."""
        self._remove_label_leftovers()
        journal = self.repos_dir / _JOURNAL
        try:
            entry = json.loads(journal.read_text(encoding="utf-8"))
            relpath = PurePosixPath(entry["relpath"])
        except FileNotFoundError:
            return []
        except (OSError, ValueError, KeyError, TypeError):
            journal.unlink()
            return []
        removed = []
        if ".." not in relpath.parts and not relpath.is_absolute():
            final = self.path_of(relpath)
            for leftover in (final.with_name(_STAGING_PREFIX + final.name), final):
                if leftover == final and published(relpath):
                    continue
                if leftover.exists():
                    shutil.rmtree(leftover)
                    removed.append(leftover)
        journal.unlink()
        return removed

    def _remove_label_leftovers(self) -> None:
        folders = [self.repos_dir, *self.repos_dir.glob("component/*")]
        for folder in folders:
            for leftover in folder.glob(".*.tmp*"):
                if leftover.is_symlink():
                    leftover.unlink()

    # -- hash directories -------------------------------------------------------------------

    def _begin(self, relpath: PurePosixPath) -> tuple[Path, Path]:
        final = self.path_of(relpath)
        staging = final.with_name(_STAGING_PREFIX + final.name)
        # A link where a shard folder belongs (a label named like one, made before labels
        # were checked) would have this build published inside whatever it points at.
        for depth in range(1, len(relpath.parts)):
            folder = PurePosixPath(*relpath.parts[:depth])
            if self.path_of(folder).is_symlink():
                raise PublishError(
                    f"repos/{folder} is a link where the tree needs a folder; "
                    "`conveyor fsck` lists such collisions"
                )
        final.parent.mkdir(parents=True, exist_ok=True)
        (self.repos_dir / _JOURNAL).write_text(json.dumps({"relpath": str(relpath)}))
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir()
        return final, staging

    def _commit(self, final: Path, staging: Path) -> None:
        """Rename the staged directory into place. What it may replace is the log directory
        of a failed or retried build of the same hashes; a published repository (it has
        repodata) is immutable."""
        if final.exists():
            if (final / "repodata").exists():
                raise PublishError(f"{final} is already published and immutable")
            shutil.rmtree(final)
        staging.rename(final)
        (self.repos_dir / _JOURNAL).unlink()

    @staticmethod
    def _write_files(directory: Path, content: HashDirContent) -> None:
        for name, text in content.files.items():
            (directory / name).write_text(text, encoding="utf-8")
        if content.log is not None and content.log.exists():
            shutil.copyfile(content.log, directory / "rpmbuild.log")
        for path in content.extra:
            # conveyor's own files win over a log that happens to share a name.
            if path.name not in content.files and path.name != "rpmbuild.log":
                shutil.copyfile(path, directory / path.name)

    def publish_success(
        self,
        relpath: PurePosixPath,
        rpms: Sequence[Path],
        others: Sequence[LinkedBuild],
        content: HashDirContent,
    ) -> list[PurePosixPath]:
        """Publish a successful build; returns its RPMs' paths below repos/."""
        final, staging = self._begin(relpath)
        own: list[PackageXml] = []
        for rpm in rpms:
            shutil.copyfile(rpm, staging / rpm.name)
            own.append(read_package_xml(staging / rpm.name))
        # The new build wins over an older one with the same file name.
        linked = self._link_builds(staging, final, others, {rpm.name for rpm in rpms})
        self.xml_cache.store(str(relpath), own)
        write_repodata(staging, self._indexed(own + linked))
        self._write_files(staging, content)
        self._commit(final, staging)
        return [relpath / rpm.name for rpm in rpms]

    def _link_builds(
        self, staging: Path, final: Path, builds: Sequence[LinkedBuild], taken: set[str]
    ) -> list[PackageXml]:
        """Link the RPMs of `builds` into `staging` (to be renamed to `final`), but for file
        names in `taken`; returns their cached XML."""
        linked: list[PackageXml] = []
        # Plain strings: thousands of links per publish, where pathlib's objects cost more
        # than the system calls.
        into = str(staging)
        for other in builds:
            source_dir = self.path_of(other.relpath)
            source = str(source_dir)
            relative = os.path.relpath(source, final)
            for filename in other.filenames:
                if filename in taken:
                    continue
                taken.add(filename)
                if self.hardlinks:
                    os.link(f"{source}/{filename}", f"{into}/{filename}")
                else:
                    os.symlink(f"{relative}/{filename}", f"{into}/{filename}")  # noqa: PTH211
            linked += self.xml_cache.load(str(other.relpath), source_dir, other.filenames)
        return linked

    def _indexed(self, packages: Sequence[PackageXml]) -> list[PackageXml]:
        return [p for p in packages if self.include_srpm or not p.filename.endswith(".src.rpm")]

    def compose(
        self, relpath: PurePosixPath, builds: Sequence[LinkedBuild], files: Mapping[str, str]
    ) -> bool:
        """Publish a repository made of other builds' RPMs only (a bisection's step), linked
        as a trunk repository links them, its repodata written from the cached XML. Its path
        names its content, so one that exists is left as it is; returns whether it was
        written. Staged beside its place and renamed in: no journal, as no database row
        has to agree with it (a step is recorded after its repository exists)."""
        final = self.path_of(relpath)
        if final.is_dir():
            return False
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=final.parent))
        try:
            staging.chmod(0o755)  # mkdtemp makes it private; the web server must read it
            write_repodata(staging, self._indexed(self._link_builds(staging, final, builds, set())))
            self._write_files(staging, HashDirContent(files, None))
            try:
                staging.rename(final)
            except OSError:
                if not final.is_dir():
                    raise
                return False  # another writer was first: same path, same content
        finally:
            if staging.exists():
                shutil.rmtree(staging)
        return True

    def publish_failure(self, relpath: PurePosixPath, content: HashDirContent) -> None:
        """A failed build's directory holds its logs; a rebuild of the same pair replaces it."""
        if (self.path_of(relpath) / "repodata").exists():
            raise PublishError(f"{self.path_of(relpath)} is a published repository")
        final, staging = self._begin(relpath)
        self._write_files(staging, content)
        self._commit(final, staging)

    # -- labels -----------------------------------------------------------------------------

    def label_target(self, name: str, base: PurePosixPath = _TOP) -> str | None:
        link = self.path_of(base) / check_label(name)
        try:
            return str(link.readlink())
        except OSError:
            return None

    def move_label(self, name: str, relpath: PurePosixPath, base: PurePosixPath = _TOP) -> None:
        """Point label `name` (in `base`, a component folder or repos/ itself) at `relpath`,
        by an atomic rename over the old link."""
        directory = self.path_of(base)
        link = directory / check_label(name)
        # Named below repos/: the API passes these messages on to its callers.
        shown = f"repos/{(base / name).as_posix()}"
        if link.is_dir() and not link.is_symlink():
            raise PublishError(
                f"{shown} is a directory, not a label link (an aggregate directory left by "
                "use_components = true, or a folder of the tree); conveyor never replaces it"
            )
        if os.path.lexists(link) and not link.is_symlink():
            raise PublishError(f"{shown} is a file, not a label link; conveyor never replaces it")
        target = os.path.relpath(self.path_of(relpath), directory)
        if self.label_target(name, base) == target:
            return
        tmp = directory / f".{name}.tmp{os.getpid()}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(target)
        tmp.replace(link)
