"""The trunk's view of metadata: which packages it builds, and bad metadata refused before
anything is written."""

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conveyor.cli.main import app
from conveyor.config import Config, MetadataConfig
from conveyor.metadata.targets import TargetError, load_targets, select_targets

RDOINFO = Path(__file__).resolve().parents[2] / "shared" / "data" / "rdoinfo-2cdac3d7e"

HEADER = """\
package-default:
  name: python-%(project)s
  upstream: https://example.org/%(project)s
  master-distgit: https://example.org/%(project)s-distgit
  maintainers: [a@example.org]
package-configs:
  lib: {}
"""


def run_with(tmp_path: Path, packages: str) -> tuple[int, str]:
    (tmp_path / "rdo.yml").write_text(HEADER + "packages:\n" + packages)
    (tmp_path / "conveyor.toml").write_text('[metadata]\npath = "rdo.yml"\n')
    result = CliRunner().invoke(app, ["run", "--config", str(tmp_path / "conveyor.toml")])
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("packages", "message"),
    [
        ("- project: a\n  conf: nope\n", "rdo.yml:10: package 'a': unknown conf template 'nope'"),
        ("- conf: lib\n", "rdo.yml:9: 'packages' entry without a 'project'"),
        (
            "- project: a\n  conf: lib\n  name: ../evil\n",
            "rdo.yml:11: .*invalid package name '../evil'",
        ),
        ("- project: a\n  conf: lib\n  name: 'two words'\n", "rdo.yml:11: .*'two words'"),
        (
            # loaded as distroinfo loads it, but the trunk cannot build without an upstream
            "- project: a\n  conf: lib\n  upstream: null\n",
            "rdo.yml:9: package 'a': resolved package has no 'upstream'",
        ),
    ],
)
def test_bad_metadata_is_refused_before_anything_is_written(tmp_path, packages, message):
    code, output = run_with(tmp_path, packages)
    assert code == 2
    assert re.search(message, output), output
    assert not (tmp_path / "data").exists()


def test_identical_duplicate_is_merged_as_distroinfo_does(tmp_path):
    (tmp_path / "rdo.yml").write_text(
        HEADER + "packages:\n- project: a\n  conf: lib\n- project: a\n  conf: lib\n"
    )
    config = Config(metadata=MetadataConfig(path=tmp_path / "rdo.yml"))
    assert [t.name for t in load_targets(config)] == ["python-a"]


def test_disagreeing_duplicate_is_loaded_as_distroinfo_does(tmp_path):
    # distroinfo keeps the later values; `conveyor lint` reports the disagreement.
    (tmp_path / "rdo.yml").write_text(
        HEADER + "packages:\n- project: a\n  conf: lib\n  name: x\n- project: a\n  name: y\n"
    )
    config = Config(metadata=MetadataConfig(path=tmp_path / "rdo.yml"))
    assert [t.name for t in load_targets(config)] == ["y"]


def test_unknown_package_on_the_command_line(tmp_path):
    (tmp_path / "rdo.yml").write_text(HEADER + "packages:\n- project: a\n  conf: lib\n")
    targets = load_targets(Config(metadata=MetadataConfig(path=tmp_path / "rdo.yml")))
    assert [t.name for t in select_targets(targets, ["a"])] == ["python-a"]
    with pytest.raises(TargetError, match="unknown package\\(s\\): nope"):
        select_targets(targets, ["nope"])


@pytest.mark.skipif(not RDOINFO.is_dir(), reason="shared/data is not beside the checkout")
def test_real_rdoinfo_flamingo_targets():
    config = Config(
        metadata=MetadataConfig(path=RDOINFO / "rdo-full.yml", release="flamingo"),
        use_components=True,
    )
    targets = {t.name: t for t in load_targets(config)}
    assert len(targets) == 249
    client = targets["python-glanceclient"]
    assert client.upstream == "https://opendev.org/openstack/python-glanceclient"
    assert client.distgit == "https://github.com/rdo-packages/glanceclient-distgit.git"
    assert (client.component, client.source_branch, client.distro_branch) == (
        "clients",
        "master",
        "rpm-master",
    )
    assert client.tarball_base == "python-glanceclient"
    pinned = [t for t in targets.values() if t.source_branch != "master"]
    assert pinned  # per-release source-branch pins (tags, branches, commit hashes)
