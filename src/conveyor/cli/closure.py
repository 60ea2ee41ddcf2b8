"""`conveyor closure`: dependency closure of RPM repositories, as `dnf repoclosure` checks it.

The service (and libsolv) is imported when the command runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from conveyor.cli import common
from conveyor.cli.common import fail


def closure(
    repo: Annotated[
        list[Path],
        typer.Option("--repo", help="repository folder (repodata/) to check (repeatable)"),
    ],
    lookaside: Annotated[
        list[Path] | None,
        typer.Option(
            "--lookaside", help="repository that may satisfy requirements, unchecked (repeatable)"
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="a JSON list of {package, repo, missing}")
    ] = False,
    all_versions: Annotated[
        bool,
        typer.Option("--all-versions", help="every version, not only the newest per name.arch"),
    ] = False,
    cache: Annotated[
        Path | None,
        typer.Option("--cache", help="libsolv cache folder [default: ~/.cache/conveyor/solv]"),
    ] = None,
) -> None:
    """Every package of the --repo repositories has each Requires provided (exit 1 if not)."""
    from conveyor.closure import (
        ClosureError,
        check_closure,
        default_cache,
        load_repositories,
        new_pool,
    )

    pool = new_pool()
    try:
        checked, others = load_repositories(
            pool, repo, lookaside or [], cache if cache is not None else default_cache()
        )
    except ClosureError as exc:
        fail(exc)
    unresolved = check_closure(pool, checked, others, only_newest=not all_versions)
    if as_json:
        print(json.dumps([u.as_json() for u in unresolved], indent=2))
    else:
        # dnf repoclosure's report, line for line.
        for u in unresolved:
            print(f"package: {u.package} from {u.repo}")
            print("  unresolved deps:")
            for dep in u.missing:
                print(f"    {dep}")
    if unresolved:
        common.console.print(
            f"{len(unresolved)} packages with unresolved dependencies", highlight=False
        )
        raise typer.Exit(1)
    common.console.print("closed: every requirement is provided", highlight=False)


def register(app: typer.Typer) -> None:
    app.command()(closure)
