"""`conveyor user ...` and `conveyor serve` as commands."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.testing import CliRunner

from conveyor.api.auth import Authenticator
from conveyor.cli import api as api_cli
from conveyor.store.database import Database


def _app() -> typer.Typer:
    app = typer.Typer()
    api_cli.register(app)
    return app


def test_user_create_update_delete(tmp_path: Path) -> None:
    config = tmp_path / "conveyor.toml"
    config.write_text(f'datadir = "{tmp_path / "data"}"\n')
    runner, app = CliRunner(), _app()
    common = ["--config", str(config), "--username", "ci"]
    created = runner.invoke(
        app, ["user", "create", *common, "--role", "voter"], input="ci-secret\nci-secret\n"
    )
    assert created.exit_code == 0, created.output
    again = runner.invoke(app, ["user", "create", *common, "--password", "other-secret"])
    assert again.exit_code == 2
    updated = runner.invoke(app, ["user", "update", *common, "--password", "new-secret"])
    assert updated.exit_code == 0, updated.output
    db = Database(f"sqlite:///{tmp_path / 'data' / 'commits.sqlite'}")
    try:
        identity = Authenticator(db).check("ci", "new-secret")
        assert identity is not None and identity.roles == {"voter"}
        refused = runner.invoke(app, ["user", "delete", *common], input="n\n")
        assert refused.exit_code == 1
        deleted = runner.invoke(app, ["user", "delete", *common, "--force"])
        assert deleted.exit_code == 0, deleted.output
        assert Authenticator(db).check("ci", "new-secret") is None
    finally:
        db.close()


def test_serve_help() -> None:
    result = CliRunner().invoke(_app(), ["serve", "--help"])
    assert result.exit_code == 0
    assert "--port" in result.output
