"""`conveyor recheck` and the API's recheck_package: build a package's last commit again."""

from __future__ import annotations

from sqlalchemy.orm import Session

from conveyor.config import Config
from conveyor.domain.status import CommitStatus
from conveyor.metadata.targets import load_targets, select_targets
from conveyor.store.database import Database
from conveyor.store.models import FLAG_RECHECKED, Commit
from conveyor.store.queries import last_processed


class RecheckRefused(Exception):
    pass


class NothingToRecheck(RecheckRefused):
    pass


class LastBuildSucceeded(RecheckRefused):
    pass


def _last_build(session: Session, config: Config, package: str) -> Commit:
    last = last_processed(session, [package]).get(package)
    if last is None:
        # Perhaps a project name: only then is the metadata read (TargetError if unknown).
        (target,) = select_targets(load_targets(config), [package])
        last = last_processed(session, [target.name]).get(target.name)
    if last is None:
        raise NothingToRecheck(f"there are no existing commits for package {package}")
    return last


def recheck(
    config: Config, package: str, force: bool = False, db: Database | None = None
) -> Commit:
    """Mark the package's last processed build as rechecked, so the next cycle builds that
    commit again. A successful build is rebuilt only with `force` where the site allows it.
    The row stays (votes and notifications may reference it); DLRN deletes it."""
    if force and not config.allow_force_rechecks:
        raise RecheckRefused("forced rechecks are disabled (allow_force_rechecks = false)")
    database = db or Database(config.database_url)
    try:
        with database.transaction() as session:
            last = _last_build(session, config, package)
            if last.status == CommitStatus.SUCCESS and not force:
                raise LastBuildSucceeded(
                    f"the last build of {last.project_name} ({last.commit_hash[:8]}) "
                    "succeeded; use --force to rebuild it anyway"
                )
            last.flags = (last.flags or 0) | FLAG_RECHECKED
            return last
    finally:
        if db is None:
            database.close()
