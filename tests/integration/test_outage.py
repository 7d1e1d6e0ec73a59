"""The database goes away and comes back, on PostgreSQL (issue: hardening).

The real app runs under uvicorn on loopback (the helpers of test_hardening_api) on a scratch
PostgreSQL database of its own. From a connection to the admin database we then kill every
backend of the gateway's database (`pg_terminate_backend`), or also refuse new connections for a
while (`ALTER DATABASE ... ALLOW_CONNECTIONS false`). Meanwhile every answer must be either a
normal one or the documented outage answer (HTTP 503, `status_code` "503", `service unavailable`
in the envelope): never a 500, never a traceback, never a request hanging for long. Once the
database is back, sends succeed again by themselves within seconds, /healthz is 200 again, every
balance equals its ledger and no charge is without its log row.

The last tests guard three bugs these tests found: a cold gateway serving an empty catalog (valid
tokens answered 102, and the caller's IP blocked), /healthz answering from a cache during an
outage, and an upstream outcome lost when the database was away at that moment.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import psycopg
import pytest

from tests.conftest import PG_ADMIN_URL, scratch_pg_database
from tests.fakes.upstream import FakeUpstream
from tests.integration.gateway import TOKEN, provision
from tests.integration.test_hardening_api import (
    JSON_CT,
    ErrorLog,
    api_doc,
    fake_upstream,
    fresh_dest,
    serve,
)

MAKESMS = "/api/v2/MakeSMS.php"
BALANCE = "/api/v2/GetBalance.php"
REQUEST_LIMIT = 10.0  # seconds: no answer may take longer, outage or not
RECOVERY_LIMIT = 8.0  # seconds from the database being back to sends succeeding again


@dataclass
class Gateway:
    base: str
    database_url: str
    upstream: FakeUpstream
    errors: ErrorLog
    accepted: dict[int, int] = field(default_factory=dict)  # cdls_id -> answer code (0 or 1)
    unavailable: dict[str, int] = field(default_factory=dict)  # path -> 503 answers seen

    @property
    def database(self) -> str:
        return self.database_url.rsplit("/", 1)[-1]


@pytest.fixture
def gateway(request: pytest.FixtureRequest) -> Iterator[Gateway]:
    """A gateway on a database of its own; settings may come by indirect parametrization."""
    # reconcile every second, so a message whose outcome the outage lost is dealt with soon
    settings = {"reconcile_every": 1.0, **getattr(request, "param", {})}
    with scratch_pg_database("pombo_outage") as url, fake_upstream() as upstream:
        provision(url, api_doc(upstream.url))  # ack_timeout 0.5 s, final_timeout 2 s
        with serve(url, **settings) as (host, port, errors):
            try:
                yield Gateway(f"http://{host}:{port}", url, upstream, errors)
            finally:  # usable again whatever happened (the server shuts down, then it is dropped)
                allow_connections(url.rsplit("/", 1)[-1], True)


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[aiohttp.ClientSession]:
    timeout = aiohttp.ClientTimeout(total=REQUEST_LIMIT + 5)
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(gateway.base, timeout=timeout, connector=connector) as session:
        yield session


# --------------------------------------------------------------------------------------------
# The database, from the outside
# --------------------------------------------------------------------------------------------


def admin() -> psycopg.Connection[Any]:
    return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)


def kill_backends(database: str) -> int:
    """Terminate every backend connected to `database`; how many there were."""
    with admin() as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    return len(rows)


def allow_connections(database: str, allow: bool) -> None:
    with admin() as conn:
        conn.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {"true" if allow else "false"}')


def refuse_connections(database: str) -> None:
    """The database is away: no backend left, no new one accepted."""
    allow_connections(database, False)
    kill_backends(database)


def backends(database: str) -> int:
    with admin() as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (database,)).fetchone()
    assert row is not None
    return int(row[0])


def query(gw: Gateway, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(gw.database_url, connect_timeout=5) as conn:
        return conn.execute(sql, args).fetchall()


# --------------------------------------------------------------------------------------------
# Answers
# --------------------------------------------------------------------------------------------


@dataclass
class Reply:
    path: str
    status: int
    content_type: str
    body: bytes
    seconds: float

    def __str__(self) -> str:
        return f"{self.path}: HTTP {self.status} {self.content_type!r} in {self.seconds:.2f}s {self.body[:300]!r}"


async def request(client: aiohttp.ClientSession, path: str, params: dict[str, str], method: str = "POST") -> Reply:
    started = time.monotonic()
    ctx = client.post(path, data=params) if method == "POST" else client.get(path, params=params)
    async with ctx as resp:
        body = await resp.read()
        return Reply(path, resp.status, resp.headers.get("Content-Type", ""), body, time.monotonic() - started)


def check_reply(gw: Gateway, reply: Reply, *, outage_allowed: bool) -> dict[str, Any]:
    """A normal answer, or (where allowed) the documented outage answer; nothing else.
    Returns the envelope's `return` (for /healthz: its body)."""
    assert reply.seconds < REQUEST_LIMIT, f"a request hung: {reply}"
    assert reply.status != 500 and b"Traceback" not in reply.body, str(reply)
    assert reply.content_type.replace(" ", "").lower() == JSON_CT.replace(" ", ""), str(reply)
    data = json.loads(reply.body)
    if reply.status == 503:
        assert outage_allowed, str(reply)
        gw.unavailable[reply.path] = gw.unavailable.get(reply.path, 0) + 1
    if reply.path == "/healthz":
        assert reply.status in (200, 503), str(reply)
        return dict(data)
    ret: dict[str, Any] = data["return"]
    if reply.status == 503:
        assert ret["status_code"] == "503" and "service unavailable" in ret["status"], str(reply)
        return ret
    assert reply.status == 200 and ret["status_code"] in ("0", "1"), str(reply)
    if reply.path == MAKESMS:
        gw.accepted[int(ret["cdls_id"])] = int(ret["status_code"])
    return ret


