"""Build logs in hash directories: read back by retry classification and FTBFS excerpts."""

from __future__ import annotations

from pathlib import Path


def read_tail(log: Path, limit: int) -> bytes:
    """The end of a log, at most `limit` bytes, starting at a line; b"" when unreadable.
    A log may be of any size and in any encoding: callers decode leniently."""
    try:
        with log.open("rb") as stream:
            size = stream.seek(0, 2)
            start = max(0, size - limit)
            stream.seek(start)
            data = stream.read(limit)
    except OSError:
        return b""
    # A read that began inside a line drops that fragment.
    return data.partition(b"\n")[2] if start > 0 else data
