"""Preparing a distgit spec for a trunk build, as DLRN's build script does (dlrn.md section 5),
but with `specfile` instead of sed so a spec's structure is respected."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from specfile.macro_definitions import CommentOutStyle, MacroDefinition
from specfile.specfile import Specfile

from conveyor.domain.version import BuildVersion


class SpecError(Exception):
    """The spec cannot be prepared; the message names the spec file and what is wrong."""


@dataclass(frozen=True)
class PreparedSpec:
    path: Path
    name: str
    nvr: str


def _macro(name: str, body: str, is_global: bool = True) -> MacroDefinition:
    return MacroDefinition(name, body, is_global, False, CommentOutStyle.DNL, ("", " ", " ", ""))


_REQUIRED_TAGS = ("Name", "Version", "Release")


def choose_spec(package: str, names: Iterable[str]) -> str:
    """Which of a distgit's files is the package's spec: `<package>.spec`, else the only one."""
    specs = sorted(name for name in names if name.endswith(".spec"))
    preferred = f"{package}.spec"
    if preferred in specs:
        return preferred
    if len(specs) != 1:
        raise SpecError(f"distgit of {package}: expected one .spec file, found {len(specs)}")
    return specs[0]


def _check_required_tags(spec_path: Path) -> None:
    """Name the missing tag ourselves; rpm would only say the parse failed."""
    try:
        lines = spec_path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{spec_path.name}: cannot read spec: {exc}") from None
    present = {line.split(":", 1)[0].strip().lower() for line in lines if ":" in line}
    for tag in _REQUIRED_TAGS:
        if tag.lower() not in present:
            raise SpecError(f"{spec_path.name}: no '{tag}:' tag")


# rpm's macro context is global to the process and specfile captures rpm's stderr at the
# file-descriptor level: two threads preparing specs at once corrupt both.
_RPM_LOCK = threading.Lock()


def prepare_spec(
    spec_path: Path, version: BuildVersion, tarball: str, keep_changelog: bool
) -> PreparedSpec:
    """Fill Version/Release, inject the DLRN macros, point Source0 at `tarball`, in place."""
    _check_required_tags(spec_path)
    with _RPM_LOCK:
        return _prepare_locked(spec_path, version, tarball, keep_changelog)


def _prepare_locked(
    spec_path: Path, version: BuildVersion, tarball: str, keep_changelog: bool
) -> PreparedSpec:
    try:
        spec = Specfile(spec_path, sourcedir=spec_path.parent, autosave=False)
    except Exception as exc:  # specfile raises many kinds while parsing; all mean "bad spec"
        raise SpecError(f"{spec_path.name}: cannot parse spec: {exc}") from None
    with spec.tags() as tags:
        tags.version.value = version.version
        tags.release.value = f"{version.release}%{{?dist}}"
    try:
        name = spec.expanded_name
    except Exception as exc:
        raise SpecError(f"{spec_path.name}: cannot expand Name: {exc}") from None
    nvr = version.nvr(name)
    with spec.macro_definitions() as macros:
        # Defined first so `%{!?upstream_version: ...}` in the spec header sees it.
        macros.insert(0, _macro("dlrn_nvr", nvr))
        macros.insert(0, _macro("dlrn", "1"))
        macros.insert(0, _macro("upstream_version", version.upstream_version, is_global=False))
    with spec.sources() as sources:
        if not sources:
            raise SpecError(f"{spec_path.name}: no Source0 to point at the upstream tarball")
        sources[0].location = tarball
    if not keep_changelog:
        with spec.sections() as sections:
            if "changelog" in sections:
                sections.changelog.clear()
    spec.save()
    return PreparedSpec(spec_path, name, nvr)
