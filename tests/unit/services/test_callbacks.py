"""CallbackSender over the memory store's outbox, posting to a receiver on 127.0.0.1: order per
message, payload shape, retries with backoff, giving up after max_tries."""

from __future__ import annotations

import base64
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web

from pombo.domain import codes
from pombo.domain.delivery import StatusReport, kannel_state
from tests.unit.services.conftest import DEST, Outcome, World, WorldMaker, base_document, customer

PAYLOAD_KEYS = {"cdls_id", "ctid", "dest", "text", "status", "status_code", "connection", "upstream_id", "value",
                "segments", "encoding", "delivery", "created_at", "sent_at", "final_at", "cp_id", "cd_id", "from",
                "return_log", "event_id", "occurred_at"}


@dataclass
class Receiver:
    """A customer's endpoint on loopback: records every request, answers the scripted statuses."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    statuses: deque[int] = field(default_factory=deque)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append({"method": request.method, "path": request.path, "headers": dict(request.headers),
                              "query": dict(request.query), "body": body})
        return web.Response(status=self.statuses.popleft() if self.statuses else 200, text="ok")

    def json(self, i: int) -> dict[str, Any]:
        parsed: dict[str, Any] = orjson.loads(self.requests[i]["body"])
        return parsed


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", rec.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    rec.url = f"http://127.0.0.1:{port}/cb"
    try:
        yield rec
    finally:
        await runner.cleanup()


async def world_calling(worlds: WorldMaker, receiver: Receiver, **callback: Any) -> World:
    doc = base_document()
    customer(doc, 11)["callback"] = {"url": receiver.url, **callback}
    world: World = await worlds(doc)
    return world


async def test_payload_is_the_message_at_the_event_with_its_id(worlds: WorldMaker, receiver: Receiver) -> None:
    world = await world_calling(worlds, receiver)
    result = await world.send(ctid="c-7", message="olá")
    assert await world.callbacks.run_once() == 1
    [request] = receiver.requests
    assert (request["method"], request["path"]) == ("POST", "/cb")
    assert request["headers"]["Content-Type"] == "application/json"
    body = receiver.json(0)
    assert set(body) == PAYLOAD_KEYS
    assert (body["cdls_id"], body["ctid"], body["text"], body["status"], body["status_code"], body["delivery"]) == (
        str(result.cdls_id), "c-7", "olá", "OK", "0", "pending")
    assert (body["value"], body["encoding"], body["created_at"]) == ("0.0500", "UCS-2", "2024-06-03T12:00:00-03:00")
    assert body["occurred_at"] == "2024-06-03T12:00:00-03:00" and body["event_id"]
    event = next(iter(world.store.t.callbacks.values()))
    assert (event["state"], event["attempts"]) == ("done", 1)
    assert await world.callbacks.run_once() == 0


async def test_events_go_in_order_per_message_one_at_a_time(worlds: WorldMaker, receiver: Receiver) -> None:
    world = await world_calling(worlds, receiver)
    first = (await world.send()).cdls_id
    second = (await world.send(dest="11987654322")).cdls_id
    for typ in ("8", "1"):
        world.clock.advance(1)
        await world.dlr.apply("velip", [_report(first, typ)])
    assert await world.callbacks.run_once() == 2  # the oldest event of each message
    assert await world.callbacks.run_once() == 1
    assert await world.callbacks.run_once() == 1
    assert await world.callbacks.run_once() == 0
    mine = [receiver.json(i) for i in range(4) if receiver.json(i)["cdls_id"] == str(first)]
    assert [m["delivery"] for m in mine] == ["pending", "sent", "delivered"]
    assert len({m["event_id"] for m in mine}) == 3
    assert [m["occurred_at"][-15:] for m in mine] == ["T12:00:00-03:00", "T12:00:01-03:00", "T12:00:02-03:00"]
    assert {receiver.json(i)["cdls_id"] for i in range(4)} == {str(first), str(second)}


def _report(message_id: int, typ: str) -> StatusReport:
    state = kannel_state(typ)
    assert state is not None
    return StatusReport(message_id, None, (state,), raw=f"type={typ}")


async def test_a_300_outcome_is_announced_as_rejected(worlds: WorldMaker, receiver: Receiver) -> None:
    world = await world_calling(worlds, receiver)
    world.upstream.script("velip", Outcome("reject", raw="NOK"))
    await world.send()
    await world.callbacks.run_once()
    body = receiver.json(0)
    assert (body["status"], body["status_code"], body["delivery"], body["return_log"]) == (
        "error sms provider", "300", "rejected", "NOK")


async def test_failures_back_off_then_give_up_and_the_next_event_goes(
    worlds: WorldMaker, receiver: Receiver
) -> None:
    world = await world_calling(worlds, receiver)  # max_tries=3, base_delay=2 in make_world
    message_id = (await world.send()).cdls_id
    world.clock.advance(1)
    await world.dlr.apply("velip", [_report(message_id, "1")])
    receiver.statuses.extend([500, 503, 404])
    first, later = sorted(world.store.t.callbacks)
    assert await world.callbacks.run_once() == 1
    event = world.store.t.callbacks[first]
    assert (event["state"], event["attempts"], event["last_error"]) == ("pending", 1, "HTTP 500")
    assert 1.6 <= event["next_at"] - world.clock.now() <= 2.4  # base 2 s, jitter +-20 %
    assert await world.callbacks.run_once() == 0  # not due yet, and the later event waits behind it
    world.clock.advance(2.5)
    assert await world.callbacks.run_once() == 1
    assert 3.2 <= event["next_at"] - world.clock.now() <= 4.8  # doubled
    world.clock.advance(5)
    assert await world.callbacks.run_once() == 1
    assert (event["state"], event["attempts"], event["last_error"]) == ("failed", 3, "HTTP 404")
    assert await world.callbacks.run_once() == 1  # the next event of the message now goes
    assert world.store.t.callbacks[later]["state"] == "done"
    assert [receiver.json(i)["delivery"] for i in range(4)] == ["pending"] * 3 + ["delivered"]


async def test_an_endpoint_that_does_not_answer_is_an_error(worlds: WorldMaker) -> None:
    doc = base_document()
    customer(doc, 11)["callback"] = {"url": "http://127.0.0.1:9/nobody"}  # discard port: refused
    world = await worlds(doc)
    await world.send()
    assert await world.callbacks.run_once() == 1
    event = next(iter(world.store.t.callbacks.values()))
    assert event["state"] == "pending" and event["last_error"].startswith("ClientConnectorError")


async def test_basic_auth_headers_and_form_format(worlds: WorldMaker, receiver: Receiver) -> None:
    world = await world_calling(worlds, receiver, format="form", username="me", password="pw",
                                headers={"X-Key": "k1"})
    await world.send()
    await world.callbacks.run_once()
    request = receiver.requests[0]
    assert request["headers"]["Authorization"] == "Basic " + base64.b64encode(b"me:pw").decode()
    assert request["headers"]["X-Key"] == "k1"
    assert request["headers"]["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert b"status_code=0" in request["body"] and b"upstream_id=up-1" in request["body"]
    assert b"final_at=&" in request["body"]  # None goes as an empty field


async def test_get_puts_the_fields_in_the_query(worlds: WorldMaker, receiver: Receiver) -> None:
    world = await world_calling(worlds, receiver, method="GET")
    await world.send()
    await world.callbacks.run_once()
    request = receiver.requests[0]
    assert request["method"] == "GET" and request["body"] == b""
    assert (request["query"]["status"], request["query"]["dest"]) == ("OK", "55" + DEST)


async def test_rurl_gets_events_even_without_a_customer_callback(world: World, receiver: Receiver) -> None:
    await world.send(rurl=receiver.url + "?mine=1")
    assert await world.callbacks.run_once() == 1
    assert receiver.requests[0]["query"] == {"mine": "1"} and receiver.json(0)["status_code"] == str(codes.OK)
