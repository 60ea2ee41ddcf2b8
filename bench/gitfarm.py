"""A farm of local git repositories shaped like RDO's: one upstream and one distgit per package.

Layout of ``bench/.work/farm-N/``::

    template/upstream, template/distgit   the two repositories made with git
    upstream/pkgNNNN                      N copies of the upstream (branch master, tag 1.0.0)
    distgit/pkgNNNN-distgit               N copies of the distgit (branch rpm-master)
    metadata/rdo.yml                      rdoinfo-format metadata listing the N packages
    READY                                 written last: the farm is complete

Only the two templates are made with git; the N packages are plain directory copies, so a farm
of 1,000 packages takes seconds. Commit dates and identities are fixed, so every farm has the same
hashes and regenerating one does not make anything "new" for a builder that already saw it.

The spec has no ``Version:`` line, so a build fails at once in both tools (conveyor: "no
'Version:' tag"; DLRN: before that, because ``/usr/bin/mock`` does not exist). A first run of a
tool therefore clones everything and records one FAILED row per package, and a second run has
nothing new to build: it measures the refresh alone.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

WORK = Path(__file__).resolve().parent / ".work"

_GIT_ENV = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.org",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.org",
    "GIT_CONFIG_NOSYSTEM": "1",
}

# Fixed commit times (UTC, 2024-01-01 plus a day per commit): reproducible hashes.
_EPOCH = 1_704_067_200

SPEC = """\
# No Version: line on purpose: the benchmark's builds must fail fast (see bench/gitfarm.py).
Name:           python-{project}
Release:        1%{{?dist}}
Summary:        Benchmark package {project}
License:        ASL 2.0
Source0:        {project}-%{{upstream_version}}.tar.gz
BuildArch:      noarch

%description
A package of the conveyor benchmark farm.

%prep
%autosetup -n {project}-%{{upstream_version}}

%build

%install

%files

%changelog
* Mon Jan 01 2024 Bench <bench@example.org> - 1.0.0-1
- Benchmark farm
"""


@dataclass(frozen=True)
class Farm:
    root: Path
    packages: int

    @property
    def upstream_dir(self) -> Path:
        return self.root / "upstream"

    @property
    def distgit_dir(self) -> Path:
        return self.root / "distgit"

    @property
    def metadata_dir(self) -> Path:
        return self.root / "metadata"

    @property
    def metadata_file(self) -> Path:
        return self.metadata_dir / "rdo.yml"

    @property
    def projects(self) -> list[str]:
        return [project_name(i) for i in range(1, self.packages + 1)]


def project_name(index: int) -> str:
    return f"pkg{index:04d}"


def _git(repo: Path, *args: str, when: int | None = None) -> None:
    env = dict(os.environ, **_GIT_ENV)
    if when is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = f"@{when} +0000"
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)


def _commit(repo: Path, message: str, when: int) -> None:
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message, when=when)


def _make_upstream(path: Path) -> None:
    path.mkdir(parents=True)
    _git(path, "init", "-q", "-b", "master")
    (path / "README.rst").write_text("A benchmark project.\n")
    (path / "setup.py").write_text("from setuptools import setup\n\nsetup()\n")
    _commit(path, "Initial commit", _EPOCH)
    (path / "module.py").write_text("VALUE = 1\n")
    _commit(path, "Add module", _EPOCH + 86_400)
    _git(path, "tag", "-a", "1.0.0", "-m", "1.0.0", when=_EPOCH + 86_400)
    (path / "module.py").write_text("VALUE = 2\n")
    _commit(path, "Change value", _EPOCH + 2 * 86_400)


def _make_distgit(path: Path) -> None:
    path.mkdir(parents=True)
    _git(path, "init", "-q", "-b", "rpm-master")
    # The spec is named per package after copying; the template holds a placeholder name.
    (path / "template.spec").write_text(SPEC.format(project="template"))
    _commit(path, "Initial packaging", _EPOCH)


def _metadata(farm: Farm) -> dict[str, object]:
    return {
        "releases": [
            {
                "name": "master",
                "status": "development",
                "branch": "rpm-master",
                "upstream_branch": "master",
                "repos": [{"name": "el9s", "buildsys": "cbs/bench-el9s"}],
            }
        ],
        "package-default": {
            "name": "python-%(project)s",
            "upstream": f"file://{farm.upstream_dir}/%(project)s",
            "master-distgit": f"file://{farm.distgit_dir}/%(project)s-distgit",
            "maintainers": ["bench@example.org"],
        },
        "package-configs": {"bench": {}},
        "packages": [
            {"project": project, "conf": "bench", "tags": {"master": None}}
            for project in farm.projects
        ],
    }


def _personalise_distgit(distgit: Path, project: str) -> None:
    """Give the copied distgit its own spec, `python-<project>.spec`, in a second commit.

    Builders clone the distgit, so the change must be committed; the fixed date keeps the
    hashes reproducible (they differ between packages, as real distgits' do).
    """
    (distgit / "template.spec").rename(distgit / f"python-{project}.spec")
    (distgit / f"python-{project}.spec").write_text(SPEC.format(project=project))
    _commit(distgit, f"Package {project}", _EPOCH + 3600)


def ensure_farm(packages: int, regenerate: bool = False, quiet: bool = False) -> Farm:
    """Return the farm of `packages` packages, generating it if missing (or if `regenerate`)."""
    farm = Farm(WORK / f"farm-{packages}", packages)
    ready = farm.root / "READY"
    if ready.exists() and not regenerate:
        return farm
    start = time.monotonic()
    if farm.root.exists():
        shutil.rmtree(farm.root)
    template_up = farm.root / "template" / "upstream"
    template_dg = farm.root / "template" / "distgit"
    _make_upstream(template_up)
    _make_distgit(template_dg)
    for template in (template_up, template_dg):
        shutil.rmtree(template / ".git" / "hooks")  # git's samples: only slower copies
    farm.upstream_dir.mkdir()
    farm.distgit_dir.mkdir()
    for project in farm.projects:
        shutil.copytree(template_up, farm.upstream_dir / project, symlinks=True)
        distgit = farm.distgit_dir / f"{project}-distgit"
        shutil.copytree(template_dg, distgit, symlinks=True)
        _personalise_distgit(distgit, project)
    farm.metadata_dir.mkdir()
    farm.metadata_file.write_text(yaml.safe_dump(_metadata(farm), sort_keys=False))
    ready.write_text(f"{packages}\n")
    if not quiet:
        print(f"generated {farm.root} ({packages} packages) in {time.monotonic() - start:.1f} s")
    return farm


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=200)
    parser.add_argument("--regenerate", action="store_true")
    args = parser.parse_args(argv)
    farm = ensure_farm(args.packages, regenerate=args.regenerate)
    print(farm.root)


if __name__ == "__main__":
    main()
