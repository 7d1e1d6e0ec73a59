"""Broken upstreams through the whole gateway, for every connection kind (issue: hardening).

For each fault, as SPEC §11 classifies it: the answer (300 or WR), the log row, the money (refunded
exactly once for a hard error or an expiry, charged otherwise, and every balance equal to its
ledger), the requests at the upstream (an ambiguous message never sent a second time, a "not sent"
one retried until exactly one attempt is accepted), and a good send right after, so the server is
known to keep serving.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest

from pombo.adapters.sql.postgres import PostgresStore
from pombo.adapters.sql.sqlite import SqliteStore
from pombo.adapters.sql.store import SqlStore
from tests.fakes.upstream import FakeUpstream, Received, pick_free_port, tww_body
from tests.integration.gateway import assert_ledger_balanced, provision, provisioning
from tests.integration.test_hardening_api import (
    Live,
    call,
    envelope_of,
    expect,
    fake_upstream,
    fresh_dest,
    fresh_ip,
    module_database,
    post_form,
    serve,
)

ACK, FINAL = 0.4, 1.3  # seconds: WR after ACK, 300 "no answer" after FINAL
SLOW = 0.8  # an upstream slower than ACK, faster than FINAL
DEAD_QUEUE_TIME = 2  # max_queue_time of the "-dead" connections: a refused message expires
PRICE, RESELLER_PRICE = 800, 500  # units of 0.0001 per segment (tariffs below)

# connection name -> the fake upstream's kind for it
ROUTES = {"velip": "kannel", "wavy": "wavy", "tww": "tww", "matrix": "http"}
TOKENS = {name: f"tok-up-{name}-0000000" for name in ROUTES}
DEAD_TOKENS = {name: f"tok-dead-{name}-000000" for name in ROUTES}
RESELLER_TOKENS = {name: f"tok-res-{name}-0000000" for name in ROUTES}


def upstream_doc(upstream_url: str, dead_url: str) -> dict[str, Any]:
    doc = provisioning(upstream_url, ack_timeout=ACK, final_timeout=FINAL)
    live_connections = doc["connections"]
    dead = []
    for conn in live_connections:
        copy = {**conn, "name": conn["name"] + "-dead", "url": conn["url"].replace(upstream_url, dead_url),
                "max_queue_time": DEAD_QUEUE_TIME}
        dead.append(copy)
    doc["connections"] = live_connections + dead
    # one reseller per connection, so the four kinds can fail at once without sharing money
    doc["customers"], doc["tariffs"] = [], []
    for offset, name in enumerate(ROUTES):
        reseller = 40 + offset
        doc["customers"].append({"id": reseller, "name": f"Revenda {name}", "balance": "500.00", "tokens": [RESELLER_TOKENS[name]]})
        doc["tariffs"].append({"customer": reseller, "prefix": "55", "value": "0.0500"})
        for cid, route, token in ((20 + offset, name, TOKENS[name]), (30 + offset, name + "-dead", DEAD_TOKENS[name])):
            doc["customers"].append(
                {"id": cid, "name": f"Loja {route}", "parent": reseller, "balance": "50.00", "sms_provider": route,
                 "night_limit": None, "tokens": [token]}
            )
            doc["tariffs"].append({"customer": cid, "prefix": "55", "value": "0.0800"})
    return doc


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(request: pytest.FixtureRequest) -> Iterator[Live]:
    url = module_database(request, "hardening-upstream")
    dead_url = f"http://127.0.0.1:{pick_free_port()}"  # nothing listens there: connection refused
    with fake_upstream() as upstream:
        provision(url, upstream_doc(upstream.url, dead_url))
        with serve(url) as (host, port, errors):
            yield Live(host, port, url, upstream, errors, request.param)


@pytest.fixture(autouse=True)
def clean(live: Live) -> Iterator[None]:
    live.errors.take()
    live.upstream.reset()
    yield
    live.upstream.reset()
    assert live.errors.take() == [], "the server logged an error"


@pytest.fixture
async def client(live: Live) -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(local_addr=(fresh_ip(), 0), force_close=True)
    async with aiohttp.ClientSession(live.base, connector=connector) as session:
        yield session


# --------------------------------------------------------------------------------------------
# Reading the gateway
# --------------------------------------------------------------------------------------------


async def balances(client: aiohttp.ClientSession, token: str) -> tuple[int, int]:
    """(the customer's, its reseller's) balance in units, through GetBalance."""
    name = next(n for n in ROUTES if token in (TOKENS[n], DEAD_TOKENS[n]))
    out = []
    for t in (token, RESELLER_TOKENS[name]):
        ret = expect(await post_form(client, "/api/v2/GetBalance.php", {"tsid": t}), 0)
        out.append(int(Decimal(ret["balance"]) * 10_000))
    return out[0], out[1]


async def log_row(client: aiohttp.ClientSession, token: str, cdls_id: str) -> dict[str, Any]:
    answer = await call(client, "GET", "/api/v2/GetSMSStatus.php", query=f"tsid={token}&cdls_id={cdls_id}")
    envelope_of(answer)
    messages = json.loads(answer.body)["messages"]
    assert len(messages) == 1, messages
    return messages[0]


async def settled(client: aiohttp.ClientSession, token: str, cdls_id: str, timeout: float = FINAL + 4) -> dict[str, Any]:
    """The log row once it left WR."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        row = await log_row(client, token, cdls_id)
        if row["status_code"] != "1" or asyncio.get_running_loop().time() > deadline:
            return row
        await asyncio.sleep(0.05)


