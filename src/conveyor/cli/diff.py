"""`conveyor diff A B`: what changed from one repository to another (conveyor.reports.diff).

A and B are hash directories (`<commit>_<distro[:8]>`, their path below repos/, or a commit
hash) or labels (`current`, `consistent`, promotion labels). The service is imported when the
command runs.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from conveyor.cli import common
from conveyor.cli.common import ConfigOption, JsonOption, config_or_exit, fail

if TYPE_CHECKING:
    from conveyor.reports.diff import PackageVersion, RepoDiff

_SHORT = 12


def _short(value: str | None) -> str:
    return (value or "-")[:_SHORT]


def _version(p: PackageVersion) -> str:
    return p.nvr or f"(no build) {_short(p.commit_hash)}"


def _print(result: RepoDiff) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = common.out
    for side, repo in (("from", result.old), ("to", result.new)):
        named = f"{repo.ref} → " if repo.ref != repo.relpath else ""
        out.print(f"{side:5} {escape(named)}repos/{escape(repo.relpath)}", soft_wrap=True)
    out.print(
        f"{len(result.changed)} changed, {len(result.added)} added, "
        f"{len(result.removed)} removed, {result.unchanged} unchanged",
        highlight=False,
    )
    if result.changed:
        table = Table("package", "old", "new", "upstream commits", title="changed")
        for change in result.changed:
            lines = [f"{_short(c.commit_hash)} {c.subject}" for c in change.commits]
            if change.note:
                lines.append(f"({change.note})")
            if not change.commits and change.commits_state != "same-source":
                lines.insert(
                    0, f"{_short(change.old.commit_hash)}..{_short(change.new.commit_hash)}"
                )
            table.add_row(
                escape(change.package),
                escape(_version(change.old)),
                escape(_version(change.new)),
                escape("\n".join(lines)),
            )
        out.print(table)
    for title, packages in (("added", result.added), ("removed", result.removed)):
        if packages:
            table = Table("package", "NVR", "commit", title=title)
            for p in packages:
                table.add_row(escape(p.package), escape(_version(p)), _short(p.commit_hash))
            out.print(table)


def diff(
    old: Annotated[str, typer.Argument(help="repository hash, its path below repos/, or a label")],
    new: Annotated[str, typer.Argument(help="repository hash, its path below repos/, or a label")],
    config_file: ConfigOption = None,
    as_json: JsonOption = False,
    commits: Annotated[
        bool,
        typer.Option(
            "--commits/--no-commits",
            help="list the upstream commits between the builds of a changed package",
        ),
    ] = True,
) -> None:
    """Packages added, removed and changed (old NVR → new NVR, upstream commits) from OLD to
    NEW."""
    from conveyor.reports.diff import DiffError, diff_repositories

    config = config_or_exit(config_file, storage=False)
    try:
        result = diff_repositories(config.repos_dir, config.datadir, old, new, commits=commits)
    except DiffError as exc:
        fail(exc)
    if as_json:
        print(json.dumps(result.as_json(), indent=2))
    else:
        _print(result)


def register(app: typer.Typer) -> None:
    app.command()(diff)
