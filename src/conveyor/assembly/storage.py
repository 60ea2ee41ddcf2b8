"""Where a builder keeps its state: `datadir` and `database` checked before anything is
written, and created by `conveyor init`.

A mistyped `datadir` or `database` must fail before anything is written, with one line naming
the option, never with a traceback after a lock file and a data directory were left behind.
"""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path

from conveyor.config import DEFAULT_CONFIG_NAME, Config, ConfigError, load_config
from conveyor.store.database import (
    DatabaseError,
    check_driver,
    check_sqlite_file,
    parse_url,
    sqlite_file,
)


def config_source(path: Path | None) -> Path:
    """The file an error names: the one given, else the default name (read if it exists)."""
    return path or Path(DEFAULT_CONFIG_NAME)


def _option_error(source: Path, key: str, message: str) -> ConfigError:
    return ConfigError(f"{source}: option '{key}': {message}")


def _make_dirs(path: Path) -> list[Path]:
    """Creates `path` and its missing parents, top down, and returns those it created. When one
    fails, those already made are removed again: a refused path leaves nothing behind."""
    missing: list[Path] = []
    while not os.path.lexists(path) and path != path.parent:
        missing.append(path)
        path = path.parent
    created: list[Path] = []
    try:
        for directory in reversed(missing):
            try:
                directory.mkdir()
            except FileExistsError:
                if not directory.is_dir():
                    raise
                continue  # made meanwhile by another process: not ours to remove
            created.append(directory)
    except OSError:
        remove_created(created)
        raise
    return created


def remove_created(directories: list[Path]) -> None:
    """Undoes `_make_dirs`: removes the directories, deepest first, if they are still empty."""
    for directory in reversed(directories):
        with suppress(OSError):
            directory.rmdir()


def _creation_problem(directory: Path) -> str | None:
    """Why `directory`, which does not exist, cannot be created; None when it can. Only trying
    tells: root passes every permission check, yet /proc refuses at mkdir time. So the
    directories are made and removed at once; the command that writes makes them again."""
    ancestor = directory
    while not os.path.lexists(ancestor) and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():  # the clearer message for the likeliest mistake
        return f"cannot create {directory}: {ancestor} is not a directory"
    try:
        remove_created(_make_dirs(directory))
    except OSError as exc:
        return f"cannot create {directory}: {exc.strerror}"
    return None


def _datadir_problem(datadir: Path, *, creating: bool) -> str | None:
    """A builder makes its own data directory on first use, but only where its parent exists:
    a mistyped path must not grow a new tree. Deeper ones are for `conveyor init`."""
    if os.path.lexists(datadir):
        return None if datadir.is_dir() else f"{datadir} is not a directory"
    problem = _creation_problem(datadir)
    if problem is None and not creating and not datadir.parent.is_dir():
        return f"directory {datadir.parent} does not exist; create it, or run 'conveyor init'"
    return problem


def _database_problem(config: Config, *, creating: bool) -> str | None:
    """The driver is installed, and an explicit SQLite file has a directory to live in (or, for
    `conveyor init`, one that can be created). The default database lives in `datadir`, whose
    own check covers it."""
    path: Path | None = None
    try:
        parsed = parse_url(config.database_url)
        check_driver(parsed)
        path = sqlite_file(parsed)
        if path is not None and path.resolve().is_relative_to(config.repos_dir.resolve()):
            return f"{path} is inside {config.repos_dir}, which is served over HTTP"
        if path is None or not config.database or _same_path(path.parent, config.datadir):
            return None
        if creating and not os.path.lexists(path.parent):
            return _creation_problem(path.parent)
        check_sqlite_file(path)
    except DatabaseError as exc:
        missing = path is not None and not os.path.lexists(path.parent)
        return f"{exc}; create it, or run 'conveyor init'" if missing else str(exc)
    return None


def _same_path(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve()


def check_storage(config: Config, source: Path, *, creating: bool = False) -> None:
    """Raises ConfigError, naming `datadir` or `database` and `source`, when the builder's
    state cannot be kept where the configuration says: `datadir` is a directory or can be
    made one in a directory that exists; the database's driver is installed; an explicit
    SQLite file's directory exists. With `creating` (`conveyor init`), missing directories
    need only be possible to make, parents included. Leaves the disk as it found it."""
    problem = _datadir_problem(config.datadir, creating=creating)
    if problem is not None:
        raise _option_error(source, "datadir", problem)
    problem = _database_problem(config, creating=creating)
    if problem is not None:
        raise _option_error(source, "database", problem)


def _create(source: Path, key: str, directory: Path, created: list[Path]) -> None:
    try:
        created.extend(_make_dirs(directory))
    except OSError as exc:
        remove_created(created)
        raise _option_error(source, key, f"cannot create {directory}: {exc.strerror}") from None


def init_storage(config: Config, source: Path) -> list[Path]:
    """`conveyor init`: the data directory, the repositories' directory and the directory of an
    explicit SQLite database, created if missing (the database itself is opened by the
    caller). Returns the directories created; on error, none is left."""
    check_storage(config, source, creating=True)
    created: list[Path] = []
    _create(source, "datadir", config.datadir, created)
    _create(source, "datadir", config.repos_dir, created)
    if config.database:
        path = sqlite_file(parse_url(config.database))
        if path is not None:
            _create(source, "database", path.parent, created)
    return created


def load_builder_config(path: Path | None = None) -> Config:
    """`load_config`, then `check_storage`: for the commands that open the builder, before
    they write anything."""
    config = load_config(path)
    check_storage(config, config_source(path))
    return config
