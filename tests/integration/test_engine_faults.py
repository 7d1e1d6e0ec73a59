"""The upstream engine end to end (SPEC §11), for the four HTTP kinds at once, on SQLite and
PostgreSQL: a real gateway under uvicorn, fake providers on loopback speaking each wire format.

What tests/integration/test_hardening_upstream.py does not cover, each checked for what the
caller hears, the log row, the money (charged once or refunded once, balance == ledger) and what
the provider received (exactly once where the message went out):
- a 429 with `Retry-After` is retried no sooner than the provider asked, then sent once;
- a provider that refuses connections for a while gets each waiting message once it is back;
- a provider that takes the request but answers after `final_timeout` (unknown): never sent
  again; a delivery report (Kannel) or a status query (Wavy, TWW) turns it OK, and without
  either (http) it stays WR with delivery `unknown`, charged;
- failover across kinds: a refused head is skipped after 5 "not sent" and every message goes
  to its fallback (another kind) once; the log names the fallback and its cost, the customer
  pays the head's price.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from sqlalchemy import create_engine, text

from pombo.adapters.sql import migrate
from tests.fakes.upstream import FakeUpstream, Received, pick_free_port
from tests.integration.gateway import provision, provisioning
from tests.integration.test_hardening_api import (
    call,
    envelope_of,
    expect,
    fake_upstream,
    fresh_dest,
    fresh_ip,
    module_database,
    post_form,
)
from tests.live_server import ErrorLog, serve

ACK, FINAL = 0.4, 1.3
PRICE, RESELLER_PRICE = 800, 500  # units per segment (tariffs below)
KIND = {"velip": "kannel", "wavy": "wavy", "tww": "tww", "matrix": "http"}
FALLBACK = {"velip": "wavy", "wavy": "velip", "tww": "matrix", "matrix": "tww"}  # always another kind
COST = {"velip": "0.0100", "wavy": "0.0200", "tww": "0.0300", "matrix": "0.0400"}
HEAD_COST = "0.0500"
SUFFIXES = ("", "-flaky", "-head")  # at the provider; refusing until it comes back; refusing, with a fallback


def token(name: str, suffix: str = "") -> str:
    return f"tok-eng{suffix or '-up'}-{name}".ljust(20, "0")


def reseller_token(name: str) -> str:
    return f"tok-eng-res-{name}".ljust(20, "0")


def engine_doc(upstream_url: str, flaky_url: str, dead_url: str) -> dict[str, Any]:
    doc = provisioning(upstream_url, ack_timeout=ACK, final_timeout=FINAL)
    base = doc["connections"]
    flaky = [{**c, "name": c["name"] + "-flaky", "url": c["url"].replace(upstream_url, flaky_url),
              "max_queue_time": 60} for c in base]
    head = [{**c, "name": c["name"] + "-head", "url": c["url"].replace(upstream_url, dead_url),
             "fallback": [FALLBACK[c["name"]]], "max_queue_time": 60} for c in base]
    doc["connections"] = base + flaky + head
    doc["costs"] = [{"connection": n, "prefix": "55", "cost": c} for n, c in COST.items()]
    doc["costs"] += [{"connection": n + "-head", "prefix": "55", "cost": HEAD_COST} for n in KIND]
    doc["customers"], doc["tariffs"] = [], []
    for offset, name in enumerate(KIND):
        reseller = 60 + offset
        doc["customers"].append({"id": reseller, "name": f"Revenda {name}", "balance": "500.00",
                                 "tokens": [reseller_token(name)]})
        doc["tariffs"].append({"customer": reseller, "prefix": "55", "value": "0.0500"})
        for i, suffix in enumerate(SUFFIXES):
            cid = 100 + 10 * offset + i
            doc["customers"].append({"id": cid, "name": f"Loja {name}{suffix}", "parent": reseller,
                                     "balance": "50.00", "sms_provider": name + suffix, "night_limit": None,
                                     "tokens": [token(name, suffix)]})
            doc["tariffs"].append({"customer": cid, "prefix": "55", "value": "0.0800"})
            # a tariff naming the fallback: were the price decided again there, it would be 0.0900
            doc["tariffs"].append({"customer": cid, "prefix": "55", "value": "0.0900",
                                   "connection": FALLBACK[name]})
    return doc


@dataclass
class Gateway:
    base: str
    database_url: str
    upstream: FakeUpstream
    flaky_port: int
    errors: ErrorLog

    def sql(self, query: str, **params: Any) -> list[Any]:
        engine = create_engine(migrate.sqlalchemy_url(self.database_url))
        try:
            with engine.connect() as conn:
                return list(conn.execute(text(query), params).all())
        finally:
            engine.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gw(request: pytest.FixtureRequest) -> Iterator[Gateway]:
    url = module_database(request, "engine-faults")
    flaky_port, dead_port = pick_free_port(), pick_free_port()
    with fake_upstream() as upstream:
        provision(url, engine_doc(upstream.url, f"http://127.0.0.1:{flaky_port}", f"http://127.0.0.1:{dead_port}"))
        with serve(url, reconcile_every=0.3) as (host, port, errors):
            yield Gateway(f"http://{host}:{port}", url, upstream, flaky_port, errors)


@pytest.fixture(autouse=True)
def clean(gw: Gateway) -> Iterator[None]:
    gw.errors.take()
    gw.upstream.reset()
    yield
    gw.upstream.reset()
    assert gw.errors.take() == [], "the server logged an error"


@pytest.fixture
async def client(gw: Gateway) -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(local_addr=(fresh_ip(), 0), force_close=True)
    async with aiohttp.ClientSession(gw.base, connector=connector) as session:
        yield session


# -------------------------------------------------------------------------------- reading

DEST_OF: dict[str, Callable[[Received], str | None]] = {
    "kannel": lambda r: r.query.get("to"),
    "wavy": lambda r: (r.json or {}).get("destination"),
    "tww": lambda r: r.form.get("Celular"),
    "http": lambda r: (r.json or {}).get("to"),
}


def requests_for(upstream: FakeUpstream, kind: str, dest: str) -> list[Received]:
    return [r for r in upstream.received(kind) if DEST_OF[kind](r) == "55" + dest]


async def balances(client: aiohttp.ClientSession, name: str, suffix: str = "") -> tuple[int, int]:
    """(the shop's, its reseller's) balance in units, through GetBalance."""
    out = []
    for t in (token(name, suffix), reseller_token(name)):
        ret = expect(await post_form(client, "/api/v2/GetBalance.php", {"tsid": t}), 0)
        out.append(int(Decimal(ret["balance"]) * 10_000))
    return out[0], out[1]


async def send(client: aiohttp.ClientSession, name: str, suffix: str, dest: str) -> dict[str, Any]:
    answer = await post_form(client, "/api/v2/MakeSMS.php", {"tsid": token(name, suffix), "dest": dest,
                                                              "message": "engine"})
    ret = envelope_of(answer)
    assert ret["cdls_id"] != "0", ret
    return ret


async def row(client: aiohttp.ClientSession, tok: str, cdls_id: str) -> dict[str, Any]:
    answer = await call(client, "GET", "/api/v2/GetSMSStatus.php", query=f"tsid={tok}&cdls_id={cdls_id}")
    envelope_of(answer)
    messages = json.loads(answer.body)["messages"]
    assert len(messages) == 1, messages
    found: dict[str, Any] = messages[0]
    return found


async def until(client: aiohttp.ClientSession, tok: str, cdls_id: str, done: Callable[[dict[str, Any]], bool],
                timeout: float) -> dict[str, Any]:
    """The log row once `done` holds (or the last one read at the deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        found = await row(client, tok, cdls_id)
        if done(found) or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.05)