async def ledger_balanced(live: Live) -> None:
    store: SqlStore = (
        await PostgresStore.open(live.database_url, pool_size=2)
        if live.engine == "postgresql"
        else SqliteStore(live.database_url)
    )
    try:
        await assert_ledger_balanced(SimpleNamespace(store=store))  # type: ignore[arg-type]
    finally:
        await store.close()


DEST_OF: dict[str, Callable[[Received], str | None]] = {
    "kannel": lambda r: r.query.get("to"),
    "wavy": lambda r: (r.json or {}).get("destination"),
    "tww": lambda r: r.form.get("Celular"),
    "http": lambda r: (r.json or {}).get("to"),
}


def requests_for(upstream: FakeUpstream, kind: str, dest: str) -> list[Received]:
    return [r for r in upstream.received(kind) if DEST_OF[kind](r) == "55" + dest]


# --------------------------------------------------------------------------------------------
# The faults
# --------------------------------------------------------------------------------------------

TRUNCATED = {
    "kannel": "0",
    "wavy": '[{"id": "abc-1", "correlat',
    "tww": tww_body("OK")[:-14],
    "http": '{"status": "o',
}


@dataclass(frozen=True)
class Fault:
    name: str
    behave: Callable[[str], dict[str, Any]] | None  # kind -> FakeUpstream.behave kwargs
    # "300" at once (hard error, refunded), "WR-OK" (slow answer), "WR-unknown" (stays WR,
    # charged, never sent again), "WR-retried" (not sent: waits, is retried and sent once the
    # provider is back, charged), "WR-expired" (not sent until max_queue_time: 300, refunded)
    outcome: str
    received: int = 1  # requests the upstream sees (for "WR-retried": at least this many)


def custom(status: int, body: str | bytes) -> Callable[[str], dict[str, Any]]:
    return lambda kind: {"mode": "custom", "status": status, "body": body}


FAULTS = [
    # SPEC §11 "not sent": nothing reached the provider; the message waits and is retried
    Fault("refused", None, "WR-expired", received=0),
    # SPEC §11 "unknown": the request was read, then the socket reset: it may have arrived
    Fault("reset", lambda k: {"mode": "reset"}, "WR-unknown"),
    Fault("http-503", custom(503, "Service Unavailable"), "WR-retried"),
    Fault("http-500-empty", custom(500, ""), "300"),
    Fault("http-429", custom(429, '{"error": "slow down"}'), "WR-retried"),
    # a 2xx whose body is not the kind's OK is SPEC §8's hard error: 300, refunded
    Fault("empty-200", custom(200, ""), "300"),
    Fault("garbage", custom(200, "<html> oops }{ ][ \u2603"), "300"),
    Fault("nul-bytes", custom(200, "<html>\x00\x01 oops"), "300"),
    Fault("truncated", lambda k: {"mode": "custom", "status": 200, "body": TRUNCATED[k]}, "300"),
    Fault("huge-5mb", custom(200, b"x" * (5 * 1024 * 1024)), "300"),
    Fault("not-utf8", custom(200, b"\xff\xfe\xfa\xc3 no \xe9"), "300"),
    Fault("redirect", custom(302, ""), "300"),
    Fault("slow", lambda k: {"mode": "ok", "delay": SLOW}, "WR-OK"),
    # SPEC §11: the request went out and no answer came: it may have reached the handset
    Fault("never-answers", lambda k: {"mode": "hang"}, "WR-unknown"),
]



