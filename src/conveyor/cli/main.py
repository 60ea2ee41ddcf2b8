"""The `conveyor` command. Thin: parse, call a service, render.

Each command group is a module of `conveyor.cli` (see `COMMAND_MODULES`): top-level command
functions, and a `register(app)` at its bottom that adds them to an app. What they share lives
in `conveyor.cli.common`; nothing imports this module back.

Start-up is part of every command's time (`conveyor info` must answer in 0.5 s, interpreter
included), so `main()` registers only the command module that defines the command being run,
and Rich is imported when `common.console` or `common.out` is first used. The module
attribute `app`, with every command (for `--help`, completion and tests), is built on first
access.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer

from conveyor.cli import common

if TYPE_CHECKING:
    # Created on first access by the module's __getattr__ below.
    app: typer.Typer
    """Every command registered."""

HELP = "conveyor: every upstream commit built, published and promoted."

GLOBAL_FLAGS = frozenset({"--verbose", "--quiet"})
"""The top-level options that take no value and may come before the command's name."""

COMMAND_MODULES = (
    "trunk",
    "remote",
    "retention",
    "migrate",
    "promote",
    "api",
    "metadata",
    "packaging",
    "closure",
    "tags",
    "release",
    "diff",
    "bisect",
    "workers",
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
    "import-db": "migrate",
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
    "release-pins": "packaging",
    "meta": "packaging",
    "closure": "closure",
    "tags": "tags",
    "release-build": "release",
    "release-branch": "release",
    "release-ga": "release",
    "diff": "diff",
    "bisect": "bisect",
    "worker": "workers",
    "workers": "workers",
}
"""Which module defines each command. Only a speed-up: for a command missing here, or one
that moved, every module is registered (see `build_app`)."""


def __getattr__(name: str) -> Any:
    """`app`, created on first access and then kept as an attribute."""
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = build_app()
    globals()[name] = value
    return value


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


def _show_version(value: bool) -> None:
    """`--version`: the installed distribution's version, read without importing any command
    module (importlib.metadata is imported only here)."""
    if not value:
        return
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("conveyor")
    except PackageNotFoundError:  # run from a source tree that was never installed
        found = "unknown (not installed)"
    typer.echo(f"conveyor {found}")
    raise typer.Exit(0)


def build_app(command: str | None = None, *, commands: bool = True) -> typer.Typer:
    """A `conveyor` app with the commands of the module defining `command`, or with every
    command (for None, or a name no module is known to define). Without `commands`, only the
    top-level options (what `conveyor --version` needs)."""
    built = typer.Typer(help=HELP)

    # A Typer app with one command runs it without its name: a callback keeps this a group
    # whatever is registered. Its options are the top-level ones: `conveyor -v run`.
    @built.callback()
    def _group(
        verbose: Annotated[
            int,
            typer.Option(
                "--verbose",
                "-v",
                count=True,
                show_default=False,
                help="log more: -v conveyor's info lines, -vv its debug lines (default: "
                "warnings on a terminal, info lines elsewhere); on a terminal, `run` then "
                "logs its lines instead of showing a progress bar",
            ),
        ] = 0,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="log errors only")] = False,
        version: Annotated[
            bool,
            typer.Option(
                "--version",
                is_eager=True,
                expose_value=False,
                callback=_show_version,
                help="print conveyor's version and exit",
            ),
        ] = False,
    ) -> None:
        common.set_verbosity(verbose, quiet)

    if not commands:
        return built
    module = COMMAND_MODULE.get(command) if command is not None else None
    if module is not None:
        _register(built, module)
        if command in _command_names(built):
            return built
        return build_app()
    for name in COMMAND_MODULES:
        _register(built, name)
    return built


def _is_global_flag(arg: str) -> bool:
    """`-v`, `-vv`, `-q`, `--verbose`, `--quiet`: top-level options before the command."""
    if arg in GLOBAL_FLAGS:
        return True
    return len(arg) > 1 and arg[0] == "-" and arg[1] != "-" and set(arg[1:]) <= {"v", "q"}


def _invoked_command(argv: Sequence[str]) -> str | None:
    """The command `argv` names, after the verbosity flags; None when another option comes
    first (`--help`, `--version`, completion)."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg
        if not _is_global_flag(arg):
            return None
    return None


def _asks_version(argv: Sequence[str]) -> bool:
    """Whether `--version` comes before any command (it then answers alone)."""
    for arg in argv:
        if arg == "--version":
            return True
        if not _is_global_flag(arg):
            return False
    return False


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
    # specfile points descriptor 2 at a temporary file while it parses a spec (in a build
    # thread); a duplicate of the descriptor keeps every other thread's messages visible.
    stderr = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")
    common.use_stderr(stderr)
    # On a terminal the progress display tells the story; elsewhere, structured log lines do.
    logging.basicConfig(
        level=logging.WARNING if _is_terminal(stderr) else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=stderr,
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)  # migrations are not news
    argv = sys.argv[1:]
    build_app(_invoked_command(argv), commands=not _asks_version(argv))()
