"""The `conveyor` command. Thin: parse, call a service, render."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, NoReturn

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
from rich.table import Table

from conveyor.build.spec import SpecError
from conveyor.config import Config, ConfigError, load_config
from conveyor.domain.names import InvalidName
from conveyor.metadata import MetadataError
from conveyor.reports import ReportsListener
from conveyor.store.database import DatabaseError
from conveyor.trunk.buildjob import BuildResult
from conveyor.trunk.cycle import CycleOptions, CycleReport, LoggingObserver, run_cycle, run_loop
from conveyor.trunk.detect import BuildJob, Skipped
from conveyor.trunk.lock import BuilderBusy
from conveyor.trunk.publishing import Published
from conveyor.trunk.recheck import RecheckRefused
from conveyor.trunk.recheck import recheck as recheck_package
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

EXIT_BUSY = 3

# Errors a user can fix: shown as one clear line, never as a traceback.
USER_ERRORS = (ConfigError, MetadataError, TargetError, DatabaseError, InvalidName, SpecError)


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


def _stop_on_sigterm() -> threading.Event:
    """SIGTERM (and Ctrl-C) stop new builds; running ones finish and are published."""
    stop = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        console.print(f"signal {signum}: finishing the builds under way, then stopping")
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def _summary(report: CycleReport) -> None:
    built = len(report.published)
    failed = sum(1 for _, p in report.published if p.status != "SUCCESS")
    console.print(
        f"{built} build(s), {failed} not successful, {len(report.skipped)} package(s) skipped",
        highlight=False,
    )
    unsent = report.notifications.retried + report.notifications.deferred
    if unsent:
        console.print(
            f"[yellow]{unsent} notification(s) not sent yet; they will be retried[/yellow]",
            highlight=False,
        )


@app.command()
def run(
    config_file: ConfigOption = None,
    package: Annotated[
        list[str] | None, typer.Option("--package", "-p", help="only this package (repeatable)")
    ] = None,
    head_only: Annotated[
        bool, typer.Option("--head-only", help="build only the newest commit of each package")
    ] = False,
    loop: Annotated[
        bool, typer.Option("--loop", help="keep cycling until SIGTERM (no cron needed)")
    ] = False,
    interval: Annotated[
        float | None,
        typer.Option(help="seconds between cycles with --loop [default: loop_interval]"),
    ] = None,
) -> None:
    """Run one trunk cycle. Exit 0: all built; 1: a build failed; 2: retries are pending;
    3: another process is running this builder."""
    config = config_or_exit(config_file)
    # The reports at the top of repos/: updated after every build, queue.html per cycle.
    reports = ReportsListener(config)
    options = CycleOptions(
        only=package or (),
        head_only=head_only,
        stop=_stop_on_sigterm(),
        listeners=[reports],
        cycle_listeners=[reports],
    )
    try:
        if loop:
            run_loop(
                lambda: load_config(config_file),
                interval or config.loop_interval,
                options,
                on_cycle=_summary,
            )
            raise typer.Exit(0)
        if console.is_terminal:
            with progress_bar() as progress:
                report = run_cycle(config, options, ProgressObserver(progress))
        else:
            report = run_cycle(config, options)
    except BuilderBusy as exc:
        console.print(f"[yellow]busy:[/yellow] {exc}", highlight=False)
        raise typer.Exit(EXIT_BUSY) from None
    except USER_ERRORS as exc:
        fail(exc)
    finally:
        reports.close()
    _summary(report)
    raise typer.Exit(report.exit_code)


@app.command()
def recheck(
    package: Annotated[str, typer.Argument(help="package (or project) name")],
    config_file: ConfigOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="rebuild even a successful build (if allowed)")
    ] = False,
) -> None:
    """Build a package's last commit again at the next cycle."""
    config = config_or_exit(config_file)
    try:
        commit = recheck_package(config, package, force)
    except (*USER_ERRORS, RecheckRefused) as exc:
        fail(exc)
    console.print(
        f"{commit.project_name} {commit.commit_hash[:8]} will be built again next cycle",
        highlight=False,
    )


def _when(epoch: int | None) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M") if epoch else ""


@app.command()
def status(config_file: ConfigOption = None) -> None:
    """Each package's last build and its status, and where the labels point."""
    config = config_or_exit(config_file)
    try:
        state = trunk_status(config)
    except USER_ERRORS as exc:
        fail(exc)
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
    from conveyor.cli import migrate, remote, retention

    for module in (remote, retention, migrate):
        module.register(app)


_register_commands()
