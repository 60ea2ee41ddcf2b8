"""The one error type of the upper-constraints, reqcheck and release-data tools."""

from __future__ import annotations


class UCError(Exception):
    """A problem the user can fix; the message names the file (and line) at fault."""
