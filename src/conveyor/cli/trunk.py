"""`conveyor init`, `run`, `status`, `recheck`: the trunk builder's commands. The trunk's
modules, and Rich, are imported inside the commands, so that other commands start quickly."""

from __future__ import annotations

import signal
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from conveyor.cli import common
from conveyor.cli.common import (
    EXIT_BUSY,
    ConfigOption,
    PackageArgument,
    PackageOption,
    config_or_exit,
    fail,
    progress_bar,
    user_errors,
)

if TYPE_CHECKING:
    from rich.progress import Progress

    from conveyor.config import Config
    from conveyor.domain.builds import BuildJob, BuildResult
    from conveyor.trunk.cycle import CycleReport
    from conveyor.trunk.detect import Skipped
    from conveyor.trunk.publishing import Published
    from conveyor.trunk.status import TrunkStatus


class ProgressObserver:
    """The cycle told on a terminal: a progress bar, and one line per published build."""

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


def _when(epoch: int | None) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M") if epoch else ""


def _stop_on_sigterm() -> threading.Event:
    """SIGTERM (and Ctrl-C) stop new builds; running ones finish and are published."""
    stop = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        common.console.print(f"signal {signum}: finishing the builds under way, then stopping")
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def _summary(report: CycleReport) -> None:
    built = len(report.published)
    failed = sum(1 for _, p in report.published if p.status != "SUCCESS")
    common.console.print(
        f"{built} build(s), {failed} not successful, {len(report.skipped)} package(s) skipped",
        highlight=False,
    )
    for result, reason in report.refused:
        job = result.job
        common.console.print(
            f"[red]not published:[/red] {job.target.name} {job.commit_hash[:12]}: {reason}",
            highlight=False,
        )
    unsent = report.notifications.retried + report.notifications.deferred
    if unsent:
        common.console.print(
            f"[yellow]{unsent} notification(s) not sent yet; they will be retried[/yellow]",
            highlight=False,
        )


def init(config_file: ConfigOption = None) -> None:
    """Create the data directory, the repositories' directory and the database (with the
    directory of an explicit SQLite database). Running it again changes nothing."""
    from conveyor.assembly.storage import config_source, init_storage, remove_created
    from conveyor.store.database import Database, parse_url, sqlite_file

    config = config_or_exit(config_file, storage=False)
    try:
        created = init_storage(config, config_source(config_file))
        parsed = parse_url(config.database_url)
        path = sqlite_file(parsed)
        existed = path is None or path.exists()
        try:
            Database(config.database_url).close()
        except user_errors():
            remove_created(created)  # nothing half-made: a failed init leaves no trace
            raise
    except user_errors() as exc:
        fail(exc)
    for directory in created:
        common.console.print(f"created directory {directory}", highlight=False)
    # The URL's repr hides its password.
    where = path if path is not None else repr(parsed)
    said = f"database {where} is up to date" if existed else f"created database {where}"
    common.console.print(said, highlight=False)


def run(
    config_file: ConfigOption = None,
    package: PackageOption = None,
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
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="only list what the next cycle would build, with versions; build nothing",
        ),
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="with --dry-run: a JSON list instead of a table")
    ] = False,
) -> None:
    """Run one trunk cycle. Exit 0: all built; 1: a build failed; 2: retries are pending;
    3: another process is running this builder."""
    if json_output and not dry_run:
        fail(ValueError("--json needs --dry-run"))
    if dry_run and loop:
        fail(ValueError("--dry-run and --loop cannot be combined"))
    if dry_run:
        # Fetches only as a cycle's detect step does (see conveyor.trunk.plan); writes nothing.
        import json

        from rich.table import Table

        from conveyor.trunk.plan import dry_run as plan_next_cycle

        try:
            plan = plan_next_cycle(config_or_exit(config_file), package or (), head_only)
        except user_errors() as exc:
            fail(exc)
        if not plan.refreshed:
            common.console.print(
                "[yellow]builder busy:[/yellow] nothing fetched; planned from the mirrors as "
                "the running builder last fetched them",
                highlight=False,
            )
        for s in plan.skipped:
            common.console.print(
                f"[yellow]skipped[/yellow] {s.target.name}: {s.reason}", highlight=False
            )
        for b in plan.builds:
            if b.problem is not None:
                common.console.print(
                    f"[red]no version[/red] {b.package} {b.commit_hash[:8]}: {b.problem}",
                    highlight=False,
                )
        if json_output:
            print(json.dumps([b.to_json() for b in plan.builds], indent=2))
            return
        table = Table("package", "commit", "distro", "version", "release", "upstream_version")
        for b in plan.builds:
            table.add_row(
                b.package,
                b.commit_hash[:8],
                b.distro_hash[:8],
                *(value or "-" for value in (b.version, b.release, b.upstream_version)),
            )
        common.out.print(table)
        common.console.print(f"{len(plan.builds)} build(s) planned", highlight=False)
        return
    from conveyor.assembly.builder import run_cycle, run_loop
    from conveyor.assembly.storage import load_builder_config
    from conveyor.publish.locks import BuilderBusy
    from conveyor.trunk.cycle import CycleOptions

    config = config_or_exit(config_file)
    options = CycleOptions(only=package or (), head_only=head_only, stop=_stop_on_sigterm())
    try:
        if loop:
            run_loop(
                lambda: load_builder_config(config_file),
                interval or config.loop_interval,
                options,
                on_cycle=_summary,
            )
            raise typer.Exit(0)
        if common.console.is_terminal and not common.log_lines_asked():
            with progress_bar() as progress:
                report = run_cycle(config, options, ProgressObserver(progress))
        else:
            report = run_cycle(config, options)
    except BuilderBusy as exc:
        common.console.print(f"[yellow]busy:[/yellow] {exc}", highlight=False)
        raise typer.Exit(EXIT_BUSY) from None
    except user_errors() as exc:
        fail(exc)
    _summary(report)
    raise typer.Exit(report.exit_code)


