"""The SQL adapters translate a database that does not answer into StoreUnavailable, and
nothing else: a bug (bad SQL, a broken constraint) leaves as the driver raised it.

Real SQLite files (locked by a second connection) and a real PostgreSQL (a closed pool, a port
nobody listens on, a killed backend, a database refusing connections).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import psycopg
import pytest
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError

from pombo.adapters.sql.executor import PostgresDatabase, SqliteDatabase
from pombo.adapters.sql.factory import open_store
from pombo.adapters.sql.failures import pg_unavailable, sqlite_unavailable
from pombo.adapters.sql.snapshot import load_catalog
from pombo.errors import StoreUnavailable
from tests.conftest import PG_ADMIN_URL, scratch_pg_database

NOWHERE = "postgresql://pombo:s3cret-pw@127.0.0.1:1/pombo"  # nobody listens on port 1


def assert_discreet(exc: BaseException) -> None:
    """The message names the driver's error, never a password, a host or a URL."""
    text = str(exc)
    assert text.startswith("database unavailable: "), text
    for secret in ("s3cret", "127.0.0.1", "postgresql://", "pombo@"):
        assert secret not in text, text


# --------------------------------------------------------------------------------------------
# The table: by type and code
# --------------------------------------------------------------------------------------------


def sqlite_error(code: int) -> sqlite3.Error:
    exc = sqlite3.OperationalError("x")
    exc.sqlite_errorcode = code  # type: ignore[attr-defined]
    return exc


@pytest.mark.parametrize(
    ("exc", "away"),
    [
        (sqlite_error(5), True),  # SQLITE_BUSY
        (sqlite_error(6), True),  # SQLITE_LOCKED
        (sqlite_error(10 | (3 << 8)), True),  # SQLITE_IOERR_WRITE (extended)
        (sqlite_error(13), True),  # SQLITE_FULL
        (sqlite_error(14), True),  # SQLITE_CANTOPEN
        (sqlite_error(1), False),  # SQLITE_ERROR: bad SQL, no such table
        (sqlite_error(19), False),  # SQLITE_CONSTRAINT
        (sqlite3.ProgrammingError("closed"), False),
    ],
    ids=lambda v: repr(v) if isinstance(v, bool) else f"{type(v).__name__}-{getattr(v, 'sqlite_errorcode', '')}",
)
def test_sqlite_errors_by_code(exc: BaseException, away: bool) -> None:
    assert sqlite_unavailable(exc) is away


@pytest.mark.parametrize(
    ("exc", "away"),
    [
        (ConnectionResetError(), True),
        (TimeoutError(), True),
        (asyncpg.exceptions.ConnectionDoesNotExistError("x"), True),
        (asyncpg.exceptions.AdminShutdownError("x"), True),
        (asyncpg.exceptions.CannotConnectNowError("x"), True),
        (asyncpg.exceptions.TooManyConnectionsError("x"), True),
        (asyncpg.exceptions.InternalClientError("x"), True),
        (asyncpg.exceptions.PostgresSyntaxError("x"), False),
        (asyncpg.exceptions.UniqueViolationError("x"), False),
        (asyncpg.exceptions.QueryCanceledError("x"), False),
        (asyncpg.InterfaceError("x"), False),  # a closed connection or pool is told by its state
        (ValueError(), False),
    ],
    ids=lambda v: repr(v) if isinstance(v, bool) else type(v).__name__,
)
def test_asyncpg_errors_by_type(exc: BaseException, away: bool) -> None:
    assert pg_unavailable(exc) is away


# --------------------------------------------------------------------------------------------
# SQLite
# --------------------------------------------------------------------------------------------


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[Path]:
    """A database file another connection holds an exclusive lock on."""
    path = tmp_path / "locked.db"
    with sqlite3.connect(path) as setup:
        setup.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)")
        setup.execute("INSERT INTO t (v) VALUES ('a')")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        yield path
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def quick(path: Path) -> SqliteDatabase:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA busy_timeout=20")
    return SqliteDatabase(db)


async def test_a_locked_sqlite_database_is_unavailable(locked: Path) -> None:
    db = quick(locked)
    with pytest.raises(StoreUnavailable) as caught:
        await db.fetchval("SELECT count(*) FROM t")
    cause = caught.value.__cause__
    assert isinstance(cause, sqlite3.OperationalError) and cause.sqlite_errorcode == sqlite3.SQLITE_BUSY
    assert "SQLITE_BUSY" in str(caught.value)
    with pytest.raises(StoreUnavailable):
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO t (v) VALUES ('b')")
    await db.close()


