"""Older rdoinfo states, taken from a local git mirror of redhat-openstack/rdoinfo.

The mirror is a bare repository at ``<checkout>/../.mirror/redhat-openstack+rdoinfo/repo`` (or
wherever ``CONVEYOR_RDOINFO_GIT`` points). Where it is absent (CI), :func:`rdoinfo_at` skips the
test; the synthetic fixtures of the tests that use it reproduce the same shapes and always run.
Nothing is copied into the project: each revision is written to a temporary folder with
``git archive``.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

MIRROR = Path(
    os.environ.get(
        "CONVEYOR_RDOINFO_GIT",
        Path(__file__).resolve().parents[2] / ".mirror" / "redhat-openstack+rdoinfo" / "repo",
    )
)

REVISIONS = {
    # 2018-06-01 "Promote CBS tags update for ocata-testing": 505 dependencies (conf
    # rdo-dependency / fedora-dependency) have no `upstream`; buildsys-tags `version-locked`.
    "rdoinfo-2018": "da3f3842dbda158c1cf700e0e7dcacc600aa9202",
    # 2020-06-01 "Remove networking-fujitsu package for train": deps.yml lists
    # python-sphinx-testing twice (lines 145 and 2336), conf rdo-dependency then
    # fedora-dependency; distroinfo keeps the later.
    "rdoinfo-2020": "fe4b3cf83fbd193e02961f26d06ccc992182d552",
}


def rdoinfo_at(name: str, destination: Path) -> Path:
    """The files of revision ``REVISIONS[name]`` written under ``destination``; skips the
    test when the mirror or the revision is not there."""
    commit = REVISIONS[name]
    if not MIRROR.is_dir():
        pytest.skip(f"no rdoinfo git mirror at {MIRROR}")
    found = subprocess.run(
        ["git", "--git-dir", str(MIRROR), "cat-file", "-e", f"{commit}^{{commit}}"],
        capture_output=True,
        check=False,
    )
    if found.returncode != 0:
        pytest.skip(f"{commit} is not in {MIRROR}")
    archive = subprocess.run(
        ["git", "--git-dir", str(MIRROR), "archive", "--format=tar", commit],
        capture_output=True,
        check=True,
    ).stdout
    destination.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():
            # data files only, inside the destination (Python 3.11.2 has no extraction filter)
            if member.isfile() and not member.name.startswith("/") and ".." not in member.name:
                target = destination / member.name
                target.parent.mkdir(parents=True, exist_ok=True)
                stream = tar.extractfile(member)
                assert stream is not None
                target.write_bytes(stream.read())
    return destination