async def run_fault(live: Live, client: aiohttp.ClientSession, connection: str, fault: Fault) -> None:
    """Everything the issue asks of one fault on one connection."""
    kind = ROUTES[connection]
    token = DEAD_TOKENS[connection] if fault.behave is None else TOKENS[connection]
    if fault.behave is not None:
        live.upstream.behave(kind, **fault.behave(kind))
    before = await balances(client, token)
    dest = fresh_dest()
    where = f"{connection} ({kind}), fault {fault.name}"

    answer = await post_form(client, "/api/v2/MakeSMS.php", {"tsid": token, "dest": dest, "message": f"fault {fault.name}"})
    ret = envelope_of(answer)
    cdls_id = ret["cdls_id"]
    assert cdls_id != "0", where
    if fault.outcome == "300":
        assert (ret["status_code"], ret["status"]) == ("300", "error sms provider"), (where, ret)
        row = await log_row(client, token, cdls_id)
    else:
        assert (ret["status_code"], ret["status"]) == ("1", "WR"), (where, ret)
        charged = (before[0] - PRICE, before[1] - RESELLER_PRICE)
        assert await balances(client, token) == charged, f"{where}: charged while waiting"
        row = await settled(client, token, cdls_id)

    if fault.outcome == "WR-retried":
        assert (row["status_code"], row["status"]) == ("1", "WR"), (where, row)  # still failing
        live.upstream.behave(kind, mode="ok")  # the provider is back: the queued message goes
        row = await settled(client, token, cdls_id)
        assert (row["status_code"], row["status"], row["delivery"]) == ("0", "OK", "pending"), (where, row)
        assert await balances(client, token) == (before[0] - PRICE, before[1] - RESELLER_PRICE), where
    elif fault.outcome == "WR-unknown":
        # pending until final_timeout (+5 s), then unknown; WR and charged either way
        assert (row["status_code"], row["status"]) == ("1", "WR"), (where, row)
        assert row["delivery"] in ("pending", "unknown"), (where, row)
        assert await balances(client, token) == (before[0] - PRICE, before[1] - RESELLER_PRICE), where
    elif fault.outcome == "WR-OK":
        assert (row["status_code"], row["status"], row["delivery"]) == ("0", "OK", "pending"), (where, row)
        assert await balances(client, token) == (before[0] - PRICE, before[1] - RESELLER_PRICE), where
    else:
        assert (row["status_code"], row["status"], row["delivery"]) == ("300", "error sms provider", "rejected"), (where, row)
        assert isinstance(row["return_log"], str) and len(row["return_log"]) <= 4000, where
        if fault.outcome == "WR-expired":
            assert "expired in queue" in row["return_log"], (where, row)
        assert row["return_log"].strip(), (where, row)  # the log always says what happened
        assert await balances(client, token) == before, f"{where}: not refunded exactly"

    sent = requests_for(live.upstream, kind, dest)
    if fault.outcome == "WR-retried":
        assert len(sent) >= fault.received, (where, sent)
        assert [r.outcome for r in sent].count("ok") == 1, (where, sent)  # sent once, not twice
    else:
        assert len(sent) == fault.received, (where, sent)

    # the gateway keeps serving
    live.upstream.behave(kind, mode="ok")
    good_dest = fresh_dest()
    good = await post_form(client, "/api/v2/MakeSMS.php", {"tsid": TOKENS[connection], "dest": good_dest, "message": "after"})
    assert envelope_of(good)["status_code"] == "0", (where, str(good))
    assert len(requests_for(live.upstream, kind, good_dest)) == 1, where


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
async def test_upstream_fault(live: Live, client: aiohttp.ClientSession, fault: Fault) -> None:
    """Each fault on the four kinds at once (each kind has its own behaviour at the fake)."""
    await asyncio.gather(*(run_fault(live, client, c, fault) for c in ROUTES))
    assert not [r for r in live.upstream.requests if r.path == "/redirected"]  # redirects are not followed
    await ledger_balanced(live)


BURST = 15


async def burst(live: Live, client: aiohttp.ClientSession, connection: str) -> None:
    """A provider answering 503 to a burst: every message waits (WR, charged), and once the
    provider is back each one is sent exactly once (SPEC §11 "not sent")."""
    kind = ROUTES[connection]
    live.upstream.behave(kind, mode="custom", status=503, body="down")
    token = TOKENS[connection]
    before = await balances(client, token)
    charged = (before[0] - BURST * PRICE, before[1] - BURST * RESELLER_PRICE)
    dests = [fresh_dest() for _ in range(BURST)]
    answers = await asyncio.gather(
        *(post_form(client, "/api/v2/MakeSMS.php", {"tsid": token, "dest": d, "message": "burst"}) for d in dests)
    )
    ids = []
    for answer in answers:
        ret = envelope_of(answer)
        assert (ret["status_code"], ret["status"]) == ("1", "WR"), (connection, ret)
        ids.append(ret["cdls_id"])
    assert await balances(client, token) == charged, f"{connection}: charged while waiting"
    live.upstream.behave(kind, mode="ok")
    for cdls_id in ids:
        assert (await settled(client, token, cdls_id, timeout=FINAL + 40))["status_code"] == "0", connection
    assert await balances(client, token) == charged, connection
    for d in dests:
        assert [r.outcome for r in requests_for(live.upstream, kind, d)].count("ok") == 1, (connection, d)


async def test_many_not_sent_at_once_are_each_sent_once(live: Live, client: aiohttp.ClientSession) -> None:
    await asyncio.gather(*(burst(live, client, c) for c in ROUTES))
    await ledger_balanced(live)
