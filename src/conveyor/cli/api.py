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
    from conveyor.store.database import Database

ROLE_HELP = "role: voter, promoter or admin (repeat for several)"


def serve(
    config_file: ConfigOption = None,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="port to listen on")] = 8080,
) -> None:
    """Serve the DLRN-compatible API, /repos/, the vote pages and /metrics.

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
    try:
        application = create_app(config, config_file=config_source(config_file).absolute())
    except user_errors() as exc:
        fail(exc)
    uvicorn.run(
        application,
        host=host,
        port=port,
        log_level=common.uvicorn_log_level(),
        http=head_deadline_protocol(config.api.head_timeout),
    )


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
