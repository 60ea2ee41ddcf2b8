"""The rdoinfo-format loader: real snapshots, merge and resolution rules, and bad input.

Rules: shared/reference/rdoinfo-and-openstack-data.md sections 1.3-1.10.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from conveyor.metadata import (
    MetadataError,
    RdoInfoDatabase,
    load_database,
    packages_for_release,
    resolve_package,
    yamlfiles,
)
from conveyor.metadata.errors import SourceLocation
from conveyor.metadata.merge import merge_documents
from conveyor.metadata.safeyaml import YamlDocument, parse_yaml


def _shared_data() -> Path:
    here = Path(__file__).resolve()
    repo = next(p for p in here.parents if (p / "pyproject.toml").is_file())
    return repo.parent / "shared" / "data"


SHARED = _shared_data()
HEAD = SHARED / "rdoinfo-2cdac3d7e"
OLD = SHARED / "rdoinfo-b967254ab"


def _snapshot(path: Path) -> RdoInfoDatabase:
    if not (path / "rdo-full.yml").is_file():
        pytest.skip(f"rdoinfo snapshot not available at {path}")
    return load_database(path)


@pytest.fixture(scope="module")
def head() -> RdoInfoDatabase:
    return _snapshot(HEAD)


@pytest.fixture(scope="module")
def old() -> RdoInfoDatabase:
    return _snapshot(OLD)


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


def error_of(path: Path, **kwargs: bool) -> str:
    with pytest.raises(MetadataError) as caught:
        load_database(path, **kwargs)
    return str(caught.value)


# A small but complete database; line numbers below refer to this text.
BASE = """
package-default:
  name: python-%(project)s
  distgit: https://example.org/%(project)s-distgit.git
  tags:
    train:
package-configs:
  core:
    name: openstack-%(project)s
    upstream: https://opendev.org/openstack/%(project)s
    master-distgit: https://github.com/rdo-packages/%(project)s-distgit.git
    component: common
    maintainers:
    - dev@example.org
releases:
- name: flamingo
  branch: rpm-master
  repos:
  - name: el9s
components:
- name: common
packages:
- project: nova
  conf: core
