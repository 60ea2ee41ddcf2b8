"""What a cycle builds in which order: dependency layers, and rebuilds of the packages whose
build root got a new version of a dependency (config `build_order`, `rebuild_reverse_deps`)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection, Mapping, Sequence

from conveyor.config import BuildOrder, Config
from conveyor.domain.builds import BuildJob, BuildTarget, Mirrors
from conveyor.domain.depgraph import layers
from conveyor.domain.status import CommitStatus
from conveyor.store.database import Database
from conveyor.store.queries import already_built, last_processed, standing
from conveyor.trunk.ordering import (
    ORDERING_DEFINES,
    BuildPlan,
    SpecSource,
    order_jobs,
    plan_build_order,
    plan_rebuilds,
    version_changes,
    version_from_artifacts,
)

log = logging.getLogger(__name__)


def _unbuilt_sources(
    config: Config, db: Database, targets: Sequence[BuildTarget], jobs: Sequence[BuildJob]
) -> list[SpecSource]:
    """Specs of the packages not built this cycle, at their last built distgit commit: they
    carry dependencies between the packages that are."""
    building = {job.target.name for job in jobs}
    others = [t for t in targets if t.name not in building]
    with db.reader() as session:
        last = last_processed(session, [t.name for t in others])
    sources = []
    for target in others:
        row = last.get(target.name)
        mirror = Mirrors.under(config.datadir, target.name).distgit
        if row is not None and row.distro_hash and mirror.exists():
            sources.append(SpecSource(target.name, mirror, row.distro_hash, target.distgit_path))
    return sources


async def plan_cycle(
    config: Config, db: Database, targets: Sequence[BuildTarget], jobs: Sequence[BuildJob]
) -> tuple[list[list[BuildJob]], BuildPlan | None]:
    """The jobs in the layers they build in (one layer in commit-time order)."""
    wanted = config.build_order is BuildOrder.DEPENDENCIES or config.rebuild_reverse_deps
    if not jobs or not wanted:
        return [list(jobs)], None
    others = _unbuilt_sources(config, db, targets, jobs)
    plan = await asyncio.to_thread(
        plan_build_order,
        jobs,
        config.datadir / "cache" / "specdeps",
        others,
        config.git_timeout,
        defines={**ORDERING_DEFINES, **config.rpm_defines},  # `%if`s choose as in the builds
    )
    if config.build_order is BuildOrder.DEPENDENCIES:
        return plan.layers, plan
    return [list(jobs)], plan


def success_versions(db: Database, names: Sequence[str]) -> dict[str, str | None]:
    """Each package's Version at its last success (None when it never built)."""
    with db.reader() as session:
        known = standing(session, names)
        return {
            name: version_from_artifacts(success.artifacts if success else None)
            for name in names
            for success in [known.last_success(name)]
        }


def rebuild_jobs(
    config: Config,
    db: Database,
    plan: BuildPlan,
    before: Mapping[str, str | None],
    after: Mapping[str, str],
    candidates: Mapping[str, BuildTarget],
    built: Collection[str],
) -> list[list[BuildJob]]:
    """Rebuilds of the last good commit of each package whose build root changed version,
    in dependency layers. `candidates` are the packages this cycle may build."""
    rebuilds = plan_rebuilds(plan.graph, version_changes(before, after), built)
    jobs = []
    with db.reader() as session:
        known = standing(session, [r.package for r in rebuilds if r.package in candidates])
        for rebuild in rebuilds:
            target = candidates.get(rebuild.package)
            row = known.last_build(rebuild.package)
            if target is None or row is None or row.status != CommitStatus.SUCCESS:
                continue
            if already_built(
                session, target.name, row.commit_hash, row.distro_hash or "", rebuild.extended_hash
            ):
                continue
            log.info(
                "%s: rebuilt for %s",
                target.name,
                ", ".join(f"{c.package} {c.old} → {c.new}" for c in rebuild.triggers),
            )
            jobs.append(
                BuildJob(
                    target=target,
                    mirrors=Mirrors.under(config.datadir, target.name),
                    commit_hash=row.commit_hash,
                    dt_commit=row.dt_commit or 0,
                    commit_branch=row.commit_branch or target.source_branch,
                    distro_hash=row.distro_hash or "",
                    dt_distro=row.dt_distro or 0,
                    extended_hash=rebuild.extended_hash,
                    dt_extended=int(time.time()),
                )
            )
    return order_jobs(jobs, layers(plan.graph))
