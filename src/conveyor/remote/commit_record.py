"""commit.yaml from another builder (dlrn.md section 9), parsed and checked before any use.

The file is DLRN's: `commits:` holding one mapping of every `commits` column, each value a
string and `'None'` for null. It comes from another machine, so every value that reaches a
path, a query or a download is checked here, and an error names the key (and its line).

Columns that describe the *other* builder (`id`, `repo_dir`, `distgit_dir`, `flags`,
`component`, `versions_csv`) are not taken over: the local row gets local values. Unknown keys
are ignored so that a newer DLRN adding a column can still be imported.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conveyor.domain.names import InvalidName, check_component, check_hash, check_package_name
from conveyor.domain.paths import repo_relpath
from conveyor.domain.status import CommitStatus
from conveyor.metadata import MetadataError
from conveyor.metadata.safeyaml import YamlDocument, parse_yaml
from conveyor.remote.errors import CommitRecordError

NULL = "None"  # how DLRN writes a null column
# Epoch seconds as the commits table stores them (a signed 32-bit column on PostgreSQL).
_MAX_EPOCH = 2**31 - 1
_NUMBER = re.compile(r"[0-9]{1,10}(?:\.[0-9]+)?")
# A plain RPM file name: no directory part, no hidden file, nothing a shell or URL mangles.
_RPM_FILE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+~^-]*\.rpm")
_SOURCE_SUFFIX = ".src.rpm"
_MAX_BRANCH = 256  # commits.commit_branch is varchar(256)
_IMPORTABLE = (CommitStatus.SUCCESS, CommitStatus.FAILED)


@dataclass(frozen=True)
class RemoteCommit:
    """One remote build, as far as the local builder trusts it."""

    project_name: str
    commit_hash: str
    distro_hash: str
    commit_branch: str | None
    dt_commit: int
    dt_distro: int
    dt_build: int
    status: CommitStatus
    notes: str | None
    artifacts: tuple[str, ...]  # RPM file names in the remote hash directory (none if FAILED)

    @property
    def success(self) -> bool:
        return self.status is CommitStatus.SUCCESS


class _Record:
    """The one mapping under `commits:`, with errors that point at a key and its line."""

    def __init__(self, doc: YamlDocument, source: str) -> None:
        self.doc = doc
        self.source = source
        commits = doc.data.get("commits")
        if not isinstance(commits, list) or len(commits) != 1:
            raise self.error(None, "expected 'commits:' holding a list of exactly one commit")
        item = commits[0]
        if not isinstance(item, dict):
            raise self.error(None, "the entry of 'commits:' must be a mapping")
        self.item: dict[Any, Any] = item

    def error(self, key: str | None, message: str) -> CommitRecordError:
        # The key's line, else the commit's, else the line of `commits:` itself.
        commits = self.doc.data.get("commits")
        if isinstance(commits, list) and len(commits) == 1:
            where = self.doc.item_location("commits", 0, key)
        else:
            where = self.doc.location("commits")
        line = f":{where.line}" if where.line is not None else ""
        named = f"key '{key}': " if key else ""
        return CommitRecordError(f"{self.source}{line}: {named}{message}")

    def text(self, key: str, *, required: bool) -> str | None:
        if key not in self.item:
            if required:
                raise self.error(None, f"key '{key}' is missing")
            return None
        value = self.item[key]
        if not isinstance(value, str):
            raise self.error(key, f"expected a string, found {type(value).__name__}")
        if value == NULL:
            if required:
                raise self.error(key, "is required, found 'None'")
            return None
        return value

    def required(self, key: str) -> str:
        value = self.text(key, required=True)
        assert value is not None
        return value

    def epoch(self, key: str) -> int:
        value = self.item.get(key)
        # DLRN writes strings, and older DLRN wrote dt_commit as a float ('1700000000.0').
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            text = self.required(key)
            if not _NUMBER.fullmatch(text):
                raise self.error(key, f"{text!r} is not a time in epoch seconds")
            number = int(text.split(".", 1)[0])
        if not 0 <= number <= _MAX_EPOCH:
            raise self.error(key, f"{number} is out of range for a time in epoch seconds")
        return number

    def checked(self, key: str, check: Callable[[str], str]) -> str:
        value = self.required(key)
        try:
            return check(value)
        except InvalidName as exc:
            raise self.error(key, str(exc)) from None


def _is_component(name: str) -> bool:
    try:
        check_component(name)
    except InvalidName:
        return False
    return True


def _artifact_name(
    record: _Record, key: str, entry: str, commit_hash: str, distro_hash: str
) -> str:
    """The file name of one `artifacts` entry, which must lie in this commit's directory."""
    parts = entry.split("/")
    if ".." in entry or "\\" in entry or any(p in ("", ".") for p in parts):
        raise record.error(key, f"{entry!r} is refused: not a plain relative path")
    name = parts[-1]
    if not _RPM_FILE.fullmatch(name):
        raise record.error(key, f"{entry!r} is refused: {name!r} is not an RPM file name")
    directory = list(repo_relpath(commit_hash, distro_hash).parts)
    middle = parts[1:-1]
    # The remote may group by component where this builder does not; only the file name counts.
    if len(middle) == len(directory) + 2 and middle[0] == "component" and _is_component(middle[1]):
        middle = middle[2:]
    if parts[0] != "repos" or middle != directory:
        raise record.error(
            key,
            f"{entry!r} is refused: not in this commit's hash directory "
            f"(expected repos/{'/'.join(directory)}/<file>.rpm)",
        )
    return name