"""


# --- real snapshots ------------------------------------------------------------------------


def test_head_snapshot_counts(head: RdoInfoDatabase) -> None:
    assert len(head.packages) == 1369
    assert len(packages_for_release(head, None)) == 1369
    assert len(head.files) == 103
    assert len(head.releases) == 13
    assert len(head.component_names) == 22
    assert head.path == HEAD / "rdo-full.yml"


def test_old_snapshot_counts(old: RdoInfoDatabase) -> None:
    assert len(old.packages) == 1308
    assert len(old.releases) == 12


def test_glanceclient_example(head: RdoInfoDatabase) -> None:
    glance = resolve_package(head, "glanceclient")
    assert glance.name == "python-glanceclient"
    assert glance.upstream == "https://opendev.org/openstack/python-glanceclient"
    assert glance.distgit == "https://github.com/rdo-packages/glanceclient-distgit.git"
    assert glance.component == "clients"
    assert len(glance.maintainers) == 2
    assert len(glance.tags) == 14
    assert len(glance.raw["buildsys-tags"]) == 33
    assert glance.source_branch is None
    assert not glance.under_review
    assert str(glance.location) == f"{HEAD / 'rdo.yml'}:1511"
    pinned = resolve_package(head, "glanceclient", "flamingo-uc")
    assert pinned.source_branch == "4.9.0"
    assert pinned.tag == "flamingo-uc"


def test_tag_selection_on_head(head: RdoInfoDatabase) -> None:
    flamingo = packages_for_release(head, "flamingo")
    # Every one of the 249 entries in tags/flamingo.yml, and nothing else.
    assert len(flamingo) == 249
    assert all("flamingo" in package.tags for package in flamingo)
    assert all(package.tag == "flamingo" for package in flamingo)
    review = packages_for_release(head, "under-review")
    assert len(review) == 7
    assert all(package.under_review for package in review)
    assert sum(package.under_review for package in packages_for_release(head, None)) == 7


def test_duplicate_in_real_deps_file(head: RdoInfoDatabase) -> None:
    locations = head.package_origins["python-markupsafe"].locations
    assert locations[:2] == (
        SourceLocation(HEAD / "deps.yml", 1568),
        SourceLocation(HEAD / "deps.yml", 2877),
    )
    # Strict mode on deps.yml alone: the merge step is where duplicates are caught.
    with pytest.raises(MetadataError) as caught:
        merge_documents([yamlfiles.read_yaml_file(HEAD / "deps.yml")], strict=True)
    message = str(caught.value)
    assert message.startswith(f"{HEAD / 'deps.yml'}:2877: ")
    assert "'python-markupsafe'" in message
    assert "line 1568" in message


def test_resolved_raw_is_a_private_read_only_copy(head: RdoInfoDatabase) -> None:
    glance = resolve_package(head, "glanceclient")
    with pytest.raises(TypeError):
        glance.raw["name"] = "x"  # type: ignore[index]
    glance.raw["maintainers"].append("intruder@example.org")
    assert "intruder@example.org" not in resolve_package(head, "glanceclient").maintainers


# --- finding and importing files ---------------------------------------------------------------


def test_folder_prefers_rdo_full(tmp_path: Path) -> None:
    write(tmp_path, {"rdo.yml": BASE})
    assert load_database(tmp_path).path == tmp_path / "rdo.yml"
    write(tmp_path, {"rdo-full.yml": "import:\n- rdo.yml\n- extra.yml\n", "extra.yml": "x: 1\n"})
    db = load_database(tmp_path)
    assert db.path == tmp_path / "rdo-full.yml"
    assert db.files == (tmp_path / "rdo-full.yml", tmp_path / "rdo.yml", tmp_path / "extra.yml")
    assert db.info["x"] == 1


def test_folder_without_entry_file(tmp_path: Path) -> None:
    message = error_of(tmp_path)
    assert str(tmp_path) in message and "rdo-full.yml" in message


def test_imports_are_relative_to_the_importing_file(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "rdo.yml": BASE + "import:\n- tags/all.yml\n",
            "tags/all.yml": "import:\n- flamingo.yml\n",
            "tags/flamingo.yml": "packages:\n- project: nova\n  tags:\n    flamingo:\n",
        },
    )
    db = load_database(tmp_path)
    assert [p.project for p in packages_for_release(db, "flamingo")] == ["nova"]
    assert db.files[-1] == tmp_path / "tags" / "flamingo.yml"


def test_file_imported_twice_is_parsed_once_and_merged_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(
        tmp_path,
        {
            "rdo-full.yml": "import:\n- rdo.yml\n- tags.yml\n",
            "rdo.yml": BASE + "import:\n- tags.yml\n",
            "tags.yml": "packages:\n- project: nova\n  extra: [x]\n  tags:\n    flamingo:\n",
        },
    )
    parsed: list[Path] = []

    def counting_parse(text: bytes, path: Path) -> YamlDocument:
        parsed.append(path)
        return parse_yaml(text, path)

    monkeypatch.setattr(yamlfiles, "parse_yaml", counting_parse)
    db = load_database(tmp_path)
    assert sorted(p.name for p in parsed) == ["rdo-full.yml", "rdo.yml", "tags.yml"]
    # As in rdoinfo, the second merge of the same file concatenates its lists again.
    assert db.packages["nova"]["extra"] == ["x", "x"]
    assert len(db.package_origins["nova"].fragments) == 2


def test_missing_import(tmp_path: Path) -> None:
    write(tmp_path, {"rdo.yml": "import:\n- tags.yml\n- nope.yml\n", "tags.yml": ""})
    message = error_of(tmp_path)
    assert f"{tmp_path / 'rdo.yml'}:3:" in message
    assert "'nope.yml'" in message and "not found" in message


def test_import_cycle_names_the_chain(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "rdo.yml": "import:\n- a.yml\n",
            "a.yml": "import:\n- sub/b.yml\n",
            "sub/b.yml": "import:\n- ../a.yml\n",
        },
    )
    message = error_of(tmp_path)
    assert f"{tmp_path / 'sub' / 'b.yml'}:2:" in message
    assert "import cycle: a.yml -> sub/b.yml -> a.yml" in message


def test_self_import(tmp_path: Path) -> None:
    write(tmp_path, {"rdo.yml": "import:\n- rdo.yml\n"})
    assert "import cycle: rdo.yml -> rdo.yml" in error_of(tmp_path)


@pytest.mark.parametrize("name", ["../outside.yml", "/etc/hostname"])
def test_import_must_stay_inside_the_folder(tmp_path: Path, name: str) -> None:
    root = tmp_path / "info"
    write(root, {"rdo.yml": f"import:\n- {name}\n"})
    write(tmp_path, {"outside.yml": "x: 1\n"})
    message = error_of(root)
    assert f"{root / 'rdo.yml'}:2:" in message and repr(name) in message


def test_bad_import_list(tmp_path: Path) -> None:
    write(tmp_path, {"rdo.yml": "import: tags.yml\n"})
    assert f"{tmp_path / 'rdo.yml'}:1: 'import' must be a list" in error_of(tmp_path)


def test_import_diamond_bomb_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each level imports the next twice: 2**30 merges from 31 small files.
    files = {f"f{i}.yml": f"import: [f{i + 1}.yml, f{i + 1}.yml]\n" for i in range(30)}
    files["f30.yml"] = "x: 1\n"
    files["rdo.yml"] = "import: [f0.yml]\n"
    write(tmp_path, files)
    monkeypatch.setattr(yamlfiles, "MAX_DOCUMENTS", 200)
    assert "imports expand to more than 200 documents" in error_of(tmp_path)


# --- merging -----------------------------------------------------------------------------------


def test_deep_merge_rules(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "rdo.yml": BASE
            + textwrap.dedent("""
                - project: glance
                  conf: core
                  maintainers: [one@example.org]
                  tags:
                    flamingo:
                      source-branch: main
                import:
                - more.yml
                """),
            "more.yml": """
                releases:
                - name: flamingo
                  status: development
                - name: epoxy
                  repos: []
                packages:
                - project: glance
                  component: null
                  maintainers: [two@example.org]
                  tags:
                    flamingo:
                      component: storage
                    epoxy:
                - project: cinder
                  conf: core
                components:
                - name: storage
                """,
        },
    )
    db = load_database(tmp_path)
    assert list(db.packages) == ["nova", "glance", "cinder"]
    glance = db.packages["glance"]
    assert glance["maintainers"] == ["one@example.org", "two@example.org"]
    assert glance["tags"] == {
        "flamingo": {"source-branch": "main", "component": "storage"},
        "epoxy": None,
    }
    assert "component" in glance and glance["component"] is None
    # Layering, unlike merging, is a plain update: the entry's explicit null hides the conf's.
    assert resolve_package(db, "glance").component is None
    assert db.releases["flamingo"] == {
        "name": "flamingo",
        "branch": "rpm-master",
        "repos": [{"name": "el9s"}],
        "status": "development",
    }
    assert list(db.releases) == ["flamingo", "epoxy"]
    assert db.component_names == ("common", "storage")
    assert set(db.package_configs) == {"core"}
    assert db.package_default["name"] == "python-%(project)s"
    assert "import" not in db.info


def test_scalar_replaces_and_null_keeps(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "rdo.yml": BASE + "  source-branch: one\n  extra: {a: 1}\nimport: [b.yml]\n",
            "b.yml": "packages:\n- project: nova\n  source-branch: two\n  extra: null\n",
        },
    )
    nova = load_database(tmp_path).packages["nova"]
    assert nova["source-branch"] == "two"
    assert nova["extra"] == {"a": 1}


def test_duplicate_project_in_one_file(tmp_path: Path) -> None:
    write(
        tmp_path,
        {"rdo.yml": BASE + "- project: nova\n  maintainers: [second@example.org]\n"},
    )
    db = load_database(tmp_path)
    assert db.packages["nova"]["maintainers"] == ["second@example.org"]
    message = error_of(tmp_path, strict=True)
    assert f"{tmp_path / 'rdo.yml'}:24:" in message
    assert "duplicate project 'nova'" in message and "line 22" in message


def test_disagreeing_duplicate_in_one_file_keeps_the_later_values(tmp_path: Path) -> None:
    # distroinfo's list2dict: the second entry merged into the first, later scalars winning;
    # `conveyor lint` reports it, and a strict load refuses it.
    write(
        tmp_path,
        {
            "rdo.yml": BASE.replace(
                "package-configs:\n", "package-configs:\n  other:\n    name: nova-%(project)s\n"
            )
            + "- project: nova\n  conf: other\n  tags:\n    flamingo:\n",
        },
    )
    db = load_database(tmp_path)
    nova = resolve_package(db, "nova")
    assert nova.raw["conf"] == "other"
    assert nova.name == "nova-nova"
    assert nova.upstream_url is None  # `other` has none
    assert nova.tags == ("flamingo",)  # the entry's tags replace package-default's
    assert nova.location == SourceLocation(tmp_path / "rdo.yml", 26)
    message = error_of(tmp_path, strict=True)
    assert message == (
        f"{tmp_path / 'rdo.yml'}:26: duplicate project 'nova' in 'packages' "
        "(first at line 24): 'conf' differs"
    )


def test_same_project_in_two_files_is_fine_when_strict(tmp_path: Path) -> None:
    write(
        tmp_path,
        {"rdo.yml": BASE + "import: [b.yml]\n", "b.yml": "packages:\n- project: nova\n"},
    )
    assert load_database(tmp_path, strict=True).strict


# --- resolution --------------------------------------------------------------------------------


LAYERS = BASE.replace(
    "- project: nova\n  conf: core\n",
    """- project: nova
  conf: core
  tags:
    flamingo:
      source-branch: stable/1.0
      component: compute
      name: "%(project)s-%(component)s"
    epoxy:
