"""One SMPP transceiver bind: the socket, sequence numbers, answers awaited by sequence, the
SMSC's own requests (enquire_link, unbind, deliver_sm, data_sm) and our enquire_link timer.

A bind never re-opens itself; the connection's keeper does that, with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from pombo.adapters.connections.smpp import pdu

log = structlog.get_logger("pombo.smpp")

Incoming = Callable[["Bind", int, bytes], Awaitable[int]]  # (bind, command_id, whole pdu) -> status


class BindLost(ConnectionError):
    """The bind went away (reset, closed, unbound or silent) while something waited on it."""


class NotBound(BindLost):
    """Nothing was written: the bind was not (or no longer) bound when the request came."""


class BindRefused(ConnectionError):
    """The SMSC answered bind_transceiver with an error status (wrong password, too many binds)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"bind refused: {pdu.status_text(status)}")
        self.status = status


@dataclass(frozen=True, slots=True)
class Peer:
    """Where and as whom a bind connects."""

    host: str
    port: int
    system_id: str
    password: str
    system_type: str
    tls: bool
    enquire_link: float
    connect_timeout: float = 10.0

    def __repr__(self) -> str:  # never print the password
        return f"Peer({self.host}:{self.port}, system_id={self.system_id!r}, tls={self.tls})"


