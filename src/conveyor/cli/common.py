"""What the command modules share: the `--config` option, the consoles, error handling and
the progress display. Below the command modules: it imports none of them, nor
`conveyor.cli.main`.

Light on purpose, as every command imports it: Rich is imported when `console` or `out` is
first used (the module's `__getattr__`), the services when a helper needs them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TextIO

import typer

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, ProgressColumn

    from conveyor.config import Config
    from conveyor.store.database import Database

    # Created on first access by the module's __getattr__ below.
    console: Console
    """Messages and errors, on standard error."""
    out: Console
    """Tables and reports, on standard output."""

# A module attribute, not a local alias: Typer reads the commands' annotations by name.
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="configuration file [default: ./conveyor.toml]"),
]

JsonOption = Annotated[bool, typer.Option("--json", help="print JSON")]

EXIT_BUSY = 3
"""The exit code of a command that found another process running this builder."""

_stderr: TextIO | None = None
"""Where `console` writes once `use_stderr` has been called; None: `sys.stderr`."""


def _new_console(name: str) -> Console:
    from rich.console import Console

    if name == "console":
        # Errors name files and keys: a wrapped line would cut a path in two.
        return Console(stderr=True, soft_wrap=True, file=_stderr)
    # Off a terminal Rich would cut table cells at 80 columns; a log or a pipe wants them whole.
    return Console(width=None if sys.stdout.isatty() else 200)


def __getattr__(name: str) -> Any:
    """`console` and `out`, created on first access and then kept as attributes."""
    if name not in ("console", "out"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = _new_console(name)
    globals()[name] = value
    return value


def _console() -> Console:
    found: Console = globals().get("console") or __getattr__("console")
    return found


def use_stderr(stream: TextIO) -> None:
    """Make `stream` where `console` writes, whether it exists yet or not."""
    global _stderr
    _stderr = stream
    if "console" in globals():
        globals()["console"].file = stream


def user_errors(*more: type[Exception]) -> tuple[type[Exception], ...]:
    """Errors a user can fix (and a command's own, `more`): shown as one clear line, never as
    a traceback. An `except` clause evaluates this only while an exception is being handled,
    so a command that succeeds never imports the modules below."""
    from conveyor.builders.spec import SpecError
    from conveyor.config import ConfigError
    from conveyor.domain.names import InvalidName
    from conveyor.metadata import MetadataError
    from conveyor.metadata.targets import TargetError
    from conveyor.store.database import DatabaseError

    return (ConfigError, MetadataError, TargetError, DatabaseError, InvalidName, SpecError, *more)


def tag_errors() -> tuple[type[Exception], ...]:
    """`user_errors` of the commands of buildsys tags and releases."""
    from conveyor.tags.service import TagsError
    from conveyor.uc import UCError

    return user_errors(TagsError, UCError)


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


def fail(exc: Exception, code: int = 2) -> NoReturn:
    """Exit `code` with `exc` as the error (printed as it is: `[mock] config` is no markup)."""
    from rich.markup import escape

    _console().print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
    raise typer.Exit(code) from None


def config_or_exit(path: Path | None, *, storage: bool = True) -> Config:
    """The configuration, or exit 2 with its error. With `storage` (every command that opens
    the builder), `datadir` and `database` are checked before anything is written
    (`conveyor.assembly.storage.check_storage`). Commands that only read metadata pass False: they
    need neither, nor SQLAlchemy's import time."""
    from conveyor.assembly.storage import load_builder_config
    from conveyor.config import ConfigError, load_config

    try:
        return load_builder_config(path) if storage else load_config(path)
    except ConfigError as exc:
        fail(exc)


def open_builder(path: Path | None) -> tuple[Config, Database]:
    """The configuration and the builder's database, or exit 2 with the error."""
    from conveyor.store.database import Database

    config = config_or_exit(path)
    try:
        return config, Database(config.database_url)
    except user_errors() as exc:
        fail(exc)


# -- verbosity --------------------------------------------------------------------------------

LOGGER = "conveyor"
"""The logger `-v`/`-q` set: every module of conveyor logs below it."""


def log_level(verbose: int, quiet: bool) -> int | None:
    """The level `-v` (info lines), `-vv` (debug lines) or `-q` (errors only) asks for; None
    for neither, which keeps the default: warnings on a terminal, info lines elsewhere."""
    import logging

    if quiet:
        return logging.ERROR
    if verbose >= 2:
        return logging.DEBUG
    if verbose == 1:
        return logging.INFO
    return None


def set_verbosity(verbose: int, quiet: bool) -> None:
    """Apply `-v`/`-q`: conveyor's loggers log at `log_level`; `-q` also quiets the
    libraries' (the root logger). Nothing changes without either option."""
    import logging

    if verbose and quiet:
        raise typer.BadParameter("give -v/--verbose or -q/--quiet, not both")
    level = log_level(verbose, quiet)
    if level is None:
        return
    logging.getLogger(LOGGER).setLevel(level)
    if quiet:
        logging.getLogger().setLevel(level)


def log_lines_asked() -> bool:
    """Whether -v or -vv was given: a command showing a progress display on a terminal then
    logs its lines instead (the two would interleave on standard error)."""
    import logging

    level = logging.getLogger(LOGGER).level
    return logging.NOTSET < level <= logging.INFO


def uvicorn_log_level() -> str:
    """uvicorn's `log_level` (`conveyor serve`): "info" (its start and access lines) unless
    -q ("error") or -vv ("debug") was given."""
    import logging

    level = logging.getLogger(LOGGER).level  # NOTSET unless -v, -vv or -q set it
    if level == logging.NOTSET:
        return "info"
    if level <= logging.DEBUG:
        return "debug"
    return "error" if level >= logging.ERROR else "info"


# -- completion of package names ---------------------------------------------------------------


def package_names(config_file: Path | None) -> list[tuple[str, str]]:
    """(package, project) of every package the builder of `config_file` builds, from its
    metadata read through the parse cache (as `conveyor info` reads it): a completion costs
    a cache read, not a YAML parse. Empty when the configuration or the metadata cannot be
    read: a completion never prints an error into the shell's command line."""
    try:
        from conveyor.config import load_config
        from conveyor.metadata import packages_for_release
        from conveyor.metadata.cache import ParseCache
        from conveyor.metadata.loader import read_database

        config = load_config(config_file)
        database = read_database(Path(config.metadata.path), cache=ParseCache())
        packages = packages_for_release(database, config.metadata.release)
    except Exception:  # bad configuration or metadata: `conveyor lint` says why, not a TAB
        return []
    return sorted((p.name, p.project) for p in packages)


def complete_package(ctx: typer.Context, incomplete: str) -> list[str]:
    """Typer's `autocompletion` of a package name: the builder's package names starting with
    `incomplete`, else its project names that do (commands take either). The builder is the
    one of `--config` when it comes before, else ./conveyor.toml's."""
    config_file = ctx.params.get("config_file")
    known = package_names(config_file if isinstance(config_file, Path) else None)
    names = [name for name, _ in known if name.startswith(incomplete)]
    if names:
        return names
    return sorted({project for _, project in known if project.startswith(incomplete)})


PackageOption = Annotated[
    list[str] | None,
    typer.Option(
        "--package",
        "-p",
        help="only this package (repeatable)",
        autocompletion=complete_package,
    ),
]
"""`-p/--package`, repeatable, completed from the builder's package names."""

PackageArgument = Annotated[
    str, typer.Argument(help="package (or project) name", autocompletion=complete_package)
]
"""One package (or project) name, completed from the builder's package names."""
