"""A fake upstream that keeps sockets alive and closes them when idle, as providers do.

aiohttp's server closes an idle socket one loop iteration after it decides to, so a request
written in between would be lost by the fake itself. This one is a small HTTP/1.1 server of its
own: after `idle_close` seconds without a byte it shuts the socket down at once (the FIN leaves
in the same callback), unless a request is already waiting in the socket, which it then serves.
So every send it loses was written to a socket that was closed before the write: exactly the
stale keep-alive socket a client must not use. It answers each kind's success (SPEC §8) through
FakeUpstream, and records every request there.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import socket
import struct
from urllib.parse import parse_qsl, urlsplit

import httptools

from tests.fakes.upstream import FakeUpstream, Received, kind_of


def _readable(sock: socket.socket | object) -> bool:
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)  # type: ignore[attr-defined]
    return bool(poller.poll(0))


class _Conn(asyncio.Protocol):
    """One server-side socket: requests in order, answered at once, closed when idle."""

    def __init__(self, server: IdleClosingUpstream) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.timer: asyncio.TimerHandle | None = None
        self.url = b""
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []
        self.busy = False  # inside a request: never idle

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.connections += 1
        self.server.live.add(self)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.live.discard(self)
        self._disarm()

    def data_received(self, data: bytes) -> None:
        self._disarm()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.abort()  # type: ignore[union-attr]
            return
        if not self.busy:
            self._arm()

    # -- httptools callbacks
    def on_message_begin(self) -> None:
        self.busy = True

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").title()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        method = self.parser.get_method().decode()
        url, body = self.url.decode("latin-1"), b"".join(self.body)
        self.url, self.body, headers, self.headers = b"", [], self.headers, {}
        self.busy = False
        self.transport.write(self.server.answer(method, url, headers, body))  # type: ignore[union-attr]

    # -- the idle timer
    def _arm(self) -> None:
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(self.server.idle_close, self.close_if_idle)

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def close_if_idle(self, *, reset: bool = False) -> None:
        """Close now (FIN, or RST with `reset`), unless a request is already waiting."""
        assert self.transport is not None
        sock = self.transport.get_extra_info("socket")
        if _readable(sock):
            return  # data_received comes next, with the request this socket owes an answer
        self._disarm()
        with socket.socket(fileno=os.dup(sock.fileno())) as raw:  # uvloop's socket has no shutdown
            if reset:
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                raw.shutdown(socket.SHUT_RDWR)  # the FIN leaves now
        if reset:
            self.transport.abort()  # the RST leaves when the loop closes the socket, next round
        else:
            self.transport.close()
        self.server.idle_closed += 1


class IdleClosingUpstream:
    """Serves wavy, tww, kannel and http successes on 127.0.0.1 with keep-alive, closing any
    socket idle for `idle_close` seconds. Requests are recorded in `fake` (a FakeUpstream that
    needs no start)."""

    def __init__(self, idle_close: float) -> None:
        self.idle_close = idle_close
        self.fake = FakeUpstream()
        self.connections = 0  # sockets accepted
        self.idle_closed = 0  # sockets closed for idleness
        self.live: set[_Conn] = set()
        self.url = ""
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Listen on 127.0.0.1 in the running loop."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Conn(self), "127.0.0.1", 0, backlog=1024)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def stop(self) -> None:
        """Stop listening and drop every socket."""
        for conn in list(self.live):
            if conn.transport is not None:
                conn.transport.abort()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def close_idle_now(self, *, reset: bool = False) -> None:
        """Close every idle socket at once, as if each had just timed out."""
        for conn in list(self.live):
            conn.close_if_idle(reset=reset)

    def answer(self, method: str, url: str, headers: dict[str, str], body: bytes) -> bytes:
        """Record the request and build the kind's success answer, keep-alive."""
        parts = urlsplit(url)
        kind = kind_of(method, parts.path)
        content_type = headers.get("Content-Type", "")
        received = Received(
            kind=kind,
            method=method,
            path=parts.path,
            headers=headers,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            form=dict(parse_qsl(body.decode("latin-1"))) if "form-urlencoded" in content_type else {},
            json=json.loads(body) if "json" in content_type and body else None,
            body=body,
            outcome="ok",
        )
        with self.fake._lock:
            self.fake._requests.append(received)
        response = self.fake.ok_answer(kind, received)
        payload = response.body if isinstance(response.body, bytes) else b""
        head = (
            f"HTTP/1.1 {response.status} {response.reason}\r\n"
            f"Content-Type: {response.headers.get('Content-Type', response.content_type)}\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: keep-alive\r\n\r\n"
        )
        return head.encode("latin-1") + payload
