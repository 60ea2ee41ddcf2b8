"""`conveyor closure` against the anchor, `dnf repoclosure` (dnf-plugins-core), on small
repositories built with the real rpmbuild and createrepo_c; bad input; the libsolv cache."""

from __future__ import annotations

import functools
import gzip
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.support import cli

from conveyor.closure import (
    by_nevra,
    check_change,
    check_closure,
    content,
    load_repositories,
    new_pool,
)

# name: (version, extra spec lines). AutoReqProv off: only what is written is required.
BASE = {
    "tool": (
        "1.0",
        [
            "%install",
            "mkdir -p %{buildroot}/usr/bin %{buildroot}/opt/tool",
            "touch %{buildroot}/usr/bin/foo-tool %{buildroot}/opt/tool/data.txt",
            "%files",
            "/usr/bin/foo-tool",
            "/opt/tool/data.txt",
        ],
    ),
    "foo": ("2.0", []),
    "liba": ("1.0", ["Provides: a"]),
}
BASE_OLD = {"foo": ("1.0", [])}
MAIN = {
    "usetool": ("1.0", ["Requires: /usr/bin/foo-tool"]),
    "usedata": ("1.0", ["Requires: /opt/tool/data.txt"]),  # only in filelists.xml
    "needsfoo2": ("1.0", ["Requires: foo >= 2"]),
    "needsfoo3": ("1.0", ["Requires: foo >= 3"]),
    "needsoldfoo": ("1.0", ["Requires: foo < 2"]),  # only an older foo satisfies it
    "richok": ("1.0", ["Requires: (a or b)"]),
    "richbad": ("1.0", ["Requires: (c or d)"]),
    "nofile": ("1.0", ["Requires: /usr/bin/nope"]),
    "prereq": ("1.0", ["Requires(pre): pre-thing"]),
    "app": ("2.0", ["Requires: foo"]),
}
MAIN_OLD = {"app": ("1.0", ["Requires: gone-lib"])}  # broken, but not the newest


def _spec(name: str, version: str, lines: list[str]) -> str:
    head = [
        f"Name: {name}",
        f"Version: {version}",
        "Release: 1",
        "Summary: s",
        "License: MIT",
        "BuildArch: noarch",
        "AutoReqProv: no",
    ]
    split = next((i for i, line in enumerate(lines) if line.startswith("%")), len(lines))
    body, tail = lines[:split], lines[split:]
    if "%files" not in tail:
        tail = [*tail, "%files"]
    return "\n".join([*head, *body, "%description", "d", *tail]) + "\n"


