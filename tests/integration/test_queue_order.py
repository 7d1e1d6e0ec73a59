"""The claim's fair order (adapters/sql/queue.py: DUE_BY_INDEX on SQLite, DUE_LATERAL on
PostgreSQL) is the order SPEC §11 asks for: priority first, then rounds (each customer's n-th due
message in round n), then age. The queries rank only each customer's first `limit` due messages,
found through an index; this checks each against the plain definition (DUE, the window over
every due row) on random queues, and that the plans use the index rather than the whole table."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, text

from pombo.adapters.sql import migrate
from pombo.adapters.sql.queue import DUE, DUE_BY_INDEX, DUE_LATERAL
from tests.conftest import scratch_pg_database

CLAIM = {"sqlite": DUE_BY_INDEX, "postgresql": DUE_LATERAL}


def _named(sql: str) -> str:
    """`?` placeholders as SQLAlchemy's :p0, :p1 ..."""
    parts = sql.split("?")
    return "".join(p + (f":p{i}" if i < len(parts) - 1 else "") for i, p in enumerate(parts))


def _run(engine: Engine, sql: str, params: tuple[object, ...]) -> list[int]:
    with engine.connect() as conn:
        return [int(r[0]) for r in conn.execute(text(_named(sql)), {f"p{i}": v for i, v in enumerate(params)})]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('queue-order') / 'pombo.db'}"
            migrate.upgrade(url)
        else:
            url = stack.enter_context(scratch_pg_database("pombo_order"))
        eng = create_engine(migrate.sqlalchemy_url(url))
        yield eng
        eng.dispose()


rows = st.lists(
    st.tuples(
        st.integers(1, 6),  # customer
        st.sampled_from(["velip", "velip", "wavy"]),  # connection
        st.sampled_from([0.0, 0.0, 0.0, 50.0]),  # not_before: most due at 10.0, some later
    ),
    max_size=60,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows, high=st.sets(st.integers(1, 6), max_size=2), limit=st.integers(1, 25))
def test_the_claim_order_is_the_plain_definition(engine: Engine, rows: list[tuple[int, str, float]], high: set[int], limit: int) -> None:
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM upstream_queue"))
        for n, (customer, connection, not_before) in enumerate(rows):
            conn.execute(
                text("INSERT INTO upstream_queue (message_id, customer_id, connection, priority, not_before, "
                     "enqueued_at, attempts) VALUES (:m, :c, :conn, :p, :nb, 0, 0)"),
                {"m": n + 1, "c": customer, "conn": connection, "p": 1 if customer in high else 0, "nb": not_before},
            )
    want = _run(engine, DUE, ("velip", 10.0, limit))
    got = _run(engine, CLAIM[engine.dialect.name], ("velip", "velip", "velip", 10.0, limit, limit))
    assert got == want


def test_sqlite_finds_the_waiting_customers_by_the_index(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/plan.db"
    migrate.upgrade(url)
    eng = create_engine(url)
    rng = random.Random(7)
    with eng.begin() as conn:
        for n in range(2000):
            conn.execute(
                text("INSERT INTO upstream_queue (message_id, customer_id, connection, priority, not_before, "
                     "enqueued_at, attempts) VALUES (:m, :c, 'velip', 0, 0, 0, 0)"),
                {"m": n + 1, "c": rng.randint(1, 10)},
            )
        plan = " | ".join(
            str(r[-1]) for r in conn.execute(
                text("EXPLAIN QUERY PLAN " + _named(DUE_BY_INDEX)),
                {"p0": "velip", "p1": "velip", "p2": "velip", "p3": 10.0, "p4": 5, "p5": 5},
            )
        )
    eng.dispose()
    # each customer found by one probe, each one's messages walked by age, no table scanned
    assert "USING COVERING INDEX ix_upstream_queue_customer (connection=? AND customer_id>?)" in plan, plan
    assert "USING INDEX ix_upstream_queue_customer (connection=? AND customer_id=?)" in plan, plan
    assert "ix_upstream_queue_due" not in plan and "SCAN upstream_queue" not in plan, plan
    assert "SCAN u " not in plan and "SCAN q " not in plan, plan


def test_postgresql_walks_the_customer_index() -> None:
    with scratch_pg_database("pombo_plan") as url:
        engine = create_engine(migrate.sqlalchemy_url(url))
        try:
            plan = _postgresql_plan(engine)
        finally:
            engine.dispose()
    # the customers one probe each and each one's first messages by the same index: no scan of
    # the queue, whose 20,000 rows the definition would rank
    assert "ix_upstream_queue_customer" in plan, plan
    assert "Seq Scan" not in plan, plan


def _postgresql_plan(engine: Engine) -> str:
    rng = random.Random(7)
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO upstream_queue (message_id, customer_id, connection, priority, not_before, "
                 "enqueued_at, attempts) VALUES (:m, :c, :conn, 0, 0, 0, 0)"),
            [{"m": n + 1, "c": rng.randint(1, 10), "conn": "velip" if n % 4 else "wavy"} for n in range(20_000)],
        )
        conn.execute(text("ANALYZE upstream_queue"))
        plan = "\n".join(
            str(r[0]) for r in conn.execute(
                text("EXPLAIN " + _named(DUE_LATERAL)),
                {"p0": "velip", "p1": "velip", "p2": "velip", "p3": 10.0, "p4": 5, "p5": 5},
            )
        )
    return plan
