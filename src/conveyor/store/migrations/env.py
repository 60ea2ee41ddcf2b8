"""Alembic environment: the connection is always handed in by conveyor.store.database."""

from __future__ import annotations

from alembic import context

from conveyor.store.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies tables
)
with context.begin_transaction():
    context.run_migrations()
