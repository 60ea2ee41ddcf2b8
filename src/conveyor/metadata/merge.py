"""Deep-merging the documents of an rdoinfo database, remembering where each piece came from.

The rules are rdoinfo's (distroinfo's): each document's ``packages`` / ``releases`` lists
become dicts keyed by ``project`` / ``name``, an entry repeated inside one file merged into
the first by the same rules (even when the two disagree: ``conveyor lint`` judges that, see
:class:`Duplicate`); then the documents are merged in import order: mappings recursively,
lists concatenated, ``null`` never replacing a value, anything else replaced by the later
value.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from conveyor.metadata.errors import MetadataError, SourceLocation
from conveyor.metadata.safeyaml import YamlDocument

KEYED_SECTIONS = {"packages": "project", "releases": "name"}
MAPPING_SECTIONS = ("package-default", "package-configs")
LIST_SECTIONS = ("components",)
_CONTAINERS = (dict, list)


def merge_values(base: Any, extra: Any) -> Any:
    """Merge ``extra`` over ``base`` without modifying either (results may share parts)."""
    return _Merger().merged(base, extra)


class _Merger:
    """:func:`merge_values` for many documents in a row, copying each container at most once.

    Merging document after document with a function that copies what it changes would copy
    a package's dict (and its ``buildsys-tags``) once per file naming it: most of the load
    time for rdoinfo's 28,000 NVR entries. Instead, a container is copied the first time the
    merge changes it, and later merges change that copy in place. The parsed documents are
    never modified: they are shared with the parse cache and with other imports.
    """

    def __init__(self) -> None:
        self.owned: dict[int, Any] = {}
        """Copies made by this merge, by id; holding them keeps their ids from being reused."""

    def merged(self, base: Any, extra: Any) -> Any:
        owned = self.owned
        if isinstance(base, dict) and isinstance(extra, dict):
            if id(base) in owned:
                target = base
            else:
                target = dict(base)
                owned[id(target)] = target
            for key, value in extra.items():
                if key not in target:
                    target[key] = value
                elif isinstance(value, _CONTAINERS):
                    target[key] = self.merged(target[key], value)
                elif value is not None:
                    target[key] = value
            return target
        if isinstance(base, list) and isinstance(extra, list):
            if id(base) not in owned:
                base = list(base)
                owned[id(base)] = base
            base.extend(extra)
            return base
        return base if extra is None else extra


@dataclass(slots=True, eq=False)
class Fragment:
    """One entry of a ``packages:`` or ``releases:`` list in one file (read-only).

    Not a frozen dataclass: rdoinfo has ~34,000 fragments and a frozen dataclass takes three
    times as long to create."""

    document: YamlDocument
    section: str
    index: int

    @property
    def entry(self) -> dict[Any, Any]:
        entry: dict[Any, Any] = self.document.data[self.section][self.index]
        return entry

    def location(self, key: str | None = None) -> SourceLocation:
        return self.document.item_location(
            self.section, self.index, key or KEYED_SECTIONS[self.section]
        )


@dataclass(frozen=True)
class Origin:
    """Every fragment that contributed to one merged package or release, in merge order."""

    fragments: tuple[Fragment, ...]
    defining: int = 0
    """Index of the fragment that defines the entry: the last to set ``conf``, else the first."""

    @property
    def location(self) -> SourceLocation:
        """The key line (``project:`` / ``name:``) of the defining fragment."""
        return self.fragments[self.defining].location()

    @property
    def locations(self) -> tuple[SourceLocation, ...]:
        return tuple(fragment.location() for fragment in self.fragments)

    def location_of(self, key: str) -> SourceLocation | None:
        """Where the merged value of ``key`` was last set, if any fragment set it."""
        for fragment in reversed(self.fragments):
            if fragment.entry.get(key) is not None:
                return fragment.location(key)
        return None

    def override_location(self, tag: str, key: str) -> SourceLocation | None:
        """Where ``tags[tag]`` last overrode ``key`` (the line of that ``tags:``)."""
        for fragment in reversed(self.fragments):
            tags = fragment.entry.get("tags")
            override = tags.get(tag) if isinstance(tags, dict) else None
            if isinstance(override, dict) and override.get(key) is not None:
                return fragment.location("tags")
        return None


@dataclass
class MergedInfo:
    """The merged top-level sections plus the provenance of every keyed entry."""

    info: dict[str, Any] = field(default_factory=dict)
    fragments: dict[str, dict[Any, list[Fragment]]] = field(
        default_factory=lambda: {section: {} for section in KEYED_SECTIONS}
    )
    defining: dict[str, dict[Any, int]] = field(
        default_factory=lambda: {section: {} for section in KEYED_SECTIONS}
    )

    section_locations: dict[str, dict[Any, SourceLocation]] = field(
        default_factory=lambda: {section: {} for section in MAPPING_SECTIONS}
    )
    """For package-default and package-configs: where each key was last set."""

    def add_fragments(
        self, document: YamlDocument, section: str, keys: Iterable[tuple[Any, int]]
    ) -> None:
        """The entries of ``document``'s ``section`` (``(key, index)`` pairs) as fragments."""
        fragments = self.fragments[section]
        defining = self.defining[section]
        items = document.data[section]
        for key, index in keys:
            found = fragments.setdefault(key, [])
            if items[index].get("conf") is not None:
                defining[key] = len(found)
            found.append(Fragment(document, section, index))

    def origins(self, section: str) -> dict[Any, Origin]:
        defining = self.defining[section]
        return {
            key: Origin(tuple(fragments), defining.get(key, 0))
            for key, fragments in self.fragments[section].items()
        }


