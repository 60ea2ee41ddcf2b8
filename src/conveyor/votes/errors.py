"""Why the votes service refuses a vote or a question about votes.

Its own exception, so that the service needs nothing from the interfaces: the API answers a
`VoteRefused` with its `status` and `message` (DLRN's wording, kept verbatim), a command line
would print the message.
"""

from __future__ import annotations

# DLRN's messages: CI jobs and dlrnapi-client match on them.
COMMIT_NOT_FOUND = "commit_hash+distro_hash+extended_hash combination not found"
AGGREGATE_NOT_FOUND = "aggregate_hash not found"
NO_VOTE = "No vote found"
BAD_MAX_AGE = "max_age must be 0 or a positive number of hours"


class VoteRefused(Exception):
    """A vote or a query the caller got wrong (an unknown commit, no such vote): `message`
    says why; `status` is the HTTP status DLRN answers it with (400 for all of today's)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
