"""SPEC §11's three outcome kinds, for every HTTP kind, against misbehaving fakes on loopback.

Each fake behaviour of a real provider (a rate cap, 503 with Retry-After, a port that refuses
for a while, an answer after final_timeout, a reset after reading, a truncated answer, idle
keep-alive sockets closed) must come back as the right exception type, and the fake must have
received each message at most once: nothing here is ever sent twice.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from pombo.adapters.connections import build_connection, httpclient
from pombo.adapters.connections.base import HttpConnection, retry_after_seconds
from pombo.domain.model import ConnectionConfig
from pombo.ports import Connection, NotSent, OutcomeUnknown, UpstreamRejected, UpstreamTimeout
from tests.fakes.keepalive import IdleClosingUpstream
from tests.fakes.upstream import FakeUpstream, Received
from tests.integration.test_connections import CREDENTIALS, PUBLIC_URL, sms

KINDS = ["wavy", "tww", "kannel", "http"]
SECRETS = ("s3", "p@ss", "p%40ss", "tok-")

Make = Callable[..., Connection]


def id_of(received: Received) -> int:
    """The cdls_id a request carried, in the kind's own field."""
    if received.kind == "wavy":
        return int(received.json["correlationId"])
    if received.kind == "tww":
        return int(received.form["SeuNum"])
    if received.kind == "kannel":
        return int(received.query["dlr-url"].split("id=")[1].split("&")[0])
    return int(received.form["ref"])


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    fake = FakeUpstream()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def make() -> AsyncIterator[Make]:
    made: list[Connection] = []

    def factory(kind: str, url: str, **fields: Any) -> Connection:
        config = ConnectionConfig(name=f"{kind}1", kind=kind, url=url, **{**CREDENTIALS[kind], **fields})
        made.append(conn := build_connection(config, public_url=PUBLIC_URL))
        return conn

    yield factory
    for conn in made:
        await conn.close()


def opened(conn: Connection) -> int:
    """Sockets the connection opened so far."""
    assert isinstance(conn, HttpConnection)
    return sum(pool.opened for pool in conn._pools.values())


# -- not sent: "not now" ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("status", "retry_after", "seconds"),
    [(429, "7", 7.0), (503, "120", 120.0), (503, None, None), (429, "86400", 3600.0), (503, "soon", None)],
)
async def test_429_and_503_are_not_sent_with_retry_after(
    upstream: FakeUpstream, make: Make, kind: str, status: int, retry_after: str | None, seconds: float | None
) -> None:
    headers = {"Retry-After": retry_after} if retry_after else None
    upstream.behave(kind, mode="custom", status=status, body="slow down", headers=headers)
    with pytest.raises(NotSent) as err:
        await make(kind, upstream.url).send(sms())
    assert type(err.value) is NotSent
    assert err.value.retry_after == seconds
    assert err.value.raw == f"HTTP {status}: slow down"
    assert len(upstream.received(kind)) == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_503_with_an_http_date(upstream: FakeUpstream, make: Make, kind: str) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    upstream.behave(kind, mode="custom", status=503, body="", headers={"Retry-After": when})
    with pytest.raises(NotSent) as err:
        await make(kind, upstream.url).send(sms())
    assert err.value.retry_after is not None and 27 <= err.value.retry_after <= 30


def test_retry_after_forms() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC).timestamp()
    assert retry_after_seconds("Thu, 01 Jan 2026 12:00:42 GMT", now) == 42.0
    assert retry_after_seconds("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0.0  # in the past
    assert retry_after_seconds("Thu, 01 Jan 2026 12:00:42 -0000", now) == 42.0
    assert retry_after_seconds(" 5 ", now) == 5.0
    assert retry_after_seconds("99999999999999999999", now) == 3600.0
    for bad in (None, "", "-1", "1.5", "tomorrow", "٣"):
        assert retry_after_seconds(bad, now) is None


@pytest.mark.parametrize("kind", KINDS)
async def test_a_rate_capped_upstream_answers_429_above_its_cap(
    upstream: FakeUpstream, make: Make, kind: str
) -> None:
    upstream.limit_rate(5, retry_after="1")
    conn = make(kind, upstream.url)
    results = await asyncio.gather(*(conn.send(sms(id=i)) for i in range(12)), return_exceptions=True)
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(refused) == 7 and all(type(r) is NotSent and r.retry_after == 1.0 for r in refused), refused
    assert len(upstream.accepted(kind)) == 5
    assert sorted(id_of(r) for r in upstream.received(kind)) == list(range(12))  # each once


# -- not sent: nothing written ---------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_an_upstream_that_refuses_for_a_while_is_not_sent_then_takes_the_next(
    upstream: FakeUpstream, make: Make, kind: str
) -> None:
    conn = make(kind, upstream.url)
    await conn.send(sms(id=1))  # a keep-alive socket in the pool, which the outage closes
    await upstream.refuse_for(0.6)
    await asyncio.sleep(0.05)
    with pytest.raises(NotSent, match=r"^not sent") as err:
        await conn.send(sms(id=2))
    assert type(err.value) is NotSent and err.value.retry_after is None
    assert not any(s in err.value.raw for s in SECRETS)
    await asyncio.sleep(0.8)
    await conn.send(sms(id=3))
    assert [id_of(r) for r in upstream.received(kind)] == [1, 3]


