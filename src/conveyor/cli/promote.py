"""`conveyor promote`: evaluate the promotion criteria once or in a loop.

The promotion services, and Rich, are imported when the command runs: other commands start
faster.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from conveyor.cli import common
from conveyor.cli.common import ConfigOption, config_or_exit, fail, user_errors
from conveyor.domain.promotion import Verdict

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from conveyor.config import Config
    from conveyor.promote.criteria import Criteria
    from conveyor.promote.engine import Decision

DEFAULT_CRITERIA_NAME = "promotions.yaml"
DEFAULT_INTERVAL = 60.0

_COLOURS = {
    Verdict.PROMOTE: "green",
    Verdict.MISSING_JOBS: "yellow",
    Verdict.PURGED: "red",
    Verdict.SUPERSEDED: "dim",
    Verdict.INCUMBENT: "cyan",
    Verdict.NOT_NEWER: "dim",
}


def criteria_path(config: Config, option: Path | None) -> Path:
    """--criteria, else the configuration's `promotion_criteria`, else promotions.yaml in
    the data directory's parent (beside conveyor.toml in the usual layout)."""
    if option is not None:
        return option
    configured = getattr(config, "promotion_criteria", None)
    if isinstance(configured, Path):
        return configured
    return config.datadir.parent / DEFAULT_CRITERIA_NAME


def summary_line(decision: Decision) -> str:
    target = decision.target
    explanation = decision.explanation
    incumbent = explanation.incumbent.key if explanation.incumbent else "(not set)"
    head = f"{target.key} <- {target.candidate_label} (now {incumbent}): "
    chosen = explanation.chosen
    if decision.lost_race:
        return head + f"another promoter moved it first ({decision.error}); nothing to do"
    if decision.error is not None:
        return head + f"not promoted: {decision.error}"
    if chosen is None:
        waiting = [c for c in explanation.candidates if c.verdict is Verdict.MISSING_JOBS]
        if waiting:
            return head + f"nothing to promote; {len(waiting)} candidate(s) missing jobs"
        if not explanation.candidates:
            return head + f"no candidate on {target.candidate_label}"
        return head + "nothing newer to promote"
    if decision.dry_run:
        return head + f"would promote {chosen.key}"
    return head + f"promoted {chosen.key}"


def explanation_table(decision: Decision) -> Table:
    from rich.table import Table

    table = Table("candidate", "verdict", "passed", "missing", title=decision.target.key)
    for report in decision.explanation.candidates:
        colour = _COLOURS[report.verdict]
        passed = [
            f"{job} (by {report.alternatives_used[job]})"
            if job in report.alternatives_used
            else job
            for job in report.passed
        ]
        table.add_row(
            report.key,
            f"[{colour}]{report.verdict}[/{colour}]",
            "\n".join(passed),
            "\n".join(report.missing),
        )
    return table


def render_json(decisions: Sequence[Decision], loop: bool) -> None:
    """The decisions as a JSON array (one line per evaluation with --loop: JSON Lines)."""
    import json

    from conveyor.promote.status import decision_report

    reports = [decision_report(d) for d in decisions]
    print(json.dumps(reports) if loop else json.dumps(reports, indent=2), flush=True)


def render(out: Console, decisions: Sequence[Decision], explain: bool) -> None:
    for decision in decisions:
        out.print(summary_line(decision), highlight=False)
        if explain:
            out.print(explanation_table(decision))


def _read_criteria(config: Config, option: Path | None) -> Criteria:
    from conveyor.promote.criteria import CriteriaError, load_criteria

    try:
        return load_criteria(criteria_path(config, option))
    except CriteriaError as exc:
        fail(exc)


def promote_command(
    once: Annotated[bool, typer.Option("--once", help="evaluate every target once")] = False,
    loop: Annotated[
        bool, typer.Option("--loop", help="evaluate again every --interval until SIGTERM")
    ] = False,
    interval: Annotated[
        float, typer.Option(help="seconds between evaluations with --loop", min=0.01)
    ] = DEFAULT_INTERVAL,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="say what would be promoted; change nothing")
    ] = False,
    explain: Annotated[
        bool,
        typer.Option("--explain", help="list every candidate with its passed/missing jobs"),
    ] = False,
    criteria_file: Annotated[
        Path | None,
        typer.Option(
            "--criteria",
            help="promotion criteria YAML [default: the configuration's "
            "promotion_criteria, else promotions.yaml beside the data directory]",
        ),
    ] = None,
    config_file: ConfigOption = None,
    json_output: Annotated[
        bool,
        typer.Option("--json", help="the decisions, explained, as JSON (shape above)"),
    ] = False,
) -> None:
    """Promote labels whose criteria hold: for each target, the newest candidate newer
    than the incumbent whose jobs all passed. Exit 0: done (also when another promoter
    moved a label first); 1: a promotion was refused; 2: bad configuration or criteria.

    --json prints, instead of the lines and tables, a JSON array with one object per target
    (with --loop, one array per line and evaluation): target, component, candidate_label,
    criteria, incumbent and chosen (candidate keys: a hash directory's name, or an aggregate
    hash), error, promoted, dry_run, lost_race, chosen_commit {commit_hash, distro_hash,
    extended_hash, component} and candidates [{key, verdict, passed, missing,
    alternatives_used}], as /api/v2/promotion-status answers. The explanation is always in
    it, with or without --explain."""
    from conveyor.promote.criteria import CriteriaError, load_criteria
    from conveyor.promote.engine import evaluate
    from conveyor.publish.locks import BuilderBusy
    from conveyor.store.database import Database

    if once == loop:
        fail(ValueError("give exactly one of --once and --loop"))
    config = config_or_exit(config_file)
    criteria = _read_criteria(config, criteria_file)
    try:
        db = Database(config.database_url)
    except user_errors() as exc:
        fail(exc)
    stop = threading.Event()
    handlers = {}
    if loop:
        for signum in (signal.SIGTERM, signal.SIGINT):
            handlers[signum] = signal.signal(signum, lambda _signum, _frame: stop.set())
    try:
        while True:
            try:
                decisions = evaluate(config, db, criteria, dry_run=dry_run)
            except BuilderBusy as exc:
                common.console.print(f"[yellow]busy:[/yellow] {exc}", highlight=False)
                decisions = []
            except user_errors() as exc:
                fail(exc)
            if json_output:
                render_json(decisions, loop)
            else:
                render(common.out, decisions, explain)
            if not loop:
                failed = any(d.error is not None and not d.lost_race for d in decisions)
                raise typer.Exit(1 if failed else 0)
            if stop.wait(interval):
                break
            # Criteria are data in git: a changed file counts from the next evaluation.
            try:
                criteria = load_criteria(criteria_path(config, criteria_file))
            except CriteriaError as exc:
                common.console.print(f"[red]error:[/red] {exc}; keeping the previous criteria")
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        db.close()


def register(app: typer.Typer) -> None:
    """Add this module's command to `app`."""
    app.command("promote")(promote_command)
