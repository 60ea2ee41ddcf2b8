"""Loading an rdoinfo-format database from a file or folder."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from conveyor.metadata.errors import MetadataError
from conveyor.metadata.merge import merge_documents
from conveyor.metadata.model import RdoInfoDatabase
from conveyor.metadata.resolve import packages_for_release
from conveyor.metadata.safeyaml import YamlDocument
from conveyor.metadata.yamlfiles import collect_documents, entry_file

if TYPE_CHECKING:
    from conveyor.metadata.cache import ParseCache


def _mapping(info: dict[str, Any], section: str, where: Path) -> dict[str, Any]:
    value = info.get(section)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MetadataError(where, f"merged '{section}' is not a mapping")
    return value


@contextmanager
def gc_paused() -> Iterator[None]:
    """The garbage collector off for a load: parsing allocates ~10^5 containers and no
    reference cycles, and the collector's repeated passes over them cost about a quarter of
    the load time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load_database(
    path: Path, *, strict: bool = False, cache: ParseCache | None = None
) -> RdoInfoDatabase:
    """Load, merge and validate a database.

    ``path`` is a YAML file or a folder holding ``rdo-full.yml`` (preferred) or ``rdo.yml``.
    Every package is resolved once (without tag overrides) so that a database that loads is
    known to resolve. ``strict`` also refuses a project or release listed twice in one file,
    which rdoinfo itself merges silently. ``cache`` (a
    :class:`conveyor.metadata.cache.ParseCache`) reuses files parsed by an earlier load.
    """
    with gc_paused():
        db = read_database(path, strict=strict, cache=cache)
        packages_for_release(db, None)
    return db


def read_database(
    path: Path, *, strict: bool = False, cache: ParseCache | None = None
) -> RdoInfoDatabase:
    """Load and merge a database as :func:`load_database` does, without resolving every
    package: queries resolve the packages they show (and report their errors)."""
    entry = entry_file(path)
    with gc_paused():
        return database_from_documents(entry, collect_documents(entry, cache), strict=strict)


def database_from_documents(
    entry: Path, documents: list[YamlDocument], *, strict: bool = False
) -> RdoInfoDatabase:
    """Merge parsed documents (in import order) into a database, without resolving packages."""
    merged = merge_documents(documents, strict=strict)
    info = merged.info
    return RdoInfoDatabase(
        path=entry,
        files=tuple(dict.fromkeys(document.path for document in documents)),
        info=MappingProxyType(info),
        package_default=MappingProxyType(_mapping(info, "package-default", entry)),
        package_configs=MappingProxyType(_mapping(info, "package-configs", entry)),
        packages=MappingProxyType(_mapping(info, "packages", entry)),
        releases=MappingProxyType(_mapping(info, "releases", entry)),
        components=tuple(info.get("components") or ()),
        strict=strict,
        package_origins=MappingProxyType(merged.origins("packages")),
        release_origins=MappingProxyType(merged.origins("releases")),
        config_locations=MappingProxyType(merged.section_locations["package-configs"]),
        default_locations=MappingProxyType(merged.section_locations["package-default"]),
    )
