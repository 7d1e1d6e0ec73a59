"""Recording an attempt's final outcome in the store, through database outages."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from pombo.domain import codes
from pombo.errors import StoreUnavailable, new_error_id
from pombo.ports import Clock, SendLedger

log = structlog.get_logger("pombo.dispatch")

SETTLE_RETRY_FOR = 60.0  # seconds an outcome the store could not take is retried


class Settler:
    """settle_ok / settle_failed, retried in the background while the store is away."""

    def __init__(self, store: SendLedger, clock: Clock, keep: Callable[[asyncio.Future[Any]], None]) -> None:
        self._store = store
        self._clock = clock
        self._keep = keep

    async def settle(self, name: str, message_id: int, code: int, *, raw: str, upstream_id: str | None = None) -> int:
        """Record OK or 300; the code, or WR when the store cannot take it right now (then it is
        retried in the background for SETTLE_RETRY_FOR seconds; after that reconciliation owns
        the message). A bug is logged once and never retried."""
        try:
            await self._record(message_id, code, raw=raw, upstream_id=upstream_id)
        except StoreUnavailable:
            log.warning("settle_deferred", connection=name, cdls_id=message_id, code=code)
            self._keep(asyncio.ensure_future(
                self.durably(lambda: self._record(message_id, code, raw=raw, upstream_id=upstream_id),
                             what="settle", connection=name, cdls_id=message_id)
            ))
            return codes.WR
        except Exception:
            log.exception("settle_failed", connection=name, cdls_id=message_id, code=code, error_id=new_error_id())
            return codes.WR
        if code != codes.OK:
            log.info("upstream_failed", connection=name, cdls_id=message_id)
        return code

    async def _record(self, message_id: int, code: int, *, raw: str, upstream_id: str | None) -> None:
        now = self._clock.now()
        if code == codes.OK:
            await self._store.settle_ok(message_id=message_id, upstream_id=upstream_id, raw=raw, now=now)
        else:
            await self._store.settle_failed(message_id=message_id, raw=raw, now=now)

    @staticmethod
    async def durably(write: Callable[[], Awaitable[Any]], *, what: str, **context: Any) -> bool:
        """Run `write` until the store takes it (backing off while it is away), for
        SETTLE_RETRY_FOR seconds at most. True when it was written."""
        delay, waited = 0.2, 0.0
        while waited < SETTLE_RETRY_FOR:
            await asyncio.sleep(delay)
            waited += delay
            try:
                await write()
            except StoreUnavailable:
                delay = min(delay * 2, 5.0)
                continue
            except Exception:
                log.exception(f"{what}_failed", error_id=new_error_id(), **context)
                return False
            log.info(f"{what}_recorded_late", **context)
            return True
        log.error(f"{what}_given_up", **context)
        return False
