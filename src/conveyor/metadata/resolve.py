"""Per-package resolution with rdoinfo's (distroinfo's) semantics, plus safety checks.

Layers, later winning key by key: ``package-default``, ``package-configs[conf]``, the merged
package entry, and, only when a tag is requested, the override mapping under
``tags[<tag>]``. Then every top-level string is %-formatted once against the layered dict
(``%(project)s``); nested values are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

from conveyor.domain.names import InvalidName, check_component, check_package_name
from conveyor.metadata.errors import MetadataError, SourceLocation
from conveyor.metadata.model import UNDER_REVIEW_TAG, Package, RdoInfoDatabase

# git runs "<transport>::<address>" through a remote helper, which may run commands.
_GIT_TRANSPORT_HELPER = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*::")
_UNSAFE_CHARACTER = re.compile(r"[\s\x00-\x1f\x7f]")


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


class _Resolver:
    """Resolution of one package, knowing where to point when something is wrong."""

    def __init__(self, db: RdoInfoDatabase, project: str, tag: str | None) -> None:
        self.db = db
        self.project = project
        self.tag = tag
        self.entry = db.packages[project]
        self.conf: Any = self.entry.get("conf")

    def where(self, key: str | None = None) -> SourceLocation:
        origin = self.db.package_origins[self.project]
        if key is None:
            return origin.location
        found = None if self.tag is None else origin.override_location(self.tag, key)
        if found is None:
            found = origin.location_of(key)
        if found is None and isinstance(self.conf, str) and key in self.template:
            found = self.db.config_locations.get(self.conf)
        if found is None and key in self.db.package_default:
            found = self.db.default_locations.get(key)
        return found or origin.location

    def error(self, key: str | None, message: str) -> MetadataError:
        return MetadataError(self.where(key), f"package {self.project!r}: {message}")

    @property
    def template(self) -> dict[str, Any]:
        if "conf" not in self.entry:
            return {}
        if not isinstance(self.conf, str) or self.conf not in self.db.package_configs:
            raise self.error("conf", f"unknown conf template {self.conf!r}")
        return dict(self.db.package_configs[self.conf] or {})

    def base(self) -> dict[str, Any]:
        """Default, template and entry layered, before any tag override."""
        layered = dict(self.db.package_default)
        layered.update(self.template)
        layered.update(self.entry)
        return layered

    def tags(self, layered: dict[str, Any]) -> dict[str, Any]:
        tags = layered.get("tags")
        if tags is None:
            return {}
        if not isinstance(tags, dict):
            raise self.error("tags", "'tags' must be a mapping of tag names")
        for name, override in tags.items():
            if not isinstance(name, str):
                raise self.error("tags", f"tag name {name!r} must be a string (quote it)")
            if override is not None and not isinstance(override, dict):
                raise self.error("tags", f"tag {name!r} must be null or a mapping of overrides")
        return tags

    def substituted(self, layered: dict[str, Any]) -> dict[str, Any]:
        resolved = dict(layered)
        for key, value in layered.items():
            if isinstance(value, str) and "%" in value:
                try:
                    resolved[key] = value % layered
                except KeyError as exc:
                    raise self.error(
                        key,
                        f"substitution failed for key {key!r} ({value!r}): "
                        f"unknown key {exc.args[0]!r}",
                    ) from None
                except (TypeError, ValueError) as exc:
                    raise self.error(
                        key, f"substitution failed for key {key!r} ({value!r}): {exc}"
                    ) from None
        return resolved

    def checked(self, key: str, value: Any, check: Callable[[str], object]) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.error(key, f"{key!r} must be a string, not {value!r} (quote it)")
        try:
            check(value)
        except InvalidName as exc:
            raise self.error(key, f"{key!r}: {exc}") from None
        return value

    def mapping(self, base: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """The substituted dict (tag overrides applied) and its tags, not yet validated."""
        layered = self.base() if base is None else base
        tags = self.tags(layered)
        if self.tag is not None and tags.get(self.tag):
            layered = {**layered, **tags[self.tag]}
            tags = self.tags(layered)
        return self.substituted(layered), tags

    def package(self, base: dict[str, Any] | None = None) -> Package:
        raw, tags = self.mapping(base)
        name = self.checked("name", raw.get("name"), check_package_name)
        if name is None:
            raise self.error(None, "resolved package has no 'name'")
        project = self.checked("project", raw.get("project"), check_package_name)
        upstream = raw.get("upstream")
        if isinstance(upstream, list):
            upstream = upstream[0] if upstream else None
        upstream = self.checked("upstream", upstream, _check_url)
        distgit_key = "master-distgit" if raw.get("master-distgit") is not None else "distgit"
        maintainers = raw.get("maintainers") or []
        if not isinstance(maintainers, list) or not all(isinstance(m, str) for m in maintainers):
            raise self.error("maintainers", "'maintainers' must be a list of e-mail addresses")
        return Package(
            name=name,
            project=project or self.project,
            upstream_url=upstream,
            distgit=self.checked(distgit_key, raw.get(distgit_key), _check_url),
            maintainers=tuple(maintainers),
            component=self.checked("component", raw.get("component"), check_component),
            source_branch=self.checked("source-branch", raw.get("source-branch"), _check_ref),
            distro_branch=self.checked("distro-branch", raw.get("distro-branch"), _check_ref),
            distgit_path=self.checked("distgit-path", raw.get("distgit-path"), _check_subpath),
            tags=tuple(tags),
            under_review=UNDER_REVIEW_TAG in tags,
            tag=self.tag,
            location=self.where(),
            raw=MappingProxyType(_copy(raw)),
        )


def _check_url(value: str) -> None:
    if (
        not value
        or value.startswith("-")
        or _UNSAFE_CHARACTER.search(value)
        or _GIT_TRANSPORT_HELPER.match(value)
        or ".." in value.split("/")
    ):
        raise InvalidName(f"unsafe repository URL {value!r}")


def _check_ref(value: str) -> None:
    if not value or value.startswith("-") or _UNSAFE_CHARACTER.search(value):
        raise InvalidName(f"unsafe git reference {value!r}")


def _check_subpath(value: str) -> None:
    # rdoinfo writes these with a leading "/" but means a folder inside the distgit.
    if not value.strip("/") or _UNSAFE_CHARACTER.search(value) or ".." in value.split("/"):
        raise InvalidName(f"unsafe path {value!r}")


def resolve_package(db: RdoInfoDatabase, project: str, tag: str | None = None) -> Package:
    """One package by project, with ``tag``'s overrides applied when given."""
    if project not in db.packages:
        raise MetadataError(db.path, f"no package with project {project!r}")
    return _Resolver(db, project, tag).package()


def resolve_mapping(db: RdoInfoDatabase, project: str, tag: str | None = None) -> dict[str, Any]:
    """What :func:`resolve_package` puts in ``raw``, for reading only and cheaper: no checks
    beyond layering and substitution, and nested values are the database's own (not copied).
    Queries match filters against every package this way and resolve only what they show."""
    if project not in db.packages:
        raise MetadataError(db.path, f"no package with project {project!r}")
    return _Resolver(db, project, tag).mapping()[0]


def packages_for_release(db: RdoInfoDatabase, tag: str | None) -> list[Package]:
    """Packages carrying ``tag`` with its overrides applied; for ``None`` every package as is."""
    packages = []
    for project in db.packages:
        resolver = _Resolver(db, project, tag)
        base = resolver.base()
        if tag is None or tag in resolver.tags(base):
            packages.append(resolver.package(base))
    return packages
