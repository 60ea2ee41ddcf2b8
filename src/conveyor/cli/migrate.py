"""`conveyor import-dlrn`: adopt a DLRN builder's database and repositories, history kept.

The services, and Rich, are imported when the command runs: other commands start faster.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from conveyor.cli import common
from conveyor.cli.common import (
    EXIT_BUSY,
    ConfigOption,
    config_or_exit,
    fail,
    progress_bar,
    user_errors,
)

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import TaskID

    from conveyor.config import Config
    from conveyor.migrate import MigrationReport, ProgressCallback

_Report = TypeVar("_Report")


def _render(report: MigrationReport, out: Console, console: Console) -> None:
    from rich.markup import escape
    from rich.table import Table

    verb = "would import" if report.dry_run else "imported"
    table = Table("table", "in DLRN", verb)
    for count in report.tables:
        table.add_row(count.name, str(count.found), str(count.imported))
    out.print(table)
    out.print(f"DLRN database: {report.source}", highlight=False)
    if report.revision:
        out.print(f"DLRN schema revision: {report.revision}", highlight=False)
    out.print(f"conveyor database: {report.target}", highlight=False)
    check = report.repos_check
    if check is not None:
        present = check.hash_dirs - len(check.missing)
        out.print(
            f"repositories: {present} of {check.hash_dirs} successful, not purged, build(s) "
            f"present in {report.repos}",
            highlight=False,
        )
        for label in check.labels:
            if label.target is None:
                where = ": a folder of aggregated .repo files (DLRN's components)"
            else:
                where = f" -> {label.target}"
                if label.kind == "dangling":
                    where += " (points at nothing)"
            out.print(f"  label {label.path}{where}", highlight=False, markup=False)
    # Messages quote paths and values from the database: never read them as Rich markup.
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False)
    for error in report.errors:
        console.print(f"[red]error:[/red] {escape(error)}", highlight=False)


def _with_progress(work: Callable[[ProgressCallback | None], _Report]) -> _Report:
    """`work`, given a progress bar on a terminal."""
    if not common.console.is_terminal:
        return work(None)
    with progress_bar() as progress:
        tasks: dict[str, TaskID] = {}

        def advance(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = progress.add_task(step, total=total)
            progress.update(tasks[step], completed=done)

        return work(advance)


def _import(config: Config, database: str, repos: Path, dry_run: bool) -> MigrationReport:
    from conveyor.migrate import import_dlrn

    return _with_progress(
        lambda advance: import_dlrn(config, database, repos, dry_run=dry_run, progress=advance)
    )


def import_dlrn_command(
    database: Annotated[
        str,
        typer.Option(
            "--database",
            help="DLRN's database (SQLAlchemy URL), e.g. sqlite:////srv/dlrn/commits.sqlite "
            "or mysql+pymysql://dlrn@db.example.org/dlrn; only read",
        ),
    ],
    repos: Annotated[
        Path,
        typer.Option(
            "--repos",
            help="DLRN's repos folder (<DLRN datadir>/repos); it must be conveyor's "
            "<datadir>/repos, as it is adopted where it lies",
        ),
    ],
    config_file: ConfigOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="check and count everything, write nothing")
    ] = False,
) -> None:
    """Adopt a DLRN builder: copy its database into conveyor's (commits, votes, promotions,
    users and projects, ids kept) and take over its repos folder. Stop DLRN's cron job and
    API first. Exit 0: imported (with --dry-run: importable); 2: refused, nothing written;
    3: another conveyor process is running this builder."""
    from conveyor.migrate import MigrationError, MigrationRefused
    from conveyor.publish.locks import BuilderBusy

    config = config_or_exit(config_file)
    try:
        report = _import(config, database, repos, dry_run)
    except BuilderBusy as exc:
        common.console.print(f"[yellow]busy:[/yellow] {exc}", highlight=False)
        raise typer.Exit(EXIT_BUSY) from None
    except MigrationRefused as exc:
        _render(exc.report, common.out, common.console)
        common.console.print("nothing was written", highlight=False)
        raise typer.Exit(2) from None
    except user_errors(MigrationError) as exc:
        fail(exc)
    _render(report, common.out, common.console)
    if report.dry_run:
        common.console.print("dry run: nothing was written", highlight=False)
        raise typer.Exit(0 if report.ok else 2)
    rows = sum(count.imported for count in report.tables)
    common.console.print(
        f"[green]imported[/green] {rows} row(s) into {report.target}; {report.repos} is "
        "now conveyor's. Next: `conveyor status`, then `conveyor run`.",
        highlight=False,
    )


def import_db_command(
    source: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="the database to copy (SQLAlchemy URL); default: the SQLite database the "
            "builder used before, sqlite:///<datadir>/commits.sqlite; only read",
        ),
    ] = None,
    config_file: ConfigOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="check both databases and count, write nothing")
    ] = False,
) -> None:
    """Move a builder's state to another database, e.g. from SQLite to PostgreSQL: set
    `database` in conveyor.toml to the new (empty) one, stop the builder's cycles and
    `conveyor serve`, then run this. Every row is copied with its id, in one transaction.
    Exit 0: copied (with --dry-run: copyable); 2: refused, nothing written; 3: another
    conveyor process is running this builder."""
    from rich.table import Table

    from conveyor.migrate import CopyReport, MigrationError, default_source, import_db
    from conveyor.publish.locks import BuilderBusy

    config = config_or_exit(config_file)
    origin = source or default_source(config)
    try:
        report: CopyReport = _with_progress(
            lambda advance: import_db(config, origin, dry_run=dry_run, progress=advance)
        )
    except BuilderBusy as exc:
        common.console.print(f"[yellow]busy:[/yellow] {exc}", highlight=False)
        raise typer.Exit(EXIT_BUSY) from None
    except user_errors(MigrationError) as exc:
        fail(exc)
    table = Table("table", "rows")
    for count in report.tables:
        table.add_row(count.name, str(count.found))
    common.out.print(table)
    if dry_run:
        common.console.print(
            f"dry run: {report.rows} row(s) would be copied from {report.source} to "
            f"{report.target}; nothing was written",
            highlight=False,
        )
        return
    common.console.print(
        f"[green]copied[/green] {report.rows} row(s) from {report.source} to {report.target}; "
        "the builder now uses it. Next: `conveyor status`.",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.command("import-dlrn")(import_dlrn_command)
    app.command("import-db")(import_db_command)
