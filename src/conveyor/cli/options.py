"""Options shared by the commands (a module of its own: Typer reads annotations by name)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="configuration file [default: ./conveyor.toml]"),
]
