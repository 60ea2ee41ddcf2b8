"""Build logs: read back by retry classification, FTBFS mails and a failed build's notes.

A log can be gigabytes of anything (a test suite printing binary noise, a runaway loop), so
only its tail is read, in binary, and decoded leniently; an excerpt's lines are cut and its
control characters replaced, so what reaches a mail, a chat or `notes.log` is bounded and
printable.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = [
    "EXCERPT_LINES",
    "TAIL_BYTES",
    "excerpt",
    "read_excerpt",
    "read_first_line",
    "read_tail",
]

# The failure is at the end of an rpmbuild log; 256 KiB holds far more than 40 lines of it.
TAIL_BYTES = 256 * 1024
EXCERPT_LINES = 40
# Most of the window goes before the error line: the cause is printed before rpmbuild's
# verdict, and what follows it is rpmbuild repeating itself ("RPM build errors:").
_AFTER = 8
_MAX_LINE = 400
# rpmbuild's "error: ..." lines (compilers' "file.c:3: error: ..." too) and its verdict.
_FAILURE_LINE = re.compile(r"(?:^|[\s:])error:|Bad exit status")
# C0 controls but tab, and DEL: a terminal escape or a NUL has no place in a mail.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


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


def _printable(line: str) -> str:
    line = _CONTROL.sub("\ufffd", line.rstrip("\r\n"))
    return line if len(line) <= _MAX_LINE else line[:_MAX_LINE] + " [...]"


def excerpt(text: str, size: int = EXCERPT_LINES) -> str:
    """About `size` lines ending a little after the first failure line; the last `size`
    lines when no line looks like a failure."""
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if _FAILURE_LINE.search(line)), None)
    if first is None:
        window = lines[-size:]
    else:
        end = min(len(lines), first + _AFTER)
        window = lines[max(0, end - size) : end]
    return "\n".join(_printable(line) for line in window)


def read_excerpt(log: Path, size: int = EXCERPT_LINES, tail_bytes: int = TAIL_BYTES) -> str:
    """The excerpt of the log file at `log`; empty when it cannot be read."""
    return excerpt(read_tail(log, tail_bytes).decode("utf-8", errors="replace"), size)


def read_first_line(log: Path, limit: int = 1024) -> str:
    """The log's first line (at most `limit` bytes), decoded leniently; empty on error."""
    try:
        with log.open("rb") as stream:
            head = stream.read(limit)
    except OSError:
        return ""
    return head.partition(b"\n")[0].decode("utf-8", errors="replace")
