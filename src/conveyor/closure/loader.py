"""Repositories into a libsolv pool: from their XML metadata, or from a `.solv` cache file.

The cache holds one file per repository folder (named after its path), libsolv's own
serialisation of the solvables with a trailer that names the repomd.xml it was read from: a
repository that changed, or a file cut short or scribbled over, is read again from XML and
written anew. Files are written beside their final name and renamed into place, so a reader
never sees half of one.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import solv

from conveyor.closure.errors import ClosureError
from conveyor.closure.repomd import RepoFiles, repo_files

log = logging.getLogger(__name__)

_MAGIC = b"conveyor-solv-v2"
# The magic, the sha256 of repomd.xml, the sha256 of libsolv's data: libsolv checks little
# of what it reads, and a damaged file could load as other packages.
_TRAILER = len(_MAGIC) + 32 + 32


@dataclass(frozen=True)
class LoadedRepo:
    """A repository in a pool. `label` names it in reports (the path as given)."""

    path: Path
    label: str
    repo: Any  # solv.Repo: libsolv ships no type information
    from_cache: bool

    def solvables(self) -> list[Any]:
        """The repository's packages (solv.XSolvable)."""
        return list(self.repo.solvables)


def default_cache() -> Path:
    """`$XDG_CACHE_HOME/conveyor/solv`, or `~/.cache/conveyor/solv`."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "conveyor" / "solv"


def new_pool() -> Any:
    """An empty pool (solv.Pool) for rpm-md repositories."""
    pool = solv.Pool()
    pool.setdisttype(solv.Pool.DISTTYPE_RPM)
    return pool


def _cache_file(cache: Path, root: Path) -> Path:
    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:32]
    return cache / f"{key}.solv"


def _open_zstd(path: Path) -> Any:
    """`path` decompressed into an anonymous in-memory file: PyPI's libsolv has no zstd,
    which createrepo_c 1.x writes by default."""
    import zstandard

    fd = os.memfd_create(path.name)
    try:
        with path.open("rb") as source, os.fdopen(os.dup(fd), "wb") as target:
            zstandard.ZstdDecompressor().copy_stream(source, target)
        os.lseek(fd, 0, os.SEEK_SET)
    except (OSError, zstandard.ZstdError) as exc:
        os.close(fd)
        raise ClosureError(f"{path}: cannot decompress: {exc}") from None
    # The name without .zst: libsolv reads the descriptor as plain XML.
    return solv.xfopen_fd(str(path.with_suffix("")), fd)


def _add_xml(repo: Any, path: Path, flags: int) -> None:
    # solv.xfopen decompresses by the name's suffix: .gz and .xz, not .zst.
    handle = _open_zstd(path) if path.suffix == ".zst" else solv.xfopen(str(path))
    if handle is None:
        raise ClosureError(f"{path}: cannot open")
    try:
        if not repo.add_rpmmd(handle, None, flags):
            raise ClosureError(f"{path}: unreadable metadata: {repo.pool.errstr}")
    finally:
        handle.close()


def _from_xml(pool: Any, files: RepoFiles, name: str) -> Any:
    repo = pool.add_repo(name)
    try:
        _add_xml(repo, files.primary, 0)
        if files.filelists is not None:
            _add_xml(repo, files.filelists, solv.Repo.REPO_EXTEND_SOLVABLES)
    except ClosureError:
        repo.free(True)
        raise
    return repo


def _from_cache(pool: Any, path: Path, files: RepoFiles, name: str) -> Any | None:
    """The cached repository, or None when there is none that matches repomd.xml."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    body, trailer = data[:-_TRAILER], data[-_TRAILER:]
    if trailer != _MAGIC + files.digest + hashlib.sha256(body).digest():
        if path.exists():
            log.debug("%s: stale or damaged cache file, reading the repository again", path)
        return None
    handle = solv.xfopen(str(path))
    if handle is None:
        return None
    repo = pool.add_repo(name)
    try:
        # libsolv stops at the end of its own data: the trailer is not read.
        if repo.add_solv(handle):
            return repo
    finally:
        handle.close()
    log.warning("%s: unreadable cache file, reading the repository again", path)
    repo.free(True)
    return None


def _write_cache(repo: Any, path: Path, digest: bytes) -> None:
    """Best effort: a cache that cannot be written costs time, not the verdict."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A name libsolv does not take for a compressed one (.gz, .xz, .zst).
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp")
    except OSError as exc:
        log.warning("%s: cannot write the cache: %s", path, exc)
        return
    try:
        handle = solv.xfopen_fd(tmp, os.dup(fd), "w")
        written = handle is not None and repo.write(handle)
        if handle is not None and not handle.close():
            written = False
        if not written:
            raise OSError("libsolv could not write the repository")
        with os.fdopen(fd, "r+b") as stream:
            fd = -1
            stream.seek(0)  # libsolv wrote through a duplicate: the offset is shared
            body = hashlib.sha256(stream.read()).digest()
            stream.write(_MAGIC + digest + body)
            stream.flush()
            os.fsync(stream.fileno())
        Path(tmp).replace(path)
    except OSError as exc:
        log.warning("%s: cannot write the cache: %s", path, exc)
        Path(tmp).unlink(missing_ok=True)
    finally:
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)


def load_repository(
    pool: Any, path: Path, cache: Path | None, label: str | None = None
) -> LoadedRepo:
    """The repository at `path` in `pool`, from `cache` (a folder; None: no cache) when it
    holds this repomd.xml's packages. ClosureError for a folder that is no repository or
    metadata libsolv cannot read. Call `prepare(pool)` once all repositories are in."""
    files = repo_files(path)
    name = label if label is not None else str(path)
    cached = _cache_file(cache, path) if cache is not None else None
    if cached is not None:
        repo = _from_cache(pool, cached, files, name)
        if repo is not None:
            return LoadedRepo(path, name, repo, from_cache=True)
    repo = _from_xml(pool, files, name)
    if cached is not None:
        # Before `prepare`: file provides depend on the other repositories of the pool.
        _write_cache(repo, cached, files.digest)
    return LoadedRepo(path, name, repo, from_cache=False)


def prepare(pool: Any) -> None:
    """Index the pool once every repository is loaded: the files that packages require
    become provides of the packages holding them."""
    pool.addfileprovides()
    pool.createwhatprovides()


def load_repositories(
    pool: Any, repos: Sequence[Path], lookaside: Sequence[Path], cache: Path | None
) -> tuple[list[LoadedRepo], list[LoadedRepo]]:
    """The repositories to check and the lookaside ones, loaded and prepared. A folder given
    twice (in either list) is a ClosureError: its packages would be counted twice."""
    seen: dict[Path, Path] = {}
    for path in (*repos, *lookaside):
        key = path.resolve()
        if key in seen:
            raise ClosureError(f"{path}: repository given twice (also as {seen[key]})")
        seen[key] = path
    checked = [load_repository(pool, path, cache) for path in repos]
    others = [load_repository(pool, path, cache) for path in lookaside]
    prepare(pool)
    return checked, others
