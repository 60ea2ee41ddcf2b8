"""Where a tag's builds come from: the tag store's pool, filled from conveyor's own trunk
builds (found by NVR) or from RPMs a user imports (`conveyor tags import-rpms DIR`)."""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import createrepo_c as cr
from sqlalchemy import select
from sqlalchemy.orm import Session

from conveyor.domain.nvr import Nvr
from conveyor.publish.tagstore import TagStore, TagStoreError, check_nvr_folder
from conveyor.store.models import Commit, TagBuild

__all__ = [
    "ImportReport",
    "TagBuildError",
    "add_build",
    "import_rpms",
    "pool_builds",
    "refresh_pool",
    "resolve_builds",
]

_SOURCE = ".src.rpm"


class TagBuildError(Exception):
    """A build cannot be found or imported; the message names it."""


@dataclass(frozen=True)
class ImportReport:
    imported: tuple[str, ...]  # NVRs new in the pool
    known: tuple[str, ...]  # NVRs the pool had already


def refresh_pool(session: Session, store: TagStore) -> None:
    """The pool's metadata rewritten for every build the session knows (the gate reads it)."""
    session.flush()
    store.refresh_index(pool_builds(session))


def pool_builds(session: Session) -> dict[str, list[str]]:
    """Every build of the pool: NVR -> its file names."""
    return {b.nvr: json.loads(b.files) for b in session.scalars(select(TagBuild))}


def _read_header(path: Path) -> cr.Package:
    try:
        return cr.package_from_rpm(str(path), cr.SHA256, path.name, None, 10)
    except Exception as exc:  # createrepo_c raises its own CreaterepoCError
        raise TagBuildError(f"{path.name}: not a readable RPM: {exc}") from None


def _group_by_build(rpms: Iterable[Path]) -> dict[str, list[Path]]:
    """RPM files by the NVR of the build that made them (their source RPM's)."""
    builds: dict[str, list[Path]] = defaultdict(list)
    for path in rpms:
        package = _read_header(path)
        if path.name.endswith(_SOURCE):
            nvr = f"{package.name}-{package.version}-{package.release}"
        else:
            source = package.rpm_sourcerpm or ""
            if not source.endswith(_SOURCE):
                raise TagBuildError(f"{path.name}: no source RPM in its header")
            nvr = source[: -len(_SOURCE)]
        try:
            Nvr.parse(nvr)
            check_nvr_folder(nvr)
        except (ValueError, TagStoreError) as exc:
            raise TagBuildError(f"{path.name}: {exc}") from None
        builds[nvr].append(path)
    return builds


def add_build(session: Session, store: TagStore, nvr: str, rpms: list[Path], origin: str) -> None:
    """Puts a build's RPMs into the pool and records it (`origin`: import, trunk, release)."""
    files = store.add_build(nvr, rpms)
    session.add(
        TagBuild(
            nvr=nvr,
            name=Nvr.parse(nvr).name,
            origin=origin,
            created=int(time.time()),
            files=json.dumps(files),
        )
    )


def _digest(path: Path) -> str:
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def _same_content(store: TagStore, nvr: str, held: list[str], offered: list[Path]) -> None:
    """An NVR names one build forever: importing other files under it is an error."""
    folder = store.build_dir(nvr)
    for path in offered:
        if path.name not in held or _digest(path) != _digest(folder / path.name):
            raise TagBuildError(
                f"{nvr} is already in the store with other content ({path.name} differs): "
                "a build never changes under its NVR; rebuild with a new release"
            )


def import_rpms(session: Session, store: TagStore, folder: Path) -> ImportReport:
    """Every RPM in `folder` (not its subfolders), grouped into builds by source RPM, into the
    pool. Every file is read before anything is copied: one bad RPM imports nothing."""
    if not folder.is_dir():
        raise TagBuildError(f"{folder}: not a folder")
    rpms = sorted(p for p in folder.glob("*.rpm") if p.is_file())
    if not rpms:
        raise TagBuildError(f"{folder}: no RPM in it")
    builds = _group_by_build(rpms)
    known = pool_builds(session)
    imported = []
    for nvr, files in sorted(builds.items()):
        if nvr in known:
            _same_content(store, nvr, known[nvr], files)
            continue
        add_build(session, store, nvr, files, "import")
        imported.append(nvr)
    return ImportReport(tuple(imported), tuple(sorted(set(builds) & set(known))))


def _trunk_files(session: Session, datadir: Path, nvr: str) -> list[Path] | None:
    """The RPMs of the newest successful trunk build whose source RPM is `nvr`."""
    pattern = f"%/{nvr}{_SOURCE}%"
    commit = session.scalar(
        select(Commit)
        .where(Commit.status == "SUCCESS", Commit.artifacts.like(pattern))
        .order_by(Commit.id.desc())
        .limit(1)
    )
    if commit is None:
        return None
    paths = [datadir / relpath for relpath in commit.artifact_list]
    if f"{nvr}{_SOURCE}" not in {p.name for p in paths}:
        return None  # LIKE matched a longer name
    present = [p for p in paths if p.is_file()]
    return present if len(present) == len(paths) else None


def resolve_builds(
    session: Session, store: TagStore, datadir: Path, nvrs: Iterable[str]
) -> dict[str, list[str]]:
    """NVR -> file names in the pool, for every NVR; trunk builds not yet in the pool are
    added to it. TagBuildError naming every NVR that no build provides."""
    known = pool_builds(session)
    missing = []
    for nvr in sorted(set(nvrs) - set(known)):
        files = _trunk_files(session, datadir, nvr)
        if files is None:
            missing.append(nvr)
            continue
        add_build(session, store, nvr, files, "trunk")
        known[nvr] = sorted(p.name for p in files)
    if missing:
        shown = ", ".join(missing[:10]) + (
            f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        )
        raise TagBuildError(
            f"no build provides {shown}{f' ({len(missing)} NVRs)' if len(missing) > 1 else ''}: "
            "import their RPMs with `conveyor tags import-rpms DIR`, or build them"
        )
    return {nvr: known[nvr] for nvr in nvrs}
