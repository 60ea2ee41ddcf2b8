"""Build order by dependencies and rebuilds of reverse dependencies, wired into the cycle."""

from __future__ import annotations

import pytest
from tests.support import Trunk, example, example_git, rows

from conveyor.assembly.builder import run_cycle
from conveyor.config import BuildOrder

pytestmark = pytest.mark.slow
LIB, CLIENT = "python-examplelib", "python-exampleclient"


@pytest.fixture
def trunk(tmp_path) -> Trunk:
    trunk = Trunk(tmp_path / "dist")
    # The client builds against the library (rpmbuild --nodeps does not check it here).
    distgit = trunk.dist.distgits[trunk.dist.projects[CLIENT]]
    spec = distgit / f"{CLIENT}.spec"
    spec.write_text(spec.read_text().replace("BuildArch:", f"BuildRequires:  {LIB}\nBuildArch:", 1))
    example_git(distgit, "commit", "-qam", "build against the library")
    return trunk


def publish_order(trunk: Trunk) -> list[str]:
    return [r[0] for r in rows(trunk.db, "select project_name from commits order by id")]


def test_dependencies_build_first(trunk):
    config = trunk.config(build_order=BuildOrder.DEPENDENCIES, workers=2)
    run_cycle(config)
    order = publish_order(trunk)
    assert order.index(LIB) < order.index(CLIENT)


def test_new_dependency_version_rebuilds_its_dependents(trunk):
    config = trunk.config(rebuild_reverse_deps=True)
    run_cycle(config)
    upstream = trunk.dist.upstreams["examplelib"]
    example.add_upstream_commit(trunk.root, "examplelib", "the 2.0 work")
    example_git(upstream, "tag", "2.0.0")
    report = run_cycle(config)
    built = [(r.job.target.name, r.job.extended_hash) for r, _ in report.published]
    assert built[0] == (LIB, None)
    (rebuilt,) = [b for b in built if b[0] == CLIENT]
    assert rebuilt[1] is not None and len(rebuilt[1]) == 40
    client = rows(
        trunk.db,
        "select commit_hash, distro_hash, extended_hash, status from commits "
        "where project_name = ? order by id",
        CLIENT,
    )
    assert len(client) == 2 and client[0][:2] == client[1][:2]  # same source, same distgit
    assert client[1][2] == rebuilt[1] and client[1][3] == "SUCCESS"
    commit, distro, ext = client[1][:3]
    assert trunk.repos.joinpath(
        commit[:2], commit[2:4], f"{commit}_{distro[:8]}_{ext[:8]}", "repodata"
    ).is_dir()
    assert run_cycle(config).published == []  # a rebuild is not repeated
