"""The edits the RDO bots and packagers make to an rdoinfo checkout."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap

from conveyor.edit.fragments import EditError, YamlFile, same_style, write_atomically
from conveyor.metadata.safeyaml import parse_yaml

DATABASE_FILES = ("rdo.yml", "deps.yml")
_NVR = re.compile(r"^[A-Za-z0-9._+-]+-[^-\s:]+(:[^-\s]+)?-[^-\s]+$")
_REF = re.compile(r"^[^\s~^:?*\[\\]+$")
_TAG_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


class MetadataEditor:
    """Edits of the rdoinfo checkout at ``root``; each validates, then writes atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._files: dict[str, YamlFile] = {}

    def _file(self, relpath: str) -> YamlFile:
        if relpath not in self._files:
            path = self.root / relpath
            if not path.is_file():
                raise EditError(f"{path}: no such file")
            self._files[relpath] = YamlFile.read(path)
        return self._files[relpath]

    def _database(self) -> list[YamlFile]:
        files = [self._file(n) for n in DATABASE_FILES if (self.root / n).is_file()]
        if not files:
            raise EditError(f"{self.root}: not an rdoinfo checkout (no rdo.yml)")
        return files

    def projects(self) -> set[str]:
        names: set[str] = set()
        for f in self._database():
            for item in f.doc.data.get("packages") or ():
                if isinstance(item, dict) and isinstance(item.get("project"), str):
                    names.add(item["project"])
        return names

    def _known_project(self, project: str) -> None:
        if project not in self.projects():
            raise EditError(f"unknown project {project!r}: not in {', '.join(DATABASE_FILES)}")

    def _tag_file(self, folder: str, tag: str) -> str:
        if not _TAG_NAME.match(tag):
            raise EditError(f"invalid tag name {tag!r}")
        relpath = f"{folder}/{tag}.yml"
        if not (self.root / relpath).is_file():
            raise EditError(f"unknown tag {tag!r}: no {self.root / relpath}")
        return relpath

    def _commit(self, edits: Sequence[tuple[YamlFile, str]]) -> list[Path]:
        for f, text in edits:
            write_atomically(f.path, text)
            # The next edit reads what was written; the other files stay parsed (rdo.yml
            # once for a batch of edits, not once per edit).
            for key, cached in list(self._files.items()):
                if cached is f:
                    self._files[key] = YamlFile(f.path, text, parse_yaml(text.encode(), f.path))
        return [f.path for f, _ in edits]

    # -- set-pin ---------------------------------------------------------------------------
    def set_pins(self, tag: str, pins: Sequence[tuple[str, str]]) -> int:
        """`set_pin` for each (project, source-branch) of `pins`, all or none: on an error
        tags/<tag>.yml is as it was. Returns how many pins changed."""
        path = self.root / self._tag_file("tags", tag)
        before = path.read_text(encoding="utf-8")
        changed = 0
        try:
            for project, source_branch in pins:
                changed += bool(self.set_pin(project, tag, source_branch))
        except EditError:
            write_atomically(path, before)
            self._files.clear()  # what was read holds the undone edits
            raise
        return changed

    def set_pin(self, project: str, tag: str, source_branch: str) -> list[Path]:
        """Set ``tags: {tag: {source-branch: ...}}`` of ``project`` in tags/<tag>.yml."""
        if not _REF.match(source_branch):
            raise EditError(f"invalid source-branch {source_branch!r}")
        f = self._file(self._tag_file("tags", tag))
        self._known_project(project)
        index = f.find("packages", "project", project)
        if index is None:
            raise EditError(f"{f.path}: project {project!r} is not tagged {tag!r}")
        tags = f.items("packages")[index].get("tags")
        if not isinstance(tags, dict):
            raise EditError(f"{f.path}: project {project!r} has no 'tags' mapping")
        current = tags.get(tag)
        if current is not None and not isinstance(current, dict):
            raise EditError(f"{f.path}: tag {tag!r} of {project!r} is not a mapping")
        if isinstance(current, dict) and current.get("source-branch") == source_branch:
            return []

        def change(item: Any) -> None:
            value = item["tags"].get(tag)
            if value is None:
                item["tags"][tag] = CommentedMap([("source-branch", source_branch)])
            else:
                value["source-branch"] = same_style(source_branch, value.get("source-branch"))

        new_text = f.edit_item("packages", index, change)
        expected = f.expected()
        entry = expected["packages"][index]["tags"]
        entry[tag] = {**(entry.get(tag) or {}), "source-branch": source_branch}
        f.check(new_text, expected)
        return self._commit([(f, new_text)])

    # -- set-buildsys-tag ------------------------------------------------------------------
    def set_buildsys_tag(self, project: str, tag: str, nvr: str) -> list[Path]:
        """Set ``buildsys-tags: {tag: NVR}`` of ``project`` in buildsys-tags/<tag>.yml."""
        if not _NVR.match(nvr):
            raise EditError(f"invalid NVR {nvr!r}: expected name-version-release")
        f = self._file(self._tag_file("buildsys-tags", tag))
        self._known_project(project)
        index = f.find("packages", "project", project)
        expected = f.expected()
        if index is None:
            item = CommentedMap([("project", project), ("buildsys-tags", CommentedMap())])
            item["buildsys-tags"][tag] = nvr
            new_text = f.append_item("packages", item)
            if expected.get("packages") is None:  # `packages:` with nothing yet
                expected["packages"] = []
            expected["packages"].append({"project": project, "buildsys-tags": {tag: nvr}})
        else:
            tags = f.items("packages")[index].get("buildsys-tags")
            if not isinstance(tags, dict):
                raise EditError(f"{f.path}: project {project!r} has no 'buildsys-tags' mapping")
            if tags.get(tag) == nvr:
                return []

            def change(entry: Any) -> None:
                old = entry["buildsys-tags"].get(tag)
                entry["buildsys-tags"][tag] = same_style(nvr, old)

            new_text = f.edit_item("packages", index, change)
            expected["packages"][index]["buildsys-tags"][tag] = nvr
        f.check(new_text, expected)
        return self._commit([(f, new_text)])

    # -- add-package -----------------------------------------------------------------------
    def add_package(
        self,
        project: str,
        conf: str,
        *,
        name: str | None = None,
        upstream: str | None = None,
        component: str | None = None,
        maintainers: Sequence[str] = (),
        tags: Sequence[str] = (),
        file: str = "rdo.yml",
    ) -> list[Path]:
        """Append a package entry to ``file`` and tag it (null overrides) in tags/<tag>.yml."""
        if not _TAG_NAME.match(project):
            raise EditError(f"invalid project name {project!r}")
        if file not in DATABASE_FILES:
            raise EditError(f"--file must be one of {', '.join(DATABASE_FILES)}")
        target = self._file(file)
        if project in self.projects():
            raise EditError(f"project {project!r} already exists")
        confs: set[str] = set()
        for f in self._database():
            confs.update((f.doc.data.get("package-configs") or {}).keys())
        if conf not in confs:
            raise EditError(f"unknown conf {conf!r}; known: {', '.join(sorted(confs))}")
        if component is not None:
            components = {
                c.get("name")
                for f in self._database()
                for c in f.doc.data.get("components") or ()
                if isinstance(c, dict)
            }
            if component not in components:
                raise EditError(f"unknown component {component!r}")
        for m in maintainers:
            if "@" not in m or any(c.isspace() for c in m):
                raise EditError(f"invalid maintainer {m!r}: expected an e-mail address")
        item = CommentedMap([("project", project), ("conf", conf)])
        plain: dict[str, Any] = {"project": project, "conf": conf}
        for key, value in (("name", name), ("upstream", upstream), ("component", component)):
            if value is not None:
                item[key] = plain[key] = value
        if maintainers:
            item["maintainers"] = list(maintainers)
            plain["maintainers"] = list(maintainers)
        edits = [(target, target.append_item("packages", item))]
        expected = target.expected()
        expected["packages"].append(plain)
        target.check(edits[0][1], expected)
        for tag in dict.fromkeys(tags):
            tf = self._file(self._tag_file("tags", tag))
            if tf.find("packages", "project", project) is not None:
                raise EditError(f"{tf.path}: project {project!r} is already tagged")
            entry = CommentedMap([("project", project), ("tags", CommentedMap([(tag, None)]))])
            text = tf.append_item("packages", entry)
            tag_expected = tf.expected()
            tag_expected["packages"].append({"project": project, "tags": {tag: None}})
            tf.check(text, tag_expected)
            edits.append((tf, text))
        return self._commit(edits)
