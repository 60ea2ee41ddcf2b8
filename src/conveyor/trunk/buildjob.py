"""One build, start to finish, in a worker thread: sources, version, spec, driver."""

from __future__ import annotations

import shutil
import tarfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from conveyor.builders.driver import BuildDriver, BuildRequest
from conveyor.builders.renderspec import TEMPLATE_SUFFIX, render_spec
from conveyor.builders.spec import PreparedSpec, SpecError, choose_spec, prepare_spec
from conveyor.config import Config
from conveyor.domain.builds import BuildJob, BuildOutcome, BuildResult
from conveyor.domain.version import BuildVersion
from conveyor.sources import git
from conveyor.trunk.versions import source_version


def _safe_members(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """Distgit content is not trusted: no absolute paths, no `..`, no devices, and no link
    that leads out of the tree (tarfile's own filters need a newer Python than Debian's)."""
    members = []
    for member in tar.getmembers():
        path = PurePosixPath(member.name)
        if path.is_absolute() or ".." in path.parts:
            raise SpecError(f"distgit file {member.name!r} escapes the source tree")
        if member.issym() or member.islnk():
            target = PurePosixPath(member.linkname)
            if target.is_absolute() or ".." in (path.parent / target).parts:
                raise SpecError(f"distgit link {member.name!r} points out of the tree")
        elif not (member.isfile() or member.isdir()):
            raise SpecError(f"distgit entry {member.name!r} is not a file or folder")
        members.append(member)
    return members


def _extract(archive: Path, into: Path) -> None:
    with tarfile.open(archive) as tar:
        tar.extractall(into, members=_safe_members(tar))  # noqa: S202 - members checked above
    archive.unlink()


def _distgit_sources(job: BuildJob, sources: Path, timeout: float) -> Path:
    treeish = job.distro_hash
    if job.target.distgit_path:
        treeish += ":" + job.target.distgit_path.strip("/")
    archive = sources.parent / "distgit.tar"
    git.archive_tree(job.mirrors.distgit, treeish, archive, timeout)
    _extract(archive, sources)
    files = [p.name for p in sources.iterdir() if p.is_file()]
    chosen = sources / choose_spec(job.target.name, files)
    return render_spec(chosen) if chosen.name.endswith(TEMPLATE_SUFFIX) else chosen


def _prepare(
    job: BuildJob, config: Config, sources: Path, started: datetime
) -> tuple[PreparedSpec, BuildVersion]:
    timeout = config.git_timeout
    planned = source_version(job, config, started)  # the same function as `run --dry-run`
    spec = _distgit_sources(job, sources, timeout)
    git.archive(
        job.mirrors.upstream,
        job.commit_hash,
        f"{planned.folder}/",
        sources / planned.tarball,
        timeout,
        planned.extra_files,
    )
    version = planned.version
    return prepare_spec(spec, version, planned.tarball, config.keep_changelog), version


def execute_build(job: BuildJob, config: Config, driver: BuildDriver) -> BuildResult:
    started = datetime.now(UTC).replace(microsecond=0)
    workdir = (
        config.datadir
        / "builds"
        / f"{job.target.name}-{job.commit_hash[:12]}-{int(time.time() * 1000)}"
    )
    shutil.rmtree(workdir, ignore_errors=True)
    sources = workdir / "SOURCES"
    sources.mkdir(parents=True)
    log = workdir / "rpmbuild.log"
    version: BuildVersion | None = None
    try:
        spec, version = _prepare(job, config, sources, started)
        with log.open("a", encoding="utf-8") as out:
            # The spec's Release ends in %{?dist}, which the build defines.
            out.write(f"conveyor: building {spec.nvr}{config.dist} from {job.commit_hash}\n")
        outcome = driver.build(
            BuildRequest(
                spec=spec.path,
                workdir=workdir,
                output=workdir / "output",
                log=log,
                timeout=config.build_timeout,
            )
        )
    except (git.GitError, SpecError, ValueError, OSError, tarfile.TarError) as exc:
        with log.open("a", encoding="utf-8") as out:
            out.write(f"conveyor: build preparation failed: {exc}\n")
        outcome = BuildOutcome(False, (), f"build preparation failed: {exc}")
    except Exception as exc:  # one package's surprise must not end the whole cycle
        with log.open("a", encoding="utf-8") as out:
            out.write(f"conveyor: internal error:\n{traceback.format_exc()}")
        outcome = BuildOutcome(False, (), f"internal error: {exc!r}")
    started_at = int(started.timestamp())
    return BuildResult(job, started_at, outcome, version, workdir, log, extra_logs=outcome.logs)
