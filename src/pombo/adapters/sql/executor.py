"""Two ways to talk to the database with one shape, so the store's logic is written once.

SQL is written with `?` placeholders; the PostgreSQL executor turns them into `$n`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
from collections.abc import AsyncIterator, Sequence
from functools import lru_cache
from typing import Any, Protocol

from pombo.adapters.sql.failures import check_sqlite, pg_connect_failed, pg_unavailable, unavailable

Row = dict[str, Any]


class Executor(Protocol):
    """Queries outside or inside a transaction."""

    async def fetchone(self, sql: str, args: Sequence[Any] = ()) -> Row | None:
        """The first row as a dict, or None."""
        ...

    async def fetchall(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        """Every row as a dict."""
        ...

    async def fetchval(self, sql: str, args: Sequence[Any] = ()) -> Any:
        """The first column of the first row."""
        ...

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        """Run a statement; the number of rows it touched."""
        ...

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run a statement once per row."""
        ...


class Database(Executor, Protocol):
    """An executor that can open a write transaction."""

    dialect: str

    def transaction(self) -> contextlib.AbstractAsyncContextManager[Executor]:
        """A write transaction; committed on exit, rolled back on error."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class SqliteDatabase:
    """The stdlib driver on the event-loop thread: no thread hand-offs (measured ~4x faster
    than aiosqlite). BEGIN IMMEDIATE makes this connection the only writer while it runs."""

    dialect = "sqlite"

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        db.row_factory = sqlite3.Row

    async def fetchone(self, sql: str, args: Sequence[Any] = ()) -> Row | None:
        try:
            row = self.db.execute(sql, args).fetchone()
        except sqlite3.Error as exc:
            check_sqlite(exc)
            raise
        return dict(row) if row is not None else None

    async def fetchall(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        try:
            return [dict(r) for r in self.db.execute(sql, args).fetchall()]
        except sqlite3.Error as exc:
            check_sqlite(exc)
            raise

    async def fetchval(self, sql: str, args: Sequence[Any] = ()) -> Any:
        try:
            row = self.db.execute(sql, args).fetchone()
        except sqlite3.Error as exc:
            check_sqlite(exc)
            raise
        return row[0] if row is not None else None

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        try:
            return self.db.execute(sql, args).rowcount
        except sqlite3.Error as exc:
            check_sqlite(exc)
            raise

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            self.db.executemany(sql, rows)
        except sqlite3.Error as exc:
            check_sqlite(exc)
            raise

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Executor]:
        await self.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            if self.db.in_transaction:  # SQLite ends it by itself on some errors (a full disk)
                await self.execute("ROLLBACK")
            raise
        await self.execute("COMMIT")

    async def close(self) -> None:
        self.db.close()


POOL_CLOSE_TIMEOUT = 10.0  # seconds a graceful close of the pool may take

_PLACEHOLDER = re.compile(r"\?")


@lru_cache(maxsize=512)
def dollar_params(sql: str) -> str:
    """`a=? AND b=?` -> `a=$1 AND b=$2` (our SQL has no literal question marks)."""
    counter = iter(range(1, 10_000))
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)


def _rowcount(status: str) -> int:
    # asyncpg returns the command tag: "UPDATE 3", "INSERT 0 1", "DELETE 0"
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


class _PgExecutor:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def fetchone(self, sql: str, args: Sequence[Any] = ()) -> Row | None:
        row = await self.conn.fetchrow(dollar_params(sql), *args)
        return dict(row) if row is not None else None

    async def fetchall(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        return [dict(r) for r in await self.conn.fetch(dollar_params(sql), *args)]

    async def fetchval(self, sql: str, args: Sequence[Any] = ()) -> Any:
        return await self.conn.fetchval(dollar_params(sql), *args)

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        return _rowcount(await self.conn.execute(dollar_params(sql), *args))

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            await self.conn.executemany(dollar_params(sql), rows)


class Lease:
    """A pooled asyncpg connection for one `async with`: what means the server is away (on the
    way in, in the body, or handing it back) leaves as StoreUnavailable; anything else as it is."""

    __slots__ = ("conn", "pool")

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self.conn: Any = None

    async def __aenter__(self) -> Any:
        try:
            self.conn = await self.pool.acquire()
        except Exception as exc:
            if pg_connect_failed(exc):
                raise unavailable(exc) from exc
            raise
        return self.conn

    async def __aexit__(self, _type: Any, exc: BaseException | None, _tb: Any) -> None:
        # decided before the release, which detaches the pool's proxy from its connection
        away = exc is not None and pg_unavailable(exc, conn=self.conn, pool=self.pool)
        try:
            await self.pool.release(self.conn)
        except Exception as failed:
            if exc is None:  # otherwise the body's error is the one to tell
                if pg_unavailable(failed, pool=self.pool):
                    raise unavailable(failed) from failed
                raise
        if away:
            assert exc is not None
            raise unavailable(exc) from exc


class PostgresDatabase:
    """asyncpg pool; each call outside a transaction takes a pooled connection."""

    dialect = "postgresql"

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    async def fetchone(self, sql: str, args: Sequence[Any] = ()) -> Row | None:
        async with Lease(self.pool) as conn:
            return await _PgExecutor(conn).fetchone(sql, args)

    async def fetchall(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        async with Lease(self.pool) as conn:
            return await _PgExecutor(conn).fetchall(sql, args)

    async def fetchval(self, sql: str, args: Sequence[Any] = ()) -> Any:
        async with Lease(self.pool) as conn:
            return await _PgExecutor(conn).fetchval(sql, args)

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        async with Lease(self.pool) as conn:
            return await _PgExecutor(conn).execute(sql, args)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        async with Lease(self.pool) as conn:
            await _PgExecutor(conn).executemany(sql, rows)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Executor]:
        async with Lease(self.pool) as conn, conn.transaction():
            yield _PgExecutor(conn)

    async def close(self) -> None:
        # a graceful close waits for every leased connection; one stuck in a dead socket must not
        # hold the shutdown, nor be left open behind it
        try:
            await asyncio.wait_for(self.pool.close(), POOL_CLOSE_TIMEOUT)
        except Exception:  # a close that failed in any way: cut every socket
            self.pool.terminate()
