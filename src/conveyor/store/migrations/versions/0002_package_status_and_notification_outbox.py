"""package status and notification outbox

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from conveyor.store.package_status import rebuild_package_status

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("project_name", sa.String(length=256), nullable=False),
        sa.Column("commit_id", sa.Integer(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt", sa.Integer(), nullable=False),
        sa.Column("sent", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["commit_id"],
            ["commits.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index("ix_notifications_pending", ["sent", "next_attempt"], unique=False)
        batch_op.create_index(
            "ix_notifications_project", ["project_name", "kind", "commit_id"], unique=False
        )

    op.create_table(
        "package_status",
        sa.Column("project_name", sa.String(length=256), nullable=False),
        sa.Column("component", sa.String(length=64), nullable=True),
        sa.Column("last_status", sa.String(length=64), nullable=False),
        sa.Column("last_commit_id", sa.Integer(), nullable=False),
        sa.Column("last_success_id", sa.Integer(), nullable=True),
        sa.Column("first_failure_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["first_failure_id"],
            ["commits.id"],
        ),
        sa.ForeignKeyConstraint(
            ["last_commit_id"],
            ["commits.id"],
        ),
        sa.ForeignKeyConstraint(
            ["last_success_id"],
            ["commits.id"],
        ),
        sa.PrimaryKeyConstraint("project_name"),
    )
    # Databases that already hold builds get their summaries now.
    rebuild_package_status(op.get_bind())


def downgrade() -> None:
    op.drop_table("package_status")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_project")
        batch_op.drop_index("ix_notifications_pending")

    op.drop_table("notifications")
