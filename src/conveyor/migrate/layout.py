"""DLRN's `repos/` tree, adopted where it lies: checked, never moved, copied or rewritten.

A builder's tree holds one directory per build, often hundreds of gigabytes; conveyor's layout
is DLRN's (reference/dlrn.md sections 8, 9 and 11), so adopting it costs nothing but making
conveyor's `<datadir>/repos` be that folder. The labels (`current`, `consistent`, promotion
names) are relative symlinks in DLRN as in conveyor and stay as they are; with components,
DLRN's top-level labels are folders of aggregated `.repo` files, which conveyor leaves alone.

Nothing here needs conveyor's per-build repodata cache (`<datadir>/cache/repodata`): the
cache is filled lazily from a build's RPMs the first time a new repository links them
(publish/repodata.py, PackageXmlCache.load), so the RPMs of each package's newest good build
must be in place, and that is what is checked.
"""

from __future__ import annotations

import configparser
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath

from conveyor.config import Config
from conveyor.domain.names import InvalidName, check_component, check_label

# Shown in full up to this many; beyond, a count.
_SHOWN = 5
DLRN_LABELS = ("current", "consistent")


@dataclass(frozen=True)
class Build:
    """What the checks need of a successful commit."""

    id: int
    project_name: str
    relpath: PurePosixPath  # below repos/
    filenames: tuple[str, ...]  # its RPMs (the file names of `artifacts`)


class LabelKind(StrEnum):
    LINK = "link"
    DIRECTORY = "directory"  # DLRN's aggregate of the components' labels
    DANGLING = "dangling"


@dataclass(frozen=True)
class Label:
    path: str  # below repos/, e.g. "component/common/current"
    kind: LabelKind
    target: str | None  # where a link points (as written, relative)


@dataclass(frozen=True)
class ReposCheck:
    hash_dirs: int  # successful, not purged, builds whose directory was looked for
    missing: tuple[str, ...]  # their directories that do not exist (below repos/)
    labels: tuple[Label, ...]
    warnings: tuple[str, ...]


def _abbreviated(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return shown + (f", … ({len(items) - _SHOWN} more)" if len(items) > _SHOWN else "")


def check_location(repos: Path, config: Config) -> str | None:
    """Why `repos` cannot be adopted as conveyor's repository folder, or None when it can.

    conveyor publishes into `<datadir>/repos`. Moving or copying DLRN's tree is out of the
    question (size, and the URLs CI jobs already hold), so `datadir` must lead to it.
    """
    if not repos.is_dir():
        return f"--repos {repos}: no such directory"
    configured = config.repos_dir
    if configured.is_dir() and configured.samefile(repos):
        return None
    given = repos.absolute()
    if given.name == "repos":
        fix = f'set datadir = "{given.parent}" in conveyor.toml (its repos folder is {given})'
    else:
        fix = (
            f"conveyor's repository folder is always <datadir>/repos: make {configured} a "
            f"symbolic link to {given}, or set datadir to a folder whose 'repos' is {given}"
        )
    return (
        f"--repos {repos} is not conveyor's repository folder ({configured}); conveyor adopts "
        f"DLRN's tree where it lies and never moves or copies it: {fix}"
    )


def _labels(
    repos: Path, names: Iterable[str], components: Iterable[str], warnings: list[str]
) -> list[Label]:
    bases = [PurePosixPath()]
    for component in sorted(components):
        try:
            bases.append(PurePosixPath("component", check_component(component)))
        except InvalidName as exc:
            warnings.append(f"labels of component {component!r} not checked: {exc}")
    labels = []
    for name in [*DLRN_LABELS, *sorted(set(names) - set(DLRN_LABELS))]:
        try:
            check_label(name)
        except InvalidName as exc:
            warnings.append(f"promotion name {name!r} not checked: {exc}")
            continue
        for base in bases:
            relpath = base / name
            path = repos.joinpath(*relpath.parts)
            if path.is_symlink():
                target = str(path.readlink())
                kind = LabelKind.LINK if path.exists() else LabelKind.DANGLING
                labels.append(Label(str(relpath), kind, target))
            elif path.is_dir():
                labels.append(Label(str(relpath), LabelKind.DIRECTORY, None))
    dangling = [f"{label.path} -> {label.target}" for label in labels if label.kind == "dangling"]
    if dangling:
        warnings.append(f"label(s) pointing at nothing: {_abbreviated(dangling)}")
    return labels


def _repo_file_warnings(repos: Path, newest: Build, config: Config) -> list[str]:
    """Does the newest build's `.repo` file match conveyor.toml's reponame and baseurl?
    New repositories would otherwise give CI a different repository id or URL."""
    directory = repos.joinpath(*newest.relpath.parts)
    repo_file = directory / f"{config.reponame}.repo"
    if not repo_file.is_file():
        found = sorted(p.name for p in directory.glob("*.repo"))
        return [
            f"{newest.relpath} has no {repo_file.name} (it has {', '.join(found) or 'none'}): "
            "set reponame in conveyor.toml to DLRN's"
        ]
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(repo_file.read_text(encoding="utf-8", errors="replace"))
        published = next(parser[s].get("baseurl") for s in parser.sections())
    except (configparser.Error, StopIteration):
        return [f"{repo_file}: not a repository file conveyor can read"]
    suffix = f"/{newest.relpath}"
    expected = f"{config.baseurl.rstrip('/')}{suffix}"
    if published is None or published == expected:
        return []
    base = published.removesuffix(suffix) if published.endswith(suffix) else published
    return [
        f'DLRN published with baseurl "{base}", conveyor.toml has "{config.baseurl}": set '
        "baseurl so that new repositories keep the URLs CI already uses"
    ]


def check_tree(
    repos: Path,
    config: Config,
    builds: Sequence[Build],
    newest: Mapping[str, Build],
    label_names: Iterable[str],
    components: Iterable[str],
) -> ReposCheck:
    """Check what the database says against the tree: every successful, not purged, build has
    its directory; each package's newest good build has its RPMs (conveyor links and reads
    them); the labels; and the `.repo` files' id and URL."""
    warnings: list[str] = []
    missing = [str(b.relpath) for b in builds if not repos.joinpath(*b.relpath.parts).is_dir()]
    if missing:
        warnings.append(
            f"{len(missing)} of {len(builds)} successful, not purged, build(s) have no "
            f"directory under {repos}: {_abbreviated(missing)}"
        )
    for name, build in sorted(newest.items()):
        # New repositories link (and read the headers of) each package's newest good build.
        directory = repos.joinpath(*build.relpath.parts)
        if not directory.is_dir():
            absent = [str(build.relpath)]
        else:
            absent = [f for f in build.filenames if not (directory / f).exists()]
        if absent:
            warnings.append(
                f"{name}: the newest good build (commit id {build.id}) lacks "
                f"{_abbreviated(absent)}; conveyor's next publish in its repository would fail"
            )
    labels = _labels(repos, label_names, components, warnings)
    present = [b for b in newest.values() if repos.joinpath(*b.relpath.parts).is_dir()]
    if present:
        warnings += _repo_file_warnings(repos, max(present, key=lambda b: b.id), config)
    return ReposCheck(len(builds), tuple(missing), tuple(labels), tuple(warnings))
