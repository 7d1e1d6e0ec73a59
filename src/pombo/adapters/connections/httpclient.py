"""A lean keep-alive HTTP/1.1 client for the send path: asyncio Protocol + httptools parser.

Measured on the hot path: aiohttp's client spent ~27% of the gateway's CPU per send (request
objects, timers, tracing hooks); this one does what a send needs and nothing else. It never
follows redirects, reads at most `max_body` bytes, and tells apart, for SPEC §11, "not one byte
of the request was written" (NothingSent) from "written, then no complete answer" (ProtocolError,
AnswerTimeout). The only retry it makes is of a request that provably did not go out: a pooled
socket the peer had closed while idle is dropped, and a write that fails on it before its first
byte goes once more on a fresh socket. Once a byte is written, nothing is ever sent again.
"""

from __future__ import annotations

import asyncio
import collections
import os
import select
import ssl
import time
from collections.abc import Mapping

import httptools


class HttpError(Exception):
    """Base of this client's failures."""


class NothingSent(HttpError):
    """Not one byte of the request was written (connect failed or timed out, no free socket in
    time, the socket was closed before the write)."""


class ConnectError(NothingSent):
    """No connection could be made: refused, DNS, TLS handshake, connect timeout."""


class _NotWritten(NothingSent):
    """The socket was gone when the request was to be written; not one byte went out."""


class ProtocolError(HttpError):
    """The request went out, then the connection broke or the answer was not valid HTTP."""


class AnswerTimeout(HttpError):
    """The request went out and no complete answer came before the deadline."""


class Response:
    """Status, body (at most max_body bytes) and the Retry-After header, if any."""

    __slots__ = ("body", "retry_after", "status")

    def __init__(self, status: int, body: bytes, retry_after: str | None) -> None:
        self.status, self.body, self.retry_after = status, body, retry_after


def _gone(conn: _Exchange) -> bool:
    """True when an idle socket is not fit for a request: closed, closing, or readable (the
    peer's FIN or reset, or bytes nobody asked for, already waiting in the kernel)."""
    transport = conn.transport
    if conn.closed or transport is None or transport.is_closing():
        return True
    if conn.fd < 0 or not hasattr(select, "poll"):
        return False
    poller = select.poll()
    try:
        poller.register(conn.fd, select.POLLIN | select.POLLPRI)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


