"""Strict validation of an rdoinfo-format database: every problem, each at ``file:line``.

It checks what distroinfo 0.6.3 and rdoinfo's ``verify.py`` check (required ``name`` /
``project`` / ``maintainers`` with e-mail addresses, known ``conf`` templates, ``%(key)s``
substitution, releases with ``name`` and ``repos``, repos with ``name`` and a ``branch``,
legal release status values, known components and CBS tag names, non-empty NVRs, the special
``version-locked`` buildsys tag listing CBS tags) and what they let through: unknown keys (with
a "did you mean" suggestion), a project listed twice in one file (with both lines and a key
that differs when the entries disagree: the loader, like distroinfo, keeps the later values) or
defined in two places, a release listed twice in one file with differing values, a
``source-branch`` that is neither a valid git ref name nor a full commit sha, and more than one
release in development.

A problem that stops the database from being read at all (malformed YAML, a broken import)
is reported alone.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.metadata.errors import MetadataError, SourceLocation
from conveyor.metadata.loader import database_from_documents
from conveyor.metadata.merge import KEYED_SECTIONS, duplicates
from conveyor.metadata.model import RdoInfoDatabase
from conveyor.metadata.resolve import resolve_package
from conveyor.metadata.safeyaml import YamlDocument
from conveyor.metadata.yamlfiles import collect_documents, entry_file

if TYPE_CHECKING:
    from conveyor.metadata.cache import ParseCache

TOP_KEYS = frozenset(
    {"import", "releases", "package-default", "package-configs", "packages", "components"}
)
PACKAGE_KEYS = frozenset(
    {
        "project",
        "name",
        "conf",
        "maintainers",
        "component",
        "upstream",
        "source-branch",
        "tags",
        "buildsys-tags",
        "distgit",
        "patches",
        "master-distgit",
        "review-patches",
        "review-origin",
        "centos-distgit",
        "distgit-path",
        "distro-branch",
    }
)
OVERRIDE_KEYS = PACKAGE_KEYS - {"project", "conf", "tags", "buildsys-tags"}
RELEASE_KEYS = frozenset(
    {"name", "status", "branch", "identifier", "upstream_branch", "tags_map", "repos", "fedora"}
)
REPO_KEYS = frozenset({"name", "buildsys", "buildsys-tags", "distrepos", "branch", "special"})
DISTREPO_KEYS = frozenset({"name", "url"})
COMPONENT_KEYS = frozenset({"name"})
STATUSES = ("development", "maintained", "extended_maintenance", "eol")
VERSION_LOCKED_TAG = "version-locked"
"""rdoinfo's special tag, in two places. Under ``tags`` it keeps rdoinfo's upper-constraints
bot from moving the package's pins; its override, if any, names releases (or their ``-uc``
tags) rather than package keys. Under ``buildsys-tags`` it is not a CBS tag but lists the CBS
tags the NVR bot must not move (rdoinfo's ``verify.py`` accepts it, with any value)."""
UC_SUFFIX = "-uc"
"""``<release>-uc``: rdoinfo's tag pinning a release to upper-constraints."""

_SHA = re.compile(r"[0-9a-f]{40}")
_HEXISH = re.compile(r"(?=.*[a-f])(?=.*[0-9])[0-9a-f]{7,}")
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


@dataclass(frozen=True, order=True)
class Problem:
    location: SourceLocation
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


def suggestion(key: str, known: frozenset[str] | set[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest known key, or nothing."""
    candidates = sorted(known)
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    if not close:
        normalised = {c.replace("_", "-"): c for c in candidates}
        hit = normalised.get(key.replace("_", "-"))
        close = [hit] if hit else []
    return f" (did you mean '{close[0]}'?)" if close else ""


def ref_problem(value: Any) -> str | None:
    """Why ``value`` is neither a git tag or branch name nor a full commit sha, or None."""
    if not isinstance(value, str):
        return f"{value!r} is a {type(value).__name__}, not a string (quote it)"
    if _SHA.fullmatch(value):
        return None
    reason = None
    if not value:
        reason = "it is empty"
    elif value.startswith("-"):
        reason = "it starts with '-'"
    elif _REF_FORBIDDEN.search(value):
        reason = "it contains a space, a control character or one of ~^:?*[\\"
    elif ".." in value or "@{" in value or value == "@":
        reason = "it contains '..' or '@{'"
    elif value.startswith("/") or value.endswith("/") or "//" in value:
        reason = "it has an empty path component"
    elif value.endswith("."):
        reason = "it ends with '.'"
    elif any(part.startswith(".") or part.endswith(".lock") for part in value.split("/")):
        reason = "a component starts with '.' or ends with '.lock'"
    elif _HEXISH.fullmatch(value):
        reason = f"it looks like a commit sha of {len(value)} hex digits (use all 40)"
    if reason is None:
        return None
    return f"{value!r} is neither a git tag, branch nor 40-hex commit sha: {reason}"


class _File:
    """One parsed file and its text, to point at nested keys the parser gives no line for."""

    def __init__(self, document: YamlDocument) -> None:
        self.document = document
        try:
            self.lines = document.path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            self.lines = []

    def item_span(self, section: str, index: int) -> tuple[int, int]:
        positions = self.document.item_positions.get(section, ())
        if index >= len(positions):
            line = self.document.key_lines.get(section, 1)
            return line, line
        start = positions[index].line
        end = positions[index + 1].line - 1 if index + 1 < len(positions) else len(self.lines)
        return start, end

    def nested(self, section: str, index: int, *keys: Any) -> SourceLocation:
        """The line of ``keys`` (a path of nested mapping keys) inside one list item."""
        start, end = self.item_span(section, index)
        line = start
        for key in keys:
            pattern = re.compile(r"^\s*(?:-\s+)?[\"']?" + re.escape(str(key)) + r"[\"']?\s*:")
            for number in range(line, min(end, len(self.lines)) + 1):
                if pattern.match(self.lines[number - 1]):
                    line = number
                    break
        return SourceLocation(self.document.path, line)


class _Linter:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, where: SourceLocation, message: str) -> None:
        self.problems.append(Problem(where, message))

    def unknown_keys(
        self,
        mapping: Mapping[Any, Any],
        known: frozenset[str] | set[str],
        what: str,
        where: Any,
    ) -> None:
        for key in mapping:
            if key not in known:
                self.add(
                    where(key),
                    f"unknown key {key!r} in {what}{suggestion(str(key), known)}",
                )

    # -- per file -------------------------------------------------------------------------

    def check_file(self, file: _File, cbs_tags: set[str], tag_names: set[str]) -> None:
        document = file.document
        data = document.data
        self.unknown_keys(data, TOP_KEYS, "the top level", document.location)
        self.check_duplicates(document)
        packages = data.get("packages")
        if isinstance(packages, list):
            self.check_packages(file, packages, cbs_tags, tag_names)
        configs = data.get("package-configs")
        if isinstance(configs, dict):
            for name, template in configs.items():
                if isinstance(template, dict):
                    self.unknown_keys(
                        template,
                        PACKAGE_KEYS,
                        f"package-configs template {name!r}",
                        lambda key, n=name: document.section_location("package-configs", n),
                    )
        default = data.get("package-default")
        if isinstance(default, dict):
            self.unknown_keys(
                default,
                PACKAGE_KEYS,
                "package-default",
                lambda key: document.section_location("package-default", key),
            )
        release_list = data.get("releases")
        if isinstance(release_list, list):
            self.check_releases(file, release_list)
        components = data.get("components")
        if isinstance(components, list):
            for index, component in enumerate(components):
                where = document.item_location("components", index)
                if not isinstance(component, dict) or not isinstance(component.get("name"), str):
                    self.add(where, f"component entries need a 'name', not {component!r}")
                else:
                    self.unknown_keys(
                        component,
                        COMPONENT_KEYS,
                        f"component {component['name']!r}",
                        lambda key, i=index: document.item_location("components", i, key),
                    )

    def check_duplicates(self, document: YamlDocument) -> None:
        """An entry repeated in one file. The loader merges it as distroinfo does (later
        values winning); entries that disagree are reported as a strict load refuses them,
        naming both lines and a key that differs. An identical repeated project is harmless
        but still reported."""
        for section in KEYED_SECTIONS:
            try:
                repeated = duplicates(document, section)
            except MetadataError:
                continue  # the merge reports it
            for duplicate in repeated:
                if duplicate.differs is not None:
                    error = duplicate.error()
                    self.add(error.location, error.detail)
                elif section == "packages":
                    self.add(
                        duplicate.location,
                        f"duplicate project {duplicate.key!r} in this file "
                        f"(first at line {duplicate.first_location.line})",
                    )

    def check_packages(
        self, file: _File, packages: list[Any], cbs_tags: set[str], tag_names: set[str]
    ) -> None:
        document = file.document
        for index, entry in enumerate(packages):
            if not isinstance(entry, dict):
                continue  # the merge reports it
            project = entry.get("project")
            if not isinstance(project, str):
                continue
            what = f"package {project!r}"
            self.unknown_keys(
                entry,
                PACKAGE_KEYS,
                what,
                lambda key, i=index: document.item_location("packages", i, key),
            )
            if "source-branch" in entry:
                self.check_ref(
                    document.item_location("packages", index, "source-branch"),
                    what,
                    entry["source-branch"],
                )
            tags = entry.get("tags")
            if isinstance(tags, dict):
                for tag, override in tags.items():
                    if not isinstance(override, dict):
                        continue
                    known = tag_names if tag == VERSION_LOCKED_TAG else OVERRIDE_KEYS
                    self.unknown_keys(
                        override,
                        known,
                        f"tag {tag!r} override of {what}",
                        lambda key, i=index, t=tag: file.nested("packages", i, "tags", t, key),
                    )
                    if tag != VERSION_LOCKED_TAG and "source-branch" in override:
                        self.check_ref(
                            file.nested("packages", index, "tags", tag, "source-branch"),
                            f"{what} (tag {tag!r})",
                            override["source-branch"],
                        )
            buildsys = entry.get("buildsys-tags")
            if buildsys is not None and not isinstance(buildsys, dict):
                self.add(
                    document.item_location("packages", index, "buildsys-tags"),
                    f"{what}: 'buildsys-tags' must be a mapping of CBS tag to NVR",
                )
            elif isinstance(buildsys, dict):
                for cbs_tag, nvr in buildsys.items():
                    if cbs_tag == VERSION_LOCKED_TAG:
                        self.check_locked_cbs_tags(
                            file.nested("packages", index, "buildsys-tags", cbs_tag),
                            what,
                            nvr,
                            cbs_tags,
                        )
                        continue
                    if cbs_tag not in cbs_tags:
                        self.add(
                            file.nested("packages", index, "buildsys-tags", cbs_tag),
                            f"{what}: unknown buildsys tag {cbs_tag!r} (not in any release's "
                            f"repos){suggestion(str(cbs_tag), cbs_tags)}",
                        )
                    if not isinstance(nvr, str) or not nvr.strip():
                        self.add(
                            file.nested("packages", index, "buildsys-tags", cbs_tag),
                            f"{what}: buildsys tag {cbs_tag!r} has no NVR ({nvr!r})",
                        )

    def check_locked_cbs_tags(
        self, where: SourceLocation, what: str, locked: Any, cbs_tags: set[str]
    ) -> None:
        """``buildsys-tags: {version-locked: [cbs tag, ...]}``: the CBS tags whose NVR is
        locked (rdoinfo's ``verify.py`` takes any value, null included)."""
        if locked is None:
            return
        if not isinstance(locked, list):
            self.add(
                where,
                f"{what}: buildsys-tags 'version-locked' must list CBS tags, not {locked!r}",
            )
            return
        for cbs_tag in locked:
            if cbs_tag not in cbs_tags:
                self.add(
                    where,
                    f"{what}: buildsys-tags 'version-locked' names an unknown buildsys tag "
                    f"{cbs_tag!r} (not in any release's repos)"
                    f"{suggestion(str(cbs_tag), cbs_tags)}",
                )

    def check_ref(self, where: SourceLocation, what: str, value: Any) -> None:
        problem = ref_problem(value)
        if problem is not None:
            self.add(where, f"{what}: source-branch {problem}")

    def check_releases(self, file: _File, releases: list[Any]) -> None:
        document = file.document
        for index, release in enumerate(releases):
            where = document.item_location("releases", index, "name")
            if not isinstance(release, dict):
                continue
            name = release.get("name")
            what = f"release {name!r}"
            self.unknown_keys(
                release,
                RELEASE_KEYS,
                what,
                lambda key, i=index: document.item_location("releases", i, key),
            )
            status = release.get("status")
            if status is not None and status not in STATUSES:
                self.add(
                    document.item_location("releases", index, "status"),
                    f"{what}: status {status!r} is not one of {', '.join(STATUSES)}"
                    f"{suggestion(str(status), set(STATUSES))}",
                )
            repos = release.get("repos")
            if repos is None:
                self.add(where, f"{what} has no 'repos'")
                continue
            if not isinstance(repos, list):
                self.add(where, f"{what}: 'repos' must be a list")
                continue
            for position, repo in enumerate(repos):
                repo_where = file.nested("releases", index, "repos")
                if not isinstance(repo, dict) or "name" not in repo:
                    self.add(repo_where, f"{what}: repo #{position + 1} has no 'name'")
                    continue
                repo_what = f"{what} repo {repo['name']!r}"
                if "branch" not in repo and not release.get("branch"):
                    self.add(repo_where, f"{repo_what} has no 'branch' (nor has its release)")
                self.unknown_keys(repo, REPO_KEYS, repo_what, lambda key, w=repo_where: w)
                for distrepo in repo.get("distrepos") or ():
                    if isinstance(distrepo, dict):
                        self.unknown_keys(
                            distrepo,
                            DISTREPO_KEYS,
                            f"{repo_what} distrepo",
                            lambda key, w=repo_where: w,
                        )

    # -- merged database --------------------------------------------------------------------

    def check_database(self, db: RdoInfoDatabase) -> None:
        development = []
        for name, release in db.releases.items():
            origin = db.release_origins[name]
            if release.get("status") == "development":
                development.append((name, origin.location))
        for name, where in development[1:]:
            first_name, first_where = development[0]
            self.add(
                where,
                f"release {name!r} is a second development release "
                f"({first_name!r} at {first_where})",
            )
        components = set(db.component_names)
        for project, origin in db.package_origins.items():
            defining = [f for f in origin.fragments if f.entry.get("conf") is not None]
            for again in defining[1:]:
                if again.document is defining[0].document:
                    continue  # reported as a duplicate in that file
                self.add(
                    again.location(),
                    f"project {project!r} is defined again (first at {defining[0].location()})",
                )
            self.check_package(db, project, components)

    def check_package(self, db: RdoInfoDatabase, project: str, components: set[str]) -> None:
        origin = db.package_origins[project]
        try:
            base = resolve_package(db, project)
        except MetadataError as exc:
            self.add(exc.location, exc.detail)
            return
        self.check_resolved(db, project, None, base.raw, components)
        tags = base.raw.get("tags") or {}
        for tag, override in tags.items():
            if not override:
                continue
            try:
                package = resolve_package(db, project, tag)
            except MetadataError as exc:
                self.add(exc.location, f"{exc.detail} (tag {tag!r})")
                continue
            if package.component != base.component:
                self.check_component(
                    origin.override_location(tag, "component") or origin.location,
                    project,
                    package.component,
                    components,
                    tag,
                )
        del origin

    def check_resolved(
        self,
        db: RdoInfoDatabase,
        project: str,
        tag: str | None,
        raw: Mapping[str, Any],
        components: set[str],
    ) -> None:
        origin = db.package_origins[project]
        maintainers = raw.get("maintainers")
        where = origin.location_of("maintainers") or origin.location
        if not maintainers:
            self.add(where, f"package {project!r} has no maintainers")
        elif not isinstance(maintainers, list):
            self.add(where, f"package {project!r}: 'maintainers' must be a list")
        else:
            for maintainer in maintainers:
                if not isinstance(maintainer, str) or "@" not in maintainer:
                    self.add(
                        where,
                        f"package {project!r}: maintainer {maintainer!r} is not an e-mail address",
                    )
        component = raw.get("component")
        if component is not None:
            self.check_component(
                origin.location_of("component") or origin.location,
                project,
                component,
                components,
                tag,
            )

    def check_component(
        self,
        where: SourceLocation,
        project: str,
        component: Any,
        components: set[str],
        tag: str | None,
    ) -> None:
        if component is None or component in components:
            return
        context = f" (tag {tag!r})" if tag else ""
        self.add(
            where,
            f"package {project!r}{context}: unknown component {component!r}"
            f"{suggestion(str(component), components)}",
        )


def _cbs_tags(documents: list[YamlDocument]) -> set[str]:
    tags: set[str] = set()
    for document in documents:
        for release in document.data.get("releases") or ():
            if not isinstance(release, dict):
                continue
            for repo in release.get("repos") or ():
                if isinstance(repo, dict):
                    tags.update(t for t in repo.get("buildsys-tags") or () if isinstance(t, str))
    return tags


def _tag_names(documents: list[YamlDocument]) -> set[str]:
    """Release names, their ``-uc`` tags and every tag some package carries (what the
    ``version-locked`` tag may list)."""
    releases = {
        release["name"]
        for document in documents
        for release in document.data.get("releases") or ()
        if isinstance(release, dict) and isinstance(release.get("name"), str)
    }
    names = set(releases)
    for document in documents:
        for entry in document.data.get("packages") or ():
            tags = entry.get("tags") if isinstance(entry, dict) else None
            if isinstance(tags, dict):
                names.update(tag for tag in tags if isinstance(tag, str))
    names.discard(VERSION_LOCKED_TAG)
    return names | {name + UC_SUFFIX for name in releases}


def _unique(documents: list[YamlDocument]) -> Iterator[YamlDocument]:
    seen: set[int] = set()
    for document in documents:
        if id(document) not in seen:
            seen.add(id(document))
            yield document


def lint(path: Path, cache: ParseCache | None = None) -> list[Problem]:
    """Every problem found in the database at ``path``, sorted by file and line."""
    try:
        entry = entry_file(path)
        documents = collect_documents(entry, cache)
    except MetadataError as exc:
        return [Problem(exc.location, exc.detail)]
    linter = _Linter()
    unique = list(_unique(documents))
    cbs_tags = _cbs_tags(unique)
    tag_names = _tag_names(unique)
    for document in unique:
        linter.check_file(_File(document), cbs_tags, tag_names)
    try:
        db = database_from_documents(entry, documents)
    except MetadataError as exc:
        linter.add(exc.location, exc.detail)
    else:
        linter.check_database(db)
    unique_problems = dict.fromkeys(linter.problems)
    return sorted(unique_problems, key=lambda p: (str(p.location.path), p.location.line or 0))
