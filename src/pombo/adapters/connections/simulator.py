"""An in-process upstream for `pombo demo` and tests: no network at all."""

from __future__ import annotations

import asyncio

from pombo.domain.model import ConnectionConfig, OutboundSms, UpstreamAck
from pombo.ports import UpstreamRejected, UpstreamTimeout


class SimulatorConnection:
    """Accepts everything as `sim-<id>` after options["delay"] seconds, except destinations
    starting with options["fail_prefix"]; a delay past final_timeout is an UpstreamTimeout."""

    def __init__(self, config: ConnectionConfig, *, public_url: str = "") -> None:
        self.config = config
        self._delay = float(config.options.get("delay", 0) or 0)
        self._fail_prefix = str(config.options.get("fail_prefix") or "")

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
        return UpstreamAck(f"sim-{sms.id}", "simulated OK")

    async def close(self) -> None:
        """Nothing to release."""
