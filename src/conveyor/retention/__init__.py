"""Retention: `purge` removes old hash directories without leaving a dangling link, and `fsck`
checks that the tree and the database agree."""

from conveyor.retention.fsck import Problem, check_trunk
from conveyor.retention.plan import BuildRecord, PurgePlan, cutoff_for, plan_purge
from conveyor.retention.purging import PurgeReport, RetentionError, purge

__all__ = [
    "BuildRecord",
    "Problem",
    "PurgePlan",
    "PurgeReport",
    "RetentionError",
    "check_trunk",
    "cutoff_for",
    "plan_purge",
    "purge",
]
