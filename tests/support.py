"""What the end-to-end tests share: a generated example distribution driven through the CLI."""

from __future__ import annotations

import base64
import hashlib
import os
import sqlite3
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from examples import distribution as example
from typer.testing import CliRunner

from conveyor.cli.main import app
from conveyor.config import Config, load_config
from conveyor.domain.builds import BuildTarget

__all__ = [
    "Trunk",
    "basic",
    "build_target",
    "cli",
    "dnf_install",
    "example",
    "example_git",
    "rows",
    "tree_digest",
    "users_database",
]


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def rows(db: Path, query: str, *params: object) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(query, params).fetchall()


def tree_digest(path: Path) -> str:
    digest = hashlib.sha256()
    for item in sorted(path.rglob("*")):
        digest.update(str(item.relative_to(path)).encode())
        if item.is_symlink():
            digest.update(os.readlink(item).encode())
        elif item.is_file():
            digest.update(item.read_bytes())
    return digest.hexdigest()


class Trunk:
    def __init__(self, root: Path) -> None:
        self.dist = example.generate(root)
        self.root = root
        self.config_path = self.dist.config
        self.repos = root / "data" / "repos"
        self.db = root / "data" / "commits.sqlite"

    def config(self, **overrides: object) -> Config:
        return load_config(self.config_path).model_copy(update=overrides)

    def run(self, *args: str) -> tuple[int, str]:
        return cli("run", "--config", str(self.config_path), *args)

    def newest(self, package: str) -> tuple:
        return rows(
            self.db,
            "select status, commit_hash, distro_hash, artifacts, notes, id from commits "
            "where project_name = ? order by id desc limit 1",
            package,
        )[0]

    def hash_dir(self, commit_hash: str, distro_hash: str) -> Path:
        return self.repos / commit_hash[:2] / commit_hash[2:4] / f"{commit_hash}_{distro_hash[:8]}"


def example_git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout.strip()


def dnf_install(scratch: Path, repo_options: list[str], package: str) -> set[str]:
    """Install `package` with the real dnf into a throw-away root; return the installed NVRs."""
    root = scratch / "root"
    subprocess.run(
        [
            "dnf",
            "-q",
            "-y",
            # dnf-plugins-core's `local` plugin keeps every installed package in a host-wide
            # repository, which would answer for the repositories under test.
            "--noplugins",
            f"--installroot={root}",
            "--releasever=1",
            "--nogpgcheck",
            f"--setopt=cachedir={scratch / 'cache'}",
            *repo_options,
            "install",
            package,
        ],
        check=True,
        capture_output=True,
    )
    listing = subprocess.run(
        ["rpm", "--root", str(root), "-qa", "--qf", "%{NAME}-%{VERSION}-%{RELEASE}\n"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(listing.stdout.split())


def basic(user: str, password: str) -> dict[str, str]:
    """The Authorization header of HTTP basic authentication."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def users_database(path: Path, users: Mapping[str, tuple[str, Sequence[str]]]) -> Path:
    """A database at `path` holding `users` (name: (password, roles)). Made once per module
    and copied by each test: argon2 is slow on purpose."""
    from conveyor.api.auth import create_user
    from conveyor.store.database import Database

    db = Database(f"sqlite:///{path}")
    try:
        for name, (password, roles) in users.items():
            create_user(db, name, password, roles)
    finally:
        db.close()
    return path


def build_target(name: str, **overrides: object) -> BuildTarget:
    """A package as a builder builds it, with file:// URLs that nothing fetches."""
    fields: dict[str, Any] = {
        "name": name,
        "project": name,
        "upstream": f"file:///upstream/{name}",
        "distgit": f"file:///distgit/{name}",
        "source_branch": "master",
        "distro_branch": "rpm-master",
        "distgit_path": None,
        "component": None,
        "maintainers": (),
        "under_review": False,
    }
    return BuildTarget(**(fields | overrides))
