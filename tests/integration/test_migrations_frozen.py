"""Frozen migrations: a fresh database and one upgraded step by step over real rows end the same.

Both are compared on what the application depends on: tables, columns (type, nullability,
default), indexes with their predicates, constraints, and on PostgreSQL the partitions, sequences,
triggers and the text of every function (pg_get_functiondef). Migrations carry their own SQL, so
no migration may import pombo code that changes with the application.
"""

from __future__ import annotations

import ast
import contextlib
import re
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, inspect, text

from pombo.adapters.sql import migrate
from tests.conftest import PG_ADMIN_URL, REQUIRE_PG, _pg_problem

VERSIONS = Path(migrate.__file__).parent / "migrations" / "versions"
HEX32 = re.compile(r"[0-9a-f]{32}")


def revisions() -> list[str]:
    """Every revision id, oldest first."""
    script = ScriptDirectory.from_config(migrate.alembic_config())
    return [r.revision for r in reversed(list(script.walk_revisions()))]


@contextlib.contextmanager
def empty_pg_database() -> Iterator[str]:
    """A new PostgreSQL database with no schema at all, dropped afterwards."""
    problem = _pg_problem()
    if problem:
        if REQUIRE_PG:
            pytest.fail(problem)
        pytest.skip(problem)
    import psycopg

    name = f"pombo_frozen_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def two_empty(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two databases with nothing in them, on each engine."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
        return
    with empty_pg_database() as a, empty_pg_database() as b:
        yield a, b


@contextlib.contextmanager
def connected(url: str) -> Iterator[Connection]:
    engine = create_engine(migrate.sqlalchemy_url(url))
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


def downgrade(url: str, revision: str) -> None:
    with connected(url) as conn:
        cfg = migrate.alembic_config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def some_rows(url: str) -> None:
    """A customer with a message and its debit, as the 0002 schema holds them."""
    with connected(url) as conn:
        conn.execute(text("INSERT INTO customers (id, name, balance) VALUES (11, 'shop', 1000)"))
        conn.execute(text(
            "INSERT INTO messages (customer_id, dest, text, corr_id, connection, status_code, value, cost,"
            " segments, encoding, created_at, updated_at)"
            " VALUES (11, '11987650001', 'hi', 'c1', 'velip', 1, 80, 20, 1, 'gsm', 1700000000, 1700000000)"
        ))
        conn.execute(text(
            "INSERT INTO ledger (customer_id, amount, cause, message_id, created_at)"
            " VALUES (11, -80, 'message', 1, 1700000000)"
        ))


def _columns(insp: Any, table: str) -> list[tuple[Any, ...]]:
    return [(c["name"], str(c["type"]), c["nullable"], str(c.get("default"))) for c in insp.get_columns(table)]


def _indexes(insp: Any, table: str) -> list[tuple[Any, ...]]:
    found = insp.get_indexes(table)
    return sorted(
        (i["name"], tuple(i["column_names"]), i["unique"], sorted((k, str(v)) for k, v in i.get("dialect_options", {}).items()))
        for i in found
    )


def _constraints(insp: Any, table: str) -> dict[str, Any]:
    return {
        "pk": insp.get_pk_constraint(table)["constrained_columns"],
        "fk": sorted((tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]))
                     for f in insp.get_foreign_keys(table)),
        "unique": sorted(tuple(u["column_names"]) for u in insp.get_unique_constraints(table)),
    }


def reflected(conn: Connection) -> dict[str, Any]:
    """Tables, columns, indexes and constraints as SQLAlchemy reflects them."""
    insp = inspect(conn)
    return {
        t: {"columns": _columns(insp, t), "indexes": _indexes(insp, t), **_constraints(insp, t)}
        for t in sorted(insp.get_table_names())
    }


def _rows(conn: Connection, sql: str) -> list[tuple[Any, ...]]:
    return sorted(tuple(r) for r in conn.execute(text(sql)))


PG_CATALOG = {
    "relations": "SELECT relname, relkind::text, relpersistence::text FROM pg_class"
    " WHERE relnamespace = 'public'::regnamespace",
    "columns": "SELECT table_name, ordinal_position, column_name, data_type, character_maximum_length,"
    " is_nullable, column_default FROM information_schema.columns WHERE table_schema = 'public'",
    "constraints": "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
    " WHERE connamespace = 'public'::regnamespace",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'",
    "partition_keys": "SELECT partrelid::regclass::text, pg_get_partkeydef(partrelid) FROM pg_partitioned_table",
    "partitions": "SELECT c.relname, p.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
    " JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent"
    " WHERE c.relnamespace = 'public'::regnamespace",
    "sequences": "SELECT sequence_name, data_type, start_value, increment, maximum_value, cycle_option"
    " FROM information_schema.sequences WHERE sequence_schema = 'public'",
    "functions": "SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid) FROM pg_proc p"
    " WHERE p.pronamespace = 'public'::regnamespace",
    "triggers": "SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal",
    "version": "SELECT version_num FROM alembic_version",
}


