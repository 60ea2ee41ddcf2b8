"""Buildsys tags end to end: rdoinfo's buildsys-tags files declare, `conveyor tags diff`
says what would change, `apply` publishes versioned repositories through the closure gate,
`restore` and `propose` work on the declarations. Real RPMs (rpmbuild, createrepo_c), the
real libsolv, a real `dnf install` from a tag's repository; rdoinfo's real files load."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from tests.postgres_server import PostgresServer, postgres  # noqa: F401 (fixture)
from tests.support import cli, dnf_install, rows

from conveyor.domain.tags import ActionKind, TagAction, apply_actions, diff_tags
from conveyor.metadata.buildsys import load_desired_tags
from conveyor.metadata.errors import MetadataError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
pytestmark = pytest.mark.skipif(
    shutil.which("rpmbuild") is None or shutil.which("createrepo_c") is None,
    reason="rpmbuild and createrepo_c needed",
)
FAMILY = "cloud9s-openstack-demo"
CANDIDATE, TESTING, RELEASE = (f"{FAMILY}-{stage}" for stage in ("candidate", "testing", "release"))


# --- RPMs with a crafted dependency graph -------------------------------------------------------


@dataclass(frozen=True)
class Pkg:
    name: str
    version: str
    requires: Sequence[str] = ()
    provides: Sequence[str] = ()
    files: Sequence[str] = ()
    conflicts: Sequence[str] = ()

    @property
    def nvr(self) -> str:
        return f"{self.name}-{self.version}-1"


def _spec(p: Pkg) -> str:
    lines = [
        f"Name: {p.name}",
        f"Version: {p.version}",
        "Release: 1",
        "Summary: t",
        "License: MIT",
        "BuildArch: noarch",
        "AutoReqProv: no",
        *(f"Requires: {r}" for r in p.requires),
        *(f"Provides: {r}" for r in p.provides),
        *(f"Conflicts: {r}" for r in p.conflicts),
        "%description",
        "t",
        "%install",
        *(f"mkdir -p %{{buildroot}}{Path(f).parent} && touch %{{buildroot}}{f}" for f in p.files),
        f"mkdir -p %{{buildroot}}/usr/share/{p.name} && touch %{{buildroot}}/usr/share/{p.name}/v",
        "%files",
        *p.files,
        f"/usr/share/{p.name}",
    ]
    return "\n".join(lines) + "\n"


def build_rpms(packages: Sequence[Pkg], folder: Path) -> None:
    """Binary and source RPMs of `packages` into `folder`, with the real rpmbuild."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as top:
        for p in packages:
            spec = Path(top) / f"{p.name}-{p.version}.spec"
            spec.write_text(_spec(p))
            subprocess.run(
                ["rpmbuild", "-ba", "--define", f"_topdir {top}", str(spec)],
                check=True,
                capture_output=True,
            )
        for rpm in Path(top).rglob("*.rpm"):
            shutil.copy(rpm, folder)


LIB1 = Pkg("pylib", "1.0", provides=["pylib-api = 1"])
LIB2 = Pkg("pylib", "2.0", provides=["pylib-api = 2"])
APP1 = Pkg("app", "1.0", requires=["pylib-api = 1", "base-thing"])
APP2 = Pkg("app", "2.0", requires=["pylib-api = 2", "newdep", "/usr/bin/tooly"])
NEWDEP = Pkg("newdep", "1.0")
TOOL = Pkg("tool", "1.0", files=["/usr/bin/tooly"])
BASE = Pkg("basepkg", "1.0", provides=["base-thing"])
# Closed (it requires nothing), but the solver cannot install it beside what it needs.
CLASH = Pkg("clash", "1.0", requires=["app"], conflicts=["pylib"])


@dataclass(frozen=True)
class Rpms:
    builds: Path  # every build's RPMs, to import
    lookaside: Path  # a repository providing base-thing


@pytest.fixture(scope="module")
def rpms() -> Iterator[Rpms]:
    root = Path(tempfile.mkdtemp(prefix="conveyor-test-tags-"))
    build_rpms([LIB1, LIB2, APP1, APP2, NEWDEP, TOOL, CLASH], root / "builds")
    build_rpms([BASE], root / "base")
    subprocess.run(["createrepo_c", "-q", str(root / "base")], check=True)
    try:
        yield Rpms(root / "builds", root / "base")
    finally:
        shutil.rmtree(root)


