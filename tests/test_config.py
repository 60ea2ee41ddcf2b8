"""conveyor.toml: defaults everywhere, and errors that name the file and the option."""

from pathlib import Path

import pytest

from conveyor.config import ConfigError, ReleaseNumbering, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "conveyor.toml"
    path.write_text(text)
    return path


def test_every_option_has_a_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config()
    assert config.reponame == "delorean"
    assert config.release_numbering is ReleaseNumbering.DATE_HASH
    assert config.maxretries == 3
    assert config.use_components is False
    assert config.datadir == tmp_path / "data"
    assert config.database_url == f"sqlite:///{tmp_path / 'data' / 'commits.sqlite'}"


def test_relative_paths_are_relative_to_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir("/")
    config = load_config(write(tmp_path, 'datadir = "d"\n[metadata]\npath = "info/rdo.yml"\n'))
    assert config.datadir == tmp_path / "d"
    assert config.metadata.path == tmp_path / "info" / "rdo.yml"


def test_values_are_read(tmp_path):
    config = load_config(
        write(
            tmp_path,
            'workers = 4\nrelease_numbering = "minor.date.hash"\nrelease_minor = "2"\n'
            'use_components = true\n[metadata]\ntag = "flamingo"\n',
        )
    )
    assert (config.workers, config.release_minor, config.metadata.release) == (4, "2", "flamingo")
    assert config.release_numbering is ReleaseNumbering.MINOR_DATE_HASH


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("workerz = 2\n", "unknown option 'workerz'"),
        ("workers = 0\n", "option 'workers'"),
        ("workers = 'many'\n", "option 'workers'"),
        ('release_numbering = "date"\n', "option 'release_numbering'"),
        ('reponame = "../x"\n', "option 'reponame'"),
        ("[metadata]\ntags = 'x'\n", "unknown option 'metadata.tags'"),
        ('nonfallback_branches = ["("]\n', "option 'nonfallback_branches'"),
        ("[api]\nread_auth = 'maybe'\n", "option 'api.read_auth'"),
        ("[api]\nreadauth = true\n", "unknown option 'api.readauth'"),
    ],
)
def test_wrong_option_or_value_is_named(tmp_path, text, named):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(path) in str(error.value)
    assert named in str(error.value)


def test_malformed_toml(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "workers = = 2\n"))


def test_missing_explicit_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")


def test_the_release_is_named_release_and_rdoinfo_s_tag_still_reads(tmp_path):
    for key in ("release", "tag"):
        config = load_config(write(tmp_path, f'[metadata]\n{key} = "epoxy"\n'))
        assert config.metadata.release == "epoxy"
