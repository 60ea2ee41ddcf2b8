"""The `conveyor` command. Thin: parse, call a service, render."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from conveyor.cli import options

if TYPE_CHECKING:
    from conveyor.config import Config

app = typer.Typer(help="conveyor: every upstream commit built, published and promoted.")
# Errors name files and keys: a wrapped line would cut a path in two.
console = Console(stderr=True, soft_wrap=True)
# Off a terminal Rich would cut table cells at 80 columns; a log or a pipe wants them whole.
out = Console(width=None if sys.stdout.isatty() else 200)

ConfigOption = options.ConfigOption

EXIT_BUSY = 3


def user_errors(*more: type[Exception]) -> tuple[type[Exception], ...]:
    """Errors a user can fix (and a command's own, `more`): shown as one clear line, never as
    a traceback. An `except` clause evaluates this only while an exception is being handled,
    so a command that succeeds never imports the modules below."""
    from conveyor.build.spec import SpecError
    from conveyor.config import ConfigError
    from conveyor.domain.names import InvalidName
    from conveyor.metadata import MetadataError
    from conveyor.store.database import DatabaseError
    from conveyor.trunk.targets import TargetError

    return (ConfigError, MetadataError, TargetError, DatabaseError, InvalidName, SpecError, *more)


def progress_bar(amount: ProgressColumn | None = None) -> Progress:
    """The progress display of every long command; `amount` says how work is counted."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        amount or MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def fail(exc: Exception) -> NoReturn:
    console.print(f"[red]error:[/red] {exc}", highlight=False)
    raise typer.Exit(2) from None


def config_or_exit(path: Path | None) -> Config:
    from conveyor.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None


def main() -> None:
    # specfile points descriptor 2 at a temporary file while it parses a spec (in a build
    # thread); a duplicate of the descriptor keeps every other thread's messages visible.
    stderr = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")
    console.file = stderr
    # On a terminal the progress display tells the story; elsewhere, structured log lines do.
    logging.basicConfig(
        level=logging.WARNING if console.is_terminal else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=stderr,
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)  # migrations are not news
    app()


def _register_commands() -> None:
    """Each capability's commands live in their own module; they import this one."""
    from conveyor.cli import (
        api,
        metadata,
        migrate,
        packaging,
        promote,
        remote,
        retention,
        trunk,
    )

    for module in (trunk, remote, retention, migrate, promote, api, metadata, packaging):
        module.register(app)


_register_commands()
