"""The per-package summary (`package_status`): updated by every recorded build, rebuilt from
the history after a migration or an import."""

from __future__ import annotations

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from conveyor.domain.status import CommitStatus
from conveyor.store.models import Commit, PackageStatus

# One statement, so a migration and an import share exactly the same rule.
_REBUILD = text(
    """
    INSERT INTO package_status
        (project_name, component, last_status, last_commit_id, last_success_id,
         first_failure_id)
    SELECT c.project_name, c.component, c.status, c.id, s.success_id,
        (SELECT min(f.id) FROM commits f
          WHERE f.project_name = c.project_name AND f.type = 'rpm' AND f.status = 'FAILED'
            AND f.id > coalesce(s.success_id, 0))
    FROM commits c
    LEFT JOIN (SELECT project_name, max(id) AS success_id FROM commits
               WHERE type = 'rpm' AND status = 'SUCCESS' GROUP BY project_name) s
        ON s.project_name = c.project_name
    WHERE c.id IN (SELECT max(id) FROM commits WHERE type = 'rpm' GROUP BY project_name)
    """
)


def rebuild_package_status(connection: Connection) -> None:
    connection.execute(text("DELETE FROM package_status"))
    connection.execute(_REBUILD)


def record_build(session: Session, commit: Commit) -> PackageStatus | None:
    """Fold a newly recorded build into its package's summary; returns the summary as it was
    before (None for a package's first build), which is what notifications compare against."""
    current = session.get(PackageStatus, commit.project_name)
    before = None
    if current is None:
        current = PackageStatus(project_name=commit.project_name)
        session.add(current)
    else:
        before = PackageStatus(
            project_name=current.project_name,
            component=current.component,
            last_status=current.last_status,
            last_commit_id=current.last_commit_id,
            last_success_id=current.last_success_id,
            first_failure_id=current.first_failure_id,
        )
    current.component = commit.component
    current.last_status = commit.status
    current.last_commit_id = commit.id
    if commit.status == CommitStatus.SUCCESS:
        current.last_success_id = commit.id
        current.first_failure_id = None
    elif commit.status == CommitStatus.FAILED and current.first_failure_id is None:
        current.first_failure_id = commit.id
    return before
