"""Keeps the trunk's aggregate labels (`repos/current/`, `repos/consistent/`) in step with the
components' own labels when components are on (reference/dlrn.md section 11).

As in DLRN, a build that moves its component's `current` (and `consistent`) rebuilds the
aggregate of that label from every component of the package list that has the label.
DLRN also requires the component to appear in the database; here that always holds, since a
component label only ever points at a recorded build (`Publisher.recover` re-derives labels
from the database).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy.orm import Session

from conveyor.config import Config
from conveyor.domain.builds import BuildTarget
from conveyor.domain.labels import CONSISTENT, CURRENT
from conveyor.domain.paths import commit_relpath, component_base
from conveyor.domain.status import CommitStatus
from conveyor.metadata.targets import package_components
from conveyor.publish.aggregate import aggregate_for_label
from conveyor.store.database import Database
from conveyor.store.models import Commit, PackageStatus
from conveyor.trunk.publishing import BuildListener, Publisher

log = logging.getLogger(__name__)

TRUNK_LABELS = (CURRENT, CONSISTENT)


def refresh_aggregates(config: Config, targets: Sequence[BuildTarget]) -> dict[str, str]:
    """Rewrite the trunk labels' aggregates from the components' labels as they are now: after
    `Publisher.recover` moved labels, or a process died between a label and its aggregate."""
    if not config.use_components:
        return {}
    hashes = {}
    for label in TRUNK_LABELS:
        if (written := aggregate_for_label(config, label, package_components(targets))) is not None:
            hashes[label] = written
    return hashes


def with_aggregate_listener(
    config: Config, targets: Sequence[BuildTarget], listeners: Sequence[BuildListener]
) -> list[BuildListener]:
    """`listeners`, plus an AggregateListener when components are on: what every Publisher
    of a builder (cycle, remote import) is given."""
    if not config.use_components:
        return list(listeners)
    return [*listeners, AggregateListener(config, targets)]


class AggregateListener:
    """A BuildListener: after a build moved its component's labels, the aggregates follow."""

    def __init__(self, config: Config, targets: Sequence[BuildTarget]) -> None:
        self.config = config
        self.components = package_components(targets)
        # The newest aggregate hash written per trunk label.
        self.hashes: dict[str, str] = {}

    def recorded(
        self, session: Session, commit: Commit, target: BuildTarget, before: PackageStatus | None
    ) -> None:
        """Nothing to do until the labels moved."""

    def _label_points_at(self, component: str, label: str, commit: Commit) -> bool:
        repos = self.config.repos_dir
        link = repos.joinpath(*component_base(component).parts, label)
        build = repos.joinpath(*commit_relpath(commit).parts)
        return link.is_symlink() and link.resolve() == build.resolve()

    def published(self, commit: Commit, target: BuildTarget) -> None:
        if (
            not self.config.use_components
            or commit.status != CommitStatus.SUCCESS
            or target.under_review
            or not commit.component
        ):
            return
        for label in TRUNK_LABELS:
            # Only the labels this build moved, as DLRN does: `consistent` stays where it was
            # when the build left its component inconsistent.
            if not self._label_points_at(commit.component, label, commit):
                continue
            written = aggregate_for_label(self.config, label, self.components)
            if written is not None:
                self.hashes[label] = written
                log.info("aggregate %s: %s", label, written)


def ready_publisher(
    config: Config,
    db: Database,
    targets: Sequence[BuildTarget],
    listeners: Sequence[BuildListener] = (),
) -> Publisher:
    """A publisher for this builder, after undoing any interrupted publish: labels back where
    the database says, and the trunk's aggregates following the component labels. The
    `listeners` are the assembled ones (`conveyor.assembly.Builder.listeners`)."""
    publisher = Publisher(config, db, targets, listeners)
    publisher.recover()
    refresh_aggregates(config, targets)
    return publisher
