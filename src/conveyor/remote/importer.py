"""Importing a build made by another conveyor or DLRN instance (dlrn-remote, dlrn.md §12).

The remote hash directory's commit.yaml says what was built; its logs and RPMs are downloaded
into a private work folder, checked, and handed to the same Publisher a trunk cycle uses, under
the same builder lock. So an imported build gets exactly what a local one gets: its row, its
immutable hash directory (links to the other packages, repodata, delorean.repo pointing at
*this* builder, versions.csv, commit.yaml) and the `current`/`consistent` moves.

Nothing is written until commit.yaml has been read and checked, and a refusal at any later
point leaves no row and no directory: the work folder is always removed, and the publish step
is all-or-nothing by itself.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from conveyor.config import Config
from conveyor.domain.builds import BuildJob, BuildOutcome, BuildResult, BuildTarget, Mirrors
from conveyor.metadata.targets import load_targets
from conveyor.publish.locks import publish_lock
from conveyor.publish.repostore import PublishError
from conveyor.remote.commit_record import RemoteCommit, parse_commit_record
from conveyor.remote.errors import ImportRefused, RemoteFileMissing
from conveyor.remote.fetch import Limits, Progress, RemoteDirectory
from conveyor.remote.rpmcheck import check_build
from conveyor.store.database import Database
from conveyor.store.queries import already_built, last_processed
from conveyor.trunk.components import ready_publisher
from conveyor.trunk.publishing import BuildListener, Published

COMMIT_RECORD = "commit.yaml"
BUILD_LOG = "rpmbuild.log"
# The mock driver's logs, fetched when the remote has them (dlrn-remote's list). They stay
# beside rpmbuild.log in the published directory.
OPTIONAL_LOGS = ("build.log", "root.log", "mock.log", "state.log", "installed")
IMPORTS_DIR = "imports"
# A work folder this old belongs to an import that was killed: no download lasts this long.
_STALE_SECONDS = 24 * 3600


@dataclass(frozen=True)
class ImportReport:
    commit: RemoteCommit
    published: Published | None  # None when the import was skipped
    skipped: str | None = None  # why nothing was imported


def _skip_reason(db: Database, record: RemoteCommit) -> str | None:
    """DLRN's rule: skip unless the remote commit is newer than the last one processed here
    (by commit time or by distgit time). A known (commit, distro) pair is skipped too."""
    name = record.project_name
    with db.reader() as session:
        if already_built(session, name, record.commit_hash, record.distro_hash, None):
            return (
                f"{name} {record.commit_hash[:8]}_{record.distro_hash[:8]} is already recorded here"
            )
        last = last_processed(session, [name]).get(name)
    if last is None:
        return None
    local = (last.dt_commit or 0, last.dt_distro or 0)
    if local[0] >= record.dt_commit and local[1] >= record.dt_distro:
        return (
            f"{name}: the last commit processed here ({last.commit_hash[:8]}, commit time "
            f"{local[0]}, distgit time {local[1]}) is not older than {record.commit_hash[:8]} "
            f"(commit time {record.dt_commit}, distgit time {record.dt_distro})"
        )
    return None


def _work_folder(config: Config) -> Path:
    """A private folder under the data directory (same filesystem as the repositories)."""
    imports = config.datadir / IMPORTS_DIR
    imports.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for leftover in imports.iterdir():
        try:
            if now - leftover.stat().st_mtime > _STALE_SECONDS:
                shutil.rmtree(leftover, ignore_errors=True)
        except OSError:
            continue  # another import removed it first
    return Path(tempfile.mkdtemp(prefix="import-", dir=imports))


def _download(
    directory: RemoteDirectory, record: RemoteCommit, work: Path, progress: Progress | None
) -> tuple[Path, tuple[Path, ...]]:
    """Fetch the build log, the optional logs and the RPMs; returns (log, RPMs)."""
    limits = directory.limits
    log = work / BUILD_LOG
    directory.fetch_file(BUILD_LOG, log, "a build log", limits.max_log_bytes, progress)
    logs = work / "logs"
    logs.mkdir()
    for name in OPTIONAL_LOGS:
        try:
            directory.fetch_file(name, logs / name, "a build log", limits.max_log_bytes, progress)
        except RemoteFileMissing:
            continue  # only the mock driver writes these
    packages = work / "rpms"
    packages.mkdir()
    rpms = []
    for name in record.artifacts:
        path = packages / name
        directory.fetch_file(name, path, "an RPM package", limits.max_rpm_bytes, progress)
        rpms.append(path)
    if rpms:
        check_build([(path, directory.url_of(path.name)) for path in rpms])
    with log.open("a", encoding="utf-8") as out:
        out.write(f"conveyor: imported from {directory.url}\n")
    return log, tuple(rpms)


def _result(
    config: Config,
    target: BuildTarget,
    record: RemoteCommit,
    work: Path,
    log: Path,
    rpms: tuple[Path, ...],
) -> BuildResult:
    job = BuildJob(
        target=target,
        mirrors=Mirrors.under(config.datadir, target.name),
        commit_hash=record.commit_hash,
        dt_commit=record.dt_commit,
        # The branch decides whether the next cycle continues from this commit; a record
        # without one was built from the package's configured branch.
        commit_branch=record.commit_branch or target.source_branch,
        distro_hash=record.distro_hash,
        dt_distro=record.dt_distro,
    )
    notes = record.notes or ("OK" if record.success else "build failed on the remote builder")
    return BuildResult(
        job=job,
        dt_build=record.dt_build,  # the NVRs carry the remote build time: keep it
        outcome=BuildOutcome(record.success, rpms, notes),
        version=None,
        workdir=work,
        log=log,
        final_status=record.status,
        extra_logs=tuple(sorted(p for p in (work / "logs").iterdir() if p != log))
        if (work / "logs").is_dir()
        else (),
    )


def _target(config: Config, targets: Sequence[BuildTarget], record: RemoteCommit) -> BuildTarget:
    for target in targets:
        if target.name == record.project_name:
            return target
    release = f", release {config.metadata.release}" if config.metadata.release else ""
    raise ImportRefused(
        f"package {record.project_name!r} is not in the local metadata "
        f"({config.metadata.path}{release}); only packages this builder builds can be imported"
    )


def import_commit(
    config: Config,
    url: str,
    listeners: Callable[[Sequence[BuildTarget]], Sequence[BuildListener]],
    limits: Limits | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import the build published at `url` (its hash directory) into this builder, told to
    `listeners` (the assembled ones, `conveyor.assembly.Builder.listeners`) as a local build.

    Raises ImportRefused (with the URL, file or key at fault), BuilderBusy when a cycle holds
    the builder, and the metadata, configuration and database errors of a cycle.
    """
    directory = RemoteDirectory(url, limits)
    # Metadata first, as a cycle does: bad metadata is refused before any download.
    targets = load_targets(config)
    raw = directory.fetch_bytes(COMMIT_RECORD, "commit.yaml", directory.limits.max_record_bytes)
    record = parse_commit_record(raw, directory.url_of(COMMIT_RECORD))
    target = _target(config, targets, record)
    db = Database(config.database_url)
    try:
        if reason := _skip_reason(db, record):
            return ImportReport(record, None, reason)
        work = _work_folder(config)
        try:
            log, rpms = _download(directory, record, work, progress)
            result = _result(config, target, record, work, log, rpms)
            # Downloads happen outside the lock (they may take minutes); the decision and
            # the publish happen inside it, exactly as a cycle's publish step.
            with publish_lock(config):
                if reason := _skip_reason(db, record):
                    return ImportReport(record, None, reason)
                publisher = ready_publisher(config, db, targets, listeners(targets))
                try:
                    published = publisher.publish(result)
                except PublishError as exc:
                    raise ImportRefused(str(exc)) from None
        finally:
            shutil.rmtree(work, ignore_errors=True)
    finally:
        db.close()
    return ImportReport(record, published)
