"""Dependency closure of RPM repositories with libsolv (`conveyor closure`, the tag gate)."""

from conveyor.closure.check import (
    Unresolved,
    by_nevra,
    check_change,
    check_closure,
    check_content,
    content,
    newest,
)
from conveyor.closure.errors import ClosureError
from conveyor.closure.loader import (
    LoadedRepo,
    default_cache,
    load_repositories,
    load_repository,
    new_pool,
    prepare,
)
from conveyor.closure.repomd import RepoFiles, repo_files

__all__ = [
    "ClosureError",
    "LoadedRepo",
    "RepoFiles",
    "Unresolved",
    "by_nevra",
    "check_change",
    "check_closure",
    "check_content",
    "content",
    "default_cache",
    "load_repositories",
    "load_repository",
    "new_pool",
    "newest",
    "prepare",
    "repo_files",
]
