"""`kind: smpp` (SPEC §12): `binds` transceiver sessions kept up with backoff, one submit_sm
per part, the three outcome kinds of §11, receipts and inbound messages handed to the services.

Outcomes of send():
- NotSent: no live bind, the window stayed full until final_timeout, or the first part got
  ESME_RTHROTTLED (0x58) / ESME_RMSGQFUL (0x14);
- UpstreamRejected: any other error status of the first part, or any error status of a later
  part (earlier parts were accepted, so the message is not sent again anywhere);
- OutcomeUnknown: the bind was lost after a submit_sm was written; UpstreamTimeout (one of
  them): no submit_sm_resp within final_timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from pombo import metrics
from pombo.adapters.connections.smpp import pdu, submit
from pombo.adapters.connections.smpp.receipts import Settle, Tracker, read_receipt
from pombo.adapters.connections.smpp.session import Bind, BindLost, BindRefused, NotBound, Peer
from pombo.domain.model import ConnectionConfig, OutboundSms, UpstreamAck
from pombo.errors import NotSent, OutcomeUnknown, UpstreamRejected, UpstreamTimeout

log = structlog.get_logger("pombo.smpp")

OnReceipt = Callable[[str, int | None, str, str | None, str], Awaitable[int]]
OnInbound = Callable[[str, str, str, str, str], Awaitable[None]]
OnParts = Callable[[str, int, list[str]], Awaitable[None]]
OnPartDelivered = Callable[[str, int, int], Awaitable[None]]
ESM_RECEIPT = 0x04
NOT_NOW = (pdu.RTHROTTLED, pdu.RMSGQFUL)


class Rate:
    """Events per second over the last RATE_WINDOW whole seconds (for /healthz and the console)."""

    def __init__(self) -> None:
        self._buckets: dict[int, int] = {}
        self.total = 0

    def mark(self, now: float) -> None:
        second = int(now)
        self._buckets[second] = self._buckets.get(second, 0) + 1
        self.total += 1
        if len(self._buckets) > RATE_WINDOW + 2:
            for old in [k for k in self._buckets if k < second - RATE_WINDOW]:
                del self._buckets[old]

    def per_second(self, now: float) -> float:
        second = int(now)
        seen = sum(n for k, n in self._buckets.items() if second - RATE_WINDOW <= k < second)
        return round(seen / RATE_WINDOW, 2)


RATE_WINDOW = 10


@dataclass(frozen=True, slots=True)
class SmppHooks:
    """What the services give the adapter: where settled receipts and inbound messages go.
    on_receipt(connection, cdls_id or None, upstream_id, state, raw) -> state moves made;
    on_inbound(connection, source, dest, text, raw);
    on_parts(connection, cdls_id, part ids): a multi-part message was accepted (indexed durably,
    so receipts of any part match after a restart or on another worker's bind);
    on_part_delivered(connection, cdls_id, part): a part delivered, its message not yet whole."""

    on_receipt: OnReceipt | None = None
    on_inbound: OnInbound | None = None
    on_parts: OnParts | None = None
    on_part_delivered: OnPartDelivered | None = None


class SmppConnection:
    """An ESME towards one SMSC; the binds open on start() (or the first send)."""

    backoff_first, backoff_max = 1.0, 60.0  # re-bind delays (SPEC §12)

    def __init__(self, config: ConnectionConfig, *, public_url: str = "", hooks: SmppHooks | None = None) -> None:
        self.config = config
        opts: dict[str, Any] = config.options
        self._peer = Peer(
            host=str(opts.get("host", "")), port=int(opts.get("port", 2775)), system_id=config.username,
            password=config.password, system_type=str(opts.get("system_type", "")),
            tls=bool(opts.get("tls", False)), enquire_link=float(opts.get("enquire_link", 30)),
            connect_timeout=min(config.final_timeout, 10.0),
        )
        self.window = int(opts.get("window", 100))
        self._source = str(opts.get("source_addr", "") or "")
        self._dest_ton, self._dest_npi = int(opts.get("dest_ton", 1)), int(opts.get("dest_npi", 1))
        self._hooks = hooks or SmppHooks()
        self.binds: list[Bind | None] = [None] * int(opts.get("binds", 1))
        self.tracker = Tracker(early_ttl=config.final_timeout + 5)
        self._ref = secrets.randbelow(256)
        self._changed = asyncio.Condition()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._keepers: list[asyncio.Task[None]] = []
        self._closing = False
        self._slot_waiters = 0  # sends waiting in _acquire for a window slot or a bind
        self.submits, self.receipts = Rate(), Rate()
        self._counted = {o: metrics.SMPP_SUBMITS.labels(config.name, o)
                         for o in ("ok", "not_now", "rejected", "no_answer", "bind_lost", "no_bind")}

    def __repr__(self) -> str:  # never print credentials
        return f"SmppConnection(name={self.config.name!r}, {self._peer!r})"

    def start(self) -> None:
        """Open the binds (each kept up by its own task) and the sweeper of held receipts."""
        if self._keepers or self._closing:
            return
        self._keepers = [asyncio.create_task(self._keep(slot)) for slot in range(len(self.binds))]
        self._keepers.append(asyncio.create_task(self._sweep()))

    def bind_states(self) -> list[str]:
        """bound / binding / down, per bind (for /healthz and the console)."""
        return [b.state if b is not None else "down" for b in self.binds]

    def window_now(self) -> int | None:
        """`window` x the bound binds, for the engine (SPEC §11: the window is per bind); None
        when none is bound: the engine then tries, and "no live bind" is *not sent* (retried,
        counted towards failover)."""
        bound = sum(1 for b in self.binds if b is not None and b.state == "bound")
        return self.window * bound if bound else None

    def observe(self) -> dict[str, Any]:
        """Each bind's state and window use, submit_sm and receipts per second (the last 10 s):
        what /healthz, /metrics and the console show of this connection."""
        now = time.time()
        return {
            "binds": [
                {"state": b.state if b is not None else "down",
                 "window_used": self.window - b.free if b is not None else 0}
                for b in self.binds
            ],
            "window": self.window,
            "submits_per_s": self.submits.per_second(now),
            "receipts_per_s": self.receipts.per_second(now),
        }

    async def send(self, sms: OutboundSms) -> UpstreamAck:
        """Submit every part; the first part's message_id is the upstream id, all are kept."""
        self.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.final_timeout
        self._ref = (self._ref + 1) % 256
        parts = submit.parts(text=sms.text, dest=sms.dest, sender=sms.sender or self._source,
                             dest_ton=self._dest_ton, dest_npi=self._dest_npi, ref=self._ref)
        tracked = self.tracker.start(sms.id, len(parts), time.time())
        ids: list[str] = []
        try:
            for index, part in enumerate(parts):
                ids.append(await self._submit(part, tracked, index, deadline))
        except NotSent as exc:
            self.tracker.forget(tracked)
            if ids:  # earlier parts went out: never again, anywhere
                raise UpstreamRejected(f"part {len(ids) + 1}/{len(parts)}: {exc.raw}; accepted {','.join(ids)}") from None
            raise
        except BaseException:
            self.tracker.forget(tracked)
            raise
        if len(ids) > 1 and self._hooks.on_parts is not None:
            try:  # before the ack: the parts are indexed before the message counts as sent
                await self._hooks.on_parts(self.config.name, sms.id, ids)
            except Exception:  # matched in memory still; after a restart only the first id is known
                log.exception("smpp_parts_not_indexed", connection=self.config.name, cdls_id=sms.id)
        return UpstreamAck(ids[0], f"submit_sm_resp OK message_id {','.join(ids)}", part_ids=tuple(ids))

    async def _submit(self, part: pdu.Submit, tracked: Any, index: int, deadline: float) -> str:
        bind = await self._acquire(deadline)
        # in flight until its id is indexed: a receipt that overtakes it is held, not handed over
        self.tracker.in_flight += 1
        try:
            return await self._submit_on(bind, part, tracked, index, deadline)
        finally:
            self.tracker.in_flight -= 1

    async def _submit_on(self, bind: Bind, part: pdu.Submit, tracked: Any, index: int, deadline: float) -> str:
        loop = asyncio.get_running_loop()
        try:
            status, body = await bind.request(lambda seq: pdu.submit_sm(part, seq), max(deadline - loop.time(), 0.001))
        except NotBound:
            self._counted["no_bind"].inc()
            raise NotSent("no live bind") from None
        except TimeoutError:
            self._counted["no_answer"].inc()
            raise UpstreamTimeout(f"no submit_sm_resp within {self.config.final_timeout:g}s") from None
        except BindLost as exc:
            self._counted["bind_lost"].inc()
            raise OutcomeUnknown(f"bind lost after submit_sm was written ({exc})") from None
        finally:
            await self._release(bind)
        self.submits.mark(time.time())
        if status == pdu.ROK:
            self._counted["ok"].inc()
            message_id = pdu.message_id(body)
            self._hand(self.tracker.accepted(tracked, index, message_id, time.time()))
            return message_id
        if status in NOT_NOW:
            self._counted["not_now"].inc()
            raise NotSent(pdu.status_text(status))
        self._counted["rejected"].inc()
        raise UpstreamRejected(pdu.status_text(status))

    async def _acquire(self, deadline: float) -> Bind:
        """A bound bind with a free window slot (the emptiest); NotSent when none comes."""
        best = self._free_bind()
        if best is not None:  # the usual case: no lock, no wait (nothing awaits in between)
            best.free -= 1
            return best
        loop = asyncio.get_running_loop()
        async with self._changed:
            self._slot_waiters += 1
            try:
                return await self._wait_for_slot(loop, deadline)
            finally:
                self._slot_waiters -= 1

    def _free_bind(self) -> Bind | None:
        best: Bind | None = None
        for b in self.binds:
            if b is not None and b.state == "bound" and b.free > 0 and (best is None or b.free > best.free):
                best = b
        return best

    async def _wait_for_slot(self, loop: asyncio.AbstractEventLoop, deadline: float) -> Bind:
        while True:
            live = [b for b in self.binds if b is not None and b.bound]
            if live:
                best = max(live, key=lambda b: b.free)
                if best.free > 0:
                    best.free -= 1
                    return best
            elif not any(b is not None and b.state == "binding" for b in self.binds):
                raise NotSent("no live bind")
            try:
                async with asyncio.timeout(max(deadline - loop.time(), 0)):
                    await self._changed.wait()
            except TimeoutError:
                why = "window full" if live else "no live bind"
                raise NotSent(f"{why} (window {self.window} per bind)") from None

    async def _release(self, bind: Bind) -> None:
        bind.free += 1
        if self._slot_waiters:
            async with self._changed:
                self._changed.notify()

    async def _keep(self, slot: int) -> None:
        """Keep one bind up: re-open it with backoff (1 s doubling to 60 s) when it drops or is refused."""
        delay = self.backoff_first
        while not self._closing:
            bind = Bind(self._peer, name=self.config.name, window=self.window, incoming=self._incoming)
            self.binds[slot] = bind
            try:
                await bind.open()
            except (OSError, TimeoutError, BindRefused, pdu.PduError, EOFError) as exc:
                bind.state = "down"
                log.warning("smpp_bind_failed", connection=self.config.name, slot=slot,
                            why=f"{type(exc).__name__}: {exc}", retry_in=delay)
            else:
                delay = self.backoff_first
                log.info("smpp_bound", connection=self.config.name, slot=slot)
                await self._notify_all()
                await bind.lost.wait()
                await bind.close()
            metrics.SMPP_BIND_EVENTS.labels(self.config.name, bind.state).inc()
            await self._notify_all()
            if self._closing:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff_max)

    async def _notify_all(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _sweep(self) -> None:
        """Once a second: receipts held for an id that never came are handed over by id."""
        while True:
            await asyncio.sleep(1.0)
            everything = self.tracker.in_flight == 0
            self._hand(self.tracker.expired_early(time.time(), everything=everything))

    async def _incoming(self, bind: Bind, command_id: int, whole: bytes) -> int:
        """A deliver_sm or data_sm: a receipt, or an inbound message; the status to answer."""
        name = self.config.name
        try:
            msg = pdu.deliver_sm(whole) if command_id == pdu.DELIVER_SM else pdu.data_sm(whole[16:])
        except pdu.PduError as exc:
            log.warning("smpp_undecodable", connection=name, why=str(exc), pdu=whole[:200].hex())
            metrics.SMPP_DELIVER.labels(name, "undecodable").inc()
            return pdu.ROK  # answered, so the SMSC does not send the same bytes forever
        if msg.esm_class & ESM_RECEIPT:
            return await self._receipt(msg)
        text = submit.decode_text(msg.short_message, data_coding=msg.data_coding, esm_class=msg.esm_class)
        raw = f"esm_class={msg.esm_class} data_coding={msg.data_coding} sm={msg.short_message.hex()}"
        metrics.SMPP_DELIVER.labels(name, "inbound").inc()
        if self._hooks.on_inbound is None:
            log.info("smpp_inbound", connection=name, source=msg.source_addr, dest=msg.destination_addr, text=text)
        else:
            await self._hooks.on_inbound(name, msg.source_addr, msg.destination_addr, text, raw)
        return pdu.ROK

    async def _receipt(self, msg: pdu.ShortMessage) -> int:
        name = self.config.name
        text = msg.short_message.decode("latin-1")
        rid, state = read_receipt(text, pdu.tlv_text(msg.tlvs.get(pdu.TLV_RECEIPTED_MESSAGE_ID)),
                                  pdu.tlv_int(msg.tlvs.get(pdu.TLV_MESSAGE_STATE)))
        if rid is None:
            log.warning("smpp_receipt_unmatched", connection=name, text=text[:200])
            metrics.SMPP_DELIVER.labels(name, "unmatched").inc()
            return pdu.ROK
        self.receipts.mark(time.time())
        settles = self.tracker.receipt(rid, state, text, time.time())
        if settles is None:
            settles = [Settle(None, rid, state, text)]
        metrics.SMPP_DELIVER.labels(name, "receipt" if settles else "held").inc()
        moved = await self._apply(settles)
        if settles and settles[0].message_id is None and not moved:
            # not known in memory: the services matched it in the store (a part after a
            # restart, another worker's message) or hold it until its message is known
            log.info("smpp_receipt_by_upstream_id", connection=name, upstream_id=rid, state=state)
            metrics.SMPP_DELIVER.labels(name, "unmatched").inc()
        return pdu.ROK

    async def _apply(self, settles: list[Settle]) -> int:
        """Hand settles to the services; a failure propagates (the deliver_sm is answered
        ESME_RX_T_APPN, so the SMSC sends it again)."""
        moved = 0
        if self._hooks.on_receipt is not None:
            for s in settles:
                if s.part is not None and s.message_id is not None and self._hooks.on_part_delivered is not None:
                    await self._hooks.on_part_delivered(self.config.name, s.message_id, s.part)
                moved += await self._hooks.on_receipt(self.config.name, s.message_id, s.upstream_id, s.state, s.raw)
        return moved

    def _hand(self, settles: list[Settle]) -> None:
        """Apply settles off the send path (early receipts, expired held ones)."""
        if settles:
            task = asyncio.create_task(self._apply_logged(settles))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _apply_logged(self, settles: list[Settle]) -> None:
        try:
            await self._apply(settles)
        except Exception:  # held in memory only (durable early receipts are a later step)
            log.exception("smpp_receipt_lost", connection=self.config.name, count=len(settles))

    async def close(self) -> None:
        """unbind every bind, stop the keepers."""
        self._closing = True
        for bind in self.binds:
            if bind is not None:
                await bind.close()
        for task in self._keepers:
            task.cancel()
        for task in [*self._keepers, *self._tasks]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._keepers = []
