"""buildsys tags: versioned tag states and the builds the tag store holds

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tag_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(length=255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("registered", sa.Text(), nullable=False),
        sa.Column("actions", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("tag_versions", schema=None) as batch_op:
        batch_op.create_index("ix_tag_versions_tag_version", ["tag", "version"], unique=True)
    op.create_table(
        "tag_builds",
        sa.Column("nvr", sa.String(length=512), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("files", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("nvr"),
    )
    with op.batch_alter_table("tag_builds", schema=None) as batch_op:
        batch_op.create_index("ix_tag_builds_name", ["name"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tag_builds", schema=None) as batch_op:
        batch_op.drop_index("ix_tag_builds_name")
    op.drop_table("tag_builds")
    with op.batch_alter_table("tag_versions", schema=None) as batch_op:
        batch_op.drop_index("ix_tag_versions_tag_version")
    op.drop_table("tag_versions")
