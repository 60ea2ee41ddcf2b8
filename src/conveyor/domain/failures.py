"""FAILED or RETRY: a build that failed for a passing reason is tried again (dlrn.md §10)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from conveyor.domain.status import CommitStatus

# DLRN's list of transient causes, as regular expressions over rpmbuild.log lines.
TRANSIENT_PATTERNS: tuple[str, ...] = (
    r"Error: Nothing to do",
    r"Error downloading packages",
    r"No more mirrors to try",
    r"Cannot retrieve metalink for repository",
    r"Could not retrieve mirrorlist",
    r"Failed to download metadata for repo",
    r"Failed to synchronize cache",
    r"No route to host",
    r"Device or resource busy",
    r"Temporary failure in name resolution",
    r"Could not resolve host",
    r"distroinfo.*exit code:? 128",
    r"Error fetching remote",
    r"Connection timed out",
    r"Curl error \(\d+\)",
)


def compile_patterns(patterns: Sequence[str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns)) if patterns else re.compile("(?!)")


def classify_failure(
    log_lines: Iterable[str], transient: re.Pattern[str], retries_so_far: int, maxretries: int
) -> CommitStatus:
    """RETRY while a transient cause shows in the log and retries remain; FAILED otherwise."""
    if retries_so_far >= maxretries:
        return CommitStatus.FAILED
    if any(transient.search(line) for line in log_lines):
        return CommitStatus.RETRY
    return CommitStatus.FAILED
