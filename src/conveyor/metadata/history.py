"""The metadata at two points of its git history, compared package by package.

:func:`tags_diff` and :func:`attr_diff` are rdopkg's ``info-tags-diff`` and ``info-attr-diff``
(``distroinfo.query.tags_diff`` / ``attr_diff``) over resolved packages keyed by project, as
``get_info()`` gives them (no tag applied, so ``package-default``'s tags count). Two
deliberate differences: tags and packages that disappear are reported too (distroinfo only
walks the newer side), and an attribute that becomes empty or goes away is a change
(distroinfo skips falsy new values).

:func:`sides` reads the two sides: :func:`metadata_at` writes the metadata files of a git
revision into a temporary folder with ``git archive``, read from the object database (the
user's work tree, index and HEAD are never touched), and both sides load through the same
loader.
"""

from __future__ import annotations

import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from conveyor.metadata.errors import MetadataError
from conveyor.metadata.loader import gc_paused, read_database
from conveyor.metadata.model import RdoInfoDatabase
from conveyor.metadata.resolve import resolve_mapping
from conveyor.sources.git import GitError, archive_tree, run_git

if TYPE_CHECKING:
    from conveyor.metadata.cache import ParseCache

GIT_TIMEOUT = 120.0

PackageSet = Mapping[str, Mapping[str, Any]]
"""Resolved packages (read-only mappings) by project."""


class HistoryError(Exception):
    """A repository, revision or side of a comparison that cannot be read; the message says
    which."""


def package_set(db: RdoInfoDatabase) -> dict[str, Mapping[str, Any]]:
    """Every package of ``db`` resolved without a tag, by project; the mappings share nested
    values with ``db`` and must not be modified."""
    return {project: resolve_mapping(db, project) for project in db.packages}


# --- comparisons --------------------------------------------------------------------------


@dataclass(frozen=True)
class TagChange:
    """One package whose tags (or buildsys-tags) differ between the two sides."""

    project: str
    name: str
    tags: tuple[str, ...]
    """Every tag concerned: added and changed ones in the newer side's order (rdopkg's list),
    then removed ones."""
    added: Mapping[str, Any]
    """Tags only the newer side has, with their value there."""
    removed: Mapping[str, Any]
    """Tags only the older side has, with their value there."""
    changed: Mapping[str, tuple[Any, Any]]
    """Tags whose value (override mapping, NVR, ...) differs: (older, newer)."""
    package: str = "changed"
    """``added`` / ``removed`` when the whole package is new / gone, else ``changed``."""

    def text(self) -> str:
        """rdopkg's line: ``<name> ['<tag>', ...]``."""
        return f"{self.name} {list(self.tags)!r}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "project": self.project,
            "package": self.package,
            "tags": list(self.tags),
            "added": dict(self.added),
            "removed": dict(self.removed),
            "changed": {tag: {"old": old, "new": new} for tag, (old, new) in self.changed.items()},
        }


