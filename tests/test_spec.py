"""Spec preparation for trunk builds: what DLRN's build script does, done with specfile."""

from datetime import UTC, datetime

import pytest
import rpm

from conveyor.builders.spec import SpecError, prepare_spec
from conveyor.domain.version import build_version

SPEC = """%{!?upstream_version: %global upstream_version %{version}%{?milestone}}
%global sname foo
Name: python-%{sname}
Epoch: 1
Version: XXX
Release: XXX
Summary: foo
License: ASL 2.0
Source0: https://tarballs.example.org/%{sname}/%{sname}-%{upstream_version}.tar.gz
Source1: foo.service
BuildArch: noarch

%description
foo

%prep
%setup -q -n %{sname}-%{upstream_version}

%files

%changelog
* Mon Jan 01 2024 Someone <a@example.org> 1:1.0-1
- Update to 1.0
"""

VERSION = build_version(
    "1.2.0", 3, "0.date.hash", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "abcdef1"
)


def prepared(tmp_path, text=SPEC, keep_changelog=False):
    spec = tmp_path / "python-foo.spec"
    spec.write_text(text)
    result = prepare_spec(spec, VERSION, "foo-1.2.1.dev3.tar.gz", keep_changelog)
    return result, spec.read_text()


def test_version_release_macros_and_source(tmp_path):
    result, text = prepared(tmp_path)
    assert result.name == "python-foo"
    assert result.nvr == "python-foo-1.2.1-0.20260102030405.abcdef1"
    lines = text.splitlines()
    assert lines[:3] == [
        "%define upstream_version 1.2.1.dev3",
        "%global dlrn 1",
        "%global dlrn_nvr python-foo-1.2.1-0.20260102030405.abcdef1",
    ]
    assert "Version: 1.2.1" in lines
    assert "Release: 0.20260102030405.abcdef1%{?dist}" in lines
    assert "Source0: foo-1.2.1.dev3.tar.gz" in lines
    assert "Source1: foo.service" in lines
    assert "Epoch: 1" in lines


def test_rpm_reads_the_prepared_spec(tmp_path):
    _, _ = prepared(tmp_path)
    spec = rpm.spec(str(tmp_path / "python-foo.spec"))
    header = spec.sourceHeader
    assert (header["name"], header["version"], header["release"]) == (
        "python-foo",
        "1.2.1",
        "0.20260102030405.abcdef1",
    )
    assert rpm.expandMacro("%{upstream_version}") == "1.2.1.dev3"


def test_changelog_is_dropped_unless_kept(tmp_path):
    _, text = prepared(tmp_path)
    assert text.rstrip().endswith("%changelog")
    _, kept = prepared(tmp_path, keep_changelog=True)
    assert "- Update to 1.0" in kept


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        ("Version:", "no 'Version:' tag"),
        ("Release:", "no 'Release:' tag"),
        ("Name:", "no 'Name:' tag"),
    ],
)
def test_missing_tag_is_named(tmp_path, drop, message):
    text = "\n".join(line for line in SPEC.splitlines() if not line.startswith(drop))
    spec = tmp_path / "python-foo.spec"
    spec.write_text(text)
    before = spec.read_text()
    with pytest.raises(SpecError, match=message) as error:
        prepare_spec(spec, VERSION, "t.tar.gz", False)
    assert "python-foo.spec" in str(error.value)
    assert spec.read_text() == before


def test_spec_without_sources(tmp_path):
    text = "\n".join(line for line in SPEC.splitlines() if not line.startswith("Source"))
    with pytest.raises(SpecError, match=r"python-foo\.spec: cannot parse spec: No source number 0"):
        prepared(tmp_path, text)


def test_spec_that_does_not_parse(tmp_path):
    with pytest.raises(SpecError, match=r"python-foo\.spec: cannot parse spec"):
        prepared(tmp_path, SPEC.replace("%prep", "%if 1\n%prep"))
