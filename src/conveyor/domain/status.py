"""Build statuses, spelled as DLRN stores them."""

from __future__ import annotations

from enum import StrEnum


class CommitStatus(StrEnum):
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    RETRY = "RETRY"


# Exit codes of `conveyor run`, as DLRN's: 1 a build failed, 2 retries are pending.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_RETRY = 2
