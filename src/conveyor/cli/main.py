"""The `conveyor` command. Thin: parse, call a service, render."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from conveyor.build.spec import SpecError
from conveyor.config import Config, ConfigError, load_config
from conveyor.domain.names import InvalidName
from conveyor.metadata import MetadataError
from conveyor.store.database import DatabaseError
from conveyor.trunk.buildjob import BuildResult
from conveyor.trunk.cycle import LoggingObserver, run_cycle
from conveyor.trunk.detect import BuildJob, Skipped
from conveyor.trunk.publishing import Published
from conveyor.trunk.status import trunk_status
from conveyor.trunk.targets import TargetError

app = typer.Typer(help="conveyor: every upstream commit built, published and promoted.")
# Errors name files and keys: a wrapped line would cut a path in two.
console = Console(stderr=True, soft_wrap=True)
# Off a terminal Rich would cut table cells at 80 columns; a log or a pipe wants them whole.
out = Console(width=None if sys.stdout.isatty() else 200)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="configuration file [default: ./conveyor.toml]"),
]

# Errors a user can fix: shown as one clear line, never as a traceback.
USER_ERRORS = (ConfigError, MetadataError, TargetError, DatabaseError, InvalidName, SpecError)


def _config(path: Path | None) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None


class ProgressObserver(LoggingObserver):
    """A progress bar on a terminal; the log lines of LoggingObserver otherwise."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("refreshing sources", total=None)

    def detected(self, jobs: Sequence[BuildJob], skipped: Sequence[Skipped]) -> None:
        for s in skipped:
            self.progress.console.print(
                f"[yellow]skipped[/yellow] {s.target.name}: {s.reason}", highlight=False
            )
        self.progress.update(self.task, description="building", total=len(jobs), completed=0)

    def build_started(self, job: BuildJob) -> None:
        self.progress.update(self.task, description=f"building {job.target.name}")

    def build_finished(self, result: BuildResult, published: Published) -> None:
        colour = "green" if published.status == "SUCCESS" else "red"
        self.progress.console.print(
            f"[{colour}]{published.status:7}[/{colour}] {result.job.target.name} "
            f"{result.job.commit_hash[:8]} → repos/{published.relpath}",
            highlight=False,
        )
        self.progress.advance(self.task)


@app.command()
def run(
    config_file: ConfigOption = None,
    package: Annotated[
        list[str] | None, typer.Option("--package", "-p", help="only this package (repeatable)")
    ] = None,
    head_only: Annotated[
        bool, typer.Option("--head-only", help="build only the newest commit of each package")
    ] = False,
) -> None:
    """Run one trunk cycle. Exit 0: all built; 1: a build failed; 2: retries are pending."""
    config = _config(config_file)
    try:
        if console.is_terminal:
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            ) as progress:
                report = run_cycle(config, package or (), head_only, ProgressObserver(progress))
        else:
            report = run_cycle(config, package or (), head_only)
    except USER_ERRORS as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    built = len(report.published)
    failed = sum(1 for _, p in report.published if p.status != "SUCCESS")
    console.print(
        f"{built} build(s), {failed} failed, {len(report.skipped)} package(s) skipped",
        highlight=False,
    )
    raise typer.Exit(report.exit_code)


def _when(epoch: int | None) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M") if epoch else ""


@app.command()
def status(config_file: ConfigOption = None) -> None:
    """Each package's last build and its status, and where the labels point."""
    config = _config(config_file)
    try:
        state = trunk_status(config)
    except USER_ERRORS as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    table = Table("package", "status", "commit", "NVR", "built (UTC)")
    colours = {"SUCCESS": "green", "FAILED": "red", "RETRY": "yellow"}
    for p in state.packages:
        colour = colours.get(p.status, "dim")
        table.add_row(
            p.name,
            f"[{colour}]{p.status}[/{colour}]",
            (p.commit_hash or "")[:8],
            p.nvr or "",
            _when(p.dt_build),
        )
    out.print(table)
    for label, target in state.labels.items():
        out.print(f"{label}: {target or '(not set)'}", highlight=False)


def main() -> None:
    # On a terminal the progress display tells the story; elsewhere, structured log lines do.
    logging.basicConfig(
        level=logging.WARNING if console.is_terminal else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)  # migrations are not news
    app()
