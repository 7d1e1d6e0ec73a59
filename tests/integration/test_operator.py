"""The operator service on both engines: provisioning, credit, tokens, connections, logins, the
log's upkeep, brute-force state, and what the console reads."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import create_engine, text

from pombo.adapters.sql import migrate
from pombo.bootstrap import Services
from pombo.domain.codes import Rejection
from pombo.errors import NotFound
from pombo.ports import AuthPolicy
from pombo.services.auth import Credentials
from pombo.services.operator import MessageFilter, Operator, OperatorError
from tests.fakes.upstream import FakeUpstream
from tests.integration.gateway import RESELLER_TOKEN, TOKEN, open_gateway, provisioning, send

DAY = 86400.0
UPSTREAM = "http://127.0.0.1:9"


@pytest.fixture
async def services(database_url: str) -> AsyncIterator[Services]:
    """A gateway (no background jobs) on a provisioned database."""
    services = await open_gateway(database_url, provisioning(UPSTREAM), background_jobs=False)
    try:
        yield services
    finally:
        await services.aclose()


def sql(database_url: str, query: str, **params: object) -> list[tuple[object, ...]]:
    """Rows of a query against the database (for assertions and for planting old rows)."""
    engine = create_engine(migrate.sqlalchemy_url(database_url))
    try:
        with engine.begin() as conn:
            result = conn.execute(text(query), params)
            return [tuple(r) for r in result] if result.returns_rows else []
    finally:
        engine.dispose()


async def balance_of(services: Services, token: str) -> str | Rejection:
    """GetBalance as the API would answer it: the balance, or the rejection."""
    answer = await services.accounts.get_balance(creds=Credentials(token=token, basic=None, ip="127.0.0.1"))
    return answer if isinstance(answer, Rejection) else str(answer["balance"])


# ---------------------------------------------------------------- provisioning


async def test_a_plan_naming_an_unknown_customer_changes_nothing(services: Services, database_url: str) -> None:
    before = sql(database_url, "SELECT id, name, balance FROM customers ORDER BY id")
    report = await services.operator.load_document(data={
        "customers": [{"id": 50, "name": "Nova", "parent": 999, "balance": "5.00"},
                      {"id": 11, "name": "Renamed"}],
        "tariffs": [{"customer": 998, "prefix": "55", "value": "0.0100"}],
    })
    assert report.errors == [
        "customers[0] (id 50): parent: customer 999 does not exist",
        "tariffs[0] (customer 998, prefix 55): customer 998 does not exist",
    ]
    assert report.counts == {}
    assert sql(database_url, "SELECT id, name, balance FROM customers ORDER BY id") == before
    assert sql(database_url, "SELECT count(*) FROM ledger WHERE customer_id = 50") == [(0,)]


async def test_a_good_plan_is_applied_with_its_warnings(services: Services, database_url: str) -> None:
    report = await services.operator.load_document(data={
        "customers": [{"id": 50, "name": "Nova", "parent": 10, "balance": "5.00", "sms_provider": "ghost",
                       "tokens": ["tok-nova-0000000001"]}],
    })
    assert report.errors == []
    assert report.counts["customers"] == 1 and report.counts["tokens"] == 1
    assert any("'ghost', which does not exist" in w for w in report.warnings)
    assert sql(database_url, "SELECT amount, cause FROM ledger WHERE customer_id = 50") == [(50_000, "opening")]
    assert await balance_of(services, "tok-nova-0000000001") == "5.0000"


# ---------------------------------------------------------------- money


async def test_credit_add_writes_a_ledger_row_and_moves_the_balance(services: Services, database_url: str) -> None:
    assert await services.operator.credit_add(customer_id=11, amount=55_000, note="pix") == 255_000
    assert await services.operator.top_up(customer_id=11, amount=-5_000, note="fix", operator="ana") == 250_000
    rows = sql(database_url, "SELECT amount, cause, note FROM ledger WHERE customer_id = 11 AND cause = 'topup' "
                             "ORDER BY id")
    assert rows == [(55_000, "topup", "pix"), (-5_000, "topup", "fix [console: ana]")]
    assert await balance_of(services, TOKEN) == "25.0000"
    assert all(balance == ledger for _, balance, ledger in await services.store.ledger_sums())
    with pytest.raises(NotFound, match="customer 999 does not exist"):
        await services.operator.credit_add(customer_id=999, amount=1, note=None)


# ---------------------------------------------------------------- tokens and connections


async def test_issue_then_revoke_a_token_reaches_the_send_path_at_once(services: Services) -> None:
    services.store.catalog_check_every = 3600.0  # type: ignore[attr-defined]  # only invalidate() reloads
    await services.store.catalog()
    token = await services.operator.issue_token(customer_id=11)
    assert await balance_of(services, token) == "20.0000"
    assert await services.operator.revoke_token(token_or_prefix=token) == 1
    rejected = await balance_of(services, token)
    assert isinstance(rejected, Rejection) and rejected.code == 102
    assert await services.operator.revoke_token(token_or_prefix=token) == 0
    with pytest.raises(NotFound):
        await services.operator.issue_token(customer_id=999)


async def test_revoke_one_token_of_a_customer_by_id(services: Services, database_url: str) -> None:
    services.store.catalog_check_every = 3600.0  # type: ignore[attr-defined]
    [(token_id,)] = sql(database_url, "SELECT id FROM tokens WHERE customer_id = 10")
    assert await services.operator.revoke_customer_token(customer_id=11, token_id=token_id) is None  # not its own
    assert await services.operator.revoke_customer_token(customer_id=10, token_id=token_id) == RESELLER_TOKEN[:10]
    assert isinstance(await balance_of(services, RESELLER_TOKEN), Rejection)
    assert await services.operator.revoke_customer_token(customer_id=10, token_id=token_id) is None


async def test_a_disabled_connection_answers_220(services: Services) -> None:
    services.store.catalog_check_every = 3600.0  # type: ignore[attr-defined]
    assert not await services.operator.set_connection_enabled(name="nope", enabled=False)
    assert await services.operator.set_connection_enabled(name="velip", enabled=False)
    assert (await send(services, dest="11987654321", message="hi")).code == 220
    [velip] = [c for c in await services.operator.connections() if c["name"] == "velip"]
    assert not velip["enabled"]


# ---------------------------------------------------------------- the log grows forever


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
    conn.execute(
        text("INSERT INTO upstream_attempts (message_id, connection, kind, raw, at) VALUES (:id, 'velip', 'not_sent', 'HTTP 429: slow', :at)"),
        {"id": message_id, "at": created_at},
    )


async def test_prune_keeps_waiting_messages_and_the_ledger(services: Services, database_url: str) -> None:
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
    engine.dispose()
    counts = await services.operator.prune_log(before=time.time() - 30 * DAY)
    assert sorted(r[0] for r in sql(database_url, "SELECT id FROM messages")) == [903, 904]
    assert sorted(r[0] for r in sql(database_url, "SELECT message_id FROM dlr_reports")) == [903, 904]
    assert sorted(r[0] for r in sql(database_url, "SELECT message_id FROM upstream_attempts")) == [903, 904]
    assert sql(database_url, "SELECT count(*) FROM ledger WHERE message_id = 901") == [(1,)]
    assert counts["waiting_kept"] == 1
    if database_url.startswith("postgresql"):
        assert counts["partitions_dropped"] == 1


# ---------------------------------------------------------------- brute force


async def test_block_state_and_suspects(services: Services) -> None:
    store = services.store
    policy = AuthPolicy()
    now = time.time()
    assert await store.auth_suspects(since=now - 600) == {}
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
    assert {"10.0.0.1", "10.0.0.2", "loja", "10.0.0.4"} <= set(await store.auth_suspects(since=now - 600))


async def test_ip_list_and_unblock(services: Services) -> None:
    store, operator = services.store, services.operator
    policy = AuthPolicy()
    now = time.time()
    for i in range(15):
        await store.record_auth_failure(ip="10.9.9.9", username=None, code=102, policy=policy, now=now + i)
    await store.record_auth_failure(ip="10.8.8.8", username="x", code=140, policy=policy, now=now)
    report = {r["ip"]: r for r in await operator.ip_report(since=now - 60)}
    assert report["10.9.9.9"]["blocked"] and report["10.9.9.9"]["recent_failures"] == 15
    assert not report["10.8.8.8"]["blocked"] and report["10.8.8.8"]["recent_failures"] == 1
    assert await operator.unblock_ip(ip="10.9.9.9") == 16
    assert await operator.unblock_ip(ip="10.9.9.9") == 0
    assert await store.auth_block(ip="10.9.9.9", username=None, policy=policy, now=now + 20) is None


# ---------------------------------------------------------------- console operators


async def test_operator_logins(services: Services) -> None:
    operator: Operator = services.operator
    assert await operator.add_operator(username=" ana ", password="long-enough")
    ana = await operator.verify_operator(username="ana", password="long-enough")
    assert ana is not None and ana.username == "ana"
    assert await operator.verify_operator(username="ana", password="wrong-one!") is None
    assert await operator.verify_operator(username="nobody", password="long-enough") is None
    assert await operator.get_operator(operator_id=ana.id) == ana
    await operator.end_sessions(operator_id=ana.id)
    ended = await operator.get_operator(operator_id=ana.id)
    assert ended is not None and ended.sessions_after > ana.sessions_after
    assert not await operator.add_operator(username="ana", password="another-one")  # new password
    assert await operator.verify_operator(username="ana", password="another-one") is not None
    for name, password in (("has space", "long-enough"), ("", "long-enough"), ("bob", "short")):
        with pytest.raises(OperatorError):
            await operator.add_operator(username=name, password=password)
    secret = await operator.console_secret()
    assert len(secret) >= 48 and await operator.console_secret() == secret
    for _ in range(5):
        await operator.login_failed(ip="10.7.7.7", username="ana")
    assert await operator.login_block(ip="10.7.7.7", username="ana") == 132  # from that address
    assert await operator.login_block(ip="10.7.7.8", username="ana") is None  # not from another
    assert await operator.login_block(ip="10.7.7.7", username="ana", browser="known-1") is None
    assert await operator.login_block(ip="10.7.7.8", username="bob") is None
    for i in range(20):
        await operator.login_failed(ip="10.7.7.9", username=f"nobody-{i}")
    assert await operator.login_block(ip="10.7.7.9", username="ana") == 131  # the 20-per-address rule
    assert await operator.login_block(ip="10.7.7.9", username="ana", browser="known-1") is None
    for _ in range(5):
        await operator.login_failed(ip="10.7.7.9", username="ana", browser="known-1")
    assert await operator.login_block(ip="10.7.7.9", username="ana", browser="known-1") == 132


# ---------------------------------------------------------------- what the console reads


@pytest.fixture
async def refusing() -> AsyncIterator[FakeUpstream]:
    """A provider that answers every send with its hard error (SPEC §8): 300, refunded."""
    fake = FakeUpstream()
    await fake.start()
    fake.behave("kannel", mode="error")
    try:
        yield fake
    finally:
        await fake.stop()


async def test_reads_tree_search_story_and_connections(refusing: FakeUpstream, database_url: str) -> None:
    # a refused connection (port 9) is "not sent" under SPEC §11 and would wait in the queue:
    # a hard error answer is what gives the 300 and the refund this test reads back
    services = await open_gateway(database_url, provisioning(refusing.url), background_jobs=False)
    try:
        await reads_tree_search_story_and_connections(services, refusing.url)
    finally:
        await services.aclose()


async def reads_tree_search_story_and_connections(services: Services, upstream: str) -> None:
    operator = services.operator
    assert [(r["id"], r["depth"], r["tokens"]) for r in await operator.customer_tree()] == [(10, 0, 1), (11, 1, 1)]
    assert [r["id"] for r in await operator.customer_tree(query="loj")] == [11]
    assert (await send(services, dest="11987654321", message="hello", ctid="c-1")).code == 300  # hard error
    [row] = await operator.search_messages(where=MessageFilter(dest=("5511987654321",), customer_id=11), limit=5)
    assert row["ctid"] == "c-1" and row["customer_name"] == "Loja" and row["status_code"] == 300
    assert await operator.search_messages(where=MessageFilter(ctid="other"), limit=5) == []
    assert await operator.search_messages(where=MessageFilter(before_id=row["id"]), limit=5) == []
    story = await operator.message_story(message_id=row["id"])
    assert story is not None and story["ctid"] == "c-1" and story["customer_name"] == "Loja"
    assert {r["cause"] for r in story["ledger"]} == {"message", "refund"}
    assert await operator.message_story(message_id=row["id"] + 1000) is None
    customer = await operator.customer(customer_id=11)
    assert customer is not None and customer["chain"] == [{"id": 10, "name": "Revenda"}]
    assert customer["available"] == 200_000 and customer["low"] is False
    assert await operator.customer(customer_id=999) is None
    urls = {c["name"]: c["url"] for c in await operator.connections()}
    assert urls["velip"] == upstream and urls["tww"].endswith("/reluzcap/wsreluzcap.asmx")
    numbers = await operator.overview_numbers(now=time.time())
    assert numbers["last_minute"] == 1 and numbers["waiting"] == 0
    assert sum(numbers["sends"][minute].get(300, 0) for minute in numbers["sends"]) == 1
    health = await operator.connection_health(now=time.time())
    assert health["velip"]["codes"] == {300: 1} and health["velip"]["last_error"]["id"] == row["id"]
