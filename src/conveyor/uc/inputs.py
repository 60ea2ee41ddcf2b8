"""Reading the small local files the uc tools take (name maps, override files, .repo files).

One bounded read for all of them: a file larger than its limit is refused after reading at
most ``limit + 1`` bytes (a device or a runaway file is never read whole), and YAML goes
through :func:`conveyor.metadata.safeyaml.parse_yaml`, its errors turned into
:class:`UCError` naming the file and line.
"""

from __future__ import annotations

from pathlib import Path

from conveyor.metadata.errors import MetadataError
from conveyor.metadata.safeyaml import YamlDocument, parse_yaml
from conveyor.uc.errors import UCError

MAX_INPUT = 1_000_000


def read_bounded(path: Path, limit: int = MAX_INPUT, what: str = "") -> bytes:
    """The bytes of ``path``; unreadable or larger than ``limit`` is an error naming it.

    ``what`` ("override file"…) completes the "cannot read" message.
    """
    try:
        with path.open("rb") as stream:
            data = stream.read(limit + 1)
    except OSError as exc:
        raise UCError(f"{path}: cannot read{' ' + what if what else ''}: {exc}") from None
    if len(data) > limit:
        raise UCError(f"{path}: larger than {limit} bytes; refused")
    return data


def read_yaml(path: Path, limit: int = MAX_INPUT, what: str = "") -> YamlDocument:
    """A YAML mapping file read with :func:`read_bounded` and parsed safely."""
    data = read_bounded(path, limit, what)
    try:
        return parse_yaml(data, path)
    except MetadataError as exc:
        raise UCError(str(exc)) from None
