"""Driver errors -> StoreUnavailable, decided by type and error code (never by message text).

Only a database that does not answer becomes StoreUnavailable: a lost socket, a timeout, a
server shutting down, a file locked too long, a full disk. Everything else (a constraint that
should hold, SQL that does not parse, a closed cursor) is a bug and is raised as it is. The
message names the driver's error type and code only: never a URL, a host or a user.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import exc as sa

from pombo.errors import StoreUnavailable

# primary result codes (an extended code keeps its primary one in the low byte)
SQLITE_UNAVAILABLE = frozenset({
    5,  # SQLITE_BUSY
    6,  # SQLITE_LOCKED
    7,  # SQLITE_NOMEM
    10,  # SQLITE_IOERR
    13,  # SQLITE_FULL
    14,  # SQLITE_CANTOPEN
    15,  # SQLITE_PROTOCOL
})


def sqlite_unavailable(exc: BaseException) -> bool:
    """A sqlite3 error that means the file could not be used right now."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.Error) and code is not None and code & 0xFF in SQLITE_UNAVAILABLE


def _pg_types() -> tuple[type[BaseException], ...]:
    import asyncpg
    from asyncpg import exceptions as e

    return (
        asyncpg.PostgresConnectionError,  # class 08, ConnectionDoesNotExistError among them
        e.AdminShutdownError,  # 57P01
        e.CrashShutdownError,  # 57P02
        e.CannotConnectNowError,  # 57P03
        e.DatabaseDroppedError,  # 57P04
        e.TooManyConnectionsError,  # 53300
        # the protocol in a state it cannot leave: seen on a pooled connection whose server was
        # killed, when it is used again before asyncpg read the end of the socket
        e.InternalClientError,
    )


def pg_unavailable(exc: BaseException, *, conn: Any = None, pool: Any = None) -> bool:
    """An asyncpg error (or a socket's) that means the server is away; `conn` and `pool` tell a
    use of a closed connection or pool (an InterfaceError) from a misuse while open."""
    import asyncpg

    if isinstance(exc, OSError | TimeoutError):  # ConnectionError and asyncio.TimeoutError included
        return True
    if isinstance(exc, _pg_types()):
        return True
    if isinstance(exc, asyncpg.InterfaceError):
        return _closed(conn) or (pool is not None and pool.is_closing())
    return False


def _closed(conn: Any) -> bool:
    if conn is None:
        return False
    try:
        return bool(conn.is_closed())
    except Exception:  # a pool's proxy already released: nothing to tell from it
        return False


def pg_connect_failed(exc: BaseException) -> bool:
    """Failing to get a connection at all: any server or client error on the way in (the
    server refusing this database, a pool closing), besides the outage errors above."""
    import asyncpg

    return pg_unavailable(exc) or isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError)


def sqlalchemy_unavailable(exc: BaseException) -> bool:
    """A SQLAlchemy error over psycopg or sqlite3 that means the database is away."""
    if isinstance(exc, sa.TimeoutError):  # no pooled connection came free in time
        return True
    if not isinstance(exc, sa.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    if isinstance(exc.orig, sqlite3.Error):  # sqlite3 calls "no such table" operational too
        return sqlite_unavailable(exc.orig)
    if isinstance(exc, sa.OperationalError):
        return True
    import psycopg

    return isinstance(exc.orig, psycopg.OperationalError)


def check_sqlite(exc: BaseException) -> None:
    """Raise StoreUnavailable when this sqlite3 error means the database is away."""
    if sqlite_unavailable(exc):
        raise unavailable(exc) from exc


def check_sqlalchemy(exc: BaseException) -> None:
    """Raise StoreUnavailable when this SQLAlchemy error means the database is away."""
    if sqlalchemy_unavailable(exc):
        raise unavailable(exc) from exc


def unavailable(exc: BaseException) -> StoreUnavailable:
    """The StoreUnavailable for a driver error: its type and code only."""
    orig = getattr(exc, "orig", None) or exc
    code = getattr(orig, "sqlite_errorname", None) or getattr(orig, "sqlstate", None)
    return StoreUnavailable(f"database unavailable: {type(orig).__name__}" + (f" ({code})" if code else ""))
