"""CI votes on buildsys tag versions, and the steps of release-ga runs

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tag_votes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=255), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("url", sa.String(length=1024), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("timestamp", sa.Integer(), nullable=False),
        sa.Column("user", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("tag_votes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_tag_votes_tag_version", ["tag", "version", "job_id"], unique=False
        )
    op.create_table(
        "release_steps",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("series", sa.String(length=100), nullable=False),
        sa.Column("run", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("started", sa.Integer(), nullable=False),
        sa.Column("ended", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("release_steps", schema=None) as batch_op:
        batch_op.create_index("ix_release_steps_series_run", ["series", "run", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("release_steps", schema=None) as batch_op:
        batch_op.drop_index("ix_release_steps_series_run")
    op.drop_table("release_steps")
    with op.batch_alter_table("tag_votes", schema=None) as batch_op:
        batch_op.drop_index("ix_tag_votes_tag_version")
    op.drop_table("tag_votes")