# --- a builder with an rdoinfo checkout declaring the tags -------------------------------------


@dataclass
class Site:
    root: Path
    config: Path

    @property
    def rdoinfo(self) -> Path:
        return self.root / "rdoinfo"

    def declare(self, tag: str, builds: dict[str, str]) -> None:
        """`buildsys-tags/<tag>.yml`: project -> NVR."""
        packages = [{"project": p, "buildsys-tags": {tag: nvr}} for p, nvr in builds.items()]
        (self.rdoinfo / "buildsys-tags" / f"{tag}.yml").write_text(
            yaml.safe_dump({"packages": packages}, sort_keys=False)
        )

    def tags(self, *args: str) -> tuple[int, str]:
        return cli("tags", *args, "--config", str(self.config))


# The tag store's tests that write, also on PostgreSQL.
ON_BOTH = pytest.mark.parametrize("site", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def site(request: pytest.FixtureRequest, tmp_path: Path, rpms: Rpms) -> Site:
    """A builder on SQLite; on PostgreSQL for a test parametrized with `ON_BOTH`."""
    database = ""
    if getattr(request, "param", "sqlite") == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres")
        database = f'database = "{server.new_database()}"\n'
    rdoinfo = tmp_path / "rdoinfo"
    (rdoinfo / "buildsys-tags").mkdir(parents=True)
    (rdoinfo / "rdo.yml").write_text(
        yaml.safe_dump({"packages": [{"project": p} for p in ("pylib", "app", "newdep", "tool")]})
    )
    (rdoinfo / "buildsys-tags.yml").write_text(
        yaml.safe_dump(
            {"import": [f"buildsys-tags/{t}.yml" for t in (CANDIDATE, TESTING, RELEASE)]}
        )
    )
    config = tmp_path / "conveyor.toml"
    config.write_text(
        'datadir = "data"\nbaseurl = "http://localhost:8080/repos"\n'
        + database
        + '[metadata]\npath = "rdoinfo"\n'
        f'[tags]\nlookaside = ["{rpms.lookaside}"]\n'
    )
    s = Site(tmp_path, config)
    for tag in (CANDIDATE, TESTING, RELEASE):
        s.declare(tag, {})
    code, output = s.tags("import-rpms", str(rpms.builds))
    assert code == 0, output
    return s


# --- the rules, pure ----------------------------------------------------------------------------


def test_diff_gives_koji_verbs_and_moves():
    desired = {"t": {"a": "a-2-1", "b": "b-1-1"}, "u": {"c": "c-1-1"}}
    applied = {"t": {"a": "a-1-1", "c": "c-1-1"}, "u": {}}
    actions = diff_tags(desired, applied, {"t": {"a", "c"}, "u": set()})
    assert [str(a) for a in actions] == [
        "tag a-2-1 into t (replacing a-1-1)",
        "register b in t",
        "tag b-1-1 into t",
        "register c in u",
        "move c-1-1 from t to u",
    ]
    after = apply_actions(applied, actions)
    assert after == {"t": {"a": "a-2-1", "b": "b-1-1"}, "u": {"c": "c-1-1"}}
    assert TagAction.from_json(actions[-1].to_json()) == actions[-1]
    assert actions[-1].kind is ActionKind.MOVE


# --- the declarations ---------------------------------------------------------------------------


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is absent")
@pytest.mark.parametrize("snapshot", ["rdoinfo-2cdac3d7e", "rdoinfo-b967254ab"])
def test_real_rdoinfo_buildsys_tags_load(snapshot):
    desired = load_desired_tags(SHARED / snapshot)
    assert len(desired.tags) > 50
    for tag, content in desired.tags.items():
        for name, entry in content.items():
            assert entry.nvr.startswith(f"{name}-"), (tag, entry.nvr)
    if snapshot == "rdoinfo-2cdac3d7e":
        release = desired.content("cloud9s-openstack-epoxy-release")
        assert len(release) > 600
        assert release["GitPython"].startswith("GitPython-")


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is absent")
def test_real_rdoinfo_diffs_against_an_empty_store(tmp_path):
    desired = load_desired_tags(SHARED / "rdoinfo-2cdac3d7e")
    tag = "cloud9s-openstack-epoxy-release"
    actions = diff_tags({tag: desired.content(tag)}, {}, {})
    kinds = {a.kind for a in actions}
    assert kinds == {ActionKind.REGISTER, ActionKind.TAG}
    assert len([a for a in actions if a.kind is ActionKind.TAG]) == len(desired.content(tag))


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            "packages: [{project: a, buildsys-tags: {t: a-1-1}}, {project: b, "
            "buildsys-tags: {t: a-2-1}}]",
            "t holds two NVRs of a: a-2-1 and a-1-1",
        ),
        ("packages: [{project: a, buildsys-tags: {'x/y': a-1-1}}]", "invalid buildsys tag name"),
        ("packages: [{project: a, buildsys-tags: {versions: a-1-1}}]", "reserved"),
        ("packages: [{project: a, buildsys-tags: {t: justaname}}]", "t: not an NVR"),
        ("packages: [{project: a, buildsys-tags: {t: [a-1-1]}}]", "is not an NVR"),
        ("packages: {a: 1}", "'packages' must be a list"),
        ("packages: [a: [", "buildsys-tags/t.yml"),
    ],
)
def test_bad_declarations_are_named_with_file_and_line(tmp_path, text, error):
    (tmp_path / "buildsys-tags").mkdir()
    (tmp_path / "buildsys-tags.yml").write_text("import: [buildsys-tags/t.yml]\n")
    (tmp_path / "buildsys-tags" / "t.yml").write_text(text + "\n")
    with pytest.raises(MetadataError, match=r"buildsys-tags/t\.yml") as raised:
        load_desired_tags(tmp_path)
    assert error in str(raised.value)


