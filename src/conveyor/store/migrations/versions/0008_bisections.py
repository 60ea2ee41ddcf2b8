"""Bisections and the repositories of their steps

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bisections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=255), nullable=False),
        sa.Column("good_ref", sa.String(length=512), nullable=False),
        sa.Column("good_path", sa.String(length=512), nullable=False),
        sa.Column("bad_ref", sa.String(length=512), nullable=False),
        sa.Column("bad_path", sa.String(length=512), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("plan", sa.Text(), nullable=False),
        sa.Column("conclusion", sa.Text(), nullable=True),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("user", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("bisections", schema=None) as batch_op:
        batch_op.create_index("ix_bisections_job_state", ["job_id", "state"], unique=False)
    op.create_table(
        "bisect_steps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bisection_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("builds", sa.Text(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("verdict", sa.Boolean(), nullable=True),
        sa.Column("voted", sa.Integer(), nullable=True),
        sa.Column("vote_url", sa.String(length=1024), nullable=True),
        sa.ForeignKeyConstraint(["bisection_id"], ["bisections.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("bisect_steps", schema=None) as batch_op:
        batch_op.create_index(
            "ix_bisect_steps_bisection_number", ["bisection_id", "number"], unique=True
        )
        batch_op.create_index("ix_bisect_steps_hash", ["hash"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("bisect_steps", schema=None) as batch_op:
        batch_op.drop_index("ix_bisect_steps_hash")
        batch_op.drop_index("ix_bisect_steps_bisection_number")
    op.drop_table("bisect_steps")
    with op.batch_alter_table("bisections", schema=None) as batch_op:
        batch_op.drop_index("ix_bisections_job_state")
    op.drop_table("bisections")
