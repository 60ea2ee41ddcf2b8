"""What the trunk builds: metadata packages turned into build targets with resolved branches."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from conveyor.config import Config
from conveyor.domain.aggregate import component_of
from conveyor.domain.builds import BuildTarget
from conveyor.domain.names import check_package_name
from conveyor.metadata import Package, load_database, packages_for_release


class TargetError(Exception):
    pass


def _target(package: Package, config: Config) -> BuildTarget:
    if not package.distgit:
        raise TargetError(f"{package.location}: package {package.name} has no master-distgit")
    return BuildTarget(
        name=check_package_name(package.name),
        project=package.project,
        upstream=package.upstream,
        distgit=package.distgit,
        source_branch=package.source_branch or config.source_branch,
        distro_branch=package.distro_branch or config.distro_branch,
        distgit_path=package.distgit_path,
        component=component_of(package.component, config.use_components),
        maintainers=package.maintainers,
        under_review=package.under_review,
    )


def load_targets(config: Config) -> list[BuildTarget]:
    """The packages to build, from the configured metadata (MetadataError on bad metadata)."""
    database = load_database(Path(config.metadata.path))
    targets = [_target(p, config) for p in packages_for_release(database, config.metadata.release)]
    return sorted(targets, key=lambda t: t.name)


def select_targets(targets: Sequence[BuildTarget], only: Sequence[str]) -> list[BuildTarget]:
    """The targets named in `only` (by package or project name); all when it is empty."""
    if not only:
        return list(targets)
    by_name = {t.project: t for t in targets} | {t.name: t for t in targets}
    unknown = [name for name in only if name not in by_name]
    if unknown:
        raise TargetError(f"unknown package(s): {', '.join(unknown)}")
    return sorted({by_name[name] for name in only}, key=lambda t: t.name)


def package_components(targets: Sequence[BuildTarget]) -> list[str]:
    """The components of the package list, sorted as the aggregate orders them."""
    return sorted({t.component for t in targets if t.component})


def components_of(config: Config) -> list[str]:
    """The components of the configured package list (MetadataError on bad metadata)."""
    return package_components(load_targets(config))