def _artifacts(record: _Record, commit_hash: str, distro_hash: str) -> tuple[str, ...]:
    # DLRN renamed the column `rpms` to `artifacts`; older instances still write `rpms`.
    key = "rpms" if "rpms" in record.item and "artifacts" not in record.item else "artifacts"
    listed = record.required(key)
    names = [_artifact_name(record, key, e, commit_hash, distro_hash) for e in listed.split(",")]
    if len(set(names)) != len(names):
        raise record.error(key, "lists the same file twice")
    sources = [n for n in names if n.endswith(_SOURCE_SUFFIX)]
    if len(sources) != 1:
        raise record.error(
            key, f"a successful build has exactly one .src.rpm, found {len(sources)}"
        )
    return tuple(names)


def _status(record: _Record) -> CommitStatus:
    value = record.required("status")
    if value == CommitStatus.RETRY:
        raise record.error(
            "status", "'RETRY': the remote builder will build it again; import its next result"
        )
    if value not in _IMPORTABLE:
        raise record.error("status", f"{value!r} is not SUCCESS or FAILED")
    return CommitStatus(value)


def _branch(record: _Record) -> str | None:
    branch = record.text("commit_branch", required=False)
    if branch is not None and (len(branch) > _MAX_BRANCH or not branch.isprintable()):
        raise record.error("commit_branch", f"{branch[:80]!r} is not a branch name")
    return branch


def parse_commit_record(data: bytes, source: str) -> RemoteCommit:
    """Parse commit.yaml downloaded from `source` (a URL, used in messages)."""
    try:
        # The metadata parser bounds nesting and alias expansion: this file is untrusted too.
        doc = parse_yaml(data, Path("commit.yaml"))
    except MetadataError as exc:
        line = f":{exc.location.line}" if exc.location.line is not None else ""
        raise CommitRecordError(f"{source}{line}: {exc.detail}") from None
    record = _Record(doc, source)
    kind = record.text("type", required=False)
    if kind is not None and kind != "rpm":
        raise record.error("type", f"{kind!r}: only rpm builds are imported")
    if record.text("extended_hash", required=False) is not None:
        # conveyor builds no downstream (extended hash) commits, so the row could not say it.
        raise record.error("extended_hash", "builds with an extended hash are not supported")
    commit_hash = record.checked("commit_hash", lambda v: check_hash(v, "commit hash"))
    distro_hash = record.checked("distro_hash", lambda v: check_hash(v, "distro hash"))
    status = _status(record)
    return RemoteCommit(
        project_name=record.checked("project_name", check_package_name),
        commit_hash=commit_hash,
        distro_hash=distro_hash,
        commit_branch=_branch(record),
        dt_commit=record.epoch("dt_commit"),
        dt_distro=record.epoch("dt_distro"),
        dt_build=record.epoch("dt_build"),
        status=status,
        notes=record.text("notes", required=False),
        # A failed build has no packages; DLRN does not fetch any for it either.
        artifacts=_artifacts(record, commit_hash, distro_hash)
        if status is CommitStatus.SUCCESS
        else (),
    )
