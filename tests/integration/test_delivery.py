"""Delivery truth (issue 3): reports in, WR reconciliation, customer callbacks, on both engines."""

from __future__ import annotations

import asyncio
import base64
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from pombo.bootstrap import Services
from pombo.ports import AcceptSpec
from pombo.services.dlr import Forbidden
from tests.fakes.upstream import FakeUpstream
from tests.integration.gateway import assert_ledger_balanced, open_gateway, provisioning, send


def doc(upstream_url: str, *, callback_url: str | None = None, **kw: Any) -> dict[str, Any]:
    base = provisioning(upstream_url, ack_timeout=0.5, final_timeout=1.0, **kw)
    for c in base["connections"]:
        c["dlr_secret"] = f"s3cret-{c['name']}"
    base["connections"][3]["dlr"] = {"id_field": "ref", "status_field": "st", "states": {"DELIVRD": "delivered", "UNDELIV": "undelivered"}}
    shop = base["customers"][1]
    if callback_url:
        shop["callback"] = {"url": callback_url, "method": "POST", "format": "json", "username": "hook", "password": "pw"}
    for i, name in enumerate(("wavy", "tww", "matrix")):
        base["customers"].append({**shop, "id": 20 + i, "name": name, "sms_provider": name, "tokens": [f"tok-{name}-0000000001"]})
        base["tariffs"].append({"customer": 20 + i, "prefix": "55", "value": "0.0800"})
    return base


@pytest.fixture
async def gw(database_url: str, upstream: FakeUpstream) -> AsyncIterator[Services]:
    services = await open_gateway(database_url, doc(upstream.url), not_found_after=0.0, background_jobs=False)
    try:
        yield services
    finally:
        await services.aclose()


async def delivery(services: Services, customer_id: int, message_id: int) -> str:
    row = await services.store.get_message(customer_id=customer_id, message_id=message_id)
    assert row is not None
    return str(row["delivery"])


async def test_kannel_reports_move_forward_only(gw: Services, upstream: FakeUpstream) -> None:
    sent = await send(gw, dest="11987650001", message="hi")
    assert sent.code == 0
    dlr_url = upstream.received("kannel")[0].query["dlr-url"]
    assert dlr_url.endswith(f"/dlr/velip/s3cret-velip?id={sent.cdls_id}&type=%d&answer=%A")

    async def report(kind: str, secret: str = "s3cret-velip") -> int:
        return await gw.dlr.receive(connection="velip", secret=secret, params={"id": str(sent.cdls_id), "type": kind}, body=b"")

    assert await report("4") == 0 and await delivery(gw, 11, sent.cdls_id) == "pending"
    assert await report("8") == 1 and await delivery(gw, 11, sent.cdls_id) == "sent"
    assert await report("1") == 1 and await delivery(gw, 11, sent.cdls_id) == "delivered"
    assert await report("8") == 0 and await report("2") == 0  # late and duplicate reports
    assert await delivery(gw, 11, sent.cdls_id) == "delivered"
    with pytest.raises(Forbidden):
        await report("16", secret="wrong")
    with pytest.raises(Forbidden):
        await gw.dlr.receive(connection="nope", secret="s3cret-velip", params={}, body=b"")
    row = await gw.store.get_message(customer_id=11, message_id=sent.cdls_id)
    assert row is not None and row["sent_at"] and row["final_at"]


async def test_wavy_callbacks_by_correlation_and_by_id(gw: Services, upstream: FakeUpstream) -> None:
    a = await send(gw, "tok-wavy-0000000001", dest="11987650002", message="hi")
    b = await send(gw, "tok-wavy-0000000001", dest="11987650003", message="hi")
    assert a.code == b.code == 0
    b_row = await gw.store.get_message(customer_id=20, message_id=b.cdls_id)
    assert b_row is not None and b_row["upstream_id"]
    body = f'[{{"correlationId": "{a.cdls_id}", "sentStatusCode": 2}}, {{"id": "{b_row["upstream_id"]}", "sentStatusCode": 2, "deliveredStatusCode": 104}}]'
    assert await gw.dlr.receive(connection="wavy", secret="s3cret-wavy", params={}, body=body.encode()) == 3
    assert await delivery(gw, 20, a.cdls_id) == "sent"
    assert await delivery(gw, 20, b.cdls_id) == "undelivered"
    late = f'{{"correlationId": "{a.cdls_id}", "deliveredStatusCode": 4}}'
    assert await gw.dlr.receive(connection="wavy", secret="s3cret-wavy", params={}, body=late.encode()) == 1
    assert await delivery(gw, 20, a.cdls_id) == "delivered"
    unknown = b'{"correlationId": "99999", "sentStatusCode": 2}'
    assert await gw.dlr.receive(connection="wavy", secret="s3cret-wavy", params={}, body=unknown) == 0


