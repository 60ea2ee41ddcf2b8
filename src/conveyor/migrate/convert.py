"""DLRN's stored values turned into what conveyor's columns hold.

DLRN's SQLite files hold what its code and its YAML loaders (test fixtures, `db_migrate.py`,
`dlrn-remote`) wrote, and SQLite keeps any type in any column. Each value is converted to its
column's type here; a value that cannot be is reported with its row, never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, Integer, String, Table

# What DLRN's code means by NULL in these columns (its model defaults; DLRN's own Alembic
# migration b6f658f481f8 filled `type` the same way). conveyor's columns are NOT NULL.
NULL_MEANS: dict[tuple[str, str], object] = {("commits", "type"): "rpm", ("commits", "flags"): 0}
# Columns in which DLRN reads the string 'None' as no value: `commit.yaml` writes every column
# as a string, and loadYAML, dlrn-remote and getshardedcommitdir() each undo that for these.
# Kept as 'None', a component would put the commit's repository under `component/None/`.
NONE_STRING_IS_NULL = frozenset(
    {("commits", "component"), ("commits", "extended_hash"), ("commits", "artifacts")}
)
_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "f", "no", "n", "off"})


class IssueKind(StrEnum):
    INVALID = "invalid"  # no value of the column's type: cannot be stored
    NULL = "null"  # NULL in a column that must have a value: cannot be stored
    TOO_LONG = "too long"  # longer than the column: PostgreSQL refuses it, SQLite keeps it
    NONE_STRING = "'None'"  # DLRN's YAML spelling of NULL, stored as NULL


@dataclass(frozen=True)
class Issue:
    column: str
    kind: IssueKind
    detail: str


class _Invalid(ValueError):
    pass


def _integer(value: object) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float | Decimal) and value == int(value):
        return int(value)  # DLRN's API stores time.mktime() floats in integer columns
    if isinstance(value, str | bytes):
        text = value.decode() if isinstance(value, bytes) else value
        try:
            return int(text.strip())
        except ValueError:
            pass
    raise _Invalid(f"{value!r} is not an integer")


def _boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | Decimal) and value in (0, 1):
        return bool(value)  # SQLite and MySQL store booleans as 0/1
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise _Invalid(f"{value!r} is not a boolean")


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise _Invalid("bytes that are not UTF-8") from None
    if isinstance(value, int | float | Decimal):
        return str(value)  # SQLite gives numbers back for digits-only text in some columns
    raise _Invalid(f"{value!r} is not text")


def convert_row(table: Table, raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[Issue]]:
    """One DLRN row as conveyor's `table` stores it, and what was wrong with it."""
    row: dict[str, Any] = {}
    issues: list[Issue] = []
    for column in table.columns:
        name = column.key
        value = raw.get(name)
        if (table.name, name) in NONE_STRING_IS_NULL and value == "None":
            issues.append(Issue(name, IssueKind.NONE_STRING, "imported as NULL"))
            value = None
        if value is None:
            value = NULL_MEANS.get((table.name, name))
        if value is None:
            if not column.nullable:
                issues.append(Issue(name, IssueKind.NULL, "NULL where a value is required"))
            row[name] = None
            continue
        try:
            if isinstance(column.type, Boolean):
                value = _boolean(value)
            elif isinstance(column.type, Integer):
                value = _integer(value)
            elif isinstance(column.type, String):
                value = _text(value)
                length = column.type.length
                if length is not None and len(value) > length:
                    issues.append(
                        Issue(name, IssueKind.TOO_LONG, f"{len(value)} characters, over {length}")
                    )
        except _Invalid as exc:
            issues.append(Issue(name, IssueKind.INVALID, str(exc)))
        row[name] = value
    return row, issues
