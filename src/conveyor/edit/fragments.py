"""Minimal-diff edits of rdoinfo YAML files.

A file is never re-emitted as a whole (that would re-indent the hand-written parts). The fast
strict parser (:mod:`conveyor.metadata.safeyaml`) gives the line where each item of a top-level
list starts; only the lines of the item being edited go through a ruamel.yaml round trip
(comments, key order and quoting kept), and new items are emitted by ruamel.yaml and inserted
as text. The edited text is parsed again and must equal the intended data before it is written,
atomically, so a failed edit leaves the file as it was.
"""

from __future__ import annotations

import copy
import io
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import ScalarString

from conveyor.metadata import MetadataError
from conveyor.metadata.safeyaml import YamlDocument, parse_yaml


class EditError(Exception):
    """An edit that cannot be made; no file was changed."""


# (mapping indent, sequence indent, sequence dash offset): rdoinfo's usual style first, then
# the indented-sequence style some hand-written entries use.
_STYLES = ((2, 2, 0), (2, 4, 2))


def _yaml(style: tuple[int, int, int]) -> YAML:
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096
    y.indent(mapping=style[0], sequence=style[1], offset=style[2])
    return y


def dump_items(items: list[Any], style: tuple[int, int, int] = _STYLES[0]) -> str:
    buf = io.StringIO()
    _yaml(style).dump(CommentedSeq(items), buf)
    return buf.getvalue()


def same_style(new: str, old: Any) -> Any:
    """``new`` in the quoting style of the value it replaces."""
    if isinstance(old, ScalarString) and type(old) is not ScalarString:
        return type(old)(new)
    return new


@dataclass
class YamlFile:
    """One file's text and its strict parse; edits return new text, checked before writing."""

    path: Path
    text: str
    doc: YamlDocument

    @classmethod
    def read(cls, path: Path) -> YamlFile:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise EditError(f"{path}: cannot read: {exc}") from None
        return cls(path, raw.decode("utf-8"), parse_yaml(raw, path))

    def items(self, section: str) -> list[Any]:
        value = self.doc.data.get(section)
        if value is None and section in self.doc.data:
            return []  # `section:` with nothing yet
        if not isinstance(value, list):
            raise EditError(f"{self.path}: no '{section}:' list")
        if len(self.doc.item_positions.get(section, ())) != len(value):
            raise EditError(f"{self.path}: '{section}' is not written out as a plain list")
        return value

    def find(self, section: str, key: str, value: str) -> int | None:
        for i, item in enumerate(self.items(section)):
            if isinstance(item, dict) and item.get(key) == value:
                return i
        return None

    def _span(self, section: str, index: int) -> tuple[int, int]:
        """0-based [start, end) lines of item ``index`` of list ``section``."""
        lines = self.text.splitlines(keepends=True)
        positions = self.doc.item_positions[section]
        start = positions[index].line - 1
        if index + 1 < len(positions):
            end = positions[index + 1].line - 1
        else:
            end = self._section_end(section, lines)
        while end > start + 1 and _blank_or_comment(lines[end - 1]):
            end -= 1  # comments heading the next item or section stay where they are
        return start, end

    def _section_end(self, section: str, lines: list[str]) -> int:
        here = self.doc.key_lines[section]
        later = [line for line in self.doc.key_lines.values() if line > here]
        return min(later) - 1 if later else len(lines)

    def edit_item(self, section: str, index: int, change: Callable[[Any], None]) -> str:
        """New text with item ``index`` changed by ``change`` (a ruamel.yaml mapping)."""
        lines = self.text.splitlines(keepends=True)
        start, end = self._span(section, index)
        fragment = "".join(lines[start:end])
        if not fragment.endswith("\n"):
            fragment += "\n"
        indent = len(fragment) - len(fragment.lstrip(" "))
        body = "".join(
            line[indent:] if line.strip() else line for line in fragment.splitlines(keepends=True)
        )
        for style in _STYLES:
            try:
                loaded = _yaml(style).load(body)
            except YAMLError as exc:
                raise EditError(f"{self.path}:{start + 1}: cannot parse entry: {exc}") from None
            if dump_items(list(loaded), style) == body:
                break
        else:
            style = _STYLES[0]  # irregular layout: the entry is re-emitted in the usual style
        if not isinstance(loaded, list) or len(loaded) != 1 or not isinstance(loaded[0], dict):
            raise EditError(f"{self.path}:{start + 1}: entry is not one mapping")
        change(loaded[0])  # a CommentedMap: the round-trip loader makes no plain dict
        new = dump_items(list(loaded), style)
        new = "".join(
            " " * indent + line if line.strip() else line for line in new.splitlines(keepends=True)
        )
        return "".join(lines[:start]) + new + "".join(lines[end:])

    def append_item(self, section: str, item: CommentedMap) -> str:
        """New text with ``item`` appended to list ``section``."""
        lines = self.text.splitlines(keepends=True)
        items = self.items(section)
        if items:
            _, end = self._span(section, len(items) - 1)
            first = lines[self.doc.item_positions[section][0].line - 1]
            indent = len(first) - len(first.lstrip(" "))
        else:
            return self._first_item(section, item, lines)
        if end and not lines[end - 1].endswith("\n"):
            lines[end - 1] += "\n"
        new = dump_items([item])
        new = "".join(" " * indent + line for line in new.splitlines(keepends=True))
        return "".join(lines[:end]) + new + "".join(lines[end:])

    def _first_item(self, section: str, item: CommentedMap, lines: list[str]) -> str:
        """`section: []` (or `section:` with nothing) on one line becomes a block list of
        `item`, in the usual style; any other empty layout is left to a person."""
        line_number = self.doc.key_lines.get(section)
        if line_number is None:
            raise EditError(f"{self.path}: no '{section}' list")
        line = lines[line_number - 1]
        value = line.split(":", 1)[1].split("#", 1)[0].strip() if ":" in line else "?"
        if not line.startswith(f"{section}:") or value not in ("", "[]", "null", "~"):
            raise EditError(f"{self.path}: '{section}' is empty; add the first entry by hand")
        first = f"{section}:\n" + dump_items([item])
        return "".join(lines[: line_number - 1]) + first + "".join(lines[line_number:])

    def check(self, new_text: str, expected: dict[Any, Any]) -> None:
        """The edited text must parse and hold exactly ``expected``."""
        try:
            parsed = parse_yaml(new_text.encode("utf-8"), self.path)
        except MetadataError as exc:
            raise EditError(f"edit would break the file: {exc}") from None
        if parsed.data != expected:
            raise EditError(f"{self.path}: edit would change more than intended; not written")

    def expected(self) -> dict[Any, Any]:
        """A deep copy of the parsed data, to apply the intended change to."""
        return copy.deepcopy(self.doc.data)


def _blank_or_comment(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` in one rename; its permissions are kept."""
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        Path(tmp).chmod(mode)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
