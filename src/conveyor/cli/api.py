"""`conveyor serve` and `conveyor user create|delete|update` (as DLRN's `dlrn-user`).

The API's modules, and uvicorn, are imported when a command runs: other commands start
faster.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from conveyor.cli import common
from conveyor.cli.common import ConfigOption, config_or_exit, fail, user_errors

if TYPE_CHECKING:
    from conveyor.config import Config
    from conveyor.store.database import Database

ROLE_HELP = "role: voter, promoter or admin (repeat for several)"


def serve(
    config_file: ConfigOption = None,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="port to listen on")] = 8080,
    processes: Annotated[
        int,
        typer.Option(
            "--processes",
            min=1,
            max=64,
            help="server processes sharing the port (more than one needs PostgreSQL)",
        ),
    ] = 1,
) -> None:
    """Serve the DLRN-compatible API, /repos/, the vote pages and /metrics.

    With --processes N (on PostgreSQL), N processes answer on the same port; votes and
    promotions stay exactly-once (promotions take the database's publish lock), and a
    process that dies is replaced. On PostgreSQL the evaluation after a vote is a job
    (queue `promotions`) that any server process takes, deferred before the vote is
    answered.

    Changes to the configuration file and to the promotion criteria file count from the next
    request, without a restart, except datadir, database, api.read_auth, api.repos_auth and
    api.head_timeout (and --host, --port): after a change of those, a warning is logged and every
    response carries an X-Conveyor-Restart-Needed header naming them until the restart. A
    file that no longer loads is logged as an error and changes nothing."""
    import uvicorn

    from conveyor.api import create_app
    from conveyor.api.serving import head_deadline_protocol
    from conveyor.assembly.storage import config_source

    config = config_or_exit(config_file)
    source = config_source(config_file).absolute()
    if processes > 1:
        from conveyor.store.database import is_postgresql

        if not is_postgresql(config.database_url):
            fail(
                ValueError(
                    "--processes needs a PostgreSQL database: SQLite takes one writer at a "
                    "time, which one process's group commit already keeps busy"
                )
            )
        _serve_processes(config, source, host, port, processes)
        return
    try:
        application = create_app(config, config_file=source)
    except user_errors() as exc:
        fail(exc)
    uvicorn.run(
        application,
        host=host,
        port=port,
        log_level=common.uvicorn_log_level(),
        http=head_deadline_protocol(config.api.head_timeout),
        loop="uvloop",  # libuv: a tenth less CPU a request than asyncio's loop
    )


def _serve_processes(config: Config, source: Path, host: str, port: int, processes: int) -> None:
    """One listening socket, `processes` forked servers taking connections from it. Each
    process assembles its own application (its own database pool) after the fork."""
    import os
    import signal
    import socket

    import uvicorn

    from conveyor.api import create_app
    from conveyor.api.serving import head_deadline_protocol

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        listening = socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        fail(exc)
    stopping = False

    def start() -> int:
        pid = os.fork()
        if pid:
            return pid
        code = 0
        try:
            for received in (signal.SIGTERM, signal.SIGINT):
                signal.signal(received, signal.SIG_DFL)
            application = create_app(config, config_file=source)
            server = uvicorn.Server(
                uvicorn.Config(
                    application,
                    log_level=common.uvicorn_log_level(),
                    http=head_deadline_protocol(config.api.head_timeout),
                    loop="uvloop",  # libuv: a tenth less CPU a request than asyncio's loop
                )
            )
            server.run(sockets=[listening])
        except BaseException:  # a child never returns into the parent's code
            code = 1
        os._exit(code)

    def stop(received: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            os.kill(pid, signal.SIGTERM)

    children = {start() for _ in range(processes)}
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while children:
        pid, status = os.wait()
        children.discard(pid)
        if not stopping:
            common.console.print(
                f"[yellow]server process {pid} ended ({status}); starting another[/yellow]",
                highlight=False,
            )
            children.add(start())
    listening.close()


def _db(config_file: Path | None) -> Database:
    from conveyor.store.database import Database

    config = config_or_exit(config_file)
    try:
        return Database(config.database_url)
    except user_errors() as exc:
        fail(exc)


def _password(password: str | None) -> str:
    if password is not None:
        return password
    value: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


def create(
    username: Annotated[str, typer.Option("--username", "-u", help="user name")],
    password: Annotated[
        str | None, typer.Option("--password", "-p", help="asked for when not given")
    ] = None,
    role: Annotated[list[str] | None, typer.Option("--role", "-r", help=ROLE_HELP)] = None,
    config_file: ConfigOption = None,
) -> None:
    """Create a user (default role: admin, as every DLRN user may do everything)."""
    from conveyor.api.auth import UserError, create_user

    db = _db(config_file)
    try:
        create_user(db, username, _password(password), role or ["admin"])
    except (UserError, ValueError) as exc:
        fail(exc)
    finally:
        db.close()
    common.console.print(f"user {username} created", highlight=False)


def update(
    username: Annotated[str, typer.Option("--username", "-u", help="user name")],
    password: Annotated[
        str | None, typer.Option("--password", "-p", help="asked for when not given")
    ] = None,
    role: Annotated[
        list[str] | None, typer.Option("--role", "-r", help=ROLE_HELP + "; replaces")
    ] = None,
    config_file: ConfigOption = None,
) -> None:
    """Change a user's password (asked for unless given or only --role is changed)."""
    from conveyor.api.auth import UserError, update_user

    new_password = _password(password) if password is not None or not role else None
    db = _db(config_file)
    try:
        update_user(db, username, new_password, role)
    except (UserError, ValueError) as exc:
        fail(exc)
    finally:
        db.close()
    common.console.print(f"user {username} updated", highlight=False)


def delete(
    username: Annotated[str, typer.Option("--username", "-u", help="user name")],
    force: Annotated[bool, typer.Option("--force", help="do not ask for confirmation")] = False,
    config_file: ConfigOption = None,
) -> None:
    """Delete a user (locked instead when its votes or promotions reference it)."""
    from conveyor.api.auth import UserError, delete_user

    if not force and not typer.confirm(f"Delete user {username}?"):
        raise typer.Exit(1)
    db = _db(config_file)
    try:
        locked = delete_user(db, username)
    except UserError as exc:
        fail(exc)
    finally:
        db.close()
    what = "locked (its votes or promotions reference it)" if locked else "deleted"
    common.console.print(f"user {username} {what}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add `serve`, and the `user` group with its commands, to `app`."""
    app.command("serve")(serve)
    users = typer.Typer(help="Manage the API's users (as dlrn-user).")
    users.command("create")(create)
    users.command("update")(update)
    users.command("delete")(delete)
    app.add_typer(users, name="user")
