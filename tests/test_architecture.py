"""The house rules of design.md, asserted: data flows one way, top to bottom.

    interfaces  cli/ api/ web/
    assembly    assembly/ (the composition root)
    services    trunk/ promote/ votes/ reports/ retention/ remote/ migrate/ uc/ edit/ tags/ bisect/
    adapters    metadata/ sources/ builders/ publish/ store/ notify/ closure/ queue/
    core        domain/ config

A room imports only from rooms below it (adapters may use each other). Services share nothing
but what lives below them, with two exceptions: `remote/` is a second source of builds and
publishes through the trunk's Publisher; `bisect/` names repositories and finds what changed
between two of them as the diff of `reports/` does. Every import counts, also one inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "conveyor"

LAYERS: dict[str, int] = {
    **dict.fromkeys(("domain", "config"), 0),
    # closure/ (libsolv) is an adapter: the tag gate, a service, checks its content with it.
    **dict.fromkeys(
        ("metadata", "sources", "builders", "publish", "store", "notify", "closure", "queue"),
        1,
    ),
    **dict.fromkeys(
        (
            "trunk",
            "promote",
            "votes",
            "reports",
            "retention",
            "remote",
            "migrate",
            "uc",
            "edit",
            "tags",
            "bisect",
        ),
        2,
    ),
    "assembly": 3,
    **dict.fromkeys(("cli", "api", "web", "__main__"), 4),
}
SERVICES = {room for room, layer in LAYERS.items() if layer == 2}
ALLOWED_BETWEEN_SERVICES = {("remote", "trunk"), ("bisect", "reports")}


def _room(path: Path) -> str:
    relative = path.relative_to(SRC)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return [(line, name) for line, name in found if name.split(".")[0] == "conveyor"]


def _violations() -> list[str]:
    wrong = []
    for path in sorted(SRC.rglob("*.py")):
        room = _room(path)
        if room == "__init__":
            continue
        assert room in LAYERS, f"{path}: a room the house rules do not place"
        for line, module in _imports(path):
            parts = module.split(".")
            if len(parts) < 2:
                continue
            target = parts[1]
            if target == room:
                continue
            assert target in LAYERS, f"{path}:{line}: imports {module}, a room not placed"
            here, there = LAYERS[room], LAYERS[target]
            where = f"{path.relative_to(SRC)}:{line} ({room}) imports {module}"
            if there > here:
                wrong.append(f"{where}: upwards")
            elif here == there == 2 and (room, target) not in ALLOWED_BETWEEN_SERVICES:
                wrong.append(f"{where}: another service's internals")
            elif here == there == 0 and room == "domain":
                wrong.append(f"{where}: the domain is pure and imports nothing else")
    return wrong


def test_imports_point_down() -> None:
    assert _violations() == []


def test_only_interfaces_assembly_and_remote_import_the_trunk() -> None:
    users = {
        _room(path)
        for path in SRC.rglob("*.py")
        for _, module in _imports(path)
        if module == "conveyor.trunk" or module.startswith("conveyor.trunk.")
    }
    assert users - {"trunk"} <= {"cli", "api", "web", "assembly", "remote"}


@pytest.mark.parametrize("room", ["domain"])
def test_the_core_does_no_io(room: str) -> None:
    """The domain's rules are pure: no file, process, network or database module."""
    io_modules = {"os", "subprocess", "socket", "sqlalchemy", "shutil", "urllib.request", "httpx"}
    for path in (SRC / room).rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            for name in names:
                assert name not in io_modules and name.split(".")[0] not in io_modules - {
                    "urllib.request"
                }, f"{path}: imports {name}"