# --- apply, the gate, the store -----------------------------------------------------------------


@ON_BOTH
def test_apply_publishes_a_versioned_repository_dnf_installs_from(site, tmp_path):
    site.declare(CANDIDATE, {"pylib": LIB1.nvr, "app": APP1.nvr})
    code, output = site.tags("diff")
    assert code == 0, output
    assert f"tag {APP1.nvr} into {CANDIDATE}" in output
    assert f"closure of {CANDIDATE}: ok" in output
    code, output = site.tags("apply", "--author", "alice")
    assert code == 0, output
    assert f"{CANDIDATE}: version 1" in output
    store = site.root / "data" / "tags"
    assert (store / CANDIDATE).readlink() == Path(f"versions/{CANDIDATE}/1")
    repo_file = (store / CANDIDATE / f"{CANDIDATE}.repo").read_text()
    assert f"baseurl=http://localhost:8080/tags/versions/{CANDIDATE}/1" in repo_file
    # A real dnf install from the tag's repository (and the lookaside for base-thing).
    options = [
        f"--repofrompath=tag,{store / CANDIDATE}",
        "--repo=tag",
        f"--repofrompath=lookaside,{_lookaside(site)}",
        "--repo=lookaside",
    ]
    installed = dnf_install(tmp_path / "dnf", options, "app")
    assert {APP1.nvr, LIB1.nvr, "basepkg-1.0-1"} <= installed
    # Applying again changes nothing.
    code, output = site.tags("apply")
    assert code == 0 and "nothing to do" in output
    code, output = site.tags("history", CANDIDATE, "--json")
    history = json.loads(output)
    assert [v["version"] for v in history] == [1]
    assert history[0]["author"] == "alice"


def _lookaside(site: Site) -> Path:
    text = site.config.read_text()
    return Path(text.split('lookaside = ["', 1)[1].split('"', 1)[0])


