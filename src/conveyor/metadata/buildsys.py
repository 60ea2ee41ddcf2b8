"""The desired content of buildsys tags, as rdoinfo declares it: `buildsys-tags/<tag>.yml`
files, each a `packages:` list of `{project, buildsys-tags: {<tag>: NVR}}`, imported by
`buildsys-tags.yml`. A tag holds builds by package name (the NVR's name), as Koji does: one
NVR per name.

`version-locked` is rdoinfo's marker, not a tag: `buildsys-tags: {version-locked: [tags]}`
names the tags where the project's NVR must not be moved by a bot (`tags propose`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from conveyor.domain.nvr import Nvr
from conveyor.metadata.errors import MetadataError, SourceLocation
from conveyor.metadata.yamlfiles import collect_documents

__all__ = [
    "BUILDSYS_TAGS_ENTRY",
    "VERSION_LOCKED",
    "DesiredTags",
    "TagEntry",
    "check_tag_name",
    "load_desired_tags",
]

BUILDSYS_TAGS_ENTRY = "buildsys-tags.yml"
VERSION_LOCKED = "version-locked"
# Koji's tag names: letters, digits and `._+-`; no `/` (a tag becomes a folder), no `..`.
_TAG_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,199}$")
# Folders of the tag store's tree (conveyor.publish.tagstore), and `diff`, which the API's
# /api/tags/diff would shadow: no tag may take them.
RESERVED_TAG_NAMES = frozenset({"versions", "pool", "index", "repodata", "diff", "repos"})


def check_tag_name(name: str) -> str:
    """`name` if it can name a buildsys tag; ValueError saying why not."""
    if isinstance(name, str) and len(name) > 200:
        raise ValueError(f"invalid buildsys tag name {name[:40]!r}...: longer than 200 characters")
    if not isinstance(name, str) or not _TAG_NAME.fullmatch(name) or ".." in name:
        raise ValueError(
            f"invalid buildsys tag name {name!r}: letters, digits and '._+-' only, "
            "starting with a letter or digit"
        )
    if name.lower() in RESERVED_TAG_NAMES or name == VERSION_LOCKED:
        raise ValueError(f"invalid buildsys tag name {name!r}: reserved")
    return name


@dataclass(frozen=True)
class TagEntry:
    """One declared build: `project`'s NVR in a tag, and where it was declared."""

    project: str
    nvr: str
    where: SourceLocation

    @property
    def name(self) -> str:
        return Nvr.parse(self.nvr).name


@dataclass(frozen=True)
class DesiredTags:
    """Every tag's declared content: tag -> package name -> entry."""

    tags: Mapping[str, Mapping[str, TagEntry]]  # every declared tag, an empty file's too
    locked: Mapping[str, frozenset[str]] = field(default_factory=dict)  # project -> tags

    def content(self, tag: str) -> dict[str, str]:
        """`{name: NVR}` of one tag (empty for a tag nothing declares)."""
        return {name: entry.nvr for name, entry in self.tags.get(tag, {}).items()}

    def project_of(self, tag: str, name: str) -> str | None:
        entry = self.tags.get(tag, {}).get(name)
        return entry.project if entry else None

    def is_locked(self, project: str, tag: str) -> bool:
        return tag in self.locked.get(project, frozenset())


def load_desired_tags(rdoinfo: Path) -> DesiredTags:
    """Read `buildsys-tags.yml` (and what it imports) in the rdoinfo folder `rdoinfo` (or the
    file itself). MetadataError, naming file and line, for a malformed file, an entry that is
    not an NVR, an invalid tag name, or two NVRs of one package name in one tag."""
    entry = rdoinfo / BUILDSYS_TAGS_ENTRY if rdoinfo.is_dir() else rdoinfo
    tags: dict[str, dict[str, TagEntry]] = {}
    locked: dict[str, set[str]] = {}
    for document in collect_documents(entry):
        _declare_file(tags, document.path)
        packages = document.data.get("packages")
        if packages is None:
            continue
        if not isinstance(packages, list):
            raise MetadataError(document.location("packages"), "'packages' must be a list")
        for index, item in enumerate(packages):
            where = document.item_location("packages", index)
            if not isinstance(item, dict) or not isinstance(item.get("project"), str):
                raise MetadataError(where, "each package needs a 'project' name")
            project = item["project"]
            declared = item.get("buildsys-tags") or {}
            if not isinstance(declared, dict):
                raise MetadataError(
                    document.item_location("packages", index, "buildsys-tags"),
                    f"{project}: 'buildsys-tags' must be a mapping of tag to NVR",
                )
            for tag, value in declared.items():
                at = document.item_location("packages", index, "buildsys-tags")
                if tag == VERSION_LOCKED:
                    # rdoinfo writes it as a list, a single name or a mapping of names.
                    names = list(value) if isinstance(value, (list, dict)) else [value]
                    locked.setdefault(project, set()).update(str(n) for n in names if n)
                    continue
                _add(tags, project, str(tag), value, at)
    return DesiredTags(
        MappingProxyType({t: MappingProxyType(c) for t, c in tags.items()}),
        MappingProxyType({p: frozenset(t) for p, t in locked.items()}),
    )


def _declare_file(tags: dict[str, dict[str, TagEntry]], path: Path) -> None:
    """`buildsys-tags/<tag>.yml` declares `<tag>`, even while it lists no build."""
    if path.parent.name != "buildsys-tags" or path.suffix != ".yml":
        return
    if path.stem == VERSION_LOCKED:
        return
    try:
        tags.setdefault(check_tag_name(path.stem), {})
    except ValueError as exc:
        raise MetadataError(path, str(exc)) from None


def _add(
    tags: dict[str, dict[str, TagEntry]],
    project: str,
    tag: str,
    nvr: object,
    where: SourceLocation,
) -> None:
    try:
        check_tag_name(tag)
    except ValueError as exc:
        raise MetadataError(where, f"{project}: {exc}") from None
    if nvr is None or nvr == "":
        raise MetadataError(where, f"{project}: {tag}: no NVR given")
    if not isinstance(nvr, str):
        raise MetadataError(where, f"{project}: {tag}: {nvr!r} is not an NVR")
    try:
        name = Nvr.parse(nvr).name
    except ValueError as exc:
        raise MetadataError(where, f"{project}: {tag}: {exc}") from None
    content = tags.setdefault(tag, {})
    other = content.get(name)
    if other is not None and other.nvr != nvr:
        raise MetadataError(
            where,
            f"{project}: {tag} holds two NVRs of {name}: {nvr} and {other.nvr} "
            f"({other.project}, {other.where})",
        )
    content[name] = TagEntry(project, nvr.strip(), where)
