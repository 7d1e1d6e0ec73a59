"""An in-process upstream for `pombo demo` and tests: no network at all."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

from pombo.domain.model import ConnectionConfig, OutboundSms, UpstreamAck
from pombo.ports import UpstreamRejected, UpstreamTimeout

log = structlog.get_logger("pombo.simulator")

OnInbound = Callable[[str, str, str, str, str], Awaitable[None]]


class SimulatorConnection:
    """Accepts everything as `sim-<id>` after options["delay"] seconds, except destinations
    starting with options["fail_prefix"]; a delay past final_timeout is an UpstreamTimeout.
    With options["reply"], the handset answers every message with a "?" in it with that text
    options["reply_after"] seconds later, as an inbound message (SPEC §14) from the handset."""

    def __init__(self, config: ConnectionConfig, *, public_url: str = "", on_inbound: OnInbound | None = None) -> None:
        self.config = config
        self._delay = float(config.options.get("delay", 0) or 0)
        self._fail_prefix = str(config.options.get("fail_prefix") or "")
        self._reply = str(config.options.get("reply") or "")
        self._reply_after = float(config.options.get("reply_after", 1.0) or 0)
        self._on_inbound = on_inbound
        self._replies: set[asyncio.Task[None]] = set()

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
        if self._reply and self._on_inbound is not None and "?" in sms.text:
            task = asyncio.ensure_future(self._answer(sms))
            self._replies.add(task)
            task.add_done_callback(self._replies.discard)
        return UpstreamAck(f"sim-{sms.id}", "simulated OK")

    async def _answer(self, sms: OutboundSms) -> None:
        await asyncio.sleep(self._reply_after)
        assert self._on_inbound is not None
        try:
            await self._on_inbound(self.config.name, sms.dest, "", self._reply, f"simulated reply to sim-{sms.id}")
        except Exception:  # a demo's reply lost: logged, nothing else depends on it
            log.exception("simulated_reply_failed", connection=self.config.name)

    async def close(self) -> None:
        """Stop the replies not yet given."""
        for task in list(self._replies):
            task.cancel()
        for task in list(self._replies):
            with contextlib.suppress(asyncio.CancelledError):
                await task