@ON_BOTH
def test_a_change_that_breaks_closure_is_refused_and_nothing_is_applied(site):
    site.declare(CANDIDATE, {"pylib": LIB1.nvr, "app": APP1.nvr})
    assert site.tags("apply")[0] == 0
    before = _tree(site)
    # app-2.0 needs pylib-api = 2, newdep and /usr/bin/tooly: none is in the tag.
    site.declare(CANDIDATE, {"pylib": LIB1.nvr, "app": APP2.nvr})
    code, output = site.tags("apply")
    assert code == 1
    assert f"BREAKS {CANDIDATE}: app-2.0-1.noarch needs" in output
    for missing in ("/usr/bin/tooly", "newdep", "pylib-api = 2"):
        assert missing in output
    assert "refused: the change breaks dependency closure" in output
    assert _tree(site) == before
    # Untagging what another package requires is refused too.
    site.declare(CANDIDATE, {"app": APP1.nvr})
    code, output = site.tags("apply")
    assert code == 1 and "app-1.0-1.noarch needs pylib-api = 1" in output
    assert _tree(site) == before
    # With everything it needs, the move goes through.
    site.declare(
        CANDIDATE,
        {"pylib": LIB2.nvr, "app": APP2.nvr, "newdep": NEWDEP.nvr, "tool": TOOL.nvr},
    )
    code, output = site.tags("apply")
    assert code == 0, output
    assert f"{CANDIDATE}: version 2" in output


def test_force_needs_a_reason_and_is_recorded(site):
    site.declare(CANDIDATE, {"app": APP1.nvr})
    code, output = site.tags("apply", "--force")
    assert code == 2 and "--force needs --reason" in output
    code, output = site.tags("apply", "--force", "--reason", "pylib comes tomorrow")
    assert code == 0, output
    code, output = site.tags("show", CANDIDATE, "--json")
    shown = json.loads(output)
    assert shown["forced"] is True and shown["reason"] == "pylib comes tomorrow"


def test_an_nvr_no_build_provides_is_refused_before_anything_is_written(site):
    site.declare(CANDIDATE, {"app": "app-9.9-1"})
    code, output = site.tags("apply")
    assert code == 2
    assert "no build provides app-9.9-1" in output
    assert rows(site.root / "data" / "commits.sqlite", "select count(*) from tag_versions") == [
        (0,)
    ]


@ON_BOTH
def test_restore_brings_back_a_past_version_as_a_new_one(site):
    site.declare(CANDIDATE, {"pylib": LIB1.nvr, "app": APP1.nvr})
    site.tags("apply")
    site.declare(
        CANDIDATE,
        {"pylib": LIB2.nvr, "app": APP2.nvr, "newdep": NEWDEP.nvr, "tool": TOOL.nvr},
    )
    assert site.tags("apply")[0] == 0
    code, output = site.tags("restore", CANDIDATE, "1")
    assert code == 0, output
    code, output = site.tags("show", CANDIDATE, "--json")
    shown = json.loads(output)
    assert shown["version"] == 3 and shown["reason"] == "restore version 1"
    assert shown["builds"] == {"app": APP1.nvr, "pylib": LIB1.nvr}
    # Every past version's repository is still there, unchanged.
    versions = site.root / "data" / "tags" / "versions" / CANDIDATE
    assert sorted(p.name for p in versions.iterdir()) == ["1", "2", "3"]
    code, output = site.tags("restore", CANDIDATE, "7")
    assert code == 2 and "has no version 7" in output


def test_a_lookaside_that_cannot_be_read_applies_nothing(site, tmp_path):
    text = site.config.read_text().replace(str(_lookaside(site)), str(tmp_path / "gone"))
    site.config.write_text(text)
    site.declare(CANDIDATE, {"pylib": LIB1.nvr})
    code, output = site.tags("apply")
    assert code == 2 and f"[tags] lookaside {tmp_path / 'gone'}: does not exist" in output
    assert not (site.root / "data" / "tags" / CANDIDATE).exists()