def _build(top: Path, packages: dict[str, tuple[str, list[str]]], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    top.mkdir(parents=True, exist_ok=True)
    for name, (version, lines) in packages.items():
        spec = top / f"{name}-{version}.spec"
        spec.write_text(_spec(name, version, lines))
        subprocess.run(
            ["rpmbuild", "-bb", "--define", f"_topdir {top}", str(spec)],
            check=True,
            capture_output=True,
        )
        for rpm in (top / "RPMS").rglob("*.rpm"):
            shutil.move(rpm, folder / rpm.name)


def _createrepo(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["createrepo_c", "-q", str(folder)], check=True)
    return folder


@dataclass(frozen=True)
class Repos:
    base: Path
    main: Path
    empty: Path
    scratch: Path


@pytest.fixture(scope="module")
def repos() -> Iterator[Repos]:
    if shutil.which("rpmbuild") is None or shutil.which("createrepo_c") is None:
        pytest.skip("rpmbuild and createrepo_c needed")
    scratch = Path(tempfile.mkdtemp(prefix="conveyor-test-closure-"))
    top = scratch / "top"
    for packages, folder in (
        (BASE, "base"),
        (BASE_OLD, "base"),
        (MAIN, "main"),
        (MAIN_OLD, "main"),
    ):
        _build(top, packages, scratch / folder)
    try:
        yield Repos(
            _createrepo(scratch / "base"),
            _createrepo(scratch / "main"),
            _createrepo(scratch / "empty"),
            scratch,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@functools.cache
def _has_dnf_repoclosure() -> bool:
    # Asked once: each dnf start costs a fraction of a second.
    return subprocess.run(["dnf", "repoclosure", "--help"], capture_output=True).returncode == 0


def _dnf_repoclosure(
    scratch: Path, checked: list[Path], lookaside: list[Path], newest: bool
) -> set[tuple[str, str]]:
    """The anchor's (NEVRA, missing dependency) pairs."""
    if not _has_dnf_repoclosure():
        pytest.skip("dnf repoclosure (Debian's dnf-plugins-core) is not installed")
    work = Path(tempfile.mkdtemp(dir=scratch))
    ids = {path: f"r{i}" for i, path in enumerate([*checked, *lookaside])}
    command = [
        "dnf",
        "-q",
        "repoclosure",
        "--releasever=1",
        f"--installroot={work / 'root'}",
        f"--setopt=cachedir={work / 'cache'}",
        "--setopt=reposdir=/nonexistent",
    ]
    command += [f"--repofrompath={ids[p]},{p}" for p in ids]
    command += [f"--repo={ids[p]}" for p in ids]
    command += [f"--check={ids[p]}" for p in checked]
    command += ["--newest"] if newest else []
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode in (0, 1), result.stderr
    pairs, package = set(), ""
    for line in result.stdout.splitlines():
        if found := re.match(r"package: (\S+) from ", line):
            package = found.group(1)
        elif line.startswith("    "):
            pairs.add((package, line.strip()))
    assert (result.returncode == 1) == bool(pairs), result.stdout
    return pairs


def _ours(
    scratch: Path, checked: list[Path], lookaside: list[Path], newest: bool
) -> tuple[int, set[tuple[str, str]]]:
    args = ["closure", "--json", "--cache", str(scratch / "cache")]
    args += [a for p in checked for a in ("--repo", str(p))]
    args += [a for p in lookaside for a in ("--lookaside", str(p))]
    args += [] if newest else ["--all-versions"]
    code, output = cli(*args)
    found = json.loads(output[output.index("[") : output.rindex("]") + 1])
    return code, {(u["package"], dep) for u in found for dep in u["missing"]}


SCENARIOS = {
    "main-with-lookaside": (["main"], ["base"]),
    "both-checked": (["main", "base"], []),
    "base-alone": (["base"], []),
    "main-alone": (["main"], []),
    "empty": (["empty"], []),
}


@pytest.mark.slow
@pytest.mark.parametrize("newest", [True, False], ids=["newest", "all-versions"])
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_same_verdict_as_dnf_repoclosure(repos: Repos, scenario: str, newest: bool) -> None:
    checked, lookaside = ([getattr(repos, n) for n in names] for names in SCENARIOS[scenario])
    code, ours = _ours(repos.scratch, checked, lookaside, newest)
    anchor = _dnf_repoclosure(repos.scratch, checked, lookaside, newest)
    assert ours == anchor
    assert code == (1 if anchor else 0)


@pytest.mark.slow
def test_what_is_found_and_how_it_is_shown(repos: Repos) -> None:
    code, ours = _ours(repos.scratch, [repos.main], [repos.base], newest=True)
    assert code == 1
    assert ours == {
        ("needsfoo3-1.0-1.noarch", "foo >= 3"),
        ("needsoldfoo-1.0-1.noarch", "foo < 2"),
        ("richbad-1.0-1.noarch", "(c or d)"),
        ("nofile-1.0-1.noarch", "/usr/bin/nope"),
        ("prereq-1.0-1.noarch", "pre-thing"),
    }
    _, every = _ours(repos.scratch, [repos.main], [repos.base], newest=False)
    assert every - ours == {("app-1.0-1.noarch", "gone-lib")}
    code, text = cli(
        "closure",
        "--repo",
        str(repos.main),
        "--lookaside",
        str(repos.base),
        "--cache",
        str(repos.scratch / "cache"),
    )
    assert code == 1
    assert (
        f"package: richbad-1.0-1.noarch from {repos.main}\n  unresolved deps:\n    (c or d)\n"
        in text
    )
    code, text = cli("closure", "--repo", str(repos.base), "--cache", str(repos.scratch / "c2"))
    assert code == 0 and "package:" not in text
    code, text = cli(
        "closure", "--json", "--repo", str(repos.empty), "--cache", str(repos.scratch / "c2")
    )
    assert code == 0 and json.loads(text[text.index("[") :]) == []


@pytest.mark.slow
def test_a_simulated_change_names_what_it_breaks(repos: Repos) -> None:
    pool = new_pool()
    (main,), (base,) = load_repositories(pool, [repos.main], [repos.base], None)
    current, lookaside = content([main]), content([base])
    assert {u.package for u in check_closure(pool, [main], [base])} == {
        u.package for u in check_change(pool, [], lookaside, add=current)
    }
    # Taking tool away from the lookaside breaks both users of its files.
    tool = by_nevra(lookaside)["tool-1.0-1.noarch"]
    without_tool = [s for s in lookaside if s.id != tool.id]
    broken = check_change(pool, current, without_tool)
    assert broken == []  # the change is to `current`: lookaside changes are a new baseline
    before = check_change(pool, current, lookaside, remove=[by_nevra(current)["app-2.0-1.noarch"]])
    assert before == []  # removing a package breaks nothing that needed nothing from it
    foo2 = by_nevra(lookaside)["foo-2.0-1.noarch"]
    with_foo = [*current, foo2, tool]
    broken = check_change(pool, with_foo, [], remove=[foo2])
    assert {(u.package, u.missing) for u in broken} == {
        ("app-2.0-1.noarch", ("foo",)),
        ("needsfoo2-1.0-1.noarch", ("foo >= 2",)),
    }
    # Adding the old app back (from all versions) brings its missing library.
    old_app = by_nevra(main.solvables())["app-1.0-1.noarch"]
    broken = check_change(pool, current, lookaside, add=[old_app])
    assert [(u.package, u.missing) for u in broken] == [("app-1.0-1.noarch", ("gone-lib",))]


# --- bad input ---------------------------------------------------------------------------


def _error(*args: str) -> str:
    code, output = cli("closure", *args)
    assert code == 2, output
    assert output.count("error:") == 1
    return output


def test_a_folder_without_repodata_is_refused(tmp_path: Path) -> None:
    assert "not a repository (no repodata/repomd.xml)" in _error("--repo", str(tmp_path))


def _copy(repo: Path, to: Path) -> Path:
    shutil.copytree(repo, to)
    return to


def _primary(repo: Path) -> Path:
    return next((repo / "repodata").glob("*primary.xml*"))


@pytest.mark.slow
def test_a_corrupt_or_missing_primary_is_refused(repos: Repos, tmp_path: Path) -> None:
    broken = _copy(repos.base, tmp_path / "broken")
    _primary(broken).write_bytes(gzip.compress(b"<metadata><package type='rpm'><name>x"))
    assert "unreadable metadata" in _error("--repo", str(broken), "--cache", str(tmp_path / "c"))
    _primary(broken).write_bytes(b"not gzip at all")
    assert "unreadable metadata" in _error("--repo", str(broken), "--cache", str(tmp_path / "c"))
    _primary(broken).unlink()
    assert "cannot open" in _error("--repo", str(broken), "--cache", str(tmp_path / "c"))


def test_a_repository_given_twice_is_refused(tmp_path: Path) -> None:
    assert "given twice" in _error("--repo", str(tmp_path), "--lookaside", f"{tmp_path}/.")


def test_a_repomd_pointing_outside_is_refused(tmp_path: Path) -> None:
    (tmp_path / "repodata").mkdir()
    (tmp_path / "repodata" / "repomd.xml").write_text(
        '<repomd xmlns="http://linux.duke.edu/metadata/repo"><data type="primary">'
        '<location href="../../etc/passwd"/></data></repomd>'
    )
    assert "outside the repository" in _error("--repo", str(tmp_path))


def test_repomd_without_primary_or_unparsable(tmp_path: Path) -> None:
    (tmp_path / "repodata").mkdir()
    repomd = tmp_path / "repodata" / "repomd.xml"
    repomd.write_text('<repomd xmlns="http://linux.duke.edu/metadata/repo"></repomd>')
    assert "no primary metadata" in _error("--repo", str(tmp_path))
    repomd.write_text("<repomd")
    assert "cannot parse" in _error("--repo", str(tmp_path))


def test_no_repo_is_a_usage_error() -> None:
    code, _ = cli("closure")
    assert code == 2


# --- the cache ---------------------------------------------------------------------------


@pytest.mark.slow
def test_the_cache_is_used_and_rewritten(repos: Repos, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    repo = _copy(repos.main, tmp_path / "main")

    def load() -> bool:
        pool = new_pool()
        (loaded,), _ = load_repositories(pool, [repo], [], cache)
        return loaded.from_cache

    assert not load()
    (solv_file,) = cache.glob("*.solv")
    assert load()
    first = solv_file.read_bytes()
    assert cli("closure", "--repo", str(repo), "--cache", str(cache))[0] == 1
    # Scribbled over, cut short: read from XML again, and written anew.
    solv_file.write_bytes(b"garbage" * 10)
    assert not load()
    assert solv_file.read_bytes() == first
    solv_file.write_bytes(first[:-60] + first[-48:])
    assert not load()
    assert load()
    # The trailer right but libsolv's data damaged: still no error, rewritten.
    solv_file.write_bytes(b"\0" * 40 + first[40:])
    assert not load() and load()
    # A new repomd.xml: a miss.
    (repo / "repodata" / "repomd.xml").write_text(
        (repo / "repodata" / "repomd.xml").read_text() + "\n"
    )
    assert not load() and load()
    assert sorted(p.name for p in cache.iterdir()) == [solv_file.name]
    # The verdict is the same from the cache.
    code, text = cli("closure", "--json", "--repo", str(repo), "--cache", str(cache))
    assert code == 1 and "richbad" in text


def test_an_unwritable_cache_costs_time_not_the_verdict(tmp_path: Path) -> None:
    repo = _createrepo(tmp_path / "empty")
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, output = cli("closure", "--repo", str(repo), "--cache", str(blocker / "sub"))
    assert code == 0, output