def _conflicting_key(first: dict[Any, Any], again: dict[Any, Any]) -> Any:
    """A key both entries set to different scalar values, or None."""
    for key, value in again.items():
        if key in first and value is not None and first[key] is not None:
            if isinstance(value, dict | list) or isinstance(first[key], dict | list):
                continue  # nested values combine by merging
            if first[key] != value:
                return key
    return None


@dataclass(frozen=True)
class Duplicate:
    """An entry of a ``packages`` / ``releases`` list whose key an earlier entry of the same
    file already has. distroinfo merges it into the earlier one (later scalars winning), and
    so does the loader; ``conveyor lint`` and strict loading report it."""

    document: YamlDocument
    section: str
    key: str
    first: int
    """Index of the first entry with this key."""
    index: int
    """Index of this entry."""
    differs: Any
    """A key the entries so far and this one set to different values (None: they agree)."""

    @property
    def location(self) -> SourceLocation:
        return self.document.item_location(self.section, self.index, KEYED_SECTIONS[self.section])

    @property
    def first_location(self) -> SourceLocation:
        return self.document.item_location(self.section, self.first, KEYED_SECTIONS[self.section])

    def error(self) -> MetadataError:
        """Both lines, and what differs: ``duplicate project 'x' in 'packages' (first at line
        N): 'conf' differs``."""
        what = f": '{self.differs}' differs" if self.differs is not None else ""
        return MetadataError(
            self.location,
            f"duplicate {KEYED_SECTIONS[self.section]} {self.key!r} in '{self.section}' "
            f"(first at line {self.first_location.line}){what}",
        )


def _index_section(
    document: YamlDocument, section: str
) -> tuple[dict[Any, Any], list[tuple[Any, int]], list[Duplicate]]:
    """A list section as a dict by key (duplicates merged as distroinfo's ``list2dict``
    does), (key, index) for every item, and the duplicates."""
    items = document.data.get(section)
    if items is None:
        return {}, [], []
    if not isinstance(items, list):
        raise MetadataError(document.location(section), f"'{section}' must be a list")
    key_name = KEYED_SECTIONS[section]
    indexed: dict[Any, Any] = {}
    keys: list[tuple[Any, int]] = []
    first_index: dict[Any, int] = {}
    repeated: list[Duplicate] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise MetadataError(
                document.item_location(section, index),
                f"'{section}' entries must be mappings, not {item!r}",
            )
        key = item.get(key_name)
        if not isinstance(key, str) or not key:
            raise MetadataError(
                document.item_location(section, index, key_name),
                f"'{section}' entry without a '{key_name}' string "
                f"(keys: {', '.join(map(str, item))})",
            )
        if key in indexed:
            conflict = _conflicting_key(indexed[key], item)
            repeated.append(Duplicate(document, section, key, first_index[key], index, conflict))
            indexed[key] = merge_values(indexed[key], item)
        else:
            indexed[key] = item
            first_index[key] = index
        keys.append((key, index))
    return indexed, keys, repeated


def duplicates(document: YamlDocument, section: str) -> list[Duplicate]:
    """The repeated entries of one file's ``section`` (``packages`` or ``releases``), in file
    order; MetadataError when the section cannot be read at all."""
    return _index_section(document, section)[2]


def _checked_document(document: YamlDocument) -> None:
    data = document.data
    for section in MAPPING_SECTIONS:
        value = data.get(section)
        if value is not None and not isinstance(value, dict):
            raise MetadataError(document.location(section), f"'{section}' must be a mapping")
    for name, template in (data.get("package-configs") or {}).items():
        if template is not None and not isinstance(template, dict):
            raise MetadataError(
                document.section_location("package-configs", name),
                f"package-configs template {name!r} must be a mapping",
            )
    for section in LIST_SECTIONS:
        value = data.get(section)
        if value is not None and not isinstance(value, list):
            raise MetadataError(document.location(section), f"'{section}' must be a list")


def merge_documents(documents: Iterable[YamlDocument], strict: bool = False) -> MergedInfo:
    """Merge documents in order, as distroinfo does; ``strict`` refuses an entry repeated
    within one file (even an identical one), which distroinfo merges silently."""
    merged = MergedInfo()
    merger = _Merger()
    prepared: dict[int, dict[str, Any]] = {}
    for document in documents:
        data = prepared.get(id(document))
        if data is None:
            # Checked, indexed and recorded as an origin once: a file imported twice is
            # merged twice but is still one origin.
            _checked_document(document)
            data = {key: value for key, value in document.data.items() if key != "import"}
            for section in KEYED_SECTIONS:
                if section in data:
                    data[section], keys, repeated = _index_section(document, section)
                    if strict and repeated:
                        raise repeated[0].error()
                    merged.add_fragments(document, section, keys)
            prepared[id(document)] = data
        merged.info = merger.merged(merged.info, data)
        for section in MAPPING_SECTIONS:
            value = data.get(section)
            if isinstance(value, dict):
                locations = merged.section_locations[section]
                for key in value:
                    locations[key] = document.section_location(section, key)
    return merged
