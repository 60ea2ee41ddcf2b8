"""Each package's last build, for `conveyor status` (and later the API and the dashboard)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select

from conveyor.config import Config
from conveyor.domain.builds import BuildTarget
from conveyor.domain.labels import CONSISTENT, CURRENT
from conveyor.domain.nvr import nvr_from_artifacts
from conveyor.domain.paths import component_base
from conveyor.metadata.targets import load_targets
from conveyor.publish.aggregate import published_hash
from conveyor.publish.repostore import RepoStore
from conveyor.store.database import Database
from conveyor.store.models import Promotion
from conveyor.store.queries import standing

NO_BUILD = "NO_BUILD"


@dataclass(frozen=True)
class PackageStatus:
    name: str
    status: str  # SUCCESS, FAILED, RETRY or NO_BUILD
    commit_hash: str | None
    nvr: str | None
    dt_build: int | None
    notes: str | None


@dataclass(frozen=True)
class TrunkStatus:
    packages: list[PackageStatus]
    labels: dict[str, str | None]  # label -> hash directory it points at


def trunk_status(config: Config) -> TrunkStatus:
    targets = load_targets(config)
    db = Database(config.database_url)
    try:
        with db.reader() as session:
            known = standing(session, [t.name for t in targets])
            promoted = sorted(
                name
                for name in session.scalars(select(Promotion.promotion_name).distinct())
                if name not in (CURRENT, CONSISTENT)
            )
    finally:
        db.close()
    packages = []
    for target in targets:
        row = known.last_build(target.name)
        packages.append(
            PackageStatus(
                name=target.name,
                status=row.status if row else NO_BUILD,
                commit_hash=row.commit_hash if row else None,
                nvr=nvr_from_artifacts(row.artifact_list) if row else None,
                dt_build=row.dt_build if row else None,
                notes=row.notes if row else None,
            )
        )
    return TrunkStatus(packages, _labels(config, targets, promoted))


def _labels(
    config: Config, targets: Sequence[BuildTarget], promoted: Sequence[str]
) -> dict[str, str | None]:
    """Where `current`, `consistent` and the promotion labels point: for the trunk, or per
    component plus the aggregate each trunk-wide label serves when components are on."""
    store = RepoStore.of(config)
    names = (CURRENT, CONSISTENT)
    labels: dict[str, str | None] = {}
    if not config.use_components:
        labels = {name: store.label_target(name) for name in names}
        for name in promoted:
            try:
                labels[name] = store.label_target(name)
            except ValueError:  # a name recorded by DLRN that conveyor never links
                continue
        return labels
    for component in sorted({t.component for t in targets if t.component}):
        base = component_base(component)
        for name in names:
            labels[f"{base}/{name}"] = store.label_target(name, base)
    for name in names:
        served = published_hash(config.repos_dir, name, config.reponame)
        labels[f"{name} (aggregate)"] = served
    return labels