class _Exchange(asyncio.Protocol):
    """One socket; one request/answer at a time."""

    def __init__(self, max_body: int) -> None:
        self.max_body = max_body
        self.transport: asyncio.Transport | None = None
        self.fd = -1  # polled before reuse
        self._write_fd = -1  # plain TCP only: the request is written here at once (not TLS)
        self.closed = False
        self.idle_since = 0.0
        self._waiter: asyncio.Future[Response] | None = None
        self._parser: httptools.HttpResponseParser | None = None
        self._chunks: list[bytes] = []
        self._size = 0
        self._status = 0
        self._retry_after: str | None = None
        self._headers_done = False
        self._framed = False  # Content-Length or chunked: the body does not end at close
        self.reusable = False

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        self.fd = sock.fileno() if sock is not None else -1
        if transport.get_extra_info("sslcontext") is None:
            self._write_fd = self.fd

    def data_received(self, data: bytes) -> None:
        if self._parser is None:  # bytes while idle: the server is confused, drop the socket
            self.abort()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ProtocolError(f"invalid HTTP answer: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            if self._headers_done and not self._framed:  # body delimited by the close
                self._finish(reusable=False)
            else:
                why = f": {exc}" if exc else ""
                self._fail(ProtocolError(f"connection closed before the answer was complete{why}"))

    # -- httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        lname = name.lower()
        if lname == b"content-length" or (lname == b"transfer-encoding" and b"chunked" in value.lower()):
            self._framed = True
        elif lname == b"retry-after":
            self._retry_after = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        assert self._parser is not None
        self._status = self._parser.get_status_code()
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        room = self.max_body - self._size
        if room > 0:
            self._chunks.append(body[:room])
        self._size += len(body)
        if self._size > self.max_body:  # enough: keep what we have, drop the rest and the socket
            self._finish(reusable=False)
            self.abort()

    def on_message_complete(self) -> None:
        assert self._parser is not None
        self._finish(reusable=self._parser.should_keep_alive())

    # -- the exchange
    def exchange(self, request: bytes) -> asyncio.Future[Response]:
        """Write the request now (raising _NotWritten when not one byte could be written) and
        return the future of the whole answer."""
        self._write(request)
        self._waiter = asyncio.get_running_loop().create_future()
        self._parser = httptools.HttpResponseParser(self)
        self._chunks, self._size, self._status, self._retry_after = [], 0, 0, None
        self._headers_done = self._framed = self.reusable = False
        return self._waiter

    def _write(self, request: bytes) -> None:
        transport = self.transport
        if self.closed or transport is None or transport.is_closing():
            raise _NotWritten("the socket was closed before the request was written")
        if self._write_fd < 0 or transport.get_write_buffer_size():
            transport.write(request)
            return
        # Written here, synchronously, so we know whether any byte left: the transport would
        # report a failed write only later (uvloop writes at the end of the loop iteration).
        try:
            written = os.write(self._write_fd, request)
        except (BlockingIOError, InterruptedError):
            written = 0
        except OSError as exc:  # EPIPE, ECONNRESET: the peer had closed it
            self.abort()
            raise _NotWritten(f"the socket was closed before the request was written: {exc}") from None
        if written < len(request):
            transport.write(memoryview(request)[written:])

    def _finish(self, *, reusable: bool) -> None:
        waiter, self._waiter, self._parser = self._waiter, None, None
        self.reusable = reusable and not self.closed
        if waiter is not None and not waiter.done():
            waiter.set_result(Response(self._status, b"".join(self._chunks), self._retry_after))

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter, self._parser = self._waiter, None, None
        self.reusable = False
        self.abort()
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def time_out(self) -> None:
        """The deadline passed before the whole answer: fail the exchange, drop the socket."""
        if self._waiter is not None:
            self._fail(AnswerTimeout("no complete answer in time"))

    def abort(self) -> None:
        """Close the socket at once."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


def _expire(turn: asyncio.Future[None]) -> None:
    if not turn.done():
        turn.set_exception(NothingSent("no free socket in time"))


class HttpPool:
    """Keep-alive connections to one origin (scheme://host:port)."""

    def __init__(
        self,
        scheme: str,
        host: str,
        port: int,
        *,
        limit: int = 256,
        keepalive: float = 30.0,
        max_body: int = 1 << 20,
    ) -> None:
        self.host, self.port = host, port
        self._ssl = ssl.create_default_context() if scheme == "https" else None
        default_port = 443 if scheme == "https" else 80
        self._host_header = host if port == default_port else f"{host}:{port}"
        self._idle: list[_Exchange] = []
        # at most `limit` exchanges at once; the others wait in line (a counter and futures,
        # not a Semaphore under asyncio.timeout: cheaper on the path where a slot is free)
        self._free = limit
        self._line: collections.deque[asyncio.Future[None]] = collections.deque()
        self._keepalive = keepalive
        self._max_body = max_body
        self.opened = 0  # sockets opened so far (tests read it)

    async def request(
        self,
        method: str,
        target: str,
        *,
        headers: Mapping[str, str] | None,
        body: bytes | None,
        connect_timeout: float,
        timeout: float,
    ) -> Response:
        """One exchange on a pooled (or new) connection, the whole of it within `timeout`."""
        request = self._encode(method, target, headers, body)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if self._free > 0 and not self._line:
            self._free -= 1
        else:
            await self._wait_for_slot(loop, deadline, timeout)
        try:
            conn = self._take()
            if conn is not None:
                try:
                    return await self._exchange(conn, request, deadline)
                except _NotWritten:  # the peer had closed it: provably not sent, go once more
                    pass
            conn = await self._connect(min(connect_timeout, deadline - loop.time()))
            return await self._exchange(conn, request, deadline)
        finally:
            self._release()

    async def _wait_for_slot(self, loop: asyncio.AbstractEventLoop, deadline: float, timeout: float) -> None:
        """Wait in line for a slot until `deadline` (NothingSent after it)."""
        turn: asyncio.Future[None] = loop.create_future()
        self._line.append(turn)
        timer = loop.call_at(deadline, _expire, turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled() and turn.exception() is None:
                self._release()  # the slot came just as the caller was cancelled: hand it on
            raise
        except NothingSent:
            raise NothingSent(f"no free socket within {timeout:g}s") from None
        finally:
            timer.cancel()

    def _release(self) -> None:
        """A slot is free: to the first caller still waiting in line, else to the counter."""
        while self._line:
            turn = self._line.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self._free += 1

    def _encode(self, method: str, target: str, headers: Mapping[str, str] | None, body: bytes | None) -> bytes:
        head = [f"{method} {target} HTTP/1.1\r\nHost: {self._host_header}\r\n"]
        if headers:
            head.extend(f"{k}: {v}\r\n" for k, v in headers.items())
        if body is not None or method in ("POST", "PUT", "PATCH"):
            head.append(f"Content-Length: {len(body or b'')}\r\n")
        head.append("\r\n")
        return "".join(head).encode("latin-1") + (body or b"")

    async def _exchange(self, conn: _Exchange, request: bytes, deadline: float) -> Response:
        waiter = conn.exchange(request)  # raises _NotWritten before any byte went out
        timer = asyncio.get_running_loop().call_at(deadline, conn.time_out)
        try:
            answer = await waiter
        except BaseException:
            conn.abort()
            raise
        finally:
            timer.cancel()
        if conn.reusable:
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        else:
            conn.abort()
        return answer

    def _take(self) -> _Exchange | None:
        """The most recently used idle socket that is still fit for a request."""
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if now - conn.idle_since < self._keepalive and not _gone(conn):
                return conn
            conn.abort()
        return None

    async def _connect(self, timeout: float) -> _Exchange:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(max(timeout, 0)):
                _, conn = await loop.create_connection(
                    lambda: _Exchange(self._max_body),
                    self.host,
                    self.port,
                    ssl=self._ssl,
                    server_hostname=self.host if self._ssl else None,
                )
        except TimeoutError:
            raise ConnectError("connect timeout") from None
        except (OSError, ssl.SSLError) as exc:
            raise ConnectError(str(exc) or type(exc).__name__) from None
        self.opened += 1
        return conn

    def close(self) -> None:
        """Drop every idle connection."""
        for conn in self._idle:
            conn.abort()
        self._idle.clear()
