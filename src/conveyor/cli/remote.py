"""`conveyor import URL`: publish here a build made by another conveyor or DLRN instance.

The services, and Rich, are imported when the command runs: other commands start faster.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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
    from rich.progress import TaskID

    from conveyor.remote import ImportReport, Limits

MIB = 1024 * 1024


def _import(url: str, config_file: Path | None, limits: Limits) -> ImportReport:
    from rich.progress import DownloadColumn

    from conveyor.assembly.builder import import_commit

    config = config_or_exit(config_file)
    if not common.console.is_terminal:
        return import_commit(config, url, limits)
    with progress_bar(DownloadColumn()) as progress:
        tasks: dict[str, TaskID] = {}

        def advance(name: str, done: int, total: int | None) -> None:
            if name not in tasks:
                tasks[name] = progress.add_task(name, total=total)
            progress.update(tasks[name], completed=done)

        return import_commit(config, url, limits, advance)


def import_(
    url: Annotated[
        str, typer.Argument(help="URL of the remote hash directory (http(s):// or file://)")
    ],
    config_file: ConfigOption = None,
    timeout: Annotated[
        float, typer.Option(min=0.1, help="seconds allowed for each downloaded file")
    ] = 45.0,
    max_rpm_size: Annotated[
        int, typer.Option("--max-rpm-size", min=1, help="largest RPM accepted, in MiB")
    ] = 2048,
) -> None:
    """Import a commit built elsewhere, from its hash directory URL (as dlrn-remote).
    Exit 0: imported or skipped; 2: refused; 3: another process is running this builder."""
    from conveyor.publish.locks import BuilderBusy
    from conveyor.remote import ImportRefused, Limits

    limits = Limits(timeout=timeout, max_rpm_bytes=max_rpm_size * MIB)
    try:
        report = _import(url, config_file, limits)
    except BuilderBusy as exc:
        common.console.print(f"[yellow]busy:[/yellow] {exc}", highlight=False)
        raise typer.Exit(EXIT_BUSY) from None
    except user_errors(ImportRefused) as exc:
        fail(exc)
    record = report.commit
    if report.published is None:
        common.console.print(f"[yellow]skipped[/yellow] {report.skipped}", highlight=False)
        return
    status = report.published.status
    colour = "green" if status == "SUCCESS" else "red"
    common.console.print(
        f"[{colour}]imported {status}[/{colour}] {record.project_name} "
        f"{record.commit_hash[:8]} → repos/{report.published.relpath}",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add this module's command to `app`."""
    app.command("import")(import_)