class Bind:
    """A bound transceiver session; `free` counts the window slots not in use."""

    def __init__(self, peer: Peer, *, name: str, window: int, incoming: Incoming) -> None:
        self.peer, self.name = peer, name
        self.free = window
        self.state = "binding"
        self._incoming = incoming
        self._sequence = 0
        self._waiting: dict[int, asyncio.Future[tuple[int, bytes]]] = {}
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._inbox: asyncio.Queue[tuple[int, int, bytes]] = asyncio.Queue()
        self._out: list[bytes] = []  # PDUs written in this loop iteration, sent in one syscall
        self.lost = asyncio.Event()

    @property
    def bound(self) -> bool:
        """Open and bound: submits may go out on it."""
        return self.state == "bound"

    def next_sequence(self) -> int:
        """1 .. 0x7FFFFFFF, wrapping (SMPP 3.4 §5.1.4)."""
        self._sequence = self._sequence % 0x7FFFFFFF + 1
        return self._sequence

    async def open(self) -> None:
        """Connect, bind_transceiver and start reading; BindRefused or OSError when it fails."""
        context = ssl.create_default_context() if self.peer.tls else None
        async with asyncio.timeout(self.peer.connect_timeout):
            self._reader, self._writer = await asyncio.open_connection(
                self.peer.host, self.peer.port, ssl=context
            )
            sequence = self.next_sequence()
            self._writer.write(pdu.bind_transceiver(
                sequence, system_id=self.peer.system_id, password=self.peer.password,
                system_type=self.peer.system_type,
            ))
            head, _body = await self._read_pdu()
        if head.command_id != pdu.BIND_TRANSCEIVER_RESP or head.sequence != sequence:
            self._abort()
            raise BindRefused(head.status or pdu.RSYSERR)
        if head.status != pdu.ROK:
            self._abort()
            raise BindRefused(head.status)
        self.state = "bound"
        self._tasks = [asyncio.create_task(self._read_loop()), asyncio.create_task(self._answer_loop()),
                       asyncio.create_task(self._keepalive())]

    async def request(self, build: Callable[[int], bytes], timeout: float) -> tuple[int, bytes]:
        """Write one request and wait for its answer: (status, body). TimeoutError when none
        came in time; BindLost when the bind went away first (after writing: unknown)."""
        if not self.bound or self._writer is None or self._writer.is_closing():
            raise NotBound("not bound")  # nothing written: the caller may say "not sent"
        sequence = self.next_sequence()
        answer: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        self._waiting[sequence] = answer
        self._write(build(sequence))
        timer = answer.get_loop().call_later(timeout, _expire, answer)  # cheaper than asyncio.timeout
        try:
            return await answer
        finally:
            timer.cancel()
            self._waiting.pop(sequence, None)

    async def close(self) -> None:
        """unbind, wait briefly for unbind_resp, then close the socket."""
        if self.bound:
            with contextlib.suppress(Exception):
                await self.request(lambda seq: pdu.pack(pdu.UNBIND, seq), timeout=2.0)
        self._drop("closed")
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _read_pdu(self) -> tuple[pdu.Header, bytes]:
        assert self._reader is not None
        head = pdu.header(await self._reader.readexactly(16))
        if not 16 <= head.length <= pdu.MAX_PDU:
            raise pdu.PduError(f"command_length {head.length}")
        return head, await self._reader.readexactly(head.length - 16)

    async def _read_loop(self) -> None:
        try:
            while True:
                head, body = await self._read_pdu()
                self._dispatch(head, body)
        except (OSError, asyncio.IncompleteReadError, pdu.PduError) as exc:
            self._drop(f"read: {type(exc).__name__}")

    def _dispatch(self, head: pdu.Header, body: bytes) -> None:
        if head.command_id & pdu.RESPONSE_BIT:  # generic_nack included: it answers a sequence
            answer = self._waiting.get(head.sequence)
            if answer is not None and not answer.done():
                answer.set_result((head.status, body))
        elif head.command_id == pdu.ENQUIRE_LINK:
            self._write(pdu.pack(pdu.ENQUIRE_LINK_RESP, head.sequence))
        elif head.command_id == pdu.UNBIND:
            self._write(pdu.pack(pdu.UNBIND_RESP, head.sequence))
            self._drop("unbound by the SMSC")
        elif head.command_id in (pdu.DELIVER_SM, pdu.DATA_SM):
            self._inbox.put_nowait((head.command_id, head.sequence, pdu.HEADER.pack(*_fields(head)) + body))
        else:
            self._write(pdu.pack(pdu.GENERIC_NACK, head.sequence, status=pdu.RINVCMDID))

    async def _answer_loop(self) -> None:
        """deliver_sm / data_sm in arrival order; each answered after it was handed over."""
        while True:
            command_id, sequence, whole = await self._inbox.get()
            try:
                status = await self._incoming(self, command_id, whole)
            except Exception:
                log.exception("smpp_incoming_failed", connection=self.name)
                status = pdu.RX_T_APPN
            # deliver_sm_resp and data_sm_resp carry a message_id, unused: an empty C string
            self._write(pdu.pack(command_id | pdu.RESPONSE_BIT, sequence, b"\0", status=status))

    async def _keepalive(self) -> None:
        """enquire_link every N seconds; a bind that does not answer within N is dropped."""
        every = self.peer.enquire_link
        while self.bound:
            await asyncio.sleep(every)
            try:
                await self.request(lambda seq: pdu.pack(pdu.ENQUIRE_LINK, seq), timeout=every)
            except (TimeoutError, BindLost):
                self._drop("enquire_link unanswered")
                return

    def _write(self, data: bytes) -> None:
        """Queue a PDU; every PDU queued in one event-loop iteration leaves in one write (32
        sends in flight: one syscall instead of 32)."""
        if not self._out:
            asyncio.get_running_loop().call_soon(self._flush)
        self._out.append(data)

    def _flush(self) -> None:
        data, self._out = b"".join(self._out), []
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(data)

    def _drop(self, why: str) -> None:
        """The bind is gone: fail every waiter (after writing, so the caller says unknown)."""
        if self.state != "down":
            log.info("smpp_bind_down", connection=self.name, why=why)
        self.state = "down"
        for answer in self._waiting.values():
            if not answer.done():
                answer.set_exception(BindLost(why))
        self._waiting.clear()
        self._abort()
        self.lost.set()

    def _abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _expire(answer: asyncio.Future[tuple[int, bytes]]) -> None:
    if not answer.done():
        answer.set_exception(TimeoutError())


def _fields(head: pdu.Header) -> tuple[int, int, int, int]:
    return head.length, head.command_id, head.status, head.sequence
