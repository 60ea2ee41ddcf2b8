"""`conveyor bisect start|status|reset`: which change between a good and a bad repository
broke a CI job (conveyor.bisect). The service is imported when a command runs."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from conveyor.cli import common
from conveyor.cli.common import ConfigOption, JsonOption, fail, open_builder

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from conveyor.bisect.service import BisectionView, StepView
    from conveyor.config import Config
    from conveyor.store.database import Database

IdArgument = Annotated[
    int | None, typer.Argument(help="the bisection's number [default: the newest]", min=1)
]
_VERDICTS = {None: "waiting", True: "passed", False: "failed"}


def _vote_command(view: BisectionView, step: StepView) -> str:
    """What the CI job runs once it tested the step's repository (dlrnapi-client)."""
    return (
        f"dlrnapi --url <conveyor API> --username <user> report-result --agg-hash {step.hash} "
        f"--job-id {view.job_id} --info-url <the job's log URL> --timestamp <epoch> "
        "--success true|false"
    )


def _print(view: BisectionView, changes: bool) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = common.out
    out.print(
        f"bisection {view.id} of job {escape(view.job_id)}: {view.state}, "
        f"good {escape(view.good_ref)} (repos/{escape(view.good_path)}) → "
        f"bad {escape(view.bad_ref)} (repos/{escape(view.bad_path)})",
        highlight=False,
        soft_wrap=True,
    )
    if changes:
        table = Table("#", "package", "good", "bad", "builds between", title="changes, in order")
        for number, change in enumerate(view.changes, 1):
            table.add_row(
                str(number),
                escape(change["package"]),
                escape(change["good"] or "(absent)"),
                escape(change["bad"] or "(absent)"),
                str(change["builds_between"]),
            )
        out.print(table)
    out.print(
        f"{len(view.changes)} changed packages: at most {view.bound} steps with one culprit",
        highlight=False,
    )
    if view.steps:
        table = Table("step", "kind", "hash", "packages", "verdict", title="steps")
        for step in view.steps:
            table.add_row(
                str(step.number),
                step.kind,
                step.hash,
                str(len(step.builds)),
                _VERDICTS[step.verdict],
            )
        out.print(table)
    pending = view.pending
    if pending is not None:
        out.print(
            f"{view.phase} phase, {view.suspects} suspects left; waiting for {escape(view.job_id)} "
            f"on step {pending.number}:\n  repository {pending.url}/\n  hash {pending.hash}\n"
            f"  then: {escape(_vote_command(view, pending))}",
            highlight=False,
            soft_wrap=True,
        )
    if view.conclusion is not None:
        _print_conclusion(view.conclusion)


def _print_conclusion(conclusion: dict[str, object]) -> None:
    from rich.markup import escape

    out = common.out
    out.print(f"conclusion ({conclusion['outcome']}): {escape(str(conclusion['reason']))}")
    for side in ("last_good", "culprit"):
        build = conclusion.get(side)
        if not isinstance(build, dict):
            continue
        lines = [
            f"  {side.replace('_', ' ')}: {build['nvr']} commit {build['commit_hash']}",
            f"    repository {build['repo_url']}",
            f"    log {build['log_url']}",
        ]
        if build["commit_url"]:
            lines.append(f"    upstream {build['commit_url']}")
        out.print(escape("\n".join(lines)), highlight=False, soft_wrap=True)
    commits = conclusion.get("commits")
    if isinstance(commits, list) and commits:
        out.print("  upstream commits:")
        for commit in commits:
            out.print(f"    {commit['hash'][:12]} {escape(commit['subject'])}", highlight=False)


def _errors() -> tuple[type[Exception], ...]:
    from conveyor.bisect.plan import BisectError
    from conveyor.publish.locks import BuilderBusy

    return common.user_errors(BisectError, BuilderBusy)


def _call(
    config_file: Path | None, call: Callable[[Config, Database], BisectionView]
) -> BisectionView:
    """`call` on the builder's database; its refusals end the command with one line."""
    config, db = open_builder(config_file)
    try:
        return call(config, db)
    except _errors() as exc:
        fail(exc)
    finally:
        db.close()


def _show(
    config_file: Path | None,
    as_json: bool,
    call: Callable[[Config, Database], BisectionView],
    changes: bool,
) -> None:
    """Run `call` on the builder's database and print the bisection it returns."""
    view = _call(config_file, call)
    if as_json:
        print(json.dumps(view.as_json(), indent=2))
    else:
        _print(view, changes=changes)


def start(
    good: Annotated[str, typer.Option("--good", help="the repository that passed: hash or label")],
    bad: Annotated[str, typer.Option("--bad", help="the repository that failed: hash or label")],
    job: Annotated[str, typer.Option("--job", help="the CI job that passed, then failed")],
    config_file: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Start finding which change from GOOD to BAD broke JOB: prints the changed packages in
    order and the first step's repository for the CI job to test."""
    from conveyor.bisect.service import start_bisection

    _show(config_file, as_json, lambda c, d: start_bisection(c, d, good, bad, job, None), True)


def status(
    bisection: IdArgument = None, config_file: ConfigOption = None, as_json: JsonOption = False
) -> None:
    """A bisection's steps, verdicts, suspects left and conclusion (votes that arrived
    count first)."""
    from conveyor.bisect.service import bisection_status

    _show(config_file, as_json, lambda c, d: bisection_status(c, d, bisection), False)


def reset(bisection: IdArgument = None, config_file: ConfigOption = None) -> None:
    """End a bisection without a conclusion (its step repositories stay)."""
    from conveyor.bisect.service import reset_bisection

    view = _call(config_file, lambda c, d: reset_bisection(c, d, bisection))
    common.out.print(f"bisection {view.id}: {view.state}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add the `bisect` group to `app`."""
    bisect = typer.Typer(help="Find which change between two repositories broke a CI job.")
    bisect.command("start")(start)
    bisect.command("status")(status)
    bisect.command("reset")(reset)
    app.add_typer(bisect, name="bisect")
