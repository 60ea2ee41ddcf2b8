"""The event-based YAML builder behind the metadata loader: safe_load's values, our limits."""

from __future__ import annotations

import math
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from conveyor.metadata import MetadataError
from conveyor.metadata.safeyaml import MAX_DEPTH, parse_yaml

PATH = Path("info/rdo.yml")


def parse(text: str) -> object:
    return parse_yaml(textwrap.dedent(text).encode(), PATH).data


def error(text: str | bytes) -> str:
    data = text if isinstance(text, bytes) else textwrap.dedent(text).encode()
    with pytest.raises(MetadataError) as caught:
        parse_yaml(data, PATH)
    return str(caught.value)


SAMPLE = """
strings: [plain, 'single', "double", "%(project)s", '123', ~x, "", '=']
numbers: [1, -2, 0x1F, 0o17, 017, 1_000, 3.5, .inf, -.Inf, 1e3, 1.0e+3, 2.0.1, 4.8.0]
booleans: [yes, No, on, OFF, true, False, y, n]
nulls: [~, null, Null, {a: }]
dates: [2024-10-01, 2024-10-01 12:30:00, "2024-10-01"]
block: |
  line one
  line two
folded: >
  a
  b
quoted keys: {"1": one, 2: two, 2.5: x, true: t, null: n}
explicit: [!!str 1, !!int "7", !!float "1", !!bool "yes", !!null "", !!binary aGk=]
anchors: {base: &base {x: 1, y: [2]}, copy: *base, scalar: &s v, again: *s}
merge:
  defaults: &defaults {name: a, version: 1}
  extra: &extra {version: 2, more: yes}
  one: {<<: *defaults, version: 3}
  many: {<<: [*defaults, *extra], own: 1}
  twice: {<<: *defaults, <<: *extra}
  quoted: {"<<": literal}
"""


def test_values_match_safe_load() -> None:
    text = textwrap.dedent(SAMPLE)
    expected = yaml.safe_load(text)
    assert parse(SAMPLE) == expected
    assert math.isnan(parse("x: .NaN")["x"])  # type: ignore[index]


def test_bare_merge_marker_as_a_value_is_a_string() -> None:
    # safe_load fails on these; a string is the only sensible reading.
    assert parse("a: [<<]\nb: <<\n") == {"a": ["<<"], "b": "<<"}


def test_aliases_are_copies() -> None:
    data = parse("a: &a {x: [1]}\nb: *a\n")
    assert isinstance(data, dict)
    assert data["a"] == data["b"] and data["a"] is not data["b"]
    assert data["a"]["x"] is not data["b"]["x"]


def test_positions() -> None:
    document = parse_yaml(
        b"# comment\npackages:\n- project: nova\n  conf: core\n-   project: glance\n"
        b"package-configs:\n  core:\n    name: x\nimport:\n- a.yml\n",
        PATH,
    )
    assert document.key_lines == {"packages": 2, "package-configs": 6, "import": 9}
    assert str(document.item_location("packages", 0)) == "info/rdo.yml:3"
    assert str(document.item_location("packages", 0, "conf")) == "info/rdo.yml:4"
    assert str(document.item_location("packages", 1, "project")) == "info/rdo.yml:5"
    assert str(document.item_location("import", 0)) == "info/rdo.yml:10"
    assert str(document.section_location("package-configs", "core")) == "info/rdo.yml:7"


def test_positions_of_an_aliased_list_fall_back_to_its_key() -> None:
    document = parse_yaml(b"x: &p [{project: a}]\npackages: *p\n", PATH)
    assert str(document.item_location("packages", 0, "project")) == "info/rdo.yml:2"


def test_empty_file_is_an_empty_mapping() -> None:
    assert parse("") == {}
    assert parse("# only a comment\n") == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: [1\n", "info/rdo.yml:2: malformed YAML at line 2, column 1: did not find expected"),
        ("a:\n\t- x\n", "info/rdo.yml:2: malformed YAML at line 2, column 1: found character"),
        (b"a: 1\nb: \xff\n", "info/rdo.yml:2: malformed YAML at line 2: invalid leading UTF-8"),
        (b"a: \x00\n", "info/rdo.yml:1: malformed YAML at line 1: control characters"),
        ("a: 1\n---\nb: 2\n", "info/rdo.yml:2: expected a single YAML document"),
        ("- a\n", "info/rdo.yml: top level must be a mapping, not list"),
        ("just text\n", "info/rdo.yml: top level must be a mapping, not str"),
        ("a: *nowhere\n", "info/rdo.yml:1: undefined YAML alias *nowhere"),
        ("a: &r [x, *r]\n", "info/rdo.yml:1: recursive YAML alias *r"),
        ("a: !!python/object:os.system x\n", "info/rdo.yml:1: unsupported YAML tag"),
        ("a: !custom {}\n", "info/rdo.yml:1: unsupported YAML tag '!custom'"),
        ("a: !!set {x}\n", "info/rdo.yml:1: unsupported YAML tag"),
        ("a: !!int abc\n", "info/rdo.yml:1: invalid tag:yaml.org,2002:int value 'abc'"),
        ("? [a]\n: b\n", "info/rdo.yml:1: a mapping or list cannot be used as a mapping key"),
        ("a: {<<: [x]}\n", "info/rdo.yml:1: '<<' merge key needs a mapping"),
    ],
)
def test_bad_documents(text: str | bytes, expected: str) -> None:
    assert error(text).startswith(expected)


def test_billion_laughs_is_refused_quickly() -> None:
    lines = ["lol0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"lol{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 12)]
    start = time.perf_counter()
    message = error("\n".join(lines) + "\n")
    assert time.perf_counter() - start < 2
    assert "billion laughs" in message
    assert message.startswith("info/rdo.yml:")


def test_modest_aliases_are_fine() -> None:
    data = parse(
        "a: &a [" + ", ".join(["x"] * 100) + "]\n" + "".join(f"b{i}: *a\n" for i in range(50))
    )
    assert isinstance(data, dict) and len(data) == 51


@pytest.mark.parametrize("opening", ["[", "{a: ", "- "])
def test_deep_nesting_is_refused_quickly(opening: str) -> None:
    # Unbounded, libyaml's C composer overflows the stack on this input and its scanner is
    # quadratic in flow nesting; the depth check stops it at MAX_DEPTH levels.
    text = opening * 200_000 + "x"
    start = time.perf_counter()
    message = error(text.encode())
    assert time.perf_counter() - start < 2
    assert f"nesting deeper than {MAX_DEPTH} levels" in message
