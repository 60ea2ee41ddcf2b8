"""The one error of the closure service: bad input a user can fix."""

from __future__ import annotations


class ClosureError(Exception):
    """A folder that is no repository, unreadable metadata, a repository given twice."""