async def wait_for(check: Callable[[], bool], timeout: float) -> None:
    """Poll until `check()`."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def ledger_balanced(gw: Gateway) -> None:
    rows = gw.sql("SELECT c.id, c.balance, COALESCE((SELECT SUM(amount) FROM ledger l WHERE l.customer_id = c.id), 0) "
                  "FROM customers c")
    for cid, balance, ledger in rows:
        assert balance == ledger, f"customer {cid}: balance {balance} != ledger {ledger}"


# -------------------------------------------------------------------------------- the cases

RETRY_AFTER = 2  # seconds; the engine's own first backoff is 0.5 s


async def retry_after(gw: Gateway, client: aiohttp.ClientSession, name: str) -> None:
    kind = KIND[name]
    gw.upstream.behave(kind, mode="custom", status=429, body='{"error": "slow down"}',
                       headers={"Retry-After": str(RETRY_AFTER)})
    before = await balances(client, name)
    dest = fresh_dest()
    ret = await send(client, name, "", dest)
    assert (ret["status_code"], ret["status"]) == ("1", "WR"), (name, ret)
    await wait_for(lambda: len(requests_for(gw.upstream, kind, dest)) >= 1, 5)
    gw.upstream.behave(kind, mode="ok")
    await wait_for(lambda: len(requests_for(gw.upstream, kind, dest)) >= 2, RETRY_AFTER + 5)
    first, second = (r.at for r in requests_for(gw.upstream, kind, dest)[:2])
    assert RETRY_AFTER <= second - first < RETRY_AFTER + 1.5, f"{name}: retried after {second - first:.2f} s"
    found = await until(client, token(name), ret["cdls_id"], lambda r: r["status_code"] != "1", 5)
    assert (found["status_code"], found["delivery"]) == ("0", "pending"), (name, found)
    await asyncio.sleep(0.3)  # nothing more comes
    assert [r.outcome for r in requests_for(gw.upstream, kind, dest)] == ["custom", "ok"], name
    assert await balances(client, name) == (before[0] - PRICE, before[1] - RESELLER_PRICE), name


async def test_429_with_retry_after_waits_as_asked_then_sends_once(gw: Gateway, client: aiohttp.ClientSession) -> None:
    await asyncio.gather(*(retry_after(gw, client, name) for name in KIND))
    ledger_balanced(gw)


async def test_a_provider_refusing_connections_for_a_while_gets_each_message_once(
    gw: Gateway, client: aiohttp.ClientSession
) -> None:
    before = {name: await balances(client, name, "-flaky") for name in KIND}
    dests = {name: [fresh_dest() for _ in range(3)] for name in KIND}
    sent = await asyncio.gather(*(send(client, n, "-flaky", d) for n in KIND for d in dests[n]))
    assert {(r["status_code"], r["status"]) for r in sent} == {("1", "WR")}  # nothing listens: not sent
    for name in KIND:
        assert await balances(client, name, "-flaky") == (before[name][0] - 3 * PRICE, before[name][1] - 3 * RESELLER_PRICE)
    await asyncio.sleep(1.0)
    back = FakeUpstream(port=gw.flaky_port)  # the provider comes back on the same port
    back.start_in_thread()
    try:
        for name, r in zip([n for n in KIND for _ in range(3)], sent, strict=True):
            found = await until(client, token(name, "-flaky"), r["cdls_id"], lambda x: x["status_code"] != "1", 20)
            assert (found["status_code"], found["status"]) == ("0", "OK"), (name, found)
        await asyncio.sleep(0.3)
        for name in KIND:
            for d in dests[name]:
                assert [x.outcome for x in requests_for(back, KIND[name], d)] == ["ok"], (name, d)
            assert await balances(client, name, "-flaky") == (before[name][0] - 3 * PRICE,
                                                              before[name][1] - 3 * RESELLER_PRICE), name
    finally:
        back.stop_thread()
    ledger_balanced(gw)


async def test_an_answer_after_final_timeout_is_never_resent_and_settled_by_evidence(
    gw: Gateway, client: aiohttp.ClientSession
) -> None:
    for name in KIND:
        gw.upstream.behave(KIND[name], mode="ok", delay=FINAL + 0.4)
    before = {name: await balances(client, name) for name in KIND}
    dests = {name: fresh_dest() for name in KIND}
    sent = dict(zip(KIND, await asyncio.gather(*(send(client, n, "", dests[n]) for n in KIND)), strict=True))
    assert {(r["status_code"], r["status"]) for r in sent.values()} == {("1", "WR")}
    await asyncio.sleep(FINAL + 0.6)  # Pombo gave up waiting; the provider took every one
    for name in KIND:
        found = await row(client, token(name), sent[name]["cdls_id"])
        assert (found["status_code"], found["delivery"]) == ("1", "pending"), (name, found)  # unknown: WR, charged
    # Kannel's report of the same message: the provider took it, so it is OK (SPEC §8, §11)
    (request,) = requests_for(gw.upstream, "kannel", dests["velip"])
    report = urlsplit(request.query["dlr-url"].replace("%d", "1").replace("%A", "id:1+stat:DELIVRD+err:000"))
    async with client.get(f"{report.path}?{report.query}") as resp:  # at this gateway (no public URL set)
        assert resp.status == 200, await resp.text()
    # Wavy and TWW: the status query after final_timeout (+5 s) finds it; http has no evidence
    settled = {
        name: await until(client, token(name), sent[name]["cdls_id"],
                          lambda r: r["status_code"] != "1" or r["delivery"] == "unknown", 15)
        for name in KIND
    }
    assert (settled["velip"]["status_code"], settled["velip"]["delivery"]) == ("0", "delivered"), settled
    assert settled["wavy"]["status_code"] == "0" and settled["tww"]["status_code"] == "0", settled
    assert (settled["matrix"]["status_code"], settled["matrix"]["delivery"]) == ("1", "unknown"), settled
    for name in KIND:
        assert len(requests_for(gw.upstream, KIND[name], dests[name])) == 1, name  # never sent again
        assert await balances(client, name) == (before[name][0] - PRICE, before[name][1] - RESELLER_PRICE), name
    ledger_balanced(gw)


async def test_a_refused_head_is_skipped_and_its_fallback_of_another_kind_takes_each_message_once(
    gw: Gateway, client: aiohttp.ClientSession
) -> None:
    n = 6  # the first 5 "not sent" in a row skip the head
    before = {name: await balances(client, name, "-head") for name in KIND}
    dests = {name: [fresh_dest() for _ in range(n)] for name in KIND}
    order = [name for name in KIND for _ in range(n)]
    sent = await asyncio.gather(*(send(client, name, "-head", d) for name in KIND for d in dests[name]))
    for name, r in zip(order, sent, strict=True):
        found = await until(client, token(name, "-head"), r["cdls_id"], lambda x: x["status_code"] != "1", 15)
        assert (found["status_code"], found["status"]) == ("0", "OK"), (name, found)
    await asyncio.sleep(0.3)
    for name in KIND:
        fallback = FALLBACK[name]
        for d in dests[name]:
            assert [x.outcome for x in requests_for(gw.upstream, KIND[fallback], d)] == ["ok"], (name, d)
        assert await balances(client, name, "-head") == (before[name][0] - n * PRICE,
                                                         before[name][1] - n * RESELLER_PRICE), name
    ids = [int(r["cdls_id"]) for r in sent]
    logged = {mid: (conn, cost, value) for mid, conn, cost, value in gw.sql(
        f"SELECT id, connection, cost, value FROM messages WHERE id IN ({','.join(map(str, ids))})")}
    for name, mid in zip(order, ids, strict=True):
        fallback = FALLBACK[name]
        # the log names the connection that took it and its cost; the price is the head's
        assert logged[mid] == (fallback, int(Decimal(COST[fallback]) * 10_000), PRICE), (name, logged[mid])
    async with client.get("/healthz") as resp:
        health = (await resp.json())["connections"]
    for name in KIND:
        head = health[name + "-head"]
        assert (head["state"], head["fallback"], head["queue"]) == ("skipped", [FALLBACK[name]], 0), (name, head)
        assert head["outcomes"]["not_sent"] >= 5, (name, head)
    ledger_balanced(gw)