async def send(gw: Gateway, client: aiohttp.ClientSession, *, outage_allowed: bool) -> dict[str, Any]:
    reply = await request(client, MAKESMS, {"tsid": TOKEN, "dest": fresh_dest(), "message": "teste de queda"})
    return check_reply(gw, reply, outage_allowed=outage_allowed)


async def during_outage(gw: Gateway, client: aiohttp.ClientSession, rounds: int) -> None:
    """Requests of every kind, one at a time and several at once, while the database is away."""
    for _ in range(rounds):
        await send(gw, client, outage_allowed=True)
        replies = await asyncio.gather(
            *(request(client, MAKESMS, {"tsid": TOKEN, "dest": fresh_dest(), "message": "em paralelo"}) for _ in range(4)),
            request(client, BALANCE, {"tsid": TOKEN}),
            request(client, "/api/v2/GetSMSStatus.php", {"tsid": TOKEN, "cdls_id": "1"}),
            request(client, "/api/v2/GetUserID.php", {"tsid": TOKEN}),
            request(client, "/healthz", {}, method="GET"),
        )
        for reply in replies:
            check_reply(gw, reply, outage_allowed=True)


async def recovered(gw: Gateway, client: aiohttp.ClientSession) -> float:
    """Seconds until a send succeeds again; then five in a row and /healthz must too."""
    started = time.monotonic()
    while (await send(gw, client, outage_allowed=True))["status_code"] not in ("0", "1"):
        assert time.monotonic() - started < RECOVERY_LIMIT, "sends did not succeed again after the database came back"
        await asyncio.sleep(0.2)
    took = time.monotonic() - started
    for _ in range(5):
        assert (await send(gw, client, outage_allowed=False))["status_code"] == "0"
    health = await request(client, "/healthz", {}, method="GET")
    assert health.status == 200, str(health)
    assert check_reply(gw, await request(client, BALANCE, {"tsid": TOKEN}), outage_allowed=False)["status_code"] == "0"
    return took


# --------------------------------------------------------------------------------------------
# The books, read straight from the database
# --------------------------------------------------------------------------------------------


async def settled(gw: Gateway, seconds: float = 15.0) -> None:
    """Wait until no message is left waiting with nobody to settle it: each is settled, or
    reconciled (a Kannel message whose outcome was lost becomes delivery `unknown`)."""
    deadline = time.monotonic() + seconds
    while (left := query(gw, "SELECT count(*) FROM messages WHERE status_code = 1 AND delivery = 'pending'")[0][0]):
        assert time.monotonic() < deadline, f"{left} messages still WR and pending long after the outage"
        await asyncio.sleep(0.25)


def assert_books(gw: Gateway) -> None:
    unbalanced = query(
        gw,
        "SELECT c.id, c.balance, COALESCE(SUM(l.amount), 0) FROM customers c "
        "LEFT JOIN ledger l ON l.customer_id = c.id GROUP BY c.id, c.balance "
        "HAVING c.balance <> COALESCE(SUM(l.amount), 0)",
    )
    assert unbalanced == [], f"balance != ledger (customer, balance, ledger): {unbalanced}"
    orphans = query(
        gw,
        "SELECT l.id, l.cause, l.message_id FROM ledger l WHERE l.cause IN ('message', 'refund') "
        "AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = l.message_id)",
    )
    assert orphans == [], f"charges without their log row: {orphans}"
    # every message is charged to its customer exactly its value, or refunded to nothing (300)
    wrong = query(
        gw,
        "SELECT m.id, m.status_code, m.value, COALESCE(SUM(l.amount), 0) FROM messages m "
        "LEFT JOIN ledger l ON l.message_id = m.id AND l.customer_id = m.customer_id "
        "GROUP BY m.id, m.status_code, m.value "
        "HAVING COALESCE(SUM(l.amount), 0) <> CASE WHEN m.status_code = 300 THEN 0 ELSE -m.value END",
    )
    assert wrong == [], f"messages charged wrongly (id, status, value, net charge): {wrong}"
    logged = {r[0] for r in query(gw, "SELECT id FROM messages")}
    missing = set(gw.accepted) - logged
    assert not missing, f"accepted answers without a log row: {sorted(missing)}"


