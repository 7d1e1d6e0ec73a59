"""The pump: sends what waits in the durable queue as capacity frees, fairly (the store claims
high priority first, then round robin across customers), and expires what waited too long."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

import structlog

from pombo.domain import codes
from pombo.domain.catalog import Catalog
from pombo.domain.engine import BACKOFF_MAX, EngineSettings
from pombo.domain.model import ConnectionConfig
from pombo.errors import StoreUnavailable, new_error_id
from pombo.ports import Claimed, Clock
from pombo.services.engine.job import Job

if TYPE_CHECKING:
    from pombo.services.engine.dispatcher import Dispatcher, EngineStore

log = structlog.get_logger("pombo.dispatch")

TICK = 0.05  # seconds between passes when nothing wakes the pump
MIN_GAP = 0.005  # at most one pass per this many seconds, however often sends finish
POLL_EVERY = 0.5  # look at the whole queue (rows other workers wrote, or left by a crash)
EXPIRE_EVERY = 1.0  # max_queue_time is honoured within this (SPEC: within a second)
CLAIM_BATCH = 200


class Pump:
    """One background task per process."""

    def __init__(self, dispatcher: Dispatcher, store: EngineStore, clock: Clock) -> None:
        self._d = dispatcher
        self._store = store
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self.stats: dict[str, tuple[int, float]] = {}  # the last queue_stats()

    def start(self) -> None:
        """Run in the background until stop()."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop after the current pass."""
        task, self._task = self._task, None
        # cancelled until it is done: a cancellation that meets a completing await can be lost
        # (asyncio.wait_for in Python 3.11 returns the result instead), and awaiting the task
        # once would then wait for ever
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=1.0)
        if task is not None and not task.cancelled() and task.exception() is not None:
            log.warning("pump_stopped_with_error", error=repr(task.exception()))

    async def _run(self) -> None:
        next_poll = next_expiry = 0.0
        while True:
            self._d.wake.clear()  # before the pass: what sets it from here on means a pass more
            try:
                now = time.monotonic()
                if now >= next_poll:
                    next_poll = now + POLL_EVERY
                    self.stats = await self._store.queue_stats()
                    self._d.backlog |= set(self.stats)
                    self._d.waiting_only_in(set(self.stats))
                if self._d.backlog:
                    catalog = await self._store.catalog()
                    for head in list(self._d.backlog):
                        await self._drain(head, catalog)
                if now >= next_expiry and self.stats:
                    next_expiry = now + EXPIRE_EVERY
                    await self._expire(await self._store.catalog())
            except StoreUnavailable as exc:
                log.warning("pump_deferred", error=str(exc))
                await asyncio.sleep(1.0)
            except Exception:
                log.exception("pump_failed", error_id=new_error_id())
                await asyncio.sleep(1.0)
            await asyncio.sleep(MIN_GAP)
            if not self._d.wake.is_set():
                # asyncio.timeout, not wait_for: wait_for swallows a cancellation that arrives
                # as the event is set (Python 3.11), and stop() would wait for ever
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(TICK):
                        await self._d.wake.wait()

    async def _drain(self, head: str, catalog: Catalog) -> None:
        """Claim as many due messages of this chain as its target can take now, and send them."""
        config = catalog.connections.get(head)
        if config is None or not config.enabled:
            return
        d, now = self._d, self._clock.now()
        target = d.target(config, catalog, now)
        if target is None:
            return
        free = min(d.free(target), CLAIM_BATCH)
        if d.health_of(target.name).skipped_until is not None:
            free = min(free, 1)  # the probe after a skip
        if free <= 0:
            return
        self._reserve(target, free)
        claimed: list[Claimed] = []
        try:
            # a backoff was for the head; a fallback takes its waiting messages at once
            due = now if target is config else now + BACKOFF_MAX
            claimed = await self._store.claim_due(connection=head, limit=free, now=due)
        finally:
            self._release(target, free - len(claimed))
        if len(claimed) < free:
            d.backlog.discard(head)
        for c in claimed:
            job = Job.of(c)
            d.claimed(job)
            d.start_attempt(target, job, reserved=True)

    def _reserve(self, target: ConnectionConfig, n: int) -> None:
        self._d.limiter(target).take(n)
        self._d.in_flight_by[target.name] = self._d.in_flight_by.get(target.name, 0) + n

    def _release(self, target: ConnectionConfig, n: int) -> None:
        if n > 0:
            self._d.limiter(target).give_back(n)
            self._d.in_flight_by[target.name] -= n

    async def _expire(self, catalog: Catalog) -> None:
        """300 `expired in queue`, refunded, for what waited longer than max_queue_time."""
        now = self._clock.now()
        for head in list(self.stats):
            config = catalog.connections.get(head)
            limit = EngineSettings.of(config).max_queue_time if config is not None else EngineSettings().max_queue_time
            if self.stats[head][1] >= now - limit:
                continue
            for message_id in await self._store.expire(connection=head, enqueued_before=now - limit, now=now):
                log.warning("expired_in_queue", connection=head, cdls_id=message_id)
                self._d.resolve(message_id, codes.PROVIDER_ERROR)
            self.stats = await self._store.queue_stats()

