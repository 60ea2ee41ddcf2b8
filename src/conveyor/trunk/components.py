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
from conveyor.domain.labels import CONSISTENT, CURRENT
from conveyor.domain.status import CommitStatus
from conveyor.publish.aggregate import read_components, write_aggregate
from conveyor.store.database import Database
from conveyor.store.models import Commit, PackageStatus
from conveyor.trunk.lock import publish_lock
from conveyor.trunk.publishing import BuildListener, Publisher, commit_relpath, component_base
from conveyor.trunk.targets import BuildTarget, load_targets

log = logging.getLogger(__name__)

TRUNK_LABELS = (CURRENT, CONSISTENT)


def package_components(targets: Sequence[BuildTarget]) -> list[str]:
    """The components of the package list, sorted as the aggregate orders them."""
    return sorted({t.component for t in targets if t.component})


def aggregate_for_label(
    config: Config, label: str, targets: Sequence[BuildTarget] | None = None
) -> str | None:
    """Write the aggregate of `label` (`repos/<label>/`) from the components' labels and
    return its hash; None, writing nothing, when no component has that label yet. The
    promotion API calls this after moving a component's label (promotions.aggregate_hash)."""
    if targets is None:
        targets = load_targets(config)
    # Under the lock every publisher takes (reentrant): a cycle's build, a remote import and
    # a promotion must not interleave a component label's move with its aggregate.
    with publish_lock(config):
        components = package_components(targets)
        parts = read_components(config.repos_dir, label, config.reponame, components)
        if not parts:
            return None
        return write_aggregate(config.repos_dir, label, config.reponame, parts)


def refresh_aggregates(config: Config, targets: Sequence[BuildTarget]) -> dict[str, str]:
    """Rewrite the trunk labels' aggregates from the components' labels as they are now: after
    `Publisher.recover` moved labels, or a process died between a label and its aggregate."""
    if not config.use_components:
        return {}
    hashes = {}
    for label in TRUNK_LABELS:
        if (written := aggregate_for_label(config, label, targets)) is not None:
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
        self.targets = list(targets)
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
            written = aggregate_for_label(self.config, label, self.targets)
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
    the database says, and the trunk's aggregates following the component labels."""
    publisher = Publisher(config, db, targets, with_aggregate_listener(config, targets, listeners))
    publisher.recover()
    refresh_aggregates(config, targets)
    return publisher
