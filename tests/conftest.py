"""Shared fixtures: a fresh database on each engine.

PostgreSQL runs against the local server (POMBO_TEST_PG, default
postgresql://postgres@127.0.0.1:5432/test): a scratch database is created once per session and
emptied before each test. Where no server answers, those runs are skipped with the reason,
unless POMBO_TEST_REQUIRE_PG=1 (CI), where that is an error.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_ADMIN_URL = os.environ.get("POMBO_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_PG = os.environ.get("POMBO_TEST_REQUIRE_PG") == "1"
_TABLES = (
    "messages, ledger, dlr_reports, auth_failures, ip_blocks, tokens, users, tariffs, blocklist, "
    "models, connection_costs, connections, customers, meta, callbacks, operators, upstream_queue, "
    "upstream_attempts, upstream_pace, rejection_counts, rejections, console_audit, night_counts, "
    "inbound, opt_outs, opt_changes, smpp_parts, smpp_held"
)


def _pg_problem() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return None
    except Exception as exc:  # any reason the server cannot be used
        return f"PostgreSQL not reachable at {PG_ADMIN_URL.split('@')[-1]}: {type(exc).__name__}: {exc}".strip()


@contextlib.contextmanager
def scratch_pg_database(prefix: str = "pombo_test") -> Iterator[str]:
    """A new, migrated PostgreSQL database, dropped afterwards (skips/fails when no server)."""
    problem = _pg_problem()
    if problem:
        if REQUIRE_PG:
            pytest.fail(problem)
        pytest.skip(problem)
    import psycopg

    from pombo.adapters.sql import migrate

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{base}/{name}"
    migrate.upgrade(url)
    try:
        yield url
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A scratch PostgreSQL database for the session, migrated to the newest schema."""
    with scratch_pg_database() as url:
        yield url


def _empty_pg(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {_TABLES} RESTART IDENTITY CASCADE")
        conn.execute("ALTER SEQUENCE messages_id_seq RESTART")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty, migrated database on each engine."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'pombo.db'}"
    url: str = request.getfixturevalue("pg_database")
    _empty_pg(url)
    return url
