"""`conveyor recheck`: build a package's last commit again."""

from __future__ import annotations

from conveyor.config import Config
from conveyor.domain.status import CommitStatus
from conveyor.store.database import Database
from conveyor.store.models import FLAG_RECHECKED, Commit
from conveyor.store.queries import last_processed
from conveyor.trunk.targets import load_targets, select_targets


class RecheckRefused(Exception):
    pass


def recheck(config: Config, package: str, force: bool = False) -> Commit:
    """Mark the package's last processed build as rechecked, so the next cycle builds that
    commit again. A successful build is rebuilt only with `force` where the site allows it."""
    (target,) = select_targets(load_targets(config), [package])
    if force and not config.allow_force_rechecks:
        raise RecheckRefused("forced rechecks are disabled (allow_force_rechecks = false)")
    db = Database(config.database_url)
    try:
        with db.transaction() as session:
            last = last_processed(session, [target.name]).get(target.name)
            if last is None:
                raise RecheckRefused(f"{target.name} has no build to recheck")
            if last.status == CommitStatus.SUCCESS and not force:
                raise RecheckRefused(
                    f"the last build of {target.name} ({last.commit_hash[:8]}) succeeded; "
                    "use --force to rebuild it anyway"
                )
            last.flags = (last.flags or 0) | FLAG_RECHECKED
            return last
    finally:
        db.close()
