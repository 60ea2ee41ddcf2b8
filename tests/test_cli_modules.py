"""The layout of `conveyor.cli`: command modules of top-level functions, registered by
`conveyor.cli.main`, sharing `conveyor.cli.common`; nothing imports `main` back."""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer

from conveyor.cli import main

CLI = Path(main.__file__).resolve().parent
MODULES = sorted(path for path in CLI.glob("*.py") if path.name != "main.py")


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _imported(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """Every module an import statement of `tree` names (with `from X import Y`, both X and
    X.Y, as Y may be a submodule), anywhere in the file."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = "conveyor.cli" if node.level else (node.module or "")
            if node.level and node.module:
                base = f"conveyor.cli.{node.module}"
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def _named(call: ast.expr) -> str:
    """The text of a decorator, for messages and matching."""
    return ast.unparse(call)


def test_the_modules_are_found() -> None:
    names = {path.stem for path in MODULES}
    assert {"common", *main.COMMAND_MODULES} <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_no_module_imports_main(path: Path) -> None:
    found = [
        f"{path.name}:{line}: {name}"
        for line, name in _imported(_tree(path))
        if name == "conveyor.cli.main" or name.startswith("conveyor.cli.main.")
    ]
    assert not found


def test_common_imports_no_command_module() -> None:
    commands = {f"conveyor.cli.{name}" for name in main.COMMAND_MODULES}
    found = [name for _, name in _imported(_tree(CLI / "common.py")) if name in commands]
    assert not found


@pytest.mark.parametrize("name", main.COMMAND_MODULES)
def test_commands_are_not_defined_inside_functions(name: str) -> None:
    tree = _tree(CLI / f"{name}.py")
    nested = []
    for outer in ast.walk(tree):
        if not isinstance(outer, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for inner in ast.walk(outer):
            if inner is outer or not isinstance(inner, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for decorator in inner.decorator_list:
                text = _named(decorator)
                if ".command" in text or ".callback" in text:
                    nested.append(f"{name}.py:{inner.lineno}: @{text} def {inner.name}")
    assert not nested
    # No command decorators at all: the functions stay plain, `register` adds them.
    decorated = [
        f"{name}.py:{node.lineno}: {node.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and any(".command" in _named(d) for d in node.decorator_list)
    ]
    assert not decorated


@pytest.mark.parametrize("name", main.COMMAND_MODULES)
def test_registered_commands_are_top_level_functions(name: str) -> None:
    module = importlib.import_module(f"conveyor.cli.{name}")
    app = typer.Typer()
    module.register(app)
    apps = [app, *(group.typer_instance for group in app.registered_groups)]
    callbacks = [info.callback for one in apps if one for info in one.registered_commands]
    assert callbacks
    for callback in callbacks:
        assert callback is not None
        assert callback.__module__ == module.__name__, callback
        assert callback.__qualname__ == callback.__name__, callback  # not in a function
        assert getattr(module, callback.__name__) is callback


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_rich_is_not_imported_at_module_level(path: Path) -> None:
    """Rich is imported where a command uses it (or under TYPE_CHECKING), never on import."""
    tree = _tree(path)
    top = []
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            top += [
                f"{path.name}:{node.lineno}: {n}" for n in names if n and n.split(".")[0] == "rich"
            ]
    assert not top