def no_server_errors(gw: Gateway) -> None:
    assert gw.errors.take() == [], "an exception escaped the app (uvicorn logged it)"


# --------------------------------------------------------------------------------------------
# The tests
# --------------------------------------------------------------------------------------------


async def test_killed_connections_heal_by_themselves(gateway: Gateway, client: aiohttp.ClientSession) -> None:
    assert (await send(gateway, client, outage_allowed=False))["status_code"] == "0"
    # concurrent sends so the pool holds several connections, all of which die
    await asyncio.gather(*(send(gateway, client, outage_allowed=False) for _ in range(8)))
    assert kill_backends(gateway.database) >= 2
    await during_outage(gateway, client, rounds=3)
    await recovered(gateway, client)
    await settled(gateway)
    assert_books(gateway)
    no_server_errors(gateway)


async def test_a_database_refusing_connections_then_back(gateway: Gateway, client: aiohttp.ClientSession) -> None:
    assert (await send(gateway, client, outage_allowed=False))["status_code"] == "0"
    refuse_connections(gateway.database)
    try:
        await asyncio.sleep(1.1)  # past the catalog's one-second cache
        await during_outage(gateway, client, rounds=3)
        assert gateway.unavailable.get(MAKESMS, 0) >= 3, "sends did not notice that the database refused connections"
        assert gateway.unavailable.get(BALANCE, 0) >= 3, gateway.unavailable
        assert backends(gateway.database) == 0
    finally:
        allow_connections(gateway.database, True)
    await recovered(gateway, client)
    await settled(gateway)
    assert_books(gateway)
    no_server_errors(gateway)


async def test_repeated_outages_with_sends_in_flight(gateway: Gateway, client: aiohttp.ClientSession) -> None:
    assert (await send(gateway, client, outage_allowed=False))["status_code"] == "0"
    for round_ in range(3):
        sends = [asyncio.ensure_future(send(gateway, client, outage_allowed=True)) for _ in range(12)]
        await asyncio.sleep(0.005 * round_)
        kill_backends(gateway.database)
        await asyncio.gather(*sends)
        await recovered(gateway, client)
    await settled(gateway)
    assert_books(gateway)
    no_server_errors(gateway)


async def test_healthz_is_503_while_the_database_refuses_connections(
    gateway: Gateway, client: aiohttp.ClientSession
) -> None:
    assert (await send(gateway, client, outage_allowed=False))["status_code"] == "0"
    refuse_connections(gateway.database)
    await asyncio.sleep(1.1)
    assert (await send(gateway, client, outage_allowed=True))["status_code"] == "503"
    health = await request(client, "/healthz", {}, method="GET")
    assert health.status == 503, str(health)


# no background job may load the catalog before the test's first request does
@pytest.mark.parametrize("gateway", [{"background_jobs": False}], indirect=True, ids=["no-jobs"])
async def test_a_cold_gateway_never_rejects_a_valid_token_because_of_an_outage(
    gateway: Gateway, client: aiohttp.ClientSession
) -> None:
    refuse_connections(gateway.database)  # before the first request: the catalog was never loaded
    assert (await send(gateway, client, outage_allowed=True))["status_code"] == "503"
    allow_connections(gateway.database, True)
    replies = [await request(client, MAKESMS, {"tsid": TOKEN, "dest": fresh_dest(), "message": "oi"}) for _ in range(3)]
    for reply in replies:
        check_reply(gateway, reply, outage_allowed=True)
    assert query(gateway, "SELECT ip, code FROM auth_failures") == []


async def test_an_upstream_refusal_during_an_outage_is_refunded_when_the_database_is_back(
    gateway: Gateway, client: aiohttp.ClientSession
) -> None:
    assert (await send(gateway, client, outage_allowed=False))["status_code"] == "0"
    gateway.upstream.behave("kannel", mode="error", delay=1.0)  # refuses after the ack timeout
    pending = asyncio.ensure_future(send(gateway, client, outage_allowed=False))
    await asyncio.sleep(0.3)  # the message is logged and charged, the upstream not yet answered
    refuse_connections(gateway.database)
    ret = await pending
    assert ret["status_code"] == "1"  # WR: the caller stopped waiting at the ack timeout
    cdls_id = int(ret["cdls_id"])
    await asyncio.sleep(1.5)  # the refusal arrives meanwhile (1 s after the send), the database away
    allow_connections(gateway.database, True)
    deadline = time.monotonic() + 3.0
    while (row := query(gateway, "SELECT status_code, delivery FROM messages WHERE id = %s", (cdls_id,))[0])[0] == 1:
        assert time.monotonic() < deadline, f"message {cdls_id} still {row} 3 s after the database came back"
        await asyncio.sleep(0.2)
    assert row == (300, "rejected")
    assert_books(gateway)
