"""The send path's HTTP client (adapters/connections/httpclient.py): its limit of exchanges at
once, the line of callers waiting for a slot, and the answer's deadline, against a real server
on loopback that holds each answer until the test lets it go."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from pombo.adapters.connections.httpclient import AnswerTimeout, HttpPool, NothingSent


class GatedServer:
    """Answers `200 ok` to each request once `gate` is set; counts requests and the most it
    held at once."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.received = 0
        self.holding = 0
        self.most_held = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                self.received += 1
                self.holding += 1
                self.most_held = max(self.most_held, self.holding)
                try:
                    await self.gate.wait()
                finally:
                    self.holding -= 1
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()


@pytest.fixture
async def server() -> AsyncIterator[GatedServer]:
    srv = GatedServer()
    await srv.start()
    yield srv
    srv.gate.set()
    await srv.close()


async def _get(pool: HttpPool, timeout: float = 5.0) -> bytes:
    answer = await pool.request("GET", "/x", headers=None, body=None, connect_timeout=1.0, timeout=timeout)
    return answer.body


async def _until(predicate: object, seconds: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while not predicate():  # type: ignore[operator]
        assert loop.time() < end, "condition not reached in time"
        await asyncio.sleep(0.005)


async def test_no_more_than_the_limit_at_once_and_the_rest_wait_their_turn(server: GatedServer) -> None:
    pool = HttpPool("http", "127.0.0.1", server.port, limit=2)
    calls = [asyncio.create_task(_get(pool)) for _ in range(5)]
    await _until(lambda: server.holding == 2)
    await asyncio.sleep(0.05)
    assert server.received == 2  # three wait in line, none of them written
    server.gate.set()
    assert await asyncio.gather(*calls) == [b"ok"] * 5
    assert server.most_held == 2 and server.received == 5
    pool.close()


async def test_a_caller_whose_turn_does_not_come_in_time_is_not_sent(server: GatedServer) -> None:
    pool = HttpPool("http", "127.0.0.1", server.port, limit=1)
    first = asyncio.create_task(_get(pool))
    await _until(lambda: server.holding == 1)
    with pytest.raises(NothingSent, match=r"no free socket within 0\.1s"):
        await _get(pool, timeout=0.1)
    assert server.received == 1  # the late caller wrote nothing
    server.gate.set()
    assert await first == b"ok"
    assert await _get(pool) == b"ok"  # the expired turn took no slot with it
    pool.close()


async def test_a_cancelled_waiter_leaves_no_slot_behind(server: GatedServer) -> None:
    pool = HttpPool("http", "127.0.0.1", server.port, limit=1)
    first = asyncio.create_task(_get(pool))
    await _until(lambda: server.holding == 1)
    waiting = asyncio.create_task(_get(pool))
    await asyncio.sleep(0.02)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    server.gate.set()
    assert await first == b"ok"
    # the slot is whole again: two callers one after the other, then two at once, all answered
    assert [await _get(pool), await _get(pool)] == [b"ok", b"ok"]
    assert await asyncio.gather(_get(pool), _get(pool)) == [b"ok", b"ok"]
    assert server.most_held == 1
    pool.close()


async def test_no_answer_by_the_deadline_is_an_answer_timeout_and_the_socket_is_dropped(server: GatedServer) -> None:
    pool = HttpPool("http", "127.0.0.1", server.port, limit=1)
    with pytest.raises(AnswerTimeout):
        await _get(pool, timeout=0.1)
    assert server.received == 1
    server.gate.set()
    assert await _get(pool) == b"ok"  # on a new socket: the timed-out one is never reused
    assert pool.opened == 2
    pool.close()
