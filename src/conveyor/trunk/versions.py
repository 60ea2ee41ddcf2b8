"""What a build's sources are: the version DLRN would give the commit, and the tarball that
carries it. One function, used by the build (`buildjob`) and by `conveyor run --dry-run`
(`plan`), so a planned version is the built one.

The facts come from git, one call each, and nothing of the upstream runs:
* which files decide the kind of project (`metadata.json`, `setup.cfg`, `pyproject.toml`);
* a Puppet module (a `metadata.json`): its version, bumped past the nearest tag as DLRN does
  (`git describe`), and a tarball folder named after the module (`openstack-nova-28.0.1`);
* anything else: pbr's version (tags in `git log` order, `Sem-Ver:` footers since the tag,
  `setup.cfg`'s version), a tarball folder `<repository>-<version>`, and, for a pbr project,
  the `PKG-INFO` an sdist has, so pbr inside the build reads the same version without git.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from conveyor.config import Config
from conveyor.domain.builds import BuildJob
from conveyor.domain.names import check_package_name
from conveyor.domain.version import (
    BuildVersion,
    make_build_version,
    pbr_project,
    pkg_info,
    puppet_module,
    puppet_tarball_name,
    puppet_version,
    semver_bump,
    tag_position,
    upstream_version,
)
from conveyor.sources import git

_PROJECT_FILES = ("metadata.json", "setup.cfg", "pyproject.toml")


@dataclass(frozen=True)
class SourceVersion:
    """A job's version, and its tarball: `folder` is both the tarball's top folder and its
    name stem (`<folder>.tar.gz`); `extra_files` (name: text) are added in that folder."""

    version: BuildVersion
    folder: str
    extra_files: dict[str, str] = field(default_factory=dict)

    @property
    def tarball(self) -> str:
        return f"{self.folder}.tar.gz"


def _text(data: bytes | None, name: str) -> str | None:
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{name} is not UTF-8: {exc}") from None


def _puppet_upstream(job: BuildJob, metadata_json: str, timeout: float) -> tuple[str, str]:
    module = puppet_module(metadata_json)
    tag, distance = git.describe(job.mirrors.upstream, job.commit_hash, timeout)
    raw = puppet_version(module.version, tag, distance)
    return raw, puppet_tarball_name(module.name, job.target.tarball_base)


def _pbr_upstream(job: BuildJob, pre_version: str | None, timeout: float) -> str:
    upstream, commit = job.mirrors.upstream, job.commit_hash
    log = git.log_tags(upstream, commit, timeout)
    position = tag_position(log.tagged, log.commits)
    footers = ""
    if position.footers != "none":
        footers = git.messages(upstream, commit, position.footers_from, timeout)
    return upstream_version(position.tag, position.distance, semver_bump(footers), pre_version)


def source_version(job: BuildJob, config: Config, started: datetime) -> SourceVersion:
    """The version and tarball of `job`, built at `started`. Raises GitError, or ValueError
    for a project whose files or history give no version (DLRN's build fails there too)."""
    upstream, commit, timeout = job.mirrors.upstream, job.commit_hash, config.git_timeout
    files = git.read_files(upstream, commit, _PROJECT_FILES, timeout)
    metadata_json = _text(files["metadata.json"], "metadata.json")
    extra: dict[str, str] = {}
    if metadata_json is not None:
        raw, stem = _puppet_upstream(job, metadata_json, timeout)
    else:
        project = pbr_project(
            _text(files["setup.cfg"], "setup.cfg"), _text(files["pyproject.toml"], "pyproject.toml")
        )
        raw = _pbr_upstream(job, project.pre_version, timeout)
        stem = job.target.tarball_base
        if project.name is not None:
            extra["PKG-INFO"] = pkg_info(project.name, raw)
    version = make_build_version(
        raw,
        config.release_numbering.value,
        started,
        git.short_hash(upstream, commit, timeout),
        config.release_minor,
    )
    if job.release is not None:
        if ".dev" in raw:
            raise ValueError(f"{commit[:12]} is not a release: its version is {raw}")
        version = replace(version, release=job.release)
    return SourceVersion(version, check_package_name(f"{stem}-{raw}"), extra)
