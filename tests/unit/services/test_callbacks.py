"""CallbackSender over the memory store's outbox, posting to a receiver on 127.0.0.1: order per
message, payload shape, retries with backoff, giving up after max_tries."""

from __future__ import annotations

import asyncio
import base64
import html
import socket
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from aiohttp import web

from pombo.domain import codes
from pombo.domain.delivery import StatusReport, kannel_state
from pombo.services.auth import Credentials
from pombo.services.urlguard import UrlGuard
from tests.unit.services.conftest import (
    DEST,
    IP,
    TOKEN,
    Outcome,
    World,
    WorldMaker,
    base_document,
    connection,
    customer,
)

PAYLOAD_KEYS = {"cdls_id", "ctid", "dest", "text", "status", "status_code", "connection", "upstream_id", "value",
                "segments", "encoding", "delivery", "created_at", "sent_at", "final_at", "cp_id", "cd_id", "from",
                "return_log", "event_id", "occurred_at", "text_received"}


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


# ------------------------------------------------------------------ issue 16: where pushes go, what they carry

STRICT = UrlGuard()  # production's default: no private range allowed


@pytest.mark.parametrize(
    "rurl",
    ["http://127.0.0.1:9163/internal/admin", "http://[::1]/x", "http://169.254.169.254/latest/meta-data",
     "http://10.0.0.5/hook", "http://192.168.1.1/", "http://localhost:8080/", "http://[::ffff:127.0.0.1]/",
     "http://[fd00:ec2::254]/", "http://0.0.0.0/", "ftp://example.com/x", "file:///etc/passwd", "http:///x"],
)
async def test_a_rurl_to_an_internal_address_is_refused_at_make_sms(worlds: WorldMaker, rurl: str) -> None:
    world = await worlds(guard=STRICT)
    before = await world.balance(11)
    result = await world.send(rurl=rurl)
    assert (result.code, result.status, result.cdls_id) == (400, "rurl not allowed", 0)
    assert await world.balance(11) == before and not world.store.t.messages  # nothing written or charged


async def test_an_unresolvable_rurl_is_accepted_and_checked_when_pushed(worlds: WorldMaker) -> None:
    world = await worlds(guard=STRICT)
    result = await world.send(rurl="http://no-such-host.invalid/cb")
    assert result.code == codes.OK
    assert await world.callbacks.run_once() == 1
    event = next(iter(world.store.t.callbacks.values()))
    assert event["state"] == "pending" and event["attempts"] == 1


async def test_a_configured_callback_to_loopback_is_refused_at_connect_time(
    worlds: WorldMaker, receiver: Receiver
) -> None:
    doc = base_document()
    customer(doc, 11)["callback"] = {"url": receiver.url.replace("127.0.0.1", "localhost")}
    customer(doc, 20)["callback"] = {"url": receiver.url}
    world = await worlds(doc, guard=STRICT)
    await world.send()
    await world.send(token="other-token-001")
    assert await world.callbacks.run_once() == 2
    assert receiver.requests == []
    errors = sorted(e["last_error"] for e in world.store.t.callbacks.values())
    assert all("not allowed" in e for e in errors), errors


