"""Reading metadata files and following their ``import:`` lists."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from conveyor.metadata.errors import MetadataError
from conveyor.metadata.safeyaml import YamlDocument, parse_yaml

if TYPE_CHECKING:
    from conveyor.metadata.cache import ParseCache

MAX_FILE_BYTES = 50 * 1024 * 1024
"""Larger files are refused before parsing (the whole rdoinfo database is about 4 MB)."""

MAX_IMPORT_DEPTH = 32
MAX_DOCUMENTS = 10_000
"""Bound on merged documents: a file may be imported many times (a diamond of imports
doubles the count per level) even though each file is parsed only once."""


def read_yaml_file(path: Path, cache: ParseCache | None = None) -> YamlDocument:
    """Read and parse one file, refusing oversized input before parsing it.

    With a ``cache``, content parsed before is taken from it instead of being parsed again.
    """
    try:
        with path.open("rb") as stream:
            text = stream.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise MetadataError(path, "file not found") from None
    except OSError as exc:
        raise MetadataError(path, f"cannot read file: {exc.strerror or exc}") from None
    if len(text) > MAX_FILE_BYTES:
        raise MetadataError(path, f"file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    if cache is not None:
        return cache.parse(text, path)
    return parse_yaml(text, path)


def _import_list(document: YamlDocument) -> list[str]:
    imports = document.data.get("import")
    if imports is None:
        return []
    if not isinstance(imports, list):
        raise MetadataError(document.location("import"), "'import' must be a list of file names")
    for index, name in enumerate(imports):
        if not isinstance(name, str) or not name:
            raise MetadataError(
                document.item_location("import", index),
                f"'import' entries must be file names, not {name!r}",
            )
    return imports


class _ImportWalker:
    def __init__(self, root: Path, cache: ParseCache | None = None) -> None:
        self.root = root
        self.cache = cache
        self.parsed: dict[Path, YamlDocument] = {}
        self.order: list[YamlDocument] = []
        self.chain: list[Path] = []

    def document(self, path: Path, resolved: Path) -> YamlDocument:
        document = self.parsed.get(resolved)
        if document is None:
            document = read_yaml_file(path, self.cache)
            self.parsed[resolved] = document
        return document

    def visit(self, path: Path, resolved: Path) -> None:
        document = self.document(path, resolved)
        self.order.append(document)
        if len(self.order) > MAX_DOCUMENTS:
            raise MetadataError(path, f"imports expand to more than {MAX_DOCUMENTS} documents")
        imports = _import_list(document)
        if not imports:
            return
        self.chain.append(resolved)
        for index, name in enumerate(imports):
            where = document.item_location("import", index)
            target = path.parent / name
            if Path(name).is_absolute():
                raise MetadataError(where, f"import {name!r}: absolute paths are not allowed")
            target_resolved = target.resolve()
            if not target_resolved.is_relative_to(self.root):
                raise MetadataError(where, f"import {name!r}: outside the metadata directory")
            if target_resolved in self.chain:
                start = self.chain.index(target_resolved)
                cycle = [*self.chain[start:], target_resolved]
                names = " -> ".join(str(p.relative_to(self.root)) for p in cycle)
                raise MetadataError(where, f"import cycle: {names}")
            if len(self.chain) >= MAX_IMPORT_DEPTH:
                raise MetadataError(where, f"imports nested deeper than {MAX_IMPORT_DEPTH} files")
            if not target_resolved.is_file():
                raise MetadataError(where, f"import {name!r}: file not found ({target})")
            self.visit(target, target_resolved)
        self.chain.pop()


def collect_documents(entry: Path, cache: ParseCache | None = None) -> list[YamlDocument]:
    """The entry file and everything it imports, depth first, in merge order.

    A file imported through several parents appears once per import (that is how rdoinfo
    merges them) but is read and parsed only once.
    """
    resolved = entry.resolve()
    if not resolved.is_file():
        raise MetadataError(entry, "file not found")
    walker = _ImportWalker(resolved.parent, cache)
    walker.visit(entry, resolved)
    return walker.order


def entry_file(path: Path) -> Path:
    """A metadata file, or for a folder its ``rdo-full.yml`` (else ``rdo.yml``)."""
    if path.is_dir():
        for name in ("rdo-full.yml", "rdo.yml"):
            candidate = path / name
            if candidate.is_file():
                return candidate
        raise MetadataError(path, "folder has neither rdo-full.yml nor rdo.yml")
    return path
