"""Alembic environment: runs against the connection handed in by pombo (see migrate.py)."""

from __future__ import annotations

from alembic import context

from pombo.adapters.sql.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - pombo always passes a connection
    raise RuntimeError("run migrations through `pombo db upgrade`")
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
