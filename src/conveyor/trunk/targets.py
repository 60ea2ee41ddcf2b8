"""What the trunk builds: metadata packages turned into build targets with resolved branches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from conveyor.config import Config
from conveyor.domain.aggregate import component_of
from conveyor.domain.names import check_package_name
from conveyor.metadata import Package, load_database, packages_for_tag


class TargetError(Exception):
    pass


@dataclass(frozen=True)
class BuildTarget:
    name: str
    project: str
    upstream: str
    distgit: str
    source_branch: str
    distro_branch: str
    distgit_path: str | None
    component: str | None
    maintainers: tuple[str, ...]
    under_review: bool

    @property
    def tarball_base(self) -> str:
        """The tarball's name stem: the upstream repository's name, as an sdist is named."""
        return self.upstream.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")


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
    targets = [_target(p, config) for p in packages_for_tag(database, config.metadata.tag)]
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
