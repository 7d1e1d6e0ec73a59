"""An in-process upstream for `pombo demo` and tests: no network to a provider at all.

With options["reports"] it also behaves like a provider that sends delivery reports: after an
accepted send it reports `sent` at once, then `delivered` (or, for a share options["undelivered"]
of the messages, `undelivered`) about options["report_delay"] seconds later. The reports go
through the real path, Kannel's dlr-url form posted to this process's own
`/dlr/{name}/{dlr_secret}` (public_url), so reports and customer callbacks can be tried.

With options["reply"], the handset answers every message with a "?" in it with that text
options["reply_after"] seconds after its `delivered` report (after the accept when there are
no reports), as an inbound message (SPEC §14) from the handset handed to on_inbound, so
`GetSMSReply` can be tried.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any
from urllib.parse import urlsplit

import structlog

from pombo.adapters.connections.httpclient import HttpPool
from pombo.domain.model import ConnectionConfig, OutboundSms, UpstreamAck
from pombo.ports import UpstreamRejected, UpstreamTimeout

log = structlog.get_logger("pombo.simulator")

KANNEL_SENT, KANNEL_DELIVERED, KANNEL_UNDELIVERED = 8, 1, 2  # Kannel's %d bits (SPEC §8)

OnInbound = Callable[[str, str, str, str, str], Awaitable[None]]  # (connection, source, dest, text, raw)


class SimulatorConnection:
    """Accepts everything as `sim-<id>` after options["delay"] seconds, except destinations
    starting with options["fail_prefix"]; a delay past final_timeout is an UpstreamTimeout."""

    def __init__(self, config: ConnectionConfig, *, public_url: str = "", on_inbound: OnInbound | None = None) -> None:
        self.config = config
        options = config.options
        self._delay = float(options.get("delay", 0) or 0)
        self._fail_prefix = str(options.get("fail_prefix") or "")
        self._reports = bool(options.get("reports")) and bool(public_url) and bool(config.dlr_secret)
        self._report_delay = float(options.get("report_delay", 1.0) or 0)
        self._undelivered = float(options.get("undelivered", 0) or 0)
        self._reply = str(options.get("reply") or "")
        self._reply_after = float(options.get("reply_after", 1.0) or 0)
        self._on_inbound = on_inbound
        self._public_url = public_url.rstrip("/")
        self._pool: HttpPool | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self._random = random.Random()

    def __repr__(self) -> str:
        return f"SimulatorConnection(name={self.config.name!r})"

    async def send(self, sms: OutboundSms) -> UpstreamAck:
        """Pretend to submit one message."""
        if self._delay:
            if self._delay >= self.config.final_timeout:
                await asyncio.sleep(self.config.final_timeout)
                raise UpstreamTimeout(f"no answer within {self.config.final_timeout:g}s")
            await asyncio.sleep(self._delay)
        if self._fail_prefix and sms.dest.startswith(self._fail_prefix):
            raise UpstreamRejected("simulated failure")
        if self._reports:
            self._later(self._report(sms))
        elif self._answers(sms):  # no reports to wait for: the handset answers after the accept
            self._later(self.after_delivery(sms))
        return UpstreamAck(f"sim-{sms.id}", "simulated OK")

    def _later(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def _answers(self, sms: OutboundSms) -> bool:
        return bool(self._reply) and self._on_inbound is not None and "?" in sms.text

    async def _report(self, sms: OutboundSms) -> None:
        """What a provider's network would say about the message, as delivery reports."""
        await asyncio.sleep(0.05)  # after the accept is recorded
        await self._post(sms.id, KANNEL_SENT, f"id:sim-{sms.id} stat:ENROUTE")
        await asyncio.sleep(self._report_delay * self._random.uniform(0.7, 1.3))
        if self._random.random() < self._undelivered:
            await self._post(sms.id, KANNEL_UNDELIVERED, f"id:sim-{sms.id} stat:UNDELIV err:001")
            return  # a handset that never got the message does not answer it
        await self._post(sms.id, KANNEL_DELIVERED, f"id:sim-{sms.id} stat:DELIVRD err:000")
        await self.after_delivery(sms)

    async def after_delivery(self, sms: OutboundSms) -> None:
        """The handset's answer (SPEC §14): a message with a "?" in it gets options["reply"]
        options["reply_after"] seconds later, an inbound message from sms.dest handed to the
        gateway's intake (on_inbound, as an SMPP deliver_sm is). The simulator names no
        correlation: the reply is routed to the latest message sent to that handset."""
        if not self._answers(sms):
            return
        await asyncio.sleep(self._reply_after)
        assert self._on_inbound is not None
        try:
            await self._on_inbound(self.config.name, sms.dest, "", self._reply, f"simulated reply to sim-{sms.id}")
        except Exception:  # a demo's reply lost: logged, nothing else depends on it
            log.exception("simulated_reply_failed", connection=self.config.name)

    async def _post(self, message_id: int, kind: int, answer: str) -> None:
        from urllib.parse import quote

        parts = urlsplit(self._public_url)
        if self._pool is None:
            self._pool = HttpPool(parts.scheme, parts.hostname or "127.0.0.1",
                                  parts.port or (443 if parts.scheme == "https" else 80), limit=8)
        target = (f"{parts.path}/dlr/{quote(self.config.name)}/{quote(self.config.dlr_secret)}"
                  f"?id={message_id}&type={kind}&answer={quote(answer)}")
        try:
            await self._pool.request("GET", target, headers=None, body=None, connect_timeout=5, timeout=10)
        except Exception as exc:  # a demo nicety: a lost report is logged, never raised
            log.warning("simulator_report_failed", message_id=message_id, error=str(exc))

    async def close(self) -> None:
        """Stop the reports and replies still to come and release the socket."""
        for task in list(self._pending):
            task.cancel()
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        if self._pool is not None:
            self._pool.close()
            self._pool = None