def _tag_map(package: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = package.get(key)
    if isinstance(value, Mapping):
        return value
    if isinstance(value, list):  # not rdoinfo's shape, but a list of names is still tags
        return dict.fromkeys(str(item) for item in value)
    return {}


def _compare_tags(
    project: str, name: str, old: Mapping[str, Any], new: Mapping[str, Any], package: str
) -> TagChange | None:
    added = {tag: value for tag, value in new.items() if tag not in old}
    changed = {
        tag: (old[tag], value) for tag, value in new.items() if tag in old and old[tag] != value
    }
    removed = {tag: value for tag, value in old.items() if tag not in new}
    if not (added or changed or removed):
        return None
    tags = (*(tag for tag in new if tag in added or tag in changed), *removed)
    return TagChange(project, name, tags, added, removed, changed, package)


def tags_diff(old: PackageSet, new: PackageSet, key: str = "tags") -> list[TagChange]:
    """Packages whose ``key`` mapping (``tags`` or ``buildsys-tags``) differs: the newer
    side's packages in order, then the packages only the older side has."""
    changes = []
    for project, package in new.items():
        before = old.get(project)
        change = _compare_tags(
            project,
            str(package.get("name", project)),
            _tag_map(before, key) if before is not None else {},
            _tag_map(package, key),
            "changed" if before is not None else "added",
        )
        if change is not None:
            changes.append(change)
    for project, package in old.items():
        if project not in new:
            change = _compare_tags(
                project, str(package.get("name", project)), _tag_map(package, key), {}, "removed"
            )
            if change is not None:
                changes.append(change)
    return changes


@dataclass(frozen=True)
class AttrChange:
    """One package whose attribute differs; ``old`` / ``new`` are None where it is absent."""

    project: str
    name: str
    old: Any
    new: Any
    had: bool
    """The older side has the package and the attribute."""
    has: bool
    """The newer side has the package and the attribute."""

    def text(self) -> str:
        """rdopkg's line: ``<name> <new value>`` (``None`` when it is gone)."""
        return f"{self.name} {self.new}"

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {"name": self.name, "project": self.project}
        if self.had:
            found["old"] = self.old
        if self.has:
            found["new"] = self.new
        return found


def attr_diff(old: PackageSet, new: PackageSet, attr: str) -> list[AttrChange]:
    """Packages whose resolved ``attr`` differs (present vs absent counts), in the newer
    side's order, then packages only the older side has. An attribute no package has gives
    an empty list."""
    changes = []
    for project, package in new.items():
        before = old.get(project, {})
        if package.get(attr) != before.get(attr) or (attr in package) != (attr in before):
            changes.append(
                AttrChange(
                    project,
                    str(package.get("name", project)),
                    before.get(attr),
                    package.get(attr),
                    attr in before,
                    attr in package,
                )
            )
    for project, package in old.items():
        if project not in new and attr in package:
            changes.append(
                AttrChange(
                    project,
                    str(package.get("name", project)),
                    package[attr],
                    None,
                    True,
                    False,
                )
            )
    return changes


def has_attr(packages: PackageSet, attr: str) -> bool:
    return any(attr in package for package in packages.values())


# --- reading a revision -------------------------------------------------------------------


@dataclass(frozen=True)
class Repository:
    """The git repository holding a metadata path, and that path inside it."""

    top: Path
    """The work tree's top folder."""
    git_dir: Path
    folder: PurePosixPath
    """The metadata folder, relative to ``top`` (``.`` for the top itself)."""
    entry: str | None
    """The file name when the metadata path is a file, else None (rdo-full.yml or rdo.yml)."""


def _git_dir(folder: Path) -> Path | None:
    dotgit = folder / ".git"
    if dotgit.is_dir():
        return dotgit
    if dotgit.is_file():  # a linked work tree or a submodule: "gitdir: <path>"
        text = dotgit.read_text(errors="replace").strip()
        if text.startswith("gitdir:"):
            return (folder / text.removeprefix("gitdir:").strip()).resolve()
    return None


def find_repository(path: Path) -> Repository:
    """The repository whose work tree holds ``path`` (a metadata folder or file)."""
    if not path.exists():
        raise HistoryError(f"{path}: no such file or directory")
    resolved = path.resolve()
    folder = resolved if resolved.is_dir() else resolved.parent
    for candidate in (folder, *folder.parents):
        git_dir = _git_dir(candidate)
        if git_dir is not None:
            return Repository(
                top=candidate,
                git_dir=git_dir,
                folder=PurePosixPath(folder.relative_to(candidate).as_posix()),
                entry=None if resolved.is_dir() else resolved.name,
            )
    raise HistoryError(f"{path}: not in a git repository (tags-diff and attr-diff need one)")


def resolve_revision(repo: Repository, revision: str) -> str:
    """The commit ``revision`` names, or HistoryError when there is none."""
    if not revision or revision.startswith("-"):
        raise HistoryError(f"invalid revision {revision!r}")
    try:
        found = run_git(
            ["rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"],
            repo.git_dir,
            GIT_TIMEOUT,
        )
    except GitError:
        raise HistoryError(f"unknown revision {revision!r} in {repo.top}") from None
    return found.strip()


def _extract(archive: Path, destination: Path) -> None:
    """The regular files of a tar written by git archive (no links, nothing outside)."""
    with tarfile.open(archive) as tar:
        for member in tar:
            name = PurePosixPath(member.name)
            if not member.isfile() or name.is_absolute() or ".." in name.parts:
                continue
            target = destination.joinpath(*name.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            if source is None:
                continue
            with source, target.open("wb") as out:
                while chunk := source.read(1 << 20):
                    out.write(chunk)


@contextmanager
def metadata_at(repo: Repository, commit: str, label: str) -> Iterator[Path]:
    """The metadata path (folder or file, as given) as it was at ``commit``, in a temporary
    folder removed on exit. ``label`` names the revision in errors."""
    treeish = commit if repo.folder == PurePosixPath(".") else f"{commit}:{repo.folder}"
    with tempfile.TemporaryDirectory(prefix="conveyor-history-") as scratch:
        root = Path(scratch)
        archive = root / "tree.tar"
        tree = root / "tree"
        tree.mkdir()
        try:
            archive_tree(repo.git_dir, treeish, archive, GIT_TIMEOUT)
            _extract(archive, tree)
        except GitError as exc:
            if "not a valid object name" in str(exc):
                raise HistoryError(f"{label}: has no {repo.folder}/ folder") from None
            raise HistoryError(f"{label}: cannot read the metadata: {exc}") from None
        except (OSError, tarfile.TarError) as exc:  # a full disk, say
            raise HistoryError(f"{label}: cannot read the metadata: {exc}") from None
        archive.unlink()
        yield tree / repo.entry if repo.entry is not None else tree


def _relabel(message: str, tree: Path, label: str) -> str:
    """An error message about files under a temporary ``tree`` as ``<label>:<relative path>``."""
    for prefix in sorted({str(tree.resolve()), str(tree)}, key=len, reverse=True):
        message = message.replace(prefix + "/", f"{label}:")
    return message


def _packages(path: Path, cache: ParseCache | None, which: str) -> PackageSet:
    try:
        with gc_paused():
            return package_set(read_database(path, cache=cache))
    except MetadataError as exc:
        raise HistoryError(f"the metadata {which} does not load: {exc}") from None


def _packages_at(
    repo: Repository, revision: str, commit: str, cache: ParseCache | None, which: str
) -> PackageSet:
    with metadata_at(repo, commit, revision) as path:
        try:
            return _packages(path, cache, which)
        except HistoryError as exc:
            tree = path if repo.entry is None else path.parent
            raise HistoryError(_relabel(str(exc), tree, revision)) from None


def sides(
    path: Path, revision: str, to: str | None = None, cache: ParseCache | None = None
) -> tuple[PackageSet, PackageSet]:
    """The packages of the metadata at ``path`` as they were at ``revision`` (the older side)
    and at ``to``, else as they are in the working tree (the newer side)."""
    repo = find_repository(path)
    # Both revisions are checked before anything is loaded: a typo fails at once.
    old_commit = resolve_revision(repo, revision)
    if to is None:
        new = _packages(path, cache, "in the working tree (newer side)")
    else:
        new = _packages_at(repo, to, resolve_revision(repo, to), cache, f"at {to} (newer side)")
    old = _packages_at(repo, revision, old_commit, cache, f"at {revision} (older side)")
    return old, new
