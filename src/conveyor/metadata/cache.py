"""A cache of parsed metadata files, keyed by their content.

Parsing the YAML is most of the cost of loading rdoinfo (about 0.5 s of 0.65 s for
``rdo-full.yml``); the merge and resolution after it are cheap. Each parsed file (its data and
the line numbers errors need) is pickled under ``<cache dir>/<sha256[:2]>/<sha256>.pickle``,
where the digest covers a format version and the file's bytes, so an edited file simply misses.

Entries are only ever produced from files that parsed successfully (size, nesting and alias
limits already applied). Unpickling is restricted to plain data plus the ``datetime`` types YAML
timestamps produce; a corrupt, truncated or foreign entry is ignored and the file is parsed again.
Writes go to a temporary file renamed into place, so concurrent loads never see half an entry.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import os
import pickle
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, overload

from conveyor.metadata.safeyaml import ItemPosition, YamlDocument, parse_yaml

FORMAT_VERSION = 1
"""Bump whenever the parsed form or the parser's output changes."""

_ALLOWED_GLOBALS = {
    ("datetime", "date"): datetime.date,
    ("datetime", "datetime"): datetime.datetime,
    ("datetime", "timezone"): datetime.timezone,
    ("datetime", "timedelta"): datetime.timedelta,
}


class _DataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed here") from None


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/conveyor/metadata``, else ``~/.cache/conveyor/metadata``."""
    base = os.environ.get("XDG_CACHE_HOME")
    root = Path(base) if base else Path.home() / ".cache"
    return root / "conveyor" / "metadata"


def content_key(text: bytes) -> str:
    digest = hashlib.sha256(f"conveyor-metadata-v{FORMAT_VERSION}\0".encode())
    digest.update(text)
    return digest.hexdigest()


def _flatten(document: YamlDocument) -> tuple[Any, ...]:
    return (
        document.data,
        dict(document.key_lines),
        {key: dict(lines) for key, lines in document.section_key_lines.items()},
        {
            key: [(position.line, dict(position.key_lines)) for position in positions]
            for key, positions in document.item_positions.items()
        },
    )


class _CachedPositions(Sequence[ItemPosition]):
    """Cached ``(line, key lines)`` pairs, made into :class:`ItemPosition` objects only when
    asked for: a load reads a few hundred of rdoinfo's 34,000 (for locations and errors), and
    creating them all took a third of the time of reading the cache."""

    __slots__ = ("_flat",)

    def __init__(self, flat: list[tuple[int, dict[Any, int]]]) -> None:
        self._flat = flat

    def __len__(self) -> int:
        return len(self._flat)

    @overload
    def __getitem__(self, index: int) -> ItemPosition: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[ItemPosition]: ...

    def __getitem__(self, index: int | slice) -> ItemPosition | Sequence[ItemPosition]:
        if isinstance(index, slice):
            return [ItemPosition(line, lines) for line, lines in self._flat[index]]
        line, lines = self._flat[index]
        return ItemPosition(line, lines)


def _restore(path: Path, flat: Any) -> YamlDocument | None:
    if not (isinstance(flat, tuple) and len(flat) == 4 and isinstance(flat[0], dict)):
        return None
    data, key_lines, section_key_lines, item_positions = flat
    return YamlDocument(
        path=path,
        data=data,
        key_lines=key_lines,
        section_key_lines=section_key_lines,
        item_positions={
            key: _CachedPositions(positions) for key, positions in item_positions.items()
        },
    )


class ParseCache:
    """Parsed files stored under ``directory``; hits and misses are counted."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory if directory is not None else default_cache_dir()
        self.hits = 0
        self.misses = 0

    def _entry(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.pickle"

    def get(self, key: str, path: Path) -> YamlDocument | None:
        try:
            blob = self._entry(key).read_bytes()
        except OSError:
            return None
        try:
            flat = _DataUnpickler(io.BytesIO(blob)).load()
        except Exception:  # any damaged entry is just a miss
            return None
        return _restore(path, flat)

    def put(self, key: str, document: YamlDocument) -> None:
        entry = self._entry(key)
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=entry.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as stream:
                    pickle.dump(_flatten(document), stream, protocol=pickle.HIGHEST_PROTOCOL)
                Path(temporary).replace(entry)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError:
            pass  # a read-only or full cache must never break loading

    def parse(self, text: bytes, path: Path) -> YamlDocument:
        """``parse_yaml(text, path)``, from the cache when this content was parsed before."""
        key = content_key(text)
        document = self.get(key, path)
        if document is not None:
            self.hits += 1
            return document
        self.misses += 1
        document = parse_yaml(text, path)
        self.put(key, document)
        return document