async def test_http_template_dlr_mapping(gw: Services) -> None:
    sent = await send(gw, "tok-matrix-0000000001", dest="11987650004", message="hi")
    assert sent.code == 0
    moved = await gw.dlr.receive(connection="matrix", secret="s3cret-matrix", params={"ref": str(sent.cdls_id), "st": "DELIVRD"}, body=b"")
    assert moved == 1 and await delivery(gw, 22, sent.cdls_id) == "delivered"


async def test_tww_is_polled(gw: Services, upstream: FakeUpstream) -> None:
    sent = await send(gw, "tok-tww-0000000001", dest="11987650005", message="hi")
    assert sent.code == 0
    upstream.queue_tww_unread(str(sent.cdls_id), "OK")
    upstream.queue_tww_unread(str(sent.cdls_id), "CL")
    upstream.queue_tww_unread("424242", "CL")  # not ours: kept raw, changes nothing
    assert gw.reconciler is not None
    assert await gw.reconciler.poll() == 2
    assert await delivery(gw, 21, sent.cdls_id) == "delivered"
    assert await gw.reconciler.poll() == 0  # read once


async def orphan(services: Services, customer_id: int, connection: str, dest: str, age: float = 60.0) -> int:
    """A message accepted and charged whose process died before the upstream answered."""
    debits = [(customer_id, 800), (10, 500)]
    spec = AcceptSpec(
        customer_id=customer_id, user_id=None, dest=dest, text="hi", ctid=None, cp_id=None, cd_id=None,
        sender=None, connection=connection, httpdup=0, night_since=None, night_limit=None,
        debits=debits, cost=0, segments=1, encoding="GSM-7", now=time.time() - age,
    )
    message_id = await services.store.accept(spec)
    assert isinstance(message_id, int)
    return message_id


async def test_orphans_are_reconciled_through_the_provider(gw: Services, upstream: FakeUpstream) -> None:
    assert gw.reconciler is not None
    known = await orphan(gw, 20, "wavy", "5511987650010")
    upstream.set_wavy_status(str(known), id="w-1", sentStatusCode=2, deliveredStatusCode=4)
    refused = await orphan(gw, 20, "wavy", "5511987650011")
    upstream.set_wavy_status(str(refused), id="w-2", sentStatusCode=201)
    lost = await orphan(gw, 20, "wavy", "5511987650012")  # never reached Wavy
    tww = await orphan(gw, 21, "tww", "5511987650013")
    upstream.set_tww_status(str(tww), "CL")
    kannel = await orphan(gw, 11, "velip", "5511987650014")
    fresh = await orphan(gw, 11, "velip", "5511987650015", age=0.0)  # a live process may still settle it
    balance_before = (await gw.store.balance(customer_id=20))[0]

    counts = await gw.reconciler.run_once()
    assert counts == {"ok": 2, "failed": 2, "unknown": 1, "later": 0}
    rows = {m: await gw.store.get_message(customer_id=c, message_id=m) for c, m in ((20, known), (20, refused), (20, lost), (21, tww), (11, kannel), (11, fresh))}
    assert (rows[known]["status_code"], rows[known]["delivery"], rows[known]["upstream_id"]) == (0, "delivered", "w-1")
    assert (rows[refused]["status_code"], rows[refused]["delivery"]) == (300, "rejected")
    assert (rows[lost]["status_code"], rows[lost]["delivery"]) == (300, "rejected")
    assert (rows[tww]["status_code"], rows[tww]["delivery"]) == (0, "delivered")
    assert (rows[kannel]["status_code"], rows[kannel]["delivery"]) == (1, "unknown")
    assert (rows[fresh]["status_code"], rows[fresh]["delivery"]) == (1, "pending")
    assert (await gw.store.balance(customer_id=20))[0] == balance_before + 1600  # two refunds, once each
    assert upstream.received("wavy") == [] and upstream.received("kannel") == []  # never resent
    assert await gw.reconciler.run_once() == {"ok": 0, "failed": 0, "unknown": 0, "later": 0}
    await assert_ledger_balanced(gw)


