"""Operator functions on both engines: pruning the log, top-ups, tokens, brute-force state."""

from __future__ import annotations

import time

from sqlalchemy import create_engine, text

from pombo.adapters.sql import admin, migrate
from pombo.adapters.sql.factory import open_store
from pombo.ports import AuthPolicy
from tests.integration.gateway import provision, provisioning

DAY = 86400.0


def _insert(conn, *, message_id: int, created_at: float, status_code: int) -> None:  # type: ignore[no-untyped-def]
    conn.execute(
        text(
            "INSERT INTO messages (id, customer_id, dest, text, connection, status_code, value, cost, "
            "segments, encoding, delivery, created_at, updated_at) VALUES "
            "(:id, 11, '5511987654321', 'x', 'velip', :code, 800, 0, 1, 'GSM-7', 'pending', :at, :at)"
        ),
        {"id": message_id, "code": status_code, "at": created_at},
    )
    conn.execute(
        text("INSERT INTO dlr_reports (connection, message_id, state, raw, created_at) VALUES ('velip', :id, 'sent', 'r', :at)"),
        {"id": message_id, "at": created_at},
    )


def test_prune_keeps_waiting_messages_and_the_ledger(database_url: str) -> None:
    provision(database_url, provisioning("http://127.0.0.1:9"))
    engine = create_engine(migrate.sqlalchemy_url(database_url))
    old = time.time() - 40 * DAY
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # an old month of its own, to be dropped whole
            conn.execute(text("CREATE TABLE messages_200001 PARTITION OF messages FOR VALUES FROM (946684800) TO (949363200)"))
            _insert(conn, message_id=900, created_at=946684800 + DAY, status_code=0)
        _insert(conn, message_id=901, created_at=old, status_code=0)
        _insert(conn, message_id=902, created_at=old, status_code=300)
        _insert(conn, message_id=903, created_at=old, status_code=1)  # still waiting
        _insert(conn, message_id=904, created_at=time.time(), status_code=0)
        conn.execute(text("INSERT INTO ledger (customer_id, amount, cause, message_id, created_at) VALUES (11, -800, 'message', 901, :at)"), {"at": old})
    with engine.begin() as conn:
        counts = admin.prune_log(conn, before=time.time() - 30 * DAY)
    with engine.connect() as conn:
        left = sorted(r[0] for r in conn.execute(text("SELECT id FROM messages")))
        ledger = conn.execute(text("SELECT count(*) FROM ledger WHERE message_id = 901")).scalar()
        reports = sorted(r[0] for r in conn.execute(text("SELECT message_id FROM dlr_reports")))
    engine.dispose()
    assert left == [903, 904] and reports == [903, 904] and ledger == 1
    assert counts["waiting_kept"] == 1
    if database_url.startswith("postgresql"):
        assert counts["partitions_dropped"] == 1


async def test_block_state_and_suspects(database_url: str) -> None:
    provision(database_url, provisioning("http://127.0.0.1:9"))
    store = await open_store(database_url)
    policy = AuthPolicy()
    now = time.time()
    try:
        assert await store.auth_suspects(since=now - 600) == set()
        for i in range(20):
            assert await store.auth_block(ip="10.0.0.1", username=None, policy=policy, now=now + i) is None
            await store.record_auth_failure(ip="10.0.0.1", username=None, code=100, policy=policy, now=now + i)
        assert await store.auth_block(ip="10.0.0.1", username=None, policy=policy, now=now + 21) == 131
        assert await store.auth_block(ip="10.0.0.1", username=None, policy=policy, now=now + 700) is None
        for i in range(5):
            await store.record_auth_failure(ip="10.0.0.2", username="loja", code=140, policy=policy, now=now + i)
        assert await store.auth_block(ip="10.0.0.3", username="loja", policy=policy, now=now + 6) == 132
        for i in range(15):
            await store.record_auth_failure(ip="10.0.0.4", username=None, code=102, policy=policy, now=now + i)
        assert await store.auth_block(ip="10.0.0.4", username=None, policy=policy, now=now + 10_000) == 199
        assert {"10.0.0.1", "10.0.0.2", "loja", "10.0.0.4"} <= await store.auth_suspects(since=now - 600)
    finally:
        await store.close()


def test_credit_and_tokens(database_url: str) -> None:
    provision(database_url, provisioning("http://127.0.0.1:9"))
    engine = create_engine(migrate.sqlalchemy_url(database_url))
    with engine.begin() as conn:
        assert admin.credit_add(conn, customer_id=11, amount=55_000, note="pix") == 255_000
        token = admin.issue_token(conn, customer_id=11)
        catalog = admin.load_catalog(conn)
        assert len(token) >= 10 and any(t.prefix == token[:10] for t in catalog.tokens.values())
        assert admin.revoke_token(conn, token_or_prefix=token[:10]) == 1
        assert all(t.prefix != token[:10] for t in admin.load_catalog(conn).tokens.values())
    engine.dispose()


async def test_ip_list_and_unblock(database_url: str) -> None:
    provision(database_url, provisioning("http://127.0.0.1:9"))
    store = await open_store(database_url)
    policy = AuthPolicy()
    now = time.time()
    try:
        for i in range(15):
            await store.record_auth_failure(ip="10.9.9.9", username=None, code=102, policy=policy, now=now + i)
        await store.record_auth_failure(ip="10.8.8.8", username="x", code=140, policy=policy, now=now)
        with store.engine.begin() as conn:
            report = {r["ip"]: r for r in admin.ip_report(conn, since=now - 60)}
            assert report["10.9.9.9"]["blocked"] and report["10.9.9.9"]["recent_failures"] == 15
            assert not report["10.8.8.8"]["blocked"] and report["10.8.8.8"]["recent_failures"] == 1
            assert admin.unblock_ip(conn, ip="10.9.9.9") == 16
            assert admin.unblock_ip(conn, ip="10.9.9.9") == 0
        assert await store.auth_block(ip="10.9.9.9", username=None, policy=policy, now=now + 20) is None
    finally:
        await store.close()


async def test_a_connection_that_keeps_failing_shows_in_health_and_metrics(database_url: str) -> None:
    from prometheus_client import REGISTRY

    from pombo.api.app import healthz
    from tests.integration.gateway import open_gateway, send

    services = await open_gateway(database_url, provisioning("http://127.0.0.1:9"), background_jobs=False)

    class Req:  # the handler only reads app.state.services
        app = type("A", (), {"state": type("S", (), {"services": services})()})()

    try:
        for i in range(5):
            assert (await send(services, dest=f"1198765{i:04d}", message="hi")).code == 300  # port 9: refused
        body = __import__("json").loads((await healthz(Req())).body)  # type: ignore[arg-type]
        assert body["status"] == "degraded"
        assert body["connections"]["velip"] == {"state": "failing", "consecutive_failures": 5, "sent": 5, "failed": 5}
        gauge = REGISTRY.get_sample_value("pombo_connection_consecutive_failures", {"connection": "velip"})
        assert gauge == 5
    finally:
        await services.aclose()