async def test_dns_rebinding_does_not_pass(worlds: WorldMaker, receiver: Receiver,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The name resolves to a public address when MakeSMS checks it, to loopback when the push
    connects: the push is refused (the address connected to is the address checked)."""
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo
    answers = iter(["93.184.216.34"])

    async def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "rebind.example":
            address = next(answers, "127.0.0.1")
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port or 0))]
        return await real(host, port, *args, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", rebinding)
    world = await worlds(guard=STRICT)
    port = receiver.url.split(":")[2].split("/")[0]
    result = await world.send(rurl=f"http://rebind.example:{port}/cb")
    assert result.code == codes.OK  # the request-time check saw a public address
    assert await world.callbacks.run_once() == 1
    assert receiver.requests == []
    event = next(iter(world.store.t.callbacks.values()))
    assert "not allowed" in event["last_error"], event["last_error"]


async def test_a_rurl_never_gets_the_customers_credentials_or_headers(
    worlds: WorldMaker, receiver: Receiver
) -> None:
    world = await world_calling(worlds, receiver, username="me", password="pw", headers={"X-Api-Key": "k1"})
    await world.send(rurl=receiver.url + "?per=message")
    await world.send(dest="11987654322")  # to the configured URL
    assert await world.callbacks.run_once() == 2
    by_query = {bool(r["query"]): r["headers"] for r in receiver.requests}
    assert "Authorization" not in by_query[True] and "X-Api-Key" not in by_query[True]
    assert by_query[False]["Authorization"] == "Basic " + base64.b64encode(b"me:pw").decode()
    assert by_query[False]["X-Api-Key"] == "k1"


ECHO_SECRET = "velip-dlr-secret-9"


def _echo_page() -> str:
    """An upstream error page that echoes the whole Kannel request it got."""
    dlr = f"http://127.0.0.1:8000/dlr/kannel/{ECHO_SECRET}?id=1&type=%d"
    query = f"username=kuser&password=kp%40ss%2Bw0rd&to=5511987654321&dlr-url={quote(dlr, safe='')}"
    return (f"<html><body><h1>500 Internal Error</h1><p>GET /cgi-bin/sendsms?{html.escape(query)}</p>"
            f"<pre>{{\"url\": \"{dlr.replace('/', chr(92) + '/')}\", \"auth\": \"a3VzZXI6a3BAc3MrdzByZA==\"}}</pre>"
            f"</body></html>")


async def test_an_echoed_upstream_request_never_reaches_the_customer(worlds: WorldMaker, receiver: Receiver) -> None:
    doc = base_document()
    connection(doc, "kannel").update(username="kuser", password="kp@ss+w0rd", dlr_secret=ECHO_SECRET)
    customer(doc, 11).update(callback={"url": receiver.url}, sms_provider="kannel")
    world = await worlds(doc)
    world.upstream.script("kannel", Outcome("reject", raw=_echo_page()))
    sent = await world.send()
    assert sent.code == codes.PROVIDER_ERROR
    answer = await world.status(params={"cdls_id": str(sent.cdls_id)}, creds=Credentials(TOKEN, None, IP))
    assert not isinstance(answer, codes.Rejection)
    [row] = answer[1]
    await world.callbacks.run_once()
    for text in (row["return_log"], receiver.json(0)["return_log"], receiver.requests[0]["body"].decode()):
        for leak in ("kp@ss", "kp%40ss", "w0rd", ECHO_SECRET, "%2Fdlr%2F", "kuser",
                     "a3VzZXI6a3BAc3MrdzByZA", "/dlr/kannel"):
            assert leak not in text, (leak, text)
    assert "500 Internal Error" in row["return_log"]  # the provider's words stay, its secrets go


# ------------------------------------------------------------------ issue 16: fair across customers


@pytest.fixture
async def stall() -> AsyncIterator[dict[str, Any]]:
    """An endpoint on loopback that accepts connections and never answers."""
    hanging: list[int] = []
    forever = asyncio.Event()

    async def handle(request: web.Request) -> web.Response:
        hanging.append(1)
        await forever.wait()
        return web.Response()

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield {"url": f"http://127.0.0.1:{runner.addresses[0][1]}/stall", "hanging": hanging}
    finally:
        forever.set()
        await runner.cleanup()


async def test_a_stalled_customer_holds_only_its_own_slots(
    worlds: WorldMaker, receiver: Receiver, stall: dict[str, Any]
) -> None:
    world = await worlds()
    for i in range(12):
        assert (await world.send(dest=f"119876500{i:02d}", rurl=stall["url"])).code == codes.OK
    other = await world.send(token="other-token-001", rurl=receiver.url)
    started = asyncio.get_running_loop().time()
    tasks = await world.callbacks.pump()  # returns at once: nothing waits for the pushes
    assert asyncio.get_running_loop().time() - started < 0.5
    assert len(tasks) == 13
    while not receiver.requests:
        assert asyncio.get_running_loop().time() - started < 1.5, "the other customer's push waited"
        await asyncio.sleep(0.01)
    assert receiver.json(0)["cdls_id"] == str(other.cdls_id)
    await asyncio.sleep(0.2)
    assert len(stall["hanging"]) == 4  # the stalled customer's own 4 slots, no more
    assert await world.callbacks.pump() == []  # the loop keeps claiming: nothing else is due


async def test_an_endpoint_that_does_not_answer_is_left_alone_without_counting_tries(
    worlds: WorldMaker,
) -> None:
    doc = base_document()
    customer(doc, 11)["callback"] = {"url": "http://127.0.0.1:9/nobody"}  # discard port: refused
    world = await worlds(doc)
    await world.send()
    assert await world.callbacks.run_once() == 1  # refused: the endpoint is paused for 1 s
    await world.send(dest="11987654322")
    assert await world.callbacks.run_once() == 0  # the new event waits, untried
    events = sorted(world.store.t.callbacks.values(), key=lambda e: e["id"])
    assert [e["attempts"] for e in events] == [1, 0]
    world.clock.advance(10)  # past the pause and the untried event's lease
    assert await world.callbacks.run_once() == 2
    assert [e["attempts"] for e in events] == [2, 1]
