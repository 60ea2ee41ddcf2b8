"""What keeps `conveyor info` fast must not change what it answers: command registration by
name, the in-place merge, lazily restored cache positions and filter-then-resolve queries."""

from __future__ import annotations

import copy
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import typer

from conveyor.cli import main
from conveyor.metadata import load_database
from conveyor.metadata.cache import ParseCache
from conveyor.metadata.merge import merge_documents, merge_values
from conveyor.metadata.query import (
    filter_packages,
    find_in_database,
    find_package,
    parse_filters,
    resolved_packages,
    select_packages,
)
from conveyor.metadata.safeyaml import parse_yaml
from conveyor.metadata.yamlfiles import collect_documents

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
HEAD = DATA / "rdoinfo-2cdac3d7e"


# --- registration ----------------------------------------------------------------------------


def _names(app: typer.Typer) -> list[str]:
    return sorted(main._command_names(app))


def test_command_table_matches_the_modules() -> None:
    for module in main.COMMAND_MODULES:
        alone = typer.Typer()
        main._register(alone, module)
        for name in _names(alone):
            assert main.COMMAND_MODULE.get(name) == module, name
    assert set(main.COMMAND_MODULE) == set(_names(main.app))


def test_build_app_registers_one_module() -> None:
    assert _names(main.build_app("info")) == [
        "attr-diff",
        "findpkg",
        "info",
        "lint",
        "release",
        "tags-diff",
    ]
    assert _names(main.build_app("promote")) == ["promote"]  # still a group, not a command
    assert _names(main.build_app("no-such-command")) == _names(main.app)
    assert _names(main.build_app(None)) == _names(main.app)


def test_stale_table_falls_back_to_every_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(main.COMMAND_MODULE, "info", "promote")
    assert "info" in _names(main.build_app("info"))


def _run_main(*args: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys\n"
        "from conveyor.cli.main import main\n"
        f"sys.argv = ['conveyor', *{list(args)!r}]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "loaded = [m for m in ('conveyor.uc', 'conveyor.edit', 'conveyor.cli.trunk',"
        " 'conveyor.store', 'sqlalchemy', 'rich') if m in sys.modules]\n"
        "print('LOADED', loaded, file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )


def test_info_imports_only_what_it_needs(tmp_path: Path) -> None:
    (tmp_path / "rdo.yml").write_text(
        textwrap.dedent("""\
            packages:
            - project: nova
              name: openstack-nova
              upstream: https://opendev.org/openstack/nova
              maintainers: [dev@example.org]
            """)
    )
    done = _run_main("info", "-l", str(tmp_path), "--no-cache", "nova")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("1 packages found:\n\nname: openstack-nova\n")
    assert "LOADED []" in done.stderr
    # An error still prints through Rich, on standard error.
    done = _run_main("info", "-l", str(tmp_path / "missing"), "nova")
    assert done.returncode == 2 and "error:" in done.stderr
    done = _run_main("--help")
    assert done.returncode == 0
    assert "tags-diff" in done.stdout and "uc-report" in done.stdout and "serve" in done.stdout


# --- the in-place merge ----------------------------------------------------------------------


def _copying_merge(base: Any, extra: Any) -> Any:
    """The definition: a merge that copies whatever it changes."""
    if isinstance(base, dict) and isinstance(extra, dict):
        merged = dict(base)
        for key, value in extra.items():
            if key not in base:
                merged[key] = value
            elif isinstance(value, dict | list):
                merged[key] = _copying_merge(base[key], value)
            elif value is not None:
                merged[key] = value
        return merged
    if isinstance(base, list) and isinstance(extra, list):
        return base + extra
    return base if extra is None else extra


def test_merge_leaves_documents_alone(tmp_path: Path) -> None:
    texts = {
        "a.yml": "packages:\n- project: x\n  tags: {t1: null}\n  maintainers: [a@x]\n",
        "b.yml": "packages:\n- project: x\n  tags: {t2: {source-branch: '1'}}\n",
        "c.yml": "packages:\n- project: x\n  tags: {t2: {source-branch: '2'}}\n"
        "  maintainers: [b@x]\n",
    }
    documents = [parse_yaml(text.encode(), tmp_path / name) for name, text in texts.items()]
    # b.yml twice, as a file imported from two places is merged twice.
    order = [documents[0], documents[1], documents[2], documents[1]]
    before = [copy.deepcopy(document.data) for document in documents]
    merged = merge_documents(order).info
    assert [document.data for document in documents] == before
    expected: Any = {}
    for document in order:
        data = {k: v for k, v in document.data.items() if k != "import"}
        data["packages"] = {item["project"]: item for item in data["packages"]}
        expected = _copying_merge(expected, data)
    assert merged == expected
    assert merged["packages"]["x"]["tags"] == {"t1": None, "t2": {"source-branch": "1"}}
    assert merged["packages"]["x"]["maintainers"] == ["a@x", "b@x"]
    # merge_values alone copies too.
    base = {"a": [1], "b": {"c": 1}}
    assert merge_values(base, {"a": [2], "b": {"d": 2}}) == {"a": [1, 2], "b": {"c": 1, "d": 2}}
    assert base == {"a": [1], "b": {"c": 1}}


# --- the real snapshot -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def head_cache(tmp_path_factory: pytest.TempPathFactory) -> ParseCache:
    if not (HEAD / "rdo-full.yml").is_file():
        pytest.skip(f"rdoinfo snapshot not available at {HEAD}")
    cache = ParseCache(tmp_path_factory.mktemp("cache"))
    load_database(HEAD, cache=cache)
    return cache


def test_cached_documents_equal_parsed_ones(head_cache: ParseCache) -> None:
    entry = HEAD / "rdo-full.yml"
    cached = collect_documents(entry, head_cache)
    parsed = collect_documents(entry)
    assert len(cached) == len(parsed)
    for one, other in zip(cached, parsed, strict=True):
        assert one.data == other.data
        for key, positions in other.item_positions.items():
            assert list(one.item_positions[key]) == list(positions)
            assert one.item_positions[key][-1:] == positions[-1:]


def test_select_and_find_match_the_full_resolution(head_cache: ParseCache) -> None:
    db = load_database(HEAD, cache=head_cache)
    for arguments in (["conf:client", "maintainers:jcapitao"], ["tags:^flamingo$"], [".*"]):
        filters = parse_filters(arguments)
        assert select_packages(db, filters) == filter_packages(resolved_packages(db), filters)
    tagged = parse_filters(["project:^glanceclient$"])
    assert select_packages(db, tagged, "flamingo-uc")[0]["source-branch"] == "4.9.0"
    everything = resolved_packages(db)
    for query in ("nova", "https://opendev.org/openstack/oslo.config", "glance", "zzz"):
        assert find_in_database(db, query) == find_package(everything, query)