def test_import_rpms_refuses_a_file_that_is_not_an_rpm(site, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.rpm").write_text("not an rpm")
    code, output = site.tags("import-rpms", str(bad))
    assert code == 2 and "x.rpm: not a readable RPM" in output


# --- propose ------------------------------------------------------------------------------------


def test_propose_testing_then_release_pulls_in_what_release_needs(site):
    site.declare(
        CANDIDATE,
        {"pylib": LIB2.nvr, "app": APP2.nvr, "newdep": NEWDEP.nvr, "tool": TOOL.nvr},
    )
    site.declare(TESTING, {"pylib": LIB1.nvr, "app": APP1.nvr})
    site.declare(RELEASE, {"pylib": LIB1.nvr, "app": APP1.nvr})
    assert site.tags("apply")[0] == 0
    testing_file = site.rdoinfo / "buildsys-tags" / f"{TESTING}.yml"
    # Testing gets the candidate's newer builds of what it holds, as file edits to review;
    # packages new to testing need a person (as RDO's bot runs with -n).
    code, output = site.tags("propose", "--to", "testing")
    assert code == 0, output
    assert f"{TESTING}: {LIB2.nvr} (was {LIB1.nvr}): in {CANDIDATE}" in output
    declared = testing_file.read_text()
    assert APP2.nvr in declared and LIB2.nvr in declared and NEWDEP.nvr not in declared
    assert f"held back from {TESTING}: {NEWDEP.nvr}: new to {TESTING}: for review" in output
    # ... and the gate says what that person must add.
    code, output = site.tags("apply")
    assert code == 1 and "newdep" in output and "/usr/bin/tooly" in output
    site.declare(
        TESTING, {"pylib": LIB2.nvr, "app": APP2.nvr, "newdep": NEWDEP.nvr, "tool": TOOL.nvr}
    )
    assert site.tags("apply")[0] == 0
    # Release: the bot updates what release holds and pulls in what those builds need.
    code, output = site.tags("propose", "--to", "release", "--dry-run", "--json")
    proposals = {p["nvr"]: p for p in json.loads(output)["proposals"]}
    assert set(proposals) == {LIB2.nvr, APP2.nvr, NEWDEP.nvr, TOOL.nvr}
    assert proposals[NEWDEP.nvr]["why"] == "needed by app-2.0-1.noarch"
    assert proposals[TOOL.nvr]["old"] == ""
    release_file = site.rdoinfo / "buildsys-tags" / f"{RELEASE}.yml"
    before = release_file.read_text()
    code, output = site.tags("propose", "--to", "release")
    assert code == 0, output
    after = release_file.read_text()
    assert after != before and NEWDEP.nvr in after and TOOL.nvr in after
    code, output = site.tags("apply")
    assert code == 0, output
    assert f"{RELEASE}: version 2" in output


@pytest.mark.parametrize("form", ["list", "mapping"])
def test_propose_keeps_version_locked_projects(site, form):
    marker = [TESTING] if form == "list" else {TESTING: None}  # both as rdoinfo writes them
    site.declare(CANDIDATE, {"pylib": LIB2.nvr})
    site.declare(TESTING, {"pylib": LIB1.nvr})
    locked = site.rdoinfo / "buildsys-tags" / "version-locked.yml"
    locked.write_text(
        yaml.safe_dump(
            {"packages": [{"project": "pylib", "buildsys-tags": {"version-locked": marker}}]}
        )
    )
    entry = site.rdoinfo / "buildsys-tags.yml"
    entry.write_text(entry.read_text() + "- buildsys-tags/version-locked.yml\n")
    code, output = site.tags("propose", "--to", "testing", "--dry-run")
    assert code == 0 and "nothing to propose" in output


def _tree(site: Site) -> list[str]:
    store = site.root / "data" / "tags"
    found = []
    for path in sorted(store.rglob("*")):
        if ".xml-cache" in path.parts or path.name.startswith(".index"):
            continue
        if path.parts[len(store.parts)] in ("pool", "index"):
            continue
        target = f" -> {path.readlink()}" if path.is_symlink() else ""
        found.append(f"{path.relative_to(store)}{target}")
    return found


def _to_zstd(repo: Path) -> None:
    """Recompress a repository's primary and filelists with zstd (createrepo_c 1.x's
    default; Debian's 0.17 cannot write it) and point repomd.xml at them."""
    import zstandard

    repodata = repo / "repodata"
    repomd = (repodata / "repomd.xml").read_text()
    for kind in ("primary", "filelists"):
        gz = next(repodata.glob(f"*{kind}.xml.gz"))
        zst = gz.with_name(gz.name[: -len(".gz")] + ".zst")
        with gzip.open(gz) as source:
            zst.write_bytes(zstandard.ZstdCompressor().compress(source.read()))
        gz.unlink()
        repomd = repomd.replace(f"repodata/{gz.name}", f"repodata/{zst.name}")
    (repodata / "repomd.xml").write_text(repomd)


def test_a_zstd_lookaside_is_read(site, tmp_path, rpms):
    zstd_base = tmp_path / "base-zstd"
    shutil.copytree(rpms.lookaside, zstd_base)
    _to_zstd(zstd_base)
    site.config.write_text(site.config.read_text().replace(str(rpms.lookaside), str(zstd_base)))
    site.declare(CANDIDATE, {"pylib": LIB1.nvr, "app": APP1.nvr})  # app needs base-thing
    code, output = site.tags("apply")
    assert code == 0, output
    assert f"closure of {CANDIDATE}: ok" in output


# --- the Koji backend, against tests/doubles/koji_double.py (a TEST DOUBLE: no hub here) -----

KOJI_DOUBLE = Path(__file__).parent / "doubles" / "koji_double.py"


@pytest.fixture
def hub(site, tmp_path, monkeypatch) -> Path:
    state = tmp_path / "hub.json"
    nvrs = [p.nvr for p in (LIB1, LIB2, APP1, APP2, NEWDEP, TOOL)]
    state.write_text(json.dumps({"builds": nvrs, "tags": {}}))
    monkeypatch.setenv("KOJI_DOUBLE_STATE", str(state))
    text = site.config.read_text().replace(
        "[tags]\n",
        f'[tags]\nbackend = "koji"\nkoji_command = "{KOJI_DOUBLE}"\nkoji_owner = "rdo"\n',
    )
    site.config.write_text(text)
    return state


def _hub(state: Path) -> dict:
    return json.loads(state.read_text())


def test_koji_backend_registers_tags_and_moves(site, hub):
    site.declare(CANDIDATE, {"pylib": LIB1.nvr, "app": APP1.nvr, "tool": TOOL.nvr})
    code, output = site.tags("apply")
    assert code == 0, output
    assert f"{CANDIDATE}: version 1, applied on Koji" in output
    tags = _hub(hub)["tags"]
    assert sorted(tags[CANDIDATE]["builds"]) == [APP1.nvr, LIB1.nvr, TOOL.nvr]
    assert sorted(tags[CANDIDATE]["packages"]) == ["app", "pylib", "tool"]
    # tool leaves candidate for testing: one `move-build`, after the registrations.
    site.declare(CANDIDATE, {"pylib": LIB1.nvr, "app": APP1.nvr, "newdep": NEWDEP.nvr})
    site.declare(TESTING, {"tool": TOOL.nvr})
    code, output = site.tags("apply")
    assert code == 0, output
    assert f"move {TOOL.nvr} from {CANDIDATE} to {TESTING}" in output
    state = _hub(hub)
    assert sorted(state["tags"][CANDIDATE]["builds"]) == sorted([APP1.nvr, LIB1.nvr, NEWDEP.nvr])
    assert state["tags"][TESTING]["builds"] == [TOOL.nvr]
    verbs = [call[0] for call in state["calls"] if not call[0].startswith("list")]
    assert verbs[-4:] == ["add-pkg", "add-pkg", "tag-build", "move-build"]
    # Nothing is published in conveyor's own store with this backend.
    assert not (site.root / "data" / "tags" / CANDIDATE).exists()


def test_koji_commands_batch_each_verb_and_untag_what_a_build_replaces():
    from conveyor.tags.koji import koji_commands

    actions = [
        TagAction("t", ActionKind.REGISTER, "a"),
        TagAction("t", ActionKind.TAG, "a", "a-2-1", replaces="a-1-1"),
        TagAction("t", ActionKind.TAG, "b", "b-1-1"),
        TagAction("t", ActionKind.UNTAG, "c", "c-1-1"),
    ]
    assert koji_commands(actions, "rdo") == [
        ["add-pkg", "--owner=rdo", "t", "a"],
        ["tag-build", "t", "a-2-1", "b-1-1"],
        ["untag-build", "t", "a-1-1", "c-1-1"],
    ]


def test_koji_failure_midway_records_nothing_and_the_next_apply_finishes(site, hub, monkeypatch):
    site.declare(CANDIDATE, {"pylib": LIB1.nvr, "app": APP1.nvr})
    monkeypatch.setenv("KOJI_DOUBLE_FAIL_ON", "tag-build")
    code, output = site.tags("apply")
    assert code == 2
    assert "tag-build" in output and "Connection refused" in output
    assert rows(site.root / "data" / "commits.sqlite", "select count(*) from tag_versions") == [
        (0,)
    ]
    code, output = site.tags("apply")
    assert code == 0, output
    state = _hub(hub)
    assert sorted(state["tags"][CANDIDATE]["builds"]) == [APP1.nvr, LIB1.nvr]
    # The second apply did not register the packages again.
    assert [c[0] for c in state["calls"]].count("add-pkg") == 1


def test_koji_backend_keeps_the_closure_gate(site, hub):
    site.declare(CANDIDATE, {"app": APP2.nvr})
    code, output = site.tags("apply")
    assert code == 1 and "refused" in output
    assert [c for c in _hub(hub).get("calls", []) if not c[0].startswith("list")] == []


def test_the_solver_reports_what_cannot_be_installed_without_refusing(site):
    site.declare(CANDIDATE, {"pylib": LIB1.nvr, "app": APP1.nvr, "clash": CLASH.nvr})
    code, output = site.tags("diff", "--json")
    assert code == 0, output
    verdict = json.loads(output)["closure"][CANDIDATE]
    assert verdict["closed"] is True
    assert [u["package"] for u in verdict["uninstallable"]] == ["clash-1.0-1.noarch"]
    assert (
        "requires app, but none of the providers can be installed"
        in (verdict["uninstallable"][0]["problem"])
    )
    code, output = site.tags("apply")
    assert code == 0, output
    assert f"not installable from {CANDIDATE}: clash-1.0-1.noarch" in output


def test_propose_never_offers_an_older_build(site):
    site.declare(CANDIDATE, {"pylib": LIB1.nvr})
    site.declare(TESTING, {"pylib": LIB2.nvr})
    site.tags("apply", "--force", "--reason", "seed")
    code, output = site.tags("propose", "--to", "testing", "--dry-run")
    assert code == 0, output
    assert f"held back from {TESTING}: {LIB1.nvr}: older than {LIB2.nvr}" in output
    assert "nothing to propose" in output


def test_import_refuses_other_content_under_a_known_nvr(site, tmp_path):
    other = tmp_path / "rebuilt"
    build_rpms([Pkg("tool", "1.0", files=["/usr/bin/tooly", "/usr/bin/more"])], other)
    code, output = site.tags("import-rpms", str(other))
    assert code == 2
    assert f"{TOOL.nvr} is already in the store with other content" in output


@ON_BOTH
def test_an_interrupted_apply_is_repaired_by_the_next_one(site):
    site.declare(CANDIDATE, {"pylib": LIB1.nvr, "app": APP1.nvr})
    assert site.tags("apply")[0] == 0
    site.declare(CANDIDATE, {"pylib": LIB1.nvr, "app": APP1.nvr, "tool": TOOL.nvr})
    assert site.tags("apply")[0] == 0
    store = site.root / "data" / "tags"
    # As a kill leaves them: the pointer moved back (killed between the commit and the
    # rename), and a staging folder of a version never committed.
    (store / CANDIDATE).unlink()
    (store / CANDIDATE).symlink_to(f"versions/{CANDIDATE}/1")
    staging = store / "versions" / CANDIDATE / ".3.abcdef"
    staging.mkdir()
    (staging / "x.rpm").write_text("partial")
    code, output = site.tags("apply")
    assert code == 0, output
    assert f"repaired: {CANDIDATE} points at version 2 again" in output
    assert f"repaired: removed versions/{CANDIDATE}/.3.abcdef" in output
    assert (store / CANDIDATE).readlink() == Path(f"versions/{CANDIDATE}/2")
    assert not staging.exists()
