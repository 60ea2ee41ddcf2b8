"""When `consistent` moves: DLRN's rule, kept as one named, pure decision."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from conveyor.domain.builds import BuildTarget
from conveyor.domain.status import CommitStatus


def is_consistent(
    built: BuildTarget,
    peers: Sequence[BuildTarget],
    newest_status: Mapping[str, CommitStatus | str | None],
) -> bool:
    """Whether the repository of a new successful build of `built` is consistent: `built` is
    not under review (its builds are never linked into others' repositories), and every
    package sharing the repository (`peers`, `built` among them) has a newest build, which
    succeeded. `newest_status` maps a package name to its newest build's status, as recorded
    with that build (so it already counts the new one)."""
    if built.under_review:
        return False
    return all(newest_status.get(peer.name) == CommitStatus.SUCCESS for peer in peers)
