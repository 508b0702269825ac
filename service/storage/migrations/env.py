"""Alembic environment: run with a connection handed in by service.storage.database (no alembic.ini)."""

from __future__ import annotations

from alembic import context

from service.storage.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
