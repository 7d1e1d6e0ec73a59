"""The store for a database URL: the one module that knows every engine (no import circles)."""

from __future__ import annotations

from pombo.adapters.sql import migrate
from pombo.adapters.sql.store import SqlStore


async def open_store(database_url: str, *, durable: bool = True) -> SqlStore:
    """The store for a database URL (sqlite:///... or postgresql://...), schema migrated."""
    migrate.upgrade(database_url)
    if database_url.startswith(("postgresql://", "postgres://")):
        # imported here: a SQLite-only process never loads asyncpg
        from pombo.adapters.sql.postgres import PostgresStore

        return await PostgresStore.open(database_url, durable=durable)
    if database_url.startswith("sqlite:///"):
        from pombo.adapters.sql.sqlite import SqliteStore

        return SqliteStore(database_url)
    raise ValueError("POMBO_DATABASE_URL must start with sqlite:/// or postgresql://")
