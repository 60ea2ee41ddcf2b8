"""Safe YAML parsing into plain Python data, with the line numbers error messages need.

libyaml (via ``yaml.CSafeLoader``) tokenizes and parses; the tree is built here from its event
stream rather than by ``yaml.load`` or ``yaml.compose`` because:

* libyaml's composer recurses in C and crashes the interpreter on deeply nested input, and
  its scanner is quadratic in flow nesting, so depth must be bounded while events arrive;
* PyYAML shares aliased objects, so an alias bomb stays small until something walks it;
  building copies lets the expansion be counted and refused;
* the builder sees every key's line for free, which ``yaml.load`` throws away.

Scalars resolve exactly as with ``yaml.safe_load`` (YAML 1.1 booleans, ints, floats, null,
timestamps, ``<<`` merge keys); unknown explicit tags are refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from re import Pattern
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

from conveyor.metadata.errors import MetadataError, SourceLocation

MAX_DEPTH = 64
"""Deepest nesting accepted; rdoinfo needs 6."""

MAX_ALIAS_NODES = 100_000
"""Nodes that alias references may add to one document (each reference is a full copy)."""

_YAML = "tag:yaml.org,2002:"
_STR = _YAML + "str"
_NULL = _YAML + "null"
_BOOL = _YAML + "bool"
_MERGE_TAG = _YAML + "merge"
_CONSTRUCTED = frozenset({_YAML + "int", _YAML + "float", _YAML + "timestamp", _YAML + "binary"})
_COLLECTION_TAGS = frozenset({None, "!", _YAML + "map", _YAML + "seq"})


class _MergeKey:
    """The plain ``<<`` key: its value's mappings are merged into the enclosing mapping."""


_MERGE = _MergeKey()
_NO_KEY = object()

# safe_load has no constructor for the ``=`` and ``!``/``&``/``*`` resolvers; such plain
# scalars stay strings here instead of failing the whole file.
_IMPLICIT: dict[str, list[tuple[str, Pattern[str]]]] = {
    first: kept
    for first, resolvers in Resolver.yaml_implicit_resolvers.items()
    if (
        kept := [
            (tag, regexp)
            for tag, regexp in resolvers
            if tag in _CONSTRUCTED or tag in (_NULL, _BOOL, _MERGE_TAG)
        ]
    )
}
_CONSTRUCTOR = SafeConstructor()


@dataclass(frozen=True)
class ItemPosition:
    """Where one item of a top-level list starts, and the lines of its keys if a mapping."""

    line: int
    key_lines: Mapping[Any, int] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class YamlDocument:
    """One parsed file: its root mapping plus line numbers for the first levels."""

    path: Path
    data: dict[Any, Any]
    key_lines: Mapping[Any, int]
    """Line of each top-level key."""
    section_key_lines: Mapping[Any, Mapping[Any, int]]
    """For top-level keys holding a mapping: the line of each key in it."""
    item_positions: Mapping[Any, Sequence[ItemPosition]]
    """For top-level keys holding a list: the position of each item."""

    def location(self, key: Any = None) -> SourceLocation:
        return SourceLocation(self.path, self.key_lines.get(key))

    def section_location(self, section: str, key: Any) -> SourceLocation:
        lines = self.section_key_lines.get(section, {})
        return SourceLocation(self.path, lines.get(key, self.key_lines.get(section)))

    def item_location(self, section: str, index: int, key: Any = None) -> SourceLocation:
        """Line of ``key`` in item ``index`` of list ``section`` (else the item's own line)."""
        positions = self.item_positions.get(section, ())
        items = self.data.get(section)
        # Positions follow the list only when it was written out (not aliased or merged in).
        if not isinstance(items, list) or len(positions) != len(items):
            return self.location(section)
        position = positions[index]
        return SourceLocation(self.path, position.key_lines.get(key, position.line))