- project: oslo-config
  upstream: [https://opendev.org/openstack/oslo.config, https://mirror.example.org/oslo]
  review: "%(upstream)s"
  nested: {url: "%(project)s"}
  alias: "%(name)s"
  tags:
    under-review:
""",
)


@pytest.fixture
def layered(tmp_path: Path) -> RdoInfoDatabase:
    return load_database(write(tmp_path, {"rdo.yml": LAYERS}))


def test_default_template_entry_layering(layered: RdoInfoDatabase) -> None:
    nova = resolve_package(layered, "nova")
    assert nova.name == "openstack-nova"
    assert nova.upstream == "https://opendev.org/openstack/nova"
    assert nova.distgit == "https://github.com/rdo-packages/nova-distgit.git"
    assert nova.maintainers == ("dev@example.org",)
    # The entry's tags replace the default's whole 'tags' value (layers are shallow).
    assert nova.tags == ("flamingo", "epoxy")
    assert nova.source_branch is None
    assert nova.raw["distgit"] == "https://example.org/nova-distgit.git"


def test_without_template(layered: RdoInfoDatabase) -> None:
    oslo = resolve_package(layered, "oslo-config")
    assert oslo.upstream == "https://opendev.org/openstack/oslo.config"
    assert oslo.distgit == "https://example.org/oslo-config-distgit.git"  # no master-distgit
    assert oslo.maintainers == ()
    assert oslo.component is None
    assert oslo.under_review
    assert oslo.tags == ("under-review",)


def test_substitution_is_one_pass_on_top_level_strings(layered: RdoInfoDatabase) -> None:
    raw = resolve_package(layered, "oslo-config").raw
    # Formatted against the unsubstituted layers, so nothing is expanded twice.
    assert raw["name"] == "python-oslo-config"
    assert raw["alias"] == "python-%(project)s"
    assert raw["review"].startswith("['https://opendev.org/openstack/oslo.config'")
    assert raw["nested"] == {"url": "%(project)s"}


def test_tag_overrides_only_when_requested(layered: RdoInfoDatabase) -> None:
    assert resolve_package(layered, "nova").name == "openstack-nova"
    nova = resolve_package(layered, "nova", "flamingo")
    assert nova.source_branch == "stable/1.0"
    assert nova.component == "compute"
    assert nova.name == "nova-compute"  # substitution sees the override's values
    epoxy = resolve_package(layered, "nova", "epoxy")
    assert epoxy.source_branch is None


def test_packages_for_release(layered: RdoInfoDatabase) -> None:
    assert [p.project for p in packages_for_release(layered, None)] == ["nova", "oslo-config"]
    assert [p.project for p in packages_for_release(layered, "epoxy")] == ["nova"]
    assert [p.project for p in packages_for_release(layered, "under-review")] == ["oslo-config"]
    assert packages_for_release(layered, "train") == []
    assert all(p.tag is None for p in packages_for_release(layered, None))


def test_unknown_project(layered: RdoInfoDatabase) -> None:
    with pytest.raises(MetadataError, match="no package with project 'swift'"):
        resolve_package(layered, "swift")


# --- bad input ---------------------------------------------------------------------------------


def test_malformed_yaml(tmp_path: Path) -> None:
    write(tmp_path, {"rdo.yml": BASE + "- project: [glance\n"})
    message = error_of(tmp_path)
    assert message.startswith(f"{tmp_path / 'rdo.yml'}:25: malformed YAML at line 25")


def test_malformed_imported_file(tmp_path: Path) -> None:
    write(tmp_path, {"rdo.yml": "import: [tags.yml]\n", "tags.yml": "packages:\n  - a: b: c\n"})
    message = error_of(tmp_path)
    assert message.startswith(f"{tmp_path / 'tags.yml'}:2: malformed YAML at line 2, column 9")
    assert "mapping values are not allowed" in message


def test_file_must_be_a_mapping(tmp_path: Path) -> None:
    write(tmp_path, {"rdo.yml": "import: [list.yml]\n", "list.yml": "- project: nova\n"})
    assert error_of(tmp_path) == f"{tmp_path / 'list.yml'}: top level must be a mapping, not list"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("packages: {nova: {}}\n", ":1: 'packages' must be a list"),
        ("packages:\n- nova\n", ":2: 'packages' entries must be mappings"),
        ("releases:\n- branch: x\n", ":2: 'releases' entry without a 'name'"),
        ("package-configs: [core]\n", ":1: 'package-configs' must be a mapping"),
        ("package-configs:\n  core: [x]\n", ":2: package-configs template 'core' must be"),
        ("package-default: x\n", ":1: 'package-default' must be a mapping"),
        ("components: {common: 1}\n", ":1: 'components' must be a list"),
    ],
)
def test_section_shapes(tmp_path: Path, text: str, expected: str) -> None:
    write(tmp_path, {"rdo.yml": text})
    assert f"{tmp_path / 'rdo.yml'}{expected}" in error_of(tmp_path)


def test_package_without_project(tmp_path: Path) -> None:
    write(tmp_path, {"rdo.yml": BASE + "- name: python-glance\n  conf: core\n"})
    message = error_of(tmp_path)
    assert f"{tmp_path / 'rdo.yml'}:24:" in message
    assert "'packages' entry without a 'project'" in message


def test_unknown_conf_template(tmp_path: Path) -> None:
    write(tmp_path, {"rdo.yml": BASE.replace("conf: core", "conf: coer")})
    message = error_of(tmp_path)
    assert message == f"{tmp_path / 'rdo.yml'}:23: package 'nova': unknown conf template 'coer'"


def test_resolved_package_needs_name(tmp_path: Path) -> None:
    write(tmp_path, {"rdo.yml": "packages:\n- project: nova\n  upstream: https://x.org/nova\n"})
    message = error_of(tmp_path)
    assert message == f"{tmp_path / 'rdo.yml'}:2: package 'nova': resolved package has no 'name'"


def test_package_without_upstream_loads_as_distroinfo_does(tmp_path: Path) -> None:
    # rdoinfo's dependencies had none until 2021; distroinfo and rdopkg show them without it.
    write(tmp_path, {"rdo.yml": "packages:\n- project: nova\n  name: nova\n  upstream: []\n"})
    nova = resolve_package(load_database(tmp_path), "nova")
    assert nova.upstream_url is None
    assert nova.raw["upstream"] == []
    # what needs one (the trunk builds from it) gets the error, at the package
    with pytest.raises(MetadataError) as caught:
        _ = nova.upstream
    assert str(caught.value) == (
        f"{tmp_path / 'rdo.yml'}:2: package 'nova': resolved package has no 'upstream'"
    )


def test_substitution_unknown_key_in_entry(tmp_path: Path) -> None:
    write(tmp_path, {"rdo.yml": BASE + "  upstream: https://x.org/%(projet)s\n"})
    message = error_of(tmp_path)
    assert message.startswith(f"{tmp_path / 'rdo.yml'}:24: package 'nova': substitution failed")
    assert "key 'upstream'" in message and "unknown key 'projet'" in message


def test_substitution_unknown_key_in_template(tmp_path: Path) -> None:
    write(tmp_path, {"rdo.yml": BASE.replace("openstack-%(project)s", "openstack-%(projet)s")})
    message = error_of(tmp_path)
    # Points at the template the broken value comes from.
    assert message.startswith(f"{tmp_path / 'rdo.yml'}:7: package 'nova': substitution failed")
    assert "key 'name'" in message


def test_substitution_bad_format(tmp_path: Path) -> None:
    write(tmp_path, {"rdo.yml": BASE + "  description: 100% python\n"})
    message = error_of(tmp_path)
    assert f"{tmp_path / 'rdo.yml'}:24: package 'nova': substitution failed" in message
    assert "key 'description'" in message


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("name: ../../etc/cron.d/x", "name"),
        ("name: nova/../../x", "name"),
        ("project: ../nova", None),
        ("upstream: ext::evil-helper", "upstream"),
        ("upstream: --upload-pack=touch /tmp/pwned", "upstream"),
        ("upstream: https://opendev.org/../../../etc", "upstream"),
        ("master-distgit: 'fd::evil'", "master-distgit"),
        ("distgit-path: ../../..", "distgit-path"),
        ("source-branch: --output=/etc/passwd", "source-branch"),
        ("component: ../common", "component"),
    ],
)
def test_unsafe_values_are_refused(tmp_path: Path, line: str, key: str | None) -> None:
    write(tmp_path, {"rdo.yml": BASE + "- project: glance\n  conf: core\n  " + line + "\n"})
    message = error_of(tmp_path)
    assert f"{tmp_path / 'rdo.yml'}:" in message
    assert "package 'glance'" in message or "'../nova'" in message
    if key is not None:
        assert f"{tmp_path / 'rdo.yml'}:26: package 'glance': '{key}'" in message


def test_invalid_name_from_tag_override(tmp_path: Path) -> None:
    write(tmp_path, {"rdo.yml": BASE + "  tags:\n    flamingo:\n      name: a/b\n"})
    db = load_database(tmp_path)  # the override only matters when the tag is requested
    with pytest.raises(MetadataError) as caught:
        packages_for_release(db, "flamingo")
    assert str(caught.value).startswith(f"{tmp_path / 'rdo.yml'}:24: package 'nova': 'name'")
    assert "invalid package name 'a/b'" in str(caught.value)


def test_error_in_override_points_at_the_tag_file(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "rdo.yml": BASE + "import: [tags/flamingo.yml]\n",
            "tags/flamingo.yml": "packages:\n- project: nova\n  tags:\n    flamingo:\n"
            "      source-branch: '%(branch)s'\n",
        },
    )
    db = load_database(tmp_path)
    with pytest.raises(MetadataError) as caught:
        resolve_package(db, "nova", "flamingo")
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'tags' / 'flamingo.yml'}:3: package 'nova': ")
    assert "substitution failed for key 'source-branch'" in message


def test_missing_entry_file(tmp_path: Path) -> None:
    assert error_of(tmp_path / "rdo.yml") == f"{tmp_path / 'rdo.yml'}: file not found"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  tags: [flamingo]\n", "'tags' must be a mapping"),
        ("  tags:\n    flamingo: [x]\n", "tag 'flamingo' must be null or a mapping"),
        ("  tags:\n    2025.1:\n", "tag name 2025.1 must be a string"),
        ("  maintainers: dev@example.org\n", "'maintainers' must be a list"),
        ("  source-branch: 1.10\n", "'source-branch' must be a string, not 1.1 (quote it)"),
    ],
)
def test_bad_value_types(tmp_path: Path, text: str, expected: str) -> None:
    write(tmp_path, {"rdo.yml": BASE + text})
    message = error_of(tmp_path)
    assert message.startswith(f"{tmp_path / 'rdo.yml'}:24: package 'nova': ")
    assert expected in message


def test_oversized_file_is_refused_before_parsing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = tmp_path / "rdo.yml"
    with big.open("wb") as stream:
        stream.truncate(50 * 1024 * 1024 + 1)  # sparse: costs no disk or time
    monkeypatch.setattr(yamlfiles, "parse_yaml", lambda *_: pytest.fail("parsed"))
    assert error_of(tmp_path) == f"{big}: file is larger than 50 MB"


def test_alias_bomb_is_refused(tmp_path: Path) -> None:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    write(tmp_path, {"rdo.yml": "\n".join(lines) + "\n"})
    message = error_of(tmp_path)
    assert message.startswith(f"{tmp_path / 'rdo.yml'}:")
    assert "billion laughs" in message
