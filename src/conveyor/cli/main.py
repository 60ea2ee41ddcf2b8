"""The `conveyor` command. Thin: parse, call a service, render.

Start-up is part of every command's time (`conveyor info` must answer in 0.5 s, interpreter
included), so `main()` registers only the command module that defines the command being run,
and Rich is imported when `console` or `out` is first used. The module attribute `app`, with
every command (for `--help`, completion and tests), is built on first access.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

import typer

from conveyor.cli import options

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, ProgressColumn

    from conveyor.config import Config

    # Created on first access by the module's __getattr__ below.
    app: typer.Typer
    """Every command registered."""
    console: Console
    """Messages and errors, on standard error."""
    out: Console
    """Tables and reports, on standard output."""

HELP = "conveyor: every upstream commit built, published and promoted."

ConfigOption = options.ConfigOption

EXIT_BUSY = 3

COMMAND_MODULES = (
    "trunk",
    "remote",
    "retention",
    "migrate",
    "promote",
    "api",
    "metadata",
    "packaging",
)
"""The modules of `conveyor.cli` that register commands, in `--help` order."""

COMMAND_MODULE: dict[str, str] = {
    "init": "trunk",
    "run": "trunk",
    "recheck": "trunk",
    "status": "trunk",
    "import": "remote",
    "purge": "retention",
    "fsck": "retention",
    "import-dlrn": "migrate",
    "promote": "promote",
    "serve": "api",
    "user": "api",
    "lint": "metadata",
    "info": "metadata",
    "findpkg": "metadata",
    "release": "metadata",
    "tags-diff": "metadata",
    "attr-diff": "metadata",
    "uc-report": "packaging",
    "reqcheck": "packaging",
    "release-status": "packaging",
    "meta": "packaging",
}
"""Which module defines each command. Only a speed-up: for a command missing here, or one
that moved, every module is registered (see `build_app`)."""

_stderr: TextIO | None = None
"""Where `console` writes once `main()` has run (see there); None: `sys.stderr`."""


def _new_console(name: str) -> Console:
    from rich.console import Console

    if name == "console":
        # Errors name files and keys: a wrapped line would cut a path in two.
        return Console(stderr=True, soft_wrap=True, file=_stderr)
    # Off a terminal Rich would cut table cells at 80 columns; a log or a pipe wants them whole.
    return Console(width=None if sys.stdout.isatty() else 200)


def __getattr__(name: str) -> Any:
    """`app`, `console` and `out`, created on first access and then kept as attributes."""
    value: Any
    if name == "app":
        value = build_app()
    elif name in ("console", "out"):
        value = _new_console(name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def _console() -> Console:
    found: Console = globals().get("console") or __getattr__("console")
    return found


def _register(target: typer.Typer, module: str) -> None:
    importlib.import_module(f"conveyor.cli.{module}").register(target)


def _command_names(target: typer.Typer) -> set[str]:
    """The command and group names registered on `target`, as Typer derives them."""
    from typer.main import get_command_name

    names = {group.name for group in target.registered_groups if group.name}
    for info in target.registered_commands:
        if info.name:
            names.add(info.name)
        elif info.callback is not None:
            names.add(get_command_name(info.callback.__name__))
    return names


def build_app(command: str | None = None) -> typer.Typer:
    """A `conveyor` app with the commands of the module defining `command`, or with every
    command (for None, or a name no module is known to define)."""
    built = typer.Typer(help=HELP)

    # A Typer app with one command runs it without its name: a callback keeps this a group
    # whatever is registered.
    @built.callback()
    def _group() -> None:
        pass

    module = COMMAND_MODULE.get(command) if command is not None else None
    if module is not None:
        _register(built, module)
        if command in _command_names(built):
            return built
        return build_app()
    for name in COMMAND_MODULES:
        _register(built, name)
    return built


def _invoked_command(argv: Sequence[str]) -> str | None:
    """The command `argv` names; None when options come first (`--help`, completion)."""
    if not argv or argv[0].startswith("-"):
        return None
    return argv[0]


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
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        amount or MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=_console(),
        transient=True,
    )


def fail(exc: Exception) -> NoReturn:
    _console().print(f"[red]error:[/red] {exc}", highlight=False)
    raise typer.Exit(2) from None


def config_or_exit(path: Path | None, *, storage: bool = True) -> Config:
    """The configuration, or exit 2 with its error. With `storage` (every command that opens
    the builder), `datadir` and `database` are checked before anything is written
    (`conveyor.config.check_storage`). Commands that only read metadata pass False: they
    need neither, nor SQLAlchemy's import time."""
    from conveyor.config import ConfigError, load_builder_config, load_config

    try:
        return load_builder_config(path) if storage else load_config(path)
    except ConfigError as exc:
        _console().print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None


def _is_terminal(stream: TextIO) -> bool:
    """What Rich's `Console.is_terminal` says for `stream`, without importing Rich: the
    TTY_COMPATIBLE and FORCE_COLOR overrides, else `isatty()`."""
    compatible = os.environ.get("TTY_COMPATIBLE", "")
    if compatible in ("0", "1"):
        return compatible == "1"
    force = os.environ.get("FORCE_COLOR")
    if force is not None:
        return force != ""
    return stream.isatty()


def main() -> None:
    global _stderr
    # specfile points descriptor 2 at a temporary file while it parses a spec (in a build
    # thread); a duplicate of the descriptor keeps every other thread's messages visible.
    _stderr = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")
    if "console" in globals():
        globals()["console"].file = _stderr
    # On a terminal the progress display tells the story; elsewhere, structured log lines do.
    logging.basicConfig(
        level=logging.WARNING if _is_terminal(_stderr) else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=_stderr,
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)  # migrations are not news
    build_app(_invoked_command(sys.argv[1:]))()
