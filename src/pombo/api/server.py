"""uvicorn's HTTP protocol with a deadline for the request headers.

uvicorn times out idle kept-alive connections (`timeout_keep_alive`) but never a client that is
still sending its headers: one byte every few seconds holds a connection (and a slot of
`limit_concurrency`) for ever. This protocol gives the request line and headers
POMBO_HEADER_TIMEOUT seconds from the connection (or from the first byte of the next request on
a kept-alive one); past that the client gets a 408 in the API's envelope and the socket is
closed. The body has its own deadline in the app (api/params.py, POMBO_BODY_TIMEOUT). Headers
are bounded in size too (httptools' parser sets no limit): past MAX_HEAD bytes the client gets
431 and the socket is closed.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import orjson
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

PROTOCOL = "pombo.api.server:HeaderDeadlineProtocol"  # for uvicorn's `http` option
# what may arrive before the headers are complete: the headers, and the start of a body that
# came in the same reads (the body's own limit, 64 KiB, is the app's)
MAX_HEAD = 256 * 1024


def _answer(code: int, reason: str, status: str) -> bytes:
    body = orjson.dumps({"return": {"status": status, "status_code": str(code), "cdls_id": "0"}})
    head = (
        f"HTTP/1.1 {code} {reason}\r\ncontent-type: application/json; charset=utf-8\r\n"
        f"connection: close\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class OneWriteCycle(RequestResponseCycle):
    """uvicorn's request cycle with one more way to answer: `respond` writes the status line,
    the headers and the whole body in one write (uvicorn's `send` writes the head when the
    response starts and the body when it comes: two writes, two TCP segments per answer).
    `respond` writes no line to uvicorn's own access log; Pombo never turns that log on (its
    AccessLog wraps `send`, and an answer through it goes by `send`)."""

    def respond(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes | memoryview) -> bool:
        """Answer with `body` whole (`headers` hold its Content-Length); False, with nothing written,
        when this cycle cannot: its response already started, a HEAD, or writing is paused
        (then the caller answers through ASGI's `send`)."""
        if self.response_started or self.flow.write_paused or self.scope["method"] == "HEAD":
            return False
        self.response_started = self.response_complete = True
        self.waiting_for_100_continue = False
        if self.disconnected:
            return True
        head = [STATUS_LINE[status], _default_lines(self.default_headers), *_lines(headers)]
        if not self.keep_alive:
            head.append(b"connection: close\r\n")
        head.append(b"\r\n")
        head.append(bytes(body))
        self.transport.write(b"".join(head))
        self.message_event.set()
        if not self.keep_alive:
            self.transport.close()
        self.on_response()
        return True


def _lines(headers: list[tuple[bytes, bytes]]) -> list[bytes]:
    return [b"%s: %s\r\n" % (name, value) for name, value in headers]


_defaults: tuple[object, bytes] = (None, b"")


def _default_lines(headers: list[tuple[bytes, bytes]]) -> bytes:
    """uvicorn's default headers (server, date) as lines; uvicorn makes a new list when the
    date changes (once a second), so the lines are made once per list."""
    global _defaults
    made = _defaults  # one read: servers in threads of one process each swap in their own
    if made[0] is not headers:
        made = _defaults = (headers, b"".join(_lines(headers)))
    return made[1]


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """HttpToolsProtocol that closes a connection whose request headers come too slowly."""

    # set once per worker process by create_app (the protocol is built by uvicorn, not by us)
    header_timeout: ClassVar[float] = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # One timer per connection, not one per request: it is left running when headers
        # arrive in time, and when it fires it looks whether headers are awaited and since when
        # (a kept-alive connection's next request) and, if their time has not run out, waits
        # the rest. Arming and cancelling a timer on every request cost ~1% of a send's CPU.
        self._header_deadline: asyncio.TimerHandle | None = None
        self._awaiting_head = False
        self._head_since = 0.0
        self._head_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the clock for the first request's headers."""
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        """Count what arrives while headers are awaited; refuse headers without end."""
        if self._awaiting_head:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD:
                self._refuse(_answer(431, "Request Header Fields Too Large", "request headers too large"))
                return
        super().data_received(data)

    def on_message_begin(self) -> None:
        """A new request's first byte: its headers have the deadline (the first one's runs
        from the connection)."""
        super().on_message_begin()
        if not self._awaiting_head:
            self._arm()

    def on_headers_complete(self) -> None:
        """The headers are in: the body's deadline is the app's."""
        self._awaiting_head = False
        super().on_headers_complete()

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        """Every request's cycle can answer in one write (OneWriteCycle.respond)."""
        cycle.__class__ = OneWriteCycle
        super()._start_asgi_task(cycle, app)

    def connection_lost(self, exc: Exception | None) -> None:
        """Nothing to time out any more."""
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._head_bytes = 0
        self._awaiting_head = True
        self._head_since = self.loop.time()
        if self.header_timeout > 0 and self._header_deadline is None:
            self._header_deadline = self.loop.call_at(self._head_since + self.header_timeout, self._look)

    def _disarm(self) -> None:
        self._awaiting_head = False
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _look(self) -> None:
        """The timer: headers still awaited past their time are refused; awaited, with time
        left, it waits the rest; not awaited, it stops (the next request starts it again)."""
        self._header_deadline = None
        if not self._awaiting_head:
            return
        due = self._head_since + self.header_timeout
        if self.loop.time() >= due:
            self._refuse(_answer(408, "Request Timeout", "request timeout"))
        else:
            self._header_deadline = self.loop.call_at(due, self._look)

    def _refuse(self, answer: bytes) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(answer)
            self.transport.close()