async def test_a_sqlite_bug_stays_a_bug(tmp_path: Path) -> None:
    path = tmp_path / "ok.db"
    with sqlite3.connect(path) as setup:
        setup.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)")
    db = quick(path)
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        await db.fetchall("SELECT * FROM nowhere")
    with pytest.raises(sqlite3.IntegrityError):
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO t (v) VALUES ('a')")
            await tx.execute("INSERT INTO t (v) VALUES ('a')")
    assert await db.fetchval("SELECT count(*) FROM t") == 0  # rolled back
    await db.close()


async def test_the_sqlite_store_batches_answer_unavailable_while_another_process_writes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'pombo.db'}"
    store = await open_store(url)
    try:
        store.db.execute("PRAGMA busy_timeout=20")  # type: ignore[attr-defined]
        writer = sqlite3.connect(tmp_path / "pombo.db", isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")  # WAL: readers go on, a second writer waits
        try:
            with pytest.raises(StoreUnavailable):
                await store.settle_ok(message_id=1, upstream_id="u1", raw="ok", now=1.0)
            assert await store.balance(customer_id=1) == (0, 0)  # reads still answer
        finally:
            writer.execute("ROLLBACK")
            writer.close()
        assert await store.settle_ok(message_id=1, upstream_id="u1", raw="ok", now=1.0) is False  # no such message
    finally:
        await store.close()


def test_a_sqlalchemy_bug_on_sqlite_stays_a_bug(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(OperationalError, match="no such table"):
        load_catalog(engine)
    engine.dispose()


# --------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------


@pytest.fixture
def scratch() -> Iterator[str]:
    with scratch_pg_database("pombo_failures") as url:
        yield url


@pytest.fixture
async def pool(scratch: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(scratch, min_size=1, max_size=1)
    try:
        yield pool
    finally:
        await pool.close()


def admin(sql: str, *args: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql, args)  # type: ignore[arg-type]


async def test_a_port_nobody_listens_on_is_unavailable() -> None:
    pool = await asyncpg.create_pool(NOWHERE, min_size=0, max_size=1)
    try:
        with pytest.raises(StoreUnavailable) as caught:
            await PostgresDatabase(pool).fetchval("SELECT 1")
        assert isinstance(caught.value.__cause__, OSError)
        assert_discreet(caught.value)
    finally:
        await pool.close()


async def test_a_closed_pool_is_unavailable(pool: asyncpg.Pool) -> None:
    db = PostgresDatabase(pool)
    assert await db.fetchval("SELECT 1") == 1
    await pool.close()
    with pytest.raises(StoreUnavailable) as caught:
        await db.fetchval("SELECT 1")
    assert isinstance(caught.value.__cause__, asyncpg.InterfaceError)


async def test_a_killed_backend_is_unavailable(scratch: str, pool: asyncpg.Pool) -> None:
    db = PostgresDatabase(pool)
    assert await db.fetchval("SELECT 1") == 1
    database = scratch.rsplit("/", 1)[-1]
    admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", database)
    with pytest.raises(StoreUnavailable):
        async with db.transaction() as tx:
            await tx.execute("SELECT 1")
    assert await db.fetchval("SELECT 1") == 1  # the pool connects again by itself


async def test_a_database_refusing_connections_is_unavailable(scratch: str) -> None:
    database = scratch.rsplit("/", 1)[-1]
    pool = await asyncpg.create_pool(scratch, min_size=0, max_size=1)
    admin(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
    try:
        with pytest.raises(StoreUnavailable):
            await PostgresDatabase(pool).fetchone("SELECT 1")
        engine = create_engine(scratch.replace("postgresql://", "postgresql+psycopg://", 1))
        with pytest.raises(StoreUnavailable) as caught:
            load_catalog(engine)  # the catalog's SQLAlchemy path
        assert_discreet(caught.value)
        engine.dispose()
    finally:
        admin(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        await pool.close()


async def test_a_postgresql_bug_stays_a_bug(pool: asyncpg.Pool) -> None:
    db = PostgresDatabase(pool)
    with pytest.raises(asyncpg.PostgresSyntaxError):
        await db.fetchval("SELEC 1")
    await db.execute("CREATE TABLE t (v text UNIQUE)")
    with pytest.raises(asyncpg.UniqueViolationError):
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO t VALUES ('a')")
            await tx.execute("INSERT INTO t VALUES ('a')")
    assert await db.fetchval("SELECT count(*) FROM t") == 0
    with pytest.raises(asyncpg.InterfaceError):  # a misuse of an open connection is a bug, not an outage
        async with db.transaction() as tx:
            await asyncio.gather(tx.fetchval("SELECT pg_sleep(0.1)"), tx.fetchval("SELECT 1"))


def test_sqlalchemy_to_a_port_nobody_listens_on_is_unavailable() -> None:
    engine = create_engine(NOWHERE.replace("postgresql://", "postgresql+psycopg://", 1) + "?connect_timeout=2")
    with pytest.raises(StoreUnavailable) as caught:
        load_catalog(engine)
    assert_discreet(caught.value)
    engine.dispose()
