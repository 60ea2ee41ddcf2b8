"""Errors the API answers with, in DLRN's shapes (reference/dlrn.md section 14.1)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from conveyor.votes.errors import COMMIT_NOT_FOUND


class ApiError(Exception):
    """Answered as JSON `{"message": ...}` with `status`."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class Unauthorized(Exception):
    """Missing or wrong credentials: 401 `Unauthorized Access` in plain text, as DLRN."""


class Message(BaseModel):
    """The body of every JSON error (ApiError), for the OpenAPI document."""

    model_config = ConfigDict(extra="forbid")
    message: str


UNAUTHORIZED = "Unauthorized Access"
MISSING = "Missing parameters"
NOT_FOUND = COMMIT_NOT_FOUND  # the votes service says it in DLRN's words

# What each error status means across the DLRN API, for the OpenAPI document.
ERROR_DESCRIPTIONS = {
    400: "Missing or invalid parameters, or no such commit",
    401: "Missing or wrong credentials (plain text `Unauthorized Access`)",
    403: "The user lacks the role this call needs, or the name is reserved",
    404: "Not found",
    409: "A build cycle or another publisher holds the repositories; try again",
    410: "The build has been purged",
    413: "The request body is larger than 1 MiB",
    415: "The body is not `application/json`",
    500: "The repositories could not be changed",
}
