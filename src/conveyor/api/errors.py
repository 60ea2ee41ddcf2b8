"""Errors the API answers with, in DLRN's shapes (reference/dlrn.md section 14.1)."""

from __future__ import annotations


class ApiError(Exception):
    """Answered as JSON `{"message": ...}` with `status`."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class Unauthorized(Exception):
    """Missing or wrong credentials: 401 `Unauthorized Access` in plain text, as DLRN."""


MISSING = "Missing parameters"
NOT_FOUND = "commit_hash+distro_hash+extended_hash combination not found"