@pytest.fixture
def full_backlog() -> Iterator[str]:
    """A port whose accept queue is full: a connect there is never answered (SYN dropped)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    for sock in [*fillers, server]:
        sock.close()


@pytest.mark.parametrize("kind", KINDS)
async def test_a_connect_timeout_is_not_sent(make: Make, full_backlog: str, kind: str) -> None:
    started = time.monotonic()
    with pytest.raises(NotSent, match=r"^not sent: connect timeout"):
        await make(kind, full_backlog, final_timeout=0.4).send(sms())
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize("kind", KINDS)
async def test_dns_and_tls_failures_are_not_sent(upstream: FakeUpstream, make: Make, kind: str) -> None:
    with pytest.raises(NotSent, match=r"^not sent"):
        await make(kind, "http://pombo-test.invalid", final_timeout=3).send(sms())
    tls = upstream.url.replace("http://", "https://")  # the fake speaks plain HTTP: no handshake
    with pytest.raises(NotSent, match=r"^not sent") as err:
        await make(kind, tls, final_timeout=3).send(sms())
    assert not any(s in err.value.raw for s in SECRETS)
    assert upstream.received(kind) == []


# -- unknown: written, no complete answer -----------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_an_answer_after_final_timeout_is_unknown_and_sent_once(
    upstream: FakeUpstream, make: Make, kind: str
) -> None:
    upstream.behave(kind, mode="ok", delay=0.6)
    with pytest.raises(UpstreamTimeout) as err:
        await make(kind, upstream.url, final_timeout=0.3).send(sms())
    assert isinstance(err.value, OutcomeUnknown) and err.value.raw == "no answer within 0.3s"
    await asyncio.sleep(0.4)
    assert len(upstream.accepted(kind)) == 1  # it did reach the provider: hence "unknown"


@pytest.mark.parametrize("kind", KINDS)
async def test_a_reset_after_reading_the_request_is_unknown(upstream: FakeUpstream, make: Make, kind: str) -> None:
    upstream.behave(kind, mode="reset")
    with pytest.raises(OutcomeUnknown, match=r"^no valid answer") as err:
        await make(kind, upstream.url).send(sms())
    assert type(err.value) is OutcomeUnknown
    assert not any(s in err.value.raw for s in SECRETS)
    assert len(upstream.received(kind)) == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_a_truncated_answer_is_unknown(make: Make, kind: str) -> None:
    async def truncated(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0: Accep")
        await writer.drain()
        writer.close()

    seen: list[bytes] = []
    server = await asyncio.start_server(truncated, "127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        with pytest.raises(OutcomeUnknown, match=r"^no valid answer: connection closed before"):
            await make(kind, url).send(sms())
        assert len(seen) == 1
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("kind", KINDS)
async def test_hard_errors_stay_rejected(upstream: FakeUpstream, make: Make, kind: str) -> None:
    upstream.behave(kind, mode="error")
    with pytest.raises(UpstreamRejected) as err:
        await make(kind, upstream.url).send(sms())
    assert type(err.value) is UpstreamRejected


# -- stale keep-alive sockets -----------------------------------------------------------------


@pytest.fixture
async def idle_closing() -> AsyncIterator[IdleClosingUpstream]:
    fake = IdleClosingUpstream(idle_close=0.02)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.mark.parametrize("kind", KINDS)
async def test_stale_keepalive_sockets_never_fail_a_send(
    idle_closing: IdleClosingUpstream, make: Make, kind: str
) -> None:
    """The issue's case: 200 sends at 16 at once against an upstream closing sockets idle for
    20 ms, each client pausing about that long between sends."""
    conn = make(kind, idle_closing.url)
    ids = iter(range(200))
    failures: list[BaseException] = []
    rng = random.Random(11)

    async def worker() -> None:
        for i in ids:
            try:
                await conn.send(sms(id=i))
            except Exception as exc:
                failures.append(exc)
            await asyncio.sleep(rng.uniform(0.015, 0.025))

    await asyncio.gather(*(worker() for _ in range(16)))
    assert failures == [], f"{len(failures)} of 200 sends failed: {failures[:3]}"
    assert sorted(id_of(r) for r in idle_closing.fake.received(kind)) == list(range(200))
    assert idle_closing.idle_closed > 0 and opened(conn) < 200  # stale sockets and reuse both seen


async def test_a_socket_closed_while_idle_is_not_reused(idle_closing: IdleClosingUpstream, make: Make) -> None:
    conn = make("kannel", idle_closing.url)
    await conn.send(sms(id=1))
    idle_closing.close_idle_now()  # the FIN is in our kernel; our loop has not seen it yet
    await conn.send(sms(id=2))
    assert [id_of(r) for r in idle_closing.fake.received("kannel")] == [1, 2]
    assert opened(conn) == 2


async def test_a_write_refused_before_its_first_byte_goes_once_more_on_a_fresh_socket(
    idle_closing: IdleClosingUpstream, make: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reset arrives after the check: the write fails with not one byte out, so the client
    sends on a fresh socket, once."""
    monkeypatch.setattr(httpclient, "_gone", lambda conn: conn.closed)  # miss the reset
    conn = make("wavy", idle_closing.url)
    await conn.send(sms(id=1))
    idle_closing.close_idle_now(reset=True)
    await asyncio.sleep(0)  # the RST leaves; our loop has not read it yet
    await conn.send(sms(id=2))
    assert [id_of(r) for r in idle_closing.fake.received("wavy")] == [1, 2]
    assert opened(conn) == 2


async def test_a_request_written_to_a_closed_socket_is_unknown_and_never_resent(
    idle_closing: IdleClosingUpstream, make: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The FIN arrives after the check: the write succeeds locally, so the request may have
    gone out; it is unknown, and not tried again."""
    monkeypatch.setattr(httpclient, "_gone", lambda conn: conn.closed)
    conn = make("tww", idle_closing.url)
    await conn.send(sms(id=1))
    idle_closing.close_idle_now()
    with pytest.raises(OutcomeUnknown, match=r"^no valid answer"):
        await conn.send(sms(id=2))
    assert [id_of(r) for r in idle_closing.fake.received("tww")] == [1]
    assert opened(conn) == 1
