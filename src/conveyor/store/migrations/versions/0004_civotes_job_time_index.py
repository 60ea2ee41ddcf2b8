"""civotes index on (ci_name, timestamp)

Revision ID: 0004
Revises: 0003

`GET /api/last_tested_repo?job_id=J` asks for the newest vote of one job (DLRN's getVote:
ci_name = J, ordered by timestamp). With only `ix_civotes_ci_name` SQLite read and sorted all of
that job's votes: 80 ms for 55,000 votes of a job among 500,000 (bench/api.py). This index
answers it with one seek. `ix_civotes_ci_name` stays: the promotion engine and the vote pages
order one job's votes by id, which that index gives without sorting.
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("civotes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_civotes_ci_name_timestamp", ["ci_name", "timestamp"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("civotes", schema=None) as batch_op:
        batch_op.drop_index("ix_civotes_ci_name_timestamp")
