"""A fake SMSC on loopback speaking real SMPP 3.4 PDUs, written with struct alone (not with the
codec Pombo uses, so the two cross-check each other).

Per-destination behaviour (`smsc.rules[dest] = Rule(...)`, else `smsc.default`): answer OK with
an upper-case hex id, an error status, nothing at all, or drop the bind after reading the
submit_sm; receipts of any stat: word, after a delay, with the id in hex or decimal in the
text or only in receipted_message_id, as deliver_sm or data_sm, even before the submit_sm_resp.
Plus: refused binds, bind drops, MO messages, enquire_link both ways, unbind.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import struct
from dataclasses import dataclass, field

HEADER = struct.Struct("!IIII")
BIND_TRX, SUBMIT, DELIVER, UNBIND, ENQUIRE, DATA_SM = 0x09, 0x04, 0x05, 0x06, 0x15, 0x103
RESP = 0x80000000


@dataclass
class Rule:
    """What the SMSC does with a submit_sm to one destination."""

    status: int = 0  # submit_sm_resp command_status
    answer: bool = True  # False: never answer
    drop: bool = False  # close the socket right after reading the submit_sm
    stat: str | None = None  # send a receipt with this stat: word
    delay: float = 0.0  # seconds before the receipt
    id_form: str = "hex"  # receipt id in the text: hex | dec | lower | tlv (TLV only, no id: in text)
    receipt_first: bool = False  # the receipt goes out before the submit_sm_resp
    as_data_sm: bool = False
    answer_delay: float = 0.0  # seconds before the submit_sm_resp


@dataclass
class Submit:
    """A submit_sm as the SMSC read it."""

    sequence: int
    service_type: str
    source: str
    source_ton: int
    source_npi: int
    dest: str
    dest_ton: int
    dest_npi: int
    esm_class: int
    registered_delivery: int
    data_coding: int
    short_message: bytes
    message_id: str = ""


@dataclass
class Session:
    """One bound ESME."""

    writer: asyncio.StreamWriter
    system_id: str
    password: str
    system_type: str
    sequence: itertools.count = field(default_factory=lambda: itertools.count(1))
    answers: dict[int, asyncio.Future[tuple[int, int]]] = field(default_factory=dict)
    outstanding: int = 0  # submit_sm read and not answered yet
    most_outstanding: int = 0

    def send(self, command_id: int, body: bytes = b"", status: int = 0, sequence: int | None = None) -> int:
        seq = next(self.sequence) if sequence is None else sequence
        self.writer.write(HEADER.pack(16 + len(body), command_id, status, seq) + body)
        return seq


def cstr(data: bytes, at: int) -> tuple[str, int]:
    end = data.index(b"\0", at)
    return data[at:end].decode("latin-1"), end + 1


def parse_submit(sequence: int, body: bytes) -> Submit:
    service_type, at = cstr(body, 0)
    s_ton, s_npi = body[at], body[at + 1]
    source, at = cstr(body, at + 2)
    d_ton, d_npi = body[at], body[at + 1]
    dest, at = cstr(body, at + 2)
    esm, _pid, _prio = body[at : at + 3]
    _sched, at = cstr(body, at + 3)
    _valid, at = cstr(body, at)
    registered, _replace, coding, _default, length = body[at : at + 5]
    sm = body[at + 5 : at + 5 + length]
    return Submit(sequence, service_type, source, s_ton, s_npi, dest, d_ton, d_npi, esm, registered, coding, sm)


def sm_body(source: str, dest: str, esm_class: int, text: bytes, *, coding: int = 0, tlvs: bytes = b"") -> bytes:
    """A deliver_sm body (service_type empty, TON/NPI 1/1)."""
    return (b"\0" + bytes([1, 1]) + source.encode() + b"\0" + bytes([1, 1]) + dest.encode() + b"\0"
            + bytes([esm_class, 0, 0]) + b"\0\0" + bytes([0, 0, coding, 0, len(text)]) + text + tlvs)


def data_sm_body(source: str, dest: str, esm_class: int, text: bytes, tlvs: bytes = b"") -> bytes:
    payload = struct.pack("!HH", 0x0424, len(text)) + text
    return (b"\0" + bytes([1, 1]) + source.encode() + b"\0" + bytes([1, 1]) + dest.encode() + b"\0"
            + bytes([esm_class, 0, 0]) + payload + tlvs)


class FakeSmsc:
    """Start with `await smsc.start()`; `smsc.port` is where it listens."""

    def __init__(self) -> None:
        self.rules: dict[str, Rule] = {}
        self.script: dict[str, list[Rule]] = {}  # per destination, used once each, in order, before rules
        self.default = Rule()
        self.bind_status = 0  # bind_transceiver_resp status (0x0E: wrong password...)
        self.bind_attempts: list[tuple[float, str, str, str]] = []  # (time, system_id, password, system_type)
        self.sessions: list[Session] = []
        self._all_sessions: list[Session] = []
        self.submits: list[Submit] = []
        self.enquire_links = 0
        self.unbinds = 0
        self.answer_enquire = True
        self.deliver_answers: list[tuple[int, int]] = []  # (command_id, status) of deliver_sm/data_sm resps
        self._ids = itertools.count(0xA0000001)
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self.drop_all()
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def drop_all(self) -> None:
        """Close every bound session at once (a network cut)."""
        for session in self.sessions:
            session.writer.close()
        self.sessions.clear()

    def bound(self) -> list[Session]:
        return [s for s in self.sessions if not s.writer.is_closing()]

    async def mo(self, source: str, dest: str, text: bytes, *, coding: int = 0, esm_class: int = 0) -> int:
        """Send an MO deliver_sm on the first bind; returns the status it was answered with."""
        session = self.bound()[0]
        return await self._request(session, DELIVER, sm_body(source, dest, esm_class, text, coding=coding))

    async def enquire(self) -> int:
        """Our own enquire_link to the ESME; the status of its enquire_link_resp."""
        return await self._request(self.bound()[0], ENQUIRE, b"")

    async def receipt(self, session: Session, rule: Rule, message_id: str, dest: str) -> int:
        """Send one receipt for `message_id` as the rule says; the status it was answered with."""
        shown = {"hex": message_id, "lower": message_id.lower(), "dec": str(int(message_id, 16)), "tlv": ""}[rule.id_form]
        text = (f"id:{shown} " if shown else "") + f"sub:001 dlvrd:001 submit date:2611251200 done date:2611251201 stat:{rule.stat} err:000 text:x"
        tlvs = struct.pack("!HH", 0x001E, len(message_id) + 1) + message_id.encode() + b"\0" if rule.id_form == "tlv" else b""
        if rule.as_data_sm:
            return await self._request(session, DATA_SM, data_sm_body(dest, "Pombo", 0x04, text.encode(), tlvs))
        return await self._request(session, DELIVER, sm_body(dest, "Pombo", 0x04, text.encode(), tlvs=tlvs))

    async def _request(self, session: Session, command_id: int, body: bytes) -> int:
        answer: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
        seq = session.send(command_id, body)
        session.answers[seq] = answer
        command, status = await asyncio.wait_for(answer, 5)
        if command_id != ENQUIRE:
            self.deliver_answers.append((command, status))
        return status

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session: Session | None = None
        try:
            while True:
                length, command_id, status, seq = HEADER.unpack(await reader.readexactly(16))
                body = await reader.readexactly(length - 16)
                if command_id == BIND_TRX:
                    session = self._bind(writer, seq, body)
                    if session is None:
                        return
                elif session is None:
                    writer.write(HEADER.pack(16, RESP, 0x04, seq))  # generic_nack: not bound
                elif command_id & RESP:
                    answer = session.answers.pop(seq, None)
                    if answer is not None and not answer.done():
                        answer.set_result((command_id, status))
                elif command_id == ENQUIRE:
                    self._enquired(session, seq)
                elif command_id == UNBIND:
                    self.unbinds += 1
                    session.send(UNBIND | RESP, sequence=seq)
                    await writer.drain()
                    return
                elif command_id == SUBMIT:
                    if not self._submit(session, parse_submit(seq, body)):
                        return
                else:
                    session.send(RESP, status=0x03, sequence=seq)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def _enquired(self, session: Session, seq: int) -> None:
        self.enquire_links += 1
        if self.answer_enquire:
            session.send(ENQUIRE | RESP, sequence=seq)

    def _bind(self, writer: asyncio.StreamWriter, seq: int, body: bytes) -> Session | None:
        system_id, at = cstr(body, 0)
        password, at = cstr(body, at)
        system_type, _ = cstr(body, at)
        self.bind_attempts.append((asyncio.get_running_loop().time(), system_id, password, system_type))
        session = Session(writer, system_id, password, system_type)
        session.send(BIND_TRX | RESP, b"FakeSMSC\0", status=self.bind_status, sequence=seq)
        if self.bind_status:
            return None
        self.sessions.append(session)
        self._all_sessions.append(session)
        return session

    def _submit(self, session: Session, sm: Submit) -> bool:
        """Answer one submit_sm as its rule says; False when the bind is to drop."""
        scripted = self.script.get(sm.dest)
        rule = scripted.pop(0) if scripted else self.rules.get(sm.dest, self.default)
        sm.message_id = f"{next(self._ids):08X}" if rule.status == 0 else ""
        self.submits.append(sm)
        if rule.drop:
            return False
        session.outstanding += 1
        session.most_outstanding = max(session.most_outstanding, session.outstanding)
        if rule.stat and rule.status == 0:
            self._spawn(self._later_receipt(session, rule, sm))
        if rule.answer and not rule.receipt_first:
            if rule.answer_delay:
                self._spawn(self._later_answer(session, rule, sm))
            else:
                self._answer(session, rule, sm)
        return True

    def _answer(self, session: Session, rule: Rule, sm: Submit) -> None:
        session.outstanding -= 1
        body = (sm.message_id.encode() + b"\0") if rule.status == 0 else b""
        session.send(SUBMIT | RESP, body, status=rule.status, sequence=sm.sequence)

    async def _later_answer(self, session: Session, rule: Rule, sm: Submit) -> None:
        await asyncio.sleep(rule.answer_delay)
        if not session.writer.is_closing():
            self._answer(session, rule, sm)

    def accepted(self, dest: str | None = None) -> list[Submit]:
        """The submit_sm answered OK (each got a message_id), for one destination or all."""
        return [s for s in self.submits if s.message_id and (dest is None or s.dest == dest)]

    def most_outstanding(self) -> int:
        """The most submit_sm any one session had unanswered at once."""
        return max((s.most_outstanding for s in self._all_sessions), default=0)

    async def _later_receipt(self, session: Session, rule: Rule, sm: Submit) -> None:
        await asyncio.sleep(rule.delay)
        if rule.receipt_first:
            await self.receipt(session, rule, sm.message_id, sm.dest)
            await asyncio.sleep(0.2)
            session.outstanding -= 1
            session.send(SUBMIT | RESP, sm.message_id.encode() + b"\0", sequence=sm.sequence)
            return
        await self.receipt(session, rule, sm.message_id, sm.dest)

    def _spawn(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
