"""The loaded database and the resolved package records handed to consumers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conveyor.metadata.errors import MetadataError, SourceLocation
from conveyor.metadata.merge import Origin

UNDER_REVIEW_TAG = "under-review"


@dataclass(frozen=True)
class Package:
    """One package after template layering, tag overrides and ``%(key)s`` substitution."""

    name: str
    project: str
    upstream_url: str | None
    """The first URL when the metadata lists several; None for a package without one, which
    distroinfo allows (rdoinfo's dependencies rebuilt from a distgit had none in 2018-2020)."""
    distgit: str | None
    """``master-distgit``, else ``distgit``."""
    maintainers: tuple[str, ...]
    component: str | None
    source_branch: str | None
    distro_branch: str | None
    distgit_path: str | None
    tags: tuple[str, ...]
    under_review: bool
    tag: str | None
    """The tag whose overrides were applied, if any."""
    location: SourceLocation = field(compare=False)
    """Where the package is defined (its ``project:`` line)."""
    raw: Mapping[str, Any] = field(hash=False, repr=False)
    """The fully resolved dict; a private copy, read-only at the top level."""

    @property
    def upstream(self) -> str:
        """:attr:`upstream_url` for consumers that need one (building a package does);
        MetadataError at the package's definition when it has none."""
        if self.upstream_url is None:
            raise MetadataError(
                self.location, f"package {self.project!r}: resolved package has no 'upstream'"
            )
        return self.upstream_url


@dataclass(frozen=True, eq=False)
class RdoInfoDatabase:
    """A merged rdoinfo-format database.

    ``packages`` and ``releases`` hold the merged, unresolved entries keyed by project and
    release name; use ``conveyor.metadata.resolve`` to get :class:`Package` records. The
    mappings are read-only views; the values inside them are shared and must not be modified.
    """

    path: Path
    """The entry file."""
    files: tuple[Path, ...]
    """Every file read, in first-import order."""
    info: Mapping[str, Any]
    """All merged top-level sections, including ones this layer does not interpret."""
    package_default: Mapping[str, Any]
    package_configs: Mapping[str, Mapping[str, Any]]
    packages: Mapping[str, Mapping[str, Any]]
    releases: Mapping[str, Mapping[str, Any]]
    components: tuple[Any, ...]
    strict: bool
    package_origins: Mapping[str, Origin] = field(repr=False)
    release_origins: Mapping[str, Origin] = field(repr=False)
    config_locations: Mapping[str, SourceLocation] = field(repr=False)
    default_locations: Mapping[str, SourceLocation] = field(repr=False)
    """Where each ``package-default`` key was last set."""

    @property
    def component_names(self) -> tuple[str, ...]:
        return tuple(
            entry["name"]
            for entry in self.components
            if isinstance(entry, dict) and isinstance(entry.get("name"), str)
        )

    def location(self, project: str) -> SourceLocation:
        """Where a package is defined (the fragment that sets its ``conf``, else its first)."""
        return self.package_origins[project].location
