"""What the end-to-end tests share: a generated example distribution driven through the CLI."""

from __future__ import annotations

import atexit
import base64
import contextlib
import functools
import hashlib
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from examples import distribution as example
from typer.testing import CliRunner

from conveyor.cli.main import app
from conveyor.config import Config, load_config
from conveyor.domain.builds import BuildTarget

__all__ = [
    "BuiltExample",
    "Trunk",
    "basic",
    "build_target",
    "built_example",
    "cli",
    "default_first_cycle",
    "dnf_install",
    "example",
    "example_git",
    "fresh_trunk",
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


# --- shared example distributions ---------------------------------------------------------------
#
# Generating the example distribution runs a few hundred git commands, and building it runs
# rpmbuild eight times: tests that need one get a copy of a distribution made once per process.

_TEMPLATE_DIRS: list[Path] = []


def _discard_template_dirs() -> None:
    for folder in _TEMPLATE_DIRS:
        shutil.rmtree(folder, ignore_errors=True)


atexit.register(_discard_template_dirs)


def _scratch_dir(prefix: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=prefix))  # private, as pytest's own folders
    _TEMPLATE_DIRS.append(folder)
    return folder


def _copy_tree(source: Path, target: Path) -> None:
    """`target` (missing or empty) becomes a copy of `source`: links, hard links, modes and
    times as they are (cp -a, twice as fast as shutil.copytree here)."""
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", f"{source}/.", str(target)], check=True)


def _sync_tree(source: Path, target: Path) -> None:
    """`target` becomes equal to `source` again: what is not in `source` goes, what differs
    (kind, link target, size, modification time or mode) is copied, the rest stays untouched,
    which costs far less than a copy of the whole tree. Times are compared to the nanosecond,
    and every write moves them (nothing here sets them back)."""
    theirs = {entry.name: entry for entry in os.scandir(source)}
    for entry in os.scandir(target):
        if entry.name not in theirs or _kind(entry) != _kind(theirs[entry.name]):
            _remove(Path(entry.path))
    for name, entry in theirs.items():
        kind, there, here = _kind(entry), Path(entry.path), target / name
        if kind == "link":
            wanted = os.readlink(there)
            if not here.is_symlink() or os.readlink(here) != wanted:
                here.unlink(missing_ok=True)
                here.symlink_to(wanted)
        elif kind == "dir":
            if not here.is_dir() or here.is_symlink():
                _copy_tree(there, here)
            else:
                _sync_tree(there, here)
                if here.stat().st_mode != entry.stat().st_mode:
                    shutil.copystat(there, here)
        else:
            mine, original = (here.lstat() if here.exists() else None), entry.stat()
            if mine is None or (mine.st_size, mine.st_mtime_ns, mine.st_mode) != (
                original.st_size,
                original.st_mtime_ns,
                original.st_mode,
            ):
                here.unlink(missing_ok=True)  # never write through a hard link
                shutil.copy2(there, here)


def _kind(entry: os.DirEntry[str]) -> str:
    if entry.is_symlink():
        return "link"
    return "dir" if entry.is_dir() else "file"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


@functools.cache
def _generated_template() -> Path:
    root = _scratch_dir("conveyor-example-template-") / "dist"
    example.generate(root)
    return root


def fresh_trunk(root: Path) -> Trunk:
    """`Trunk(root)` without generating again: a copy of a distribution generated once per
    process. Generation is deterministic (test_example_distribution checks its hashes), and the
    copy's text files naming the template's folder are rewritten to name `root` (as
    test_retention's History.copy does). Where the folder shows in a file that is not text, the
    distribution is generated at `root` instead."""
    if root.exists() and any(root.iterdir()):
        return Trunk(root)  # generate() says what it makes of that folder
    template = _generated_template()
    _copy_tree(template, root)
    old, new = str(template).encode(), str(root.resolve()).encode()
    for path in root.rglob("*"):
        if path.is_symlink() or not path.is_file():
            continue
        content = path.read_bytes()
        if old not in content:
            continue
        try:
            content.decode()
        except UnicodeDecodeError:
            shutil.rmtree(root)
            return Trunk(root)
        path.write_bytes(content.replace(old, new))
    return Trunk(root)


class BuiltExample:
    """The example distribution after a first cycle, built once per process at a fixed folder
    (the published tree and the database name it) and restored from a snapshot of that state
    before a test that changes it: `shared()` for tests that only read it, `changed()` (a
    context manager) for the others."""

    def __init__(self, root: Path, snapshot: Path) -> None:
        self.root = root
        self.snapshot = snapshot
        self._dirty = False

    def _restore(self) -> None:
        if self._dirty:
            _sync_tree(self.snapshot, self.root)
            self._dirty = False

    def shared(self) -> Trunk:
        """The built distribution, as its first cycle left it; the test must not change it."""
        self._restore()
        return Trunk(self.root)

    @contextlib.contextmanager
    def changed(self) -> Iterator[Trunk]:
        """The built distribution, as its first cycle left it, for a test that changes it."""
        self._restore()
        self._dirty = True  # the next user gets the snapshot back
        yield Trunk(self.root)


_BUILT: dict[str, BuiltExample] = {}


def built_example(key: str, first_cycle: Callable[[Trunk], None]) -> BuiltExample:
    """The example distribution after `first_cycle` (which asserts what the cycle did), made
    once per process for each `key`: callers sharing a key must run the same cycle."""
    built = _BUILT.get(key)
    if built is None:
        base = _scratch_dir(f"conveyor-built-{key}-")
        trunk = fresh_trunk(base / "dist")
        first_cycle(trunk)
        _copy_tree(trunk.root, base / "snapshot")
        built = _BUILT[key] = BuiltExample(trunk.root, base / "snapshot")
    return built


def default_first_cycle(trunk: Trunk) -> None:
    """`conveyor run` on the example as generated: every package built once, example-broken
    failed on purpose."""
    code, output = trunk.run()
    assert code == 1, output
