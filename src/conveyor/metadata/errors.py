"""The one error type of the metadata layer and the source positions it reports."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, order=True)
class SourceLocation:
    """A file and, where known, a 1-based line in it."""

    path: Path
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line is not None else str(self.path)


class MetadataError(Exception):
    """Invalid or unsafe metadata; the message starts with ``file[:line]:``."""

    def __init__(self, where: SourceLocation | Path, message: str) -> None:
        self.location = where if isinstance(where, SourceLocation) else SourceLocation(where)
        self.detail = message
        super().__init__(f"{self.location}: {message}")