class _Frame:
    __slots__ = (
        "anchor",
        "container",
        "depth",
        "is_map",
        "items",
        "key",
        "key_line",
        "key_lines",
        "line",
        "merges",
        "size",
    )

    def __init__(self, is_map: bool, depth: int, line: int, anchor: str | None) -> None:
        self.is_map = is_map
        self.container: Any = {} if is_map else []
        self.depth = depth
        self.line = line
        self.anchor = anchor
        self.key: Any = _NO_KEY
        self.key_line = line
        self.key_lines: dict[Any, int] | None = None
        self.items: list[ItemPosition] | None = None
        self.merges: list[dict[Any, Any]] | None = None
        self.size = 0


def _line(event: Event) -> int:
    mark = event.start_mark
    return mark.line + 1 if mark is not None else 0


def _clone(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clone(v) for v in value]
    return value


class _Builder:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.open_anchors: set[str] = set()
        self.alias_nodes = 0
        self.documents = 0
        self.root: Any = None
        self.root_key_lines: Mapping[Any, int] = {}
        self.section_key_lines: dict[Any, Mapping[Any, int]] = {}
        self.item_positions: dict[Any, Sequence[ItemPosition]] = {}

    def fail(self, line: int, message: str) -> MetadataError:
        return MetadataError(SourceLocation(self.path, line), message)

    def run(self, loader: yaml.CSafeLoader) -> None:
        # Typed loosely: the event class is tested by identity below, which mypy cannot narrow.
        get_event: Callable[[], Any] = loader.get_event
        stack = self.stack
        while (event := get_event()) is not None:
            kind = event.__class__
            if kind is ScalarEvent:
                value = event.value
                if event.tag is not None or (event.implicit[0] and value[:1] in _IMPLICIT):
                    value = self.scalar(event, event.start_mark.line + 1)
                # Fast path for the commonest event: a plain string value in a mapping.
                top = stack[-1] if stack else None
                if (
                    top is not None
                    and top.is_map
                    and top.key is not _NO_KEY
                    and top.key is not _MERGE
                    and value is not _MERGE
                    and event.anchor is None
                ):
                    top.container[top.key] = value
                    top.key = _NO_KEY
                    top.size += 1
                    continue
                if event.anchor is not None:
                    self.anchors[event.anchor] = (value, 1)
                self.attach(value, 1, event.start_mark.line + 1, None)
            elif kind is MappingStartEvent or kind is SequenceStartEvent:
                self.push(event, kind is MappingStartEvent)
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                self.pop()
            elif kind is AliasEvent:
                self.alias(event)
            elif kind is DocumentStartEvent:
                self.documents += 1
                if self.documents > 1:
                    raise self.fail(event.start_mark.line + 1, "expected a single YAML document")

    def scalar(self, event: ScalarEvent, line: int) -> Any:
        value: str = event.value
        tag = event.tag
        if tag is None or tag == "!":
            if not event.implicit[0]:
                return value
            resolvers = _IMPLICIT.get(value[:1])
            if resolvers is None:
                return value
            for candidate, regexp in resolvers:
                if regexp.match(value):
                    tag = candidate
                    break
            else:
                return value
        if tag == _STR:
            return value
        if tag == _NULL:
            return None
        if tag == _MERGE_TAG:
            return _MERGE
        try:
            if tag == _BOOL:
                return SafeConstructor.bool_values[value.lower()]
            if tag in _CONSTRUCTED:
                node = ScalarNode(tag, value)
                return SafeConstructor.yaml_constructors[tag](_CONSTRUCTOR, node)
        except (yaml.YAMLError, KeyError, ValueError) as exc:
            raise self.fail(line, f"invalid {tag} value {value!r}: {exc}") from None
        raise self.fail(line, f"unsupported YAML tag {tag!r}")

    def push(self, event: MappingStartEvent | SequenceStartEvent, is_map: bool) -> None:
        line = _line(event)
        depth = len(self.stack) + 1
        if depth > MAX_DEPTH:
            raise self.fail(line, f"YAML nesting deeper than {MAX_DEPTH} levels")
        if event.tag not in _COLLECTION_TAGS:
            raise self.fail(line, f"unsupported YAML tag {event.tag!r}")
        frame = _Frame(is_map, depth, line, event.anchor)
        if is_map:
            if depth <= 2 or (depth == 3 and not self.stack[-1].is_map):
                frame.key_lines = {}
        elif depth == 2:
            frame.items = []
        if event.anchor is not None:
            self.open_anchors.add(event.anchor)
        self.stack.append(frame)

    def pop(self) -> None:
        frame = self.stack.pop()
        value = frame.container
        if frame.merges:
            merged: dict[Any, Any] = {}
            for source in frame.merges:
                merged.update(source)
            merged.update(value)
            value = merged
        size = frame.size + 1
        if frame.anchor is not None:
            self.open_anchors.discard(frame.anchor)
            self.anchors[frame.anchor] = (value, size)
        if frame.depth == 2:
            root = self.stack[-1]
            if root.is_map and not isinstance(root.key, _MergeKey):
                if frame.key_lines is not None:
                    self.section_key_lines[root.key] = frame.key_lines
                if frame.items is not None:
                    self.item_positions[root.key] = frame.items
        self.attach(value, size, frame.line, frame.key_lines)

    def alias(self, event: AliasEvent) -> None:
        line = _line(event)
        name = event.anchor or ""
        if name in self.open_anchors:
            raise self.fail(line, f"recursive YAML alias *{name}")
        try:
            value, size = self.anchors[name]
        except KeyError:
            raise self.fail(line, f"undefined YAML alias *{name}") from None
        self.alias_nodes += size
        if self.alias_nodes > MAX_ALIAS_NODES:
            raise self.fail(
                line,
                f"YAML aliases expand to more than {MAX_ALIAS_NODES} nodes "
                "(refusing a possible 'billion laughs' document)",
            )
        self.attach(_clone(value), size, line, None)

    def attach(self, value: Any, size: int, line: int, key_lines: Mapping[Any, int] | None) -> None:
        if not self.stack:
            self.root = value
            self.root_key_lines = key_lines or {}
            return
        top = self.stack[-1]
        top.size += size
        if not top.is_map:
            top.container.append("<<" if value is _MERGE else value)
            if top.items is not None:
                top.items.append(ItemPosition(line, key_lines or {}))
            return
        key = top.key
        if key is _NO_KEY:
            if isinstance(value, dict | list):
                raise self.fail(line, "a mapping or list cannot be used as a mapping key")
            top.key = value
            top.key_line = line
            if top.key_lines is not None and value is not _MERGE:
                top.key_lines[value] = line
            return
        top.key = _NO_KEY
        if key is _MERGE:
            self.merge_key(top, value)
        else:
            top.container[key] = "<<" if value is _MERGE else value

    def merge_key(self, frame: _Frame, value: Any) -> None:
        sources = list(reversed(value)) if isinstance(value, list) else [value]
        if not all(isinstance(source, dict) for source in sources):
            raise self.fail(frame.key_line, "'<<' merge key needs a mapping or a list of mappings")
        if frame.merges is None:
            frame.merges = []
        frame.merges.extend(sources)