def schema(url: str) -> dict[str, Any]:
    """Everything the schema is made of, in a form two databases can be compared on."""
    with connected(url) as conn:
        found: dict[str, Any] = {"reflected": reflected(conn)}
        if conn.dialect.name == "postgresql":
            found.update({name: _rows(conn, sql) for name, sql in PG_CATALOG.items()})
        else:
            master = "SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_master"
            found["sqlite_master"] = [(*r[:3], " ".join(r[3].split())) for r in _rows(conn, master)]
            found["version"] = _rows(conn, "SELECT version_num FROM alembic_version")
    return found


def test_the_chain_is_one_line() -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config())
    assert script.get_heads() == [revisions()[-1]]
    assert revisions()[:8] == [
        "0001", "0002", "0003_delivery", "0003_console", "0004_pg_write", "0005_pg_write_durable",
        "0006_partial_indexes", "0007_event_ids_hex",
    ]


def test_fresh_and_upgraded_step_by_step_are_the_same(two_empty: tuple[str, str]) -> None:
    fresh, stepped = two_empty
    migrate.upgrade(fresh)
    for revision in revisions():
        migrate.upgrade(stepped, revision)
        if revision == "0002":  # the first revision every engine can store a message at
            some_rows(stepped)
    a, b = schema(fresh), schema(stepped)
    assert a["version"] == [(revisions()[-1],)]
    if "functions" in a:
        assert [f[0] for f in a["functions"]] == [
            "pombo_accept(jsonb)", "pombo_ensure_partitions(integer)", "pombo_write(jsonb,jsonb,boolean)"
        ]
    assert ("messages_default",) in {(r[0],) for r in a.get("partitions", [("messages_default",)])}
    for part in a:
        assert a[part] == b[part], part
    assert a == b


def test_down_to_base_and_up_again(two_empty: tuple[str, str]) -> None:
    url, _ = two_empty
    migrate.upgrade(url)
    head = schema(url)
    downgrade(url, "base")
    empty = schema(url)
    assert list(empty["reflected"]) == ["alembic_version"]
    assert empty["version"] == []
    if "functions" in empty:
        assert [r[0] for r in empty["relations"]] == ["alembic_version", "alembic_version_pkc"]
        assert empty["functions"] == [] and empty["sequences"] == [] and empty["triggers"] == []
    migrate.upgrade(url)
    again = schema(url)
    for part in head:
        assert again[part] == head[part], part


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    return found | {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}


def test_migrations_import_nothing_that_changes_with_the_application() -> None:
    files = sorted(VERSIONS.glob("*.py"))
    assert len(files) == len(revisions())
    for path in files:
        assert _imports(path) <= {"__future__", "alembic", "sqlalchemy"}, path.name
    assert not (VERSIONS.parent / "pg_functions.py").exists()


def test_revision_0001_is_its_own_schema_not_todays(tmp_path: Path) -> None:
    """0001 spells its tables out: a database at 0001 lacks what later revisions add."""
    migrate.upgrade(f"sqlite:///{tmp_path / 'a.db'}", "0001")
    with contextlib.closing(sqlite3.connect(tmp_path / "a.db")) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        columns = {r[1] for r in db.execute("PRAGMA table_info(messages)")}
    assert "messages" in tables and not {"callbacks", "operators"} & tables
    assert "notify_url" not in columns and "reconcile_at" not in columns


def _settle_one(conn: Connection) -> str:
    """pombo_write settles a waiting message with a callback URL; the event id it queued."""
    conn.execute(text("INSERT INTO customers (id, name) VALUES (11, 'shop')"))
    mid = conn.execute(text(
        "INSERT INTO messages (customer_id, dest, text, connection, status_code, value, cost, segments,"
        " encoding, created_at, updated_at, notify_url)"
        " VALUES (11, '11987650001', 'hi', 'velip', 1, 80, 20, 1, 'gsm', 1700000000, 1700000000,"
        " 'http://hook') RETURNING id"
    )).scalar_one()
    settles = f'[{{"id": {mid}, "uid": "up-1", "raw": "OK", "at": 1700000001}}]'
    conn.execute(text("SELECT pombo_write('[]'::jsonb, CAST(:s AS jsonb))"), {"s": settles})
    event_id: str = conn.execute(text("SELECT event_id FROM callbacks WHERE message_id = :m"), {"m": mid}).scalar_one()
    conn.execute(text("TRUNCATE callbacks, messages, customers CASCADE"))
    return event_id


def test_pombo_write_event_ids_are_32_hex_digits_from_0007() -> None:
    with empty_pg_database() as url:
        migrate.upgrade(url)
        with connected(url) as conn:
            assert HEX32.fullmatch(_settle_one(conn))
        downgrade(url, "0006_partial_indexes")
        with connected(url) as conn:
            before = _settle_one(conn)
        assert len(before) == 36 and HEX32.fullmatch(before.replace("-", ""))
        migrate.upgrade(url)
        with connected(url) as conn:
            assert HEX32.fullmatch(_settle_one(conn))
            (unique,) = conn.execute(text(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'callbacks'::regclass"
                " AND contype = 'u'"
            )).fetchall()
        assert unique[0] == "UNIQUE (event_id)"