async def test_two_reconcilers_never_settle_one_message_twice(gw: Services, upstream: FakeUpstream) -> None:
    assert gw.reconciler is not None
    ids = [await orphan(gw, 20, "wavy", f"55119876501{i:02d}") for i in range(10)]
    for i in ids[::2]:
        upstream.set_wavy_status(str(i), id=f"w-{i}", sentStatusCode=2)
    from pombo.services.reconcile import Reconciler  # a second process's reconciler

    twin = Reconciler(store=gw.store, connection_for=gw.dispatcher.connection, reports=gw.dlr, clock=gw.make_sms._clock, not_found_after=0.0)  # type: ignore[attr-defined]
    first, second = await asyncio.gather(gw.reconciler.run_once(), twin.run_once())
    assert first["ok"] + second["ok"] == 5 and first["failed"] + second["failed"] == 5
    assert len(upstream.received("wavy-status")) == 10  # each asked once
    await assert_ledger_balanced(gw)


LOOPBACK = ["127.0.0.0/8"]  # the hooks listen on loopback, which production refuses


class Hook:
    """A customer's callback endpoint that fails `failures` times, then accepts."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.got: list[dict[str, Any]] = []
        self.auth: list[str] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        if self.failures > 0:
            self.failures -= 1
            return web.Response(status=503)
        self.got.append(await request.json())
        self.auth.append(request.headers.get("Authorization", ""))
        return web.Response(text="ok")

    async def __aenter__(self) -> Hook:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/hook"
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


async def test_callbacks_survive_failures_in_order(database_url: str, upstream: FakeUpstream) -> None:
    async with Hook(failures=3) as hook:
        services = await open_gateway(
            database_url, doc(upstream.url, callback_url=hook.url), callback_base_delay=0.05, background_jobs=False,
            callback_allow=LOOPBACK,
        )
        try:
            sent = await send(services, dest="11987650030", message="hi")
            assert sent.code == 0
            for kind in ("8", "1"):
                await services.dlr.receive(connection="velip", secret="s3cret-velip", params={"id": str(sent.cdls_id), "type": kind}, body=b"")
            assert services.callbacks is not None
            for _ in range(60):  # the sender's loop is off: drive it by hand, as the timer would
                await services.callbacks.run_once()
                if len(hook.got) == 3:
                    break
                await asyncio.sleep(0.05)
        finally:
            await services.aclose()
    states = [(e["status_code"], e["delivery"]) for e in hook.got]
    assert states == [("0", "pending"), ("0", "sent"), ("0", "delivered")]
    assert len({e["event_id"] for e in hook.got}) == 3
    # the first event comes from PostgreSQL's pombo_write, the others from the store: one shape
    assert all(re.fullmatch(r"[0-9a-f]{32}", e["event_id"]) for e in hook.got)
    assert all(e["cdls_id"] == str(sent.cdls_id) for e in hook.got)
    assert hook.auth[0].startswith("Basic ")


async def test_callback_retries_live_in_the_database(database_url: str, upstream: FakeUpstream) -> None:
    async with Hook(failures=1) as hook:
        services = await open_gateway(
            database_url, doc(upstream.url, callback_url=hook.url), callback_base_delay=0.05, background_jobs=False,
            callback_allow=LOOPBACK,
        )
        sent = await send(services, dest="11987650031", message="hi", rurl=hook.url + "?per=message")
        assert services.callbacks is not None
        assert await services.callbacks.run_once() == 1  # fails once: kept, with its attempt
        await services.aclose()
        restarted = await open_gateway(database_url, doc(upstream.url, callback_url=hook.url), background_jobs=False,
                                       callback_allow=LOOPBACK)
        try:
            assert restarted.callbacks is not None
            await asyncio.sleep(0.1)
            assert await restarted.callbacks.run_once() == 1
        finally:
            await restarted.aclose()
    assert [e["cdls_id"] for e in hook.got] == [str(sent.cdls_id)]


async def test_a_rurl_gets_the_events_but_never_the_customers_credentials(
    database_url: str, upstream: FakeUpstream
) -> None:
    """Issue 16: the provisioned callback's username and password go only to its own URL."""
    async with Hook(failures=0) as own, Hook(failures=0) as elsewhere:
        services = await open_gateway(
            database_url, doc(upstream.url, callback_url=own.url), background_jobs=False, callback_allow=LOOPBACK
        )
        try:
            await send(services, dest="11987650032", message="to mine")
            await send(services, dest="11987650033", message="to the rurl", rurl=elsewhere.url + "?per=message")
            assert services.callbacks is not None
            assert await services.callbacks.run_once() == 2
        finally:
            await services.aclose()
    assert own.auth == ["Basic " + base64.b64encode(b"hook:pw").decode()]
    assert elsewhere.auth == [""] and len(elsewhere.got) == 1