def _yaml_error(path: Path, text: bytes, exc: yaml.YAMLError) -> MetadataError:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}"
        problem = exc.problem or "syntax error"
        if exc.context:
            context_line = exc.context_mark.line + 1 if exc.context_mark else mark.line + 1
            problem = f"{problem} ({exc.context} at line {context_line})"
        return MetadataError(
            SourceLocation(path, mark.line + 1), f"malformed YAML at {where}: {problem}"
        )
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count(b"\n", 0, max(exc.position, 0)) + 1
        return MetadataError(
            SourceLocation(path, line), f"malformed YAML at line {line}: {exc.reason}"
        )
    return MetadataError(path, f"malformed YAML: {exc}")


def parse_yaml(text: bytes, path: Path) -> YamlDocument:
    """Parse one YAML file whose root must be a mapping (an empty file counts as ``{}``)."""
    builder = _Builder(path)
    loader = yaml.CSafeLoader(text)
    try:
        builder.run(loader)
    except yaml.YAMLError as exc:
        raise _yaml_error(path, text, exc) from None
    finally:
        loader.dispose()
    root = builder.root
    if root is None:
        root = {}
    if not isinstance(root, dict):
        raise MetadataError(path, f"top level must be a mapping, not {type(root).__name__}")
    return YamlDocument(
        path=path,
        data=root,
        key_lines=builder.root_key_lines,
        section_key_lines=builder.section_key_lines,
        item_positions=builder.item_positions,
    )
