"""`conveyor worker` (take builds from the builder's queue) and `conveyor workers` (who is
taking them). Both need the builder's PostgreSQL database; the services are imported when a
command runs."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from conveyor.cli import common
from conveyor.cli.common import ConfigOption, JsonOption, config_or_exit, fail, user_errors

if TYPE_CHECKING:
    from conveyor.config import Config


def _postgresql_or_exit(config: Config) -> None:
    from conveyor.store.database import is_postgresql

    if not is_postgresql(config.database_url):
        fail(
            ValueError(
                "workers take builds from a PostgreSQL database: set database in "
                'conveyor.toml (database = "postgresql+psycopg://...")'
            )
        )


def worker(
    config_file: ConfigOption = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=64, help="builds at a time")
    ] = 1,
    name: Annotated[str | None, typer.Option("--name", help="this worker's name in logs")] = None,
) -> None:
    """Build what the builder's cycles queue (`[queue] enabled`), on this machine, with its
    build driver and its own data directory; RPMs and logs go to the scheduler through the
    database. Runs until SIGTERM or Ctrl-C, which let the builds under way finish."""
    import asyncio

    from conveyor.assembly.workers import run_worker

    config = config_or_exit(config_file)
    _postgresql_or_exit(config)
    try:
        asyncio.run(run_worker(config, concurrency, name))
    except user_errors() as exc:
        fail(exc)


def workers(config_file: ConfigOption = None, as_json: JsonOption = False) -> None:
    """The workers of this builder's queues: build workers (`conveyor worker`) and the
    promotion workers of `conveyor serve` processes, with their heartbeat age and builds
    under way, and how many jobs wait per queue. A worker silent for longer than `[queue]
    stalled_after` is marked so: its jobs are taken again, and it is forgotten soon after."""
    from conveyor.queue.jobs import queue_state
    from conveyor.store.database import Database

    config = config_or_exit(config_file)
    _postgresql_or_exit(config)
    db = Database(config.database_url)
    try:
        with db.engine.connect() as connection:
            state = queue_state(connection)
    finally:
        db.close()
    if as_json:
        document = {
            "workers": [
                {
                    "id": w.worker_id,
                    "name": w.name,
                    "queues": list(w.queues),
                    "heartbeat_age": round(w.heartbeat_age, 1),
                    "silent": w.heartbeat_age > config.queue.stalled_after,
                    "builds": list(w.jobs),
                }
                for w in state.workers
            ],
            "queued": state.depth,
        }
        print(json.dumps(document, indent=2))  # plain, as every --json: for scripts
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table("worker", "name", "serves", "last heartbeat", "building")
    for w in state.workers:
        building = ", ".join(f"{j['package']} {j['commit'][:12]}" for j in w.jobs) or "-"
        table.add_row(
            str(w.worker_id),
            escape(w.name or "-"),  # --name is free text: never rich markup
            escape(", ".join(w.queues) or "?"),
            f"{w.heartbeat_age:.0f} s ago"
            + (" (silent)" if w.heartbeat_age > config.queue.stalled_after else ""),
            escape(building),
        )
    common.out.print(table)
    queued = ", ".join(f"{name}: {count}" for name, count in state.depth.items())
    common.out.print(f"{len(state.workers)} worker(s); waiting: {queued}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command()(worker)
    app.command()(workers)
