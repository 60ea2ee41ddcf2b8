"""Writing published files (reports, the deps .repo, mock configurations) so that a browser, an
rsync or mock never sees half of one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Reports are published over HTTP: readable by the web server whatever the umask.
_MODE = 0o644


def write_atomic(path: Path, content: str | bytes) -> None:
    """Write `path` through a temporary file in the same directory and rename it into place.

    No fsync: a report is derived data that the next build writes again, and the rename alone
    is what keeps readers from seeing a partial file.
    """
    data = content.encode("utf-8") if isinstance(content, str) else content
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as stream:
            os.fchmod(stream.fileno(), _MODE)
            stream.write(data)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_if_changed(path: Path, content: bytes) -> None:
    """For the static assets: rewritten only after an upgrade changed them."""
    try:
        if path.read_bytes() == content:
            return
    except OSError:
        pass
    write_atomic(path, content)
