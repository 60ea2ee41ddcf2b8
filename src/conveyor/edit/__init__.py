"""Minimal-diff edits of an rdoinfo checkout (``conveyor meta ...``)."""

from conveyor.edit.editor import MetadataEditor
from conveyor.edit.fragments import EditError, YamlFile, write_atomically

__all__ = ["EditError", "MetadataEditor", "YamlFile", "write_atomically"]
