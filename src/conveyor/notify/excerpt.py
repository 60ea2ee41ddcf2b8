"""The part of a build log worth putting in a message: the lines leading to the first error.

The excerpt is cut where the logs are read (`conveyor.publish.logs`), so that a failed build's
notes (written by the build drivers) and the FTBFS mail show the same lines.
"""

from __future__ import annotations

from conveyor.publish.logs import (
    EXCERPT_LINES,
    TAIL_BYTES,
    excerpt,
    read_excerpt,
    read_first_line,
)

__all__ = ["EXCERPT_LINES", "TAIL_BYTES", "excerpt", "read_excerpt", "read_first_line"]