def recheck(
    package: PackageArgument,
    config_file: ConfigOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="rebuild even a successful build (if allowed)")
    ] = False,
) -> None:
    """Build a package's last commit again at the next cycle."""
    from conveyor.trunk.recheck import RecheckRefused
    from conveyor.trunk.recheck import recheck as recheck_package

    config = config_or_exit(config_file)
    try:
        commit = recheck_package(config, package, force)
    except user_errors(RecheckRefused) as exc:
        fail(exc)
    common.console.print(
        f"{commit.project_name} {commit.commit_hash[:8]} will be built again next cycle",
        highlight=False,
    )


AGGREGATE_SUFFIX = " (aggregate)"
"""How `trunk_status` names the aggregate hash a trunk-wide label serves (components on)."""


def status_document(config: Config, state: TrunkStatus) -> dict[str, Any]:
    """`conveyor status --json`. Its shape, stable (keys as DLRN's API names them):

    - `packages`: one object per package of the metadata, by name: `package_name`, `status`
      (SUCCESS, FAILED, RETRY, or NO_BUILD when it was never built), and of its last build
      `commit_hash`, `distro_hash`, `extended_hash`, `component`, `dt_build` (Unix time),
      `nvr`, `repo_hash` (`<commit_hash>_<distro_hash[:8]>`), `repo_url` (its hash
      directory under `baseurl`) and `notes` (why it failed); all null under NO_BUILD.
    - `labels`: where `current` and `consistent` point, as the hash directory's path below
      the label's folder (null: not set); with components, one pair per component, keyed
      `component/<name>/current`...
    - `aggregates`: with components, the aggregate hash `current` and `consistent` serve
      (null: none yet); empty without components.
    """
    from conveyor.domain.nvr import nvr_from_artifacts
    from conveyor.domain.paths import commit_relpath, repo_hash
    from conveyor.reports.queries import standings
    from conveyor.store.database import Database

    db = Database(config.database_url)
    try:
        with db.reader() as session:
            known = standings(session.connection(), [p.name for p in state.packages])
    finally:
        db.close()
    packages: list[dict[str, Any]] = []
    for p in state.packages:
        entry: dict[str, Any] = {"package_name": p.name, "status": p.status}
        standing = known.get(p.name)
        if standing is None:
            entry |= dict.fromkeys(
                ("commit_hash", "distro_hash", "extended_hash", "component", "dt_build", "nvr"),
            )
            entry |= {"repo_hash": None, "repo_url": None, "notes": None}
        else:
            # One row read for the whole object: a build recorded since trunk_status read
            # its row changes none of these fields independently of the others.
            last = standing.last
            artifacts = [a for a in (standing.artifacts or "").split(",") if a]
            entry |= {
                "status": last.status,
                "commit_hash": last.commit_hash,
                "distro_hash": last.distro_hash,
                "extended_hash": last.extended_hash,
                "component": last.component,
                "dt_build": last.dt_build,
                "nvr": nvr_from_artifacts(artifacts),
                "repo_hash": repo_hash(last.commit_hash, last.distro_hash),
                "repo_url": config.url_of(commit_relpath(last)),
                "notes": standing.notes,
            }
        packages.append(entry)
    labels = {k: v for k, v in state.labels.items() if not k.endswith(AGGREGATE_SUFFIX)}
    aggregates = {
        k.removesuffix(AGGREGATE_SUFFIX): v
        for k, v in state.labels.items()
        if k.endswith(AGGREGATE_SUFFIX)
    }
    return {"packages": packages, "labels": labels, "aggregates": aggregates}


def status(
    config_file: ConfigOption = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="a JSON object instead of the table (shape above)")
    ] = False,
) -> None:
    """Each package's last build and its status, and where the labels point. --json: an
    object {packages: [{package_name, status, commit_hash, distro_hash, extended_hash,
    component, dt_build, nvr, repo_hash, repo_url, notes}], labels: {label: hash directory},
    aggregates: {label: aggregate hash}}."""
    from conveyor.trunk.status import trunk_status

    config = config_or_exit(config_file)
    try:
        state = trunk_status(config)
        document = status_document(config, state) if json_output else None
    except user_errors() as exc:
        fail(exc)
    if document is not None:
        import json

        print(json.dumps(document, indent=2))
        return
    from rich.table import Table

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
    common.out.print(table)
    for label, target in state.labels.items():
        common.out.print(f"{label}: {target or '(not set)'}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.command("init")(init)
    app.command("run")(run)
    app.command("recheck")(recheck)
    app.command("status")(status)
