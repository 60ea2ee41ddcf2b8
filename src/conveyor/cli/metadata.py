"""`conveyor lint`, `info`, `findpkg`, `release`, `tags-diff` and `attr-diff`: the rdoinfo
metadata commands.

The metadata modules, and Rich (through `conveyor.cli.common.console`), are imported inside
the commands: `conveyor info` must start fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from conveyor.cli import common
from conveyor.cli.common import ConfigOption, config_or_exit, fail

if TYPE_CHECKING:
    from collections.abc import Sequence

    from conveyor.metadata.history import AttrChange, PackageSet, TagChange
    from conveyor.metadata.model import RdoInfoDatabase

EXIT_PROBLEMS = 1

_FILTER_HELP = """\
Supply regex filter(s) to list package details, e.g.:
    conveyor info nova
    conveyor info conf:client maintainers:jruzicka
    conveyor info '.*'"""

LocalOption = Annotated[
    Path | None,
    typer.Option(
        "--local-info",
        "-l",
        help="metadata folder or file [default: the configuration's metadata.path]",
    ),
]
InfoFileOption = Annotated[
    str | None,
    typer.Option("--info-file", "-i", help="file inside --local-info [default: rdo-full.yml]"),
]
NoCacheOption = Annotated[
    bool, typer.Option("--no-cache", help="parse every file instead of using the cache")
]
RevisionArgument = Annotated[
    str,
    typer.Argument(metavar="REV", help="the older side: a git revision"),
]
ToOption = Annotated[
    str | None,
    typer.Option(
        "--to", metavar="REV", help="the newer side: a git revision [default: the working tree]"
    ),
]


def _metadata_path(local: Path | None, info_file: str | None, config_file: Path | None) -> Path:
    base = local if local is not None else config_or_exit(config_file, storage=False).metadata.path
    if info_file is None:
        return base
    return (base if base.is_dir() else base.parent) / info_file


def _cache(no_cache: bool) -> Any:
    from conveyor.metadata.cache import ParseCache

    return None if no_cache else ParseCache()


def _load(path: Path, no_cache: bool) -> RdoInfoDatabase:
    """The merged database, without the full validation pass `load_database` makes (queries
    resolve the packages they show, and report their errors)."""
    from conveyor.metadata.errors import MetadataError
    from conveyor.metadata.loader import read_database

    try:
        return read_database(path, cache=_cache(no_cache))
    except MetadataError as exc:
        fail(exc)


def _compare(
    path: Path, revision: str, to: str | None, no_cache: bool
) -> tuple[PackageSet, PackageSet]:
    """The older side (at `revision`) and the newer one (at `to`, else the working tree)."""
    from conveyor.metadata.history import HistoryError, sides

    try:
        return sides(path, revision, to, _cache(no_cache))
    except HistoryError as exc:
        fail(exc)


def _show(changes: Sequence[TagChange] | Sequence[AttrChange], as_json: bool) -> None:
    """The changes as JSON, else one line each (nothing when there are none)."""
    if as_json:
        import json

        _write(json.dumps([change.to_json() for change in changes], indent=2, default=str))
    elif changes:
        _write("\n".join(change.text() for change in changes))


def _write(text: str) -> None:
    sys.stdout.write(text + "\n")


def lint(
    path: Annotated[
        Path | None,
        typer.Argument(help="metadata folder or file [default: metadata.path]"),
    ] = None,
    config_file: ConfigOption = None,
    no_cache: NoCacheOption = False,
) -> None:
    """Check metadata strictly: every problem as file:line: message. Exit 1 if any."""
    from conveyor.metadata.lint import lint as lint_metadata

    problems = lint_metadata(_metadata_path(path, None, config_file), _cache(no_cache))
    for problem in problems:
        _write(str(problem))
    if problems:
        common.console.print(f"{len(problems)} problem(s)", highlight=False)
        raise typer.Exit(EXIT_PROBLEMS)


def info(
    filters: Annotated[
        list[str] | None,
        typer.Argument(help="ATTR:REGEX filters, ANDed; ~REGEX negates; REGEX means name"),
    ] = None,
    local: LocalOption = None,
    info_file: InfoFileOption = None,
    tag: Annotated[
        str | None, typer.Option("--tag", "-t", help="apply this tag's overrides")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="the matching packages as a JSON list")
    ] = False,
    config_file: ConfigOption = None,
    no_cache: NoCacheOption = False,
) -> None:
    """Package metadata, as `rdopkg info` shows it: a summary, or the matching packages."""
    from conveyor.metadata import query
    from conveyor.metadata.errors import MetadataError

    try:
        parsed = query.parse_filters(filters or [])
    except query.FilterError as exc:
        fail(exc)
    db = _load(_metadata_path(local, info_file, config_file), no_cache)
    try:
        if as_json or filters:
            selected = query.select_packages(db, parsed, tag)
        else:
            packages = query.resolved_packages(db, tag)
    except MetadataError as exc:
        fail(exc)
    if as_json:
        import json

        _write(json.dumps([dict(p) for p in selected], indent=2, default=str))
    elif filters:
        _write(query.format_packages(selected))
    else:
        _write(query.format_summary(query.resolved_releases(db), packages))
        _write("")
        _write(_FILTER_HELP)


def findpkg(
    search: Annotated[
        str,
        typer.Argument(
            help="package name, project or upstream URL", autocompletion=common.complete_package
        ),
    ],
    local: LocalOption = None,
    info_file: InfoFileOption = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="exact name, project or upstream only")
    ] = False,
    config_file: ConfigOption = None,
    no_cache: NoCacheOption = False,
) -> None:
    """The package a name, project or upstream URL designates."""
    from conveyor.metadata import query
    from conveyor.metadata.errors import MetadataError

    db = _load(_metadata_path(local, info_file, config_file), no_cache)
    try:
        found = query.find_in_database(db, search, strict=strict)
    except MetadataError as exc:
        fail(exc)
    if found is None:
        common.console.print(f"[red]error:[/red] no package found for {search!r}", highlight=False)
        raise typer.Exit(EXIT_PROBLEMS)
    _write(query.format_package(found))


def release(
    name: Annotated[str | None, typer.Option("--release", "-r", help="this release")] = None,
    status: Annotated[
        str | None,
        typer.Option("--status", "-s", help="names of the releases in this phase"),
    ] = None,
    repo: Annotated[
        str | None, typer.Option("--repo", "-R", help="releases built for this repo")
    ] = None,
    local: LocalOption = None,
    info_file: InfoFileOption = None,
    config_file: ConfigOption = None,
    no_cache: NoCacheOption = False,
) -> None:
    """Releases, as `rdopkg release` shows them."""
    from conveyor.metadata import query

    if name is not None and repo is not None:
        common.console.print("[red]error:[/red] -r and -R cannot be used together", highlight=False)
        raise typer.Exit(2)
    db = _load(_metadata_path(local, info_file, config_file), no_cache)
    releases = query.resolved_releases(db)
    if name is not None:
        selected = query.select_releases(releases, name=name)
        _write(query.format_release(selected[0]) if selected else "No release match your filter.")
    elif status is not None:
        selected = query.select_releases(releases, status=status)
        names = [str(r["name"]) for r in selected]
        _write("\n".join(names) if names else "No release match your phase filter.")
    else:
        for selected_release in query.select_releases(releases, repo=repo):
            _write(query.format_release(selected_release))
            _write("")


def tags_diff(
    revision: RevisionArgument = "HEAD~",
    to: ToOption = None,
    buildsys_tags: Annotated[
        bool,
        typer.Option("--buildsys-tags", "-b", help="compare buildsys-tags (CBS NVRs)"),
    ] = False,
    local: LocalOption = None,
    info_file: InfoFileOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="the changes as a JSON list, with values")
    ] = False,
    config_file: ConfigOption = None,
    no_cache: NoCacheOption = False,
) -> None:
    """Packages whose tags differ between REV and the working tree, as `rdopkg
    info-tags-diff`: one `NAME ['TAG', ...]` line each (tags added or changed, then
    removed ones). Exit 0: compared; 2: a revision or side cannot be read."""
    from conveyor.metadata import history

    old, new = _compare(_metadata_path(local, info_file, config_file), revision, to, no_cache)
    changes = history.tags_diff(old, new, "buildsys-tags" if buildsys_tags else "tags")
    _show(changes, as_json)
    if not changes:
        sys.stderr.write("No tag changes detected.\n")


def attr_diff(
    attr: Annotated[str, typer.Argument(help="the attribute, e.g. maintainers")],
    revision: RevisionArgument = "HEAD~",
    to: ToOption = None,
    local: LocalOption = None,
    info_file: InfoFileOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="the changes as a JSON list, old and new values")
    ] = False,
    config_file: ConfigOption = None,
    no_cache: NoCacheOption = False,
) -> None:
    """Packages whose resolved ATTR differs between REV and the working tree, as `rdopkg
    info-attr-diff`: one `NAME NEW-VALUE` line each (None where it went away).
    Exit 0: compared; 2: a revision or side cannot be read."""
    from conveyor.metadata import history

    old, new = _compare(_metadata_path(local, info_file, config_file), revision, to, no_cache)
    changes = history.attr_diff(old, new, attr)
    _show(changes, as_json)
    if not changes:
        if not (history.has_attr(old, attr) or history.has_attr(new, attr)):
            sys.stderr.write(f"No package has the attribute {attr!r} on either side.\n")
        else:
            sys.stderr.write(f"No changes of {attr!r} detected.\n")


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.command("lint")(lint)
    app.command("info")(info)
    app.command("findpkg")(findpkg)
    app.command("release")(release)
    app.command("tags-diff")(tags_diff)
    app.command("attr-diff")(attr_diff)
