"""`conveyor purge` and `conveyor fsck`.

The services, and Rich, are imported when a command runs: other commands start faster.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from conveyor.cli import common
from conveyor.cli.common import ConfigOption, config_or_exit, fail, progress_bar, user_errors

if TYPE_CHECKING:
    from rich.progress import Progress

    from conveyor.retention.purging import PurgeReport

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def human_size(size: int) -> str:
    value = float(size)
    for unit in _UNITS:
        if value < 1024 or unit == _UNITS[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


class ProgressObserver:
    """The removals of a real purge as a progress bar (on a terminal only)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("purging", total=None)

    def removing(self, total: int) -> None:
        self.progress.update(self.task, total=total, completed=0)

    def removed(self, relpath: str) -> None:
        self.progress.advance(self.task)


def summary(report: PurgeReport) -> list[str]:
    """What a purge did (or would do), in a few lines."""
    would = "would " if report.dry_run else ""
    hash_dirs = len(report.removed) - report.steps
    removed = f"{hash_dirs} hash director{'y' if hash_dirs == 1 else 'ies'}"
    if report.size is not None:
        removed += f" ({human_size(report.size)})"
    verb = "remove" if report.dry_run else "removed"
    mark = "mark" if report.dry_run else "marked"
    lines = [f"{would}{verb} {removed}; {would}{mark} {report.marked} build(s) purged"]
    if report.steps:
        lines.append(
            f"{would}{verb} {report.steps} step repositories and pointers of ended bisections"
        )
    if report.swept:
        found = "found" if report.dry_run else "deleted"
        lines.append(f"{found} {len(report.swept)} trash folder(s) of an interrupted purge")
    if report.restored:
        lift = "would lift" if report.dry_run else "lifted"
        lines.append(
            f"{lift} the purge mark of {len(report.restored)} build(s) that a label or a link needs"
        )
    kept = report.plan.kept
    if kept:
        lines.append(f"kept {sum(kept.values())} old build(s):")
        lines += [f"  {count:6}  {reason}" for reason, count in sorted(kept.items())]
    return lines


def purge_command(
    older_than: Annotated[
        int,
        typer.Option(
            "--older-than", metavar="DAYS", help="remove builds built more than DAYS days ago"
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="say what would be removed; change nothing")
    ] = False,
    keep_label: Annotated[
        list[str] | None,
        typer.Option(
            "--keep-label",
            metavar="NAME",
            help="a label that must be kept (repeatable); every label is kept, so this "
            "warns when NAME exists nowhere (DLRN's --exclude-dirs)",
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="list the hash directories")
    ] = False,
    size: Annotated[
        bool, typer.Option("--size", help="add up their size (walks every directory)")
    ] = False,
    config_file: ConfigOption = None,
) -> None:
    """Remove old hash directories that no label, promotion or kept repository needs;
    each package's newest good build always stays. Rows stay, marked purged."""
    from conveyor.retention.purging import RetentionError, purge

    config = config_or_exit(config_file)
    try:
        if common.console.is_terminal and not dry_run:
            with progress_bar() as progress:
                report = purge(
                    config,
                    older_than,
                    keep_labels=keep_label or (),
                    measure_size=size,
                    observer=ProgressObserver(progress),
                )
        else:
            report = purge(
                config,
                older_than,
                keep_labels=keep_label or (),
                dry_run=dry_run,
                measure_size=size,
            )
    except user_errors(RetentionError) as exc:
        fail(exc)
    except OSError as exc:
        common.console.print(f"[red]error:[/red] {exc}", highlight=False)
        common.console.print("run `conveyor purge` again to finish", highlight=False)
        raise typer.Exit(1) from None
    for name in report.missing_labels:
        common.console.print(
            f"[yellow]warning:[/yellow] no label {name!r} in repos/ or any component",
            highlight=False,
        )
    if verbose:
        for relpath in report.removed:
            typer.echo(f"repos/{relpath}")
    for line in summary(report):
        typer.echo(line)


def fsck_command(config_file: ConfigOption = None) -> None:
    """Check that repos/ and the database agree: one line per problem, `path: message`.
    Exit 0: clean; 1: problems found."""
    from conveyor.retention.fsck import check_trunk

    config = config_or_exit(config_file)
    try:
        problems = check_trunk(config)
    except user_errors() as exc:
        fail(exc)
    for problem in problems:
        typer.echo(str(problem))
    if problems:
        common.console.print(f"{len(problems)} problem(s)", highlight=False)
        raise typer.Exit(1)
    common.console.print("clean", highlight=False)


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.command("purge")(purge_command)
    app.command("fsck")(fsck_command)
