"""Hands accepted messages to their upstream connection, now when there is capacity, else
through the durable queue (SPEC §11).

The fast path (under `throughput` and `window`, connection not skipped, nothing of its chain
waiting) sends right after the accept, with no queue row. A message that must wait gets a queue
row, and the pump (pump.py) claims it before sending it. Outcomes are told apart by type only:
NotSent goes back to wait (backoff, Retry-After, the fallbacks), UpstreamRejected is 300 and
refunded, OutcomeUnknown is never sent again (WR until a report or a status query settles it).
The caller waits at most `ack_timeout` for OK or 300, else hears WR.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

import structlog

from pombo.domain import codes
from pombo.domain.catalog import Catalog
from pombo.domain.engine import backoff, begin_before, cannot_begin_within, certainly_late
from pombo.domain.model import ConnectionConfig, OutboundSms
from pombo.errors import StoreUnavailable
from pombo.ports import (
    Catalogs,
    Clock,
    Connection,
    NotSent,
    OutcomeUnknown,
    Pacing,
    Queue,
    SendLedger,
    UpstreamRejected,
    Waiting,
)
from pombo.services.engine.capacity import Capacity
from pombo.services.engine.health import Health
from pombo.services.engine.job import Job
from pombo.services.engine.pump import Pump
from pombo.services.engine.settle import Settler

log = structlog.get_logger("pombo.dispatch")

ConnectionFactory = Callable[[ConnectionConfig], Connection]
Outcome = Callable[[str, int, int], None]  # (connection, code, failures in a row) -> metrics
Attempt = Callable[[str, str], None]  # (connection, outcome kind) -> metrics


class EngineStore(Catalogs, SendLedger, Queue, Pacing, Protocol):
    """What the engine needs: the configuration, settling, the queue and shared pacing."""


class Dispatcher(Capacity):
    """One live Connection per configured connection, its pacing and health, and the waiters."""

    def __init__(
        self,
        store: EngineStore,
        *,
        factory: ConnectionFactory,
        clock: Clock,
        on_outcome: Outcome | None = None,
        on_attempt: Attempt | None = None,
        shared_throughput: bool = False,
    ) -> None:
        super().__init__(store, clock, shared=shared_throughput)
        self._store = store
        self._factory = factory
        self._clock = clock
        self._on_outcome = on_outcome
        self._on_attempt = on_attempt
        self._live: dict[str, Connection] = {}
        self._retired: list[Connection] = []
        self._background: set[asyncio.Future[Any]] = set()
        self._waiters: dict[int, asyncio.Future[int]] = {}
        self.backlog: set[str] = set()  # heads this process knows have messages waiting
        # head -> customer -> messages this process queued on their first try, not yet claimed:
        # at least that many of the customer's wait before its next one, and the customers'
        # priorities: what the round robin certainly serves first (see dispatch, `_before`)
        self._ahead: dict[str, dict[int, int]] = {}
        self._priority: dict[int, int] = {}
        self.settler = Settler(store, clock, self._keep)
        self.pump: Any = None  # pump.Pump, started by start()

    # ------------------------------------------------------------ connections

    def connection(self, config: ConnectionConfig) -> Connection:
        """The live connection for this configuration."""
        live = self._live.get(config.name)
        if live is not None and (live.config is config or live.config == config):  # `is`: 1.5 µs a send less
            return live
        if live is not None:
            self._retired.append(live)  # closed at shutdown; in-flight sends keep using it
        live = self._live[config.name] = self._factory(config)
        return live

    def window_now(self, name: str) -> int | None:
        """What the live connection says it can take now (see Capacity.window_now)."""
        window_now = getattr(self._live.get(name), "window_now", None)
        if not callable(window_now):
            return None
        now: int | None = window_now()
        return now

    # ------------------------------------------------------------ the send

    async def dispatch(
        self, config: ConnectionConfig, sms: OutboundSms, *, customer_id: int = 0, priority: int = 0, segments: int = 1,
        received_at: float | None = None,
    ) -> int:
        """Send now or queue, and return 0 or 300, or WR (1) when the ack timeout elapses first.

        The caller waits at most `ack_timeout` (SPEC §11) counted from `received_at`, the event
        loop's clock when its request came in (the accept before this, and a busy loop, take
        their share of it), else from now."""
        now = self._clock.now()
        if self.pump is None:
            self.start()
        job = Job(sms, customer_id, priority, segments, config.name, now, config.name)
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[int] = loop.create_future()
        self._waiters[sms.id] = waiter
        health = self.health.get(config.name)
        catalog = None if health is None or health.usable(now) else await self._store.catalog()
        target = self.target(config, catalog, now)
        answer_by = (loop.time() if received_at is None else received_at) + config.ack_timeout
        if target is not None and config.name not in self.backlog and self.free(target) > 0:
            self.start_attempt(target, job)
        else:
            waiting = self._ahead.setdefault(config.name, {})
            ahead = waiting.get(customer_id, 0)
            waiting[customer_id] = ahead + 1
            self._priority[customer_id] = priority
            # this process alone paces the chain (SQLite: one worker): when the messages certain to
            # go before this one (its customer's own, and the other customers' turns of the round
            # robin) cannot all begin before its deadline, neither can it, and the caller hears WR
            # as soon as the message is durably queued instead of at the deadline
            hopeless = False
            if not self._shared:
                rate = self._chain_rate(config, catalog or await self._store.catalog())
                left = answer_by - loop.time()
                if rate > 0:
                    before = self._before(waiting, customer_id, priority, ahead, certainly_late(rate, left))
                    if self.settings(config).fallback:
                        hopeless = cannot_begin_within(before, rate, left)
                    else:  # one connection: its window's state says when a turn comes
                        hopeless = self.limiter(config).wait_for(before) > left
            self._keep(loop.create_task(self._queue(job, now, waiter if hopeless else None)))
        timer = loop.call_at(answer_by, _answer_wr, waiter)
        try:
            return await waiter
        finally:
            timer.cancel()
            self._waiters.pop(sms.id, None)

    async def _queue(self, job: Job, now: float, waiter: asyncio.Future[int] | None) -> None:
        await self.wait(job, now=now, not_before=now, note=None)
        if waiter is not None:
            _answer_wr(waiter)

    def _chain_rate(self, config: ConnectionConfig, catalog: Catalog) -> float:
        """The most sends per second any connection of the chain may begin (0: one has no cap)."""
        rates = [self.settings(config).throughput]
        for name in self.settings(config).fallback:
            other = catalog.connections.get(name)
            if other is not None:
                rates.append(self.settings(other).throughput)
        return 0.0 if min(rates) <= 0 else max(rates)

    def _before(self, waiting: dict[int, int], customer_id: int, priority: int, ahead: int, enough: int) -> int:
        """Messages certain to begin before the customer's next one on this chain (begin_before)."""
        if ahead == 0:
            return 0  # first in its line: a lower bound without counting (higher priority aside)
        others = ((n, self._priority.get(c, 0)) for c, n in waiting.items() if c != customer_id)
        return begin_before(ahead, priority, others, enough)

    def claimed(self, job: Job) -> None:
        """The pump took a message from the queue (see `_ahead`)."""
        waiting = self._ahead.get(job.head)
        if job.attempts == 0 and waiting is not None:
            left = waiting.get(job.customer_id, 0) - 1
            if left > 0:
                waiting[job.customer_id] = left
            else:
                waiting.pop(job.customer_id, None)
                if not waiting:
                    del self._ahead[job.head]

    def waiting_only_in(self, heads: set[str]) -> None:
        """The store's count: messages wait for these chains and no others. Nobody is ahead in
        the others."""
        for head in [h for h in self._ahead if h not in heads]:
            del self._ahead[head]

    def start_attempt(self, target: ConnectionConfig, job: Job, *, reserved: bool = False) -> None:
        """Send `job` to `target` in a task of its own (its capacity taken unless `reserved`)."""
        name = target.name
        if not reserved:
            self.limiter(target).take(1)
            self.in_flight_by[name] = self.in_flight_by.get(name, 0) + 1
        health = self.health.get(name)
        if health is not None:
            health.started(self._clock.now())
        self._keep(asyncio.get_running_loop().create_task(self._attempt(target, job)))

    async def _attempt(self, target: ConnectionConfig, job: Job) -> None:
        name, mid = target.name, job.sms.id
        try:
            if name != job.routed_to and not await self._route(target, job):
                self.limiter(target).give_back(1)
                return
            self.limiter(target).began()
            try:
                ack = await self.connection(target).send(job.sms)
            except NotSent as exc:
                self._count(target, "not_sent")
                await self._retry(target, job, exc)
                return
            except UpstreamRejected as exc:
                kind, code, raw, upstream_id = "rejected", codes.PROVIDER_ERROR, exc.raw, None
            except OutcomeUnknown as exc:
                kind, code, raw, upstream_id = "unknown", codes.WR, exc.raw, None
            except Exception:
                # a bug in a connection: nothing reached the handset that we know of; refund
                log.exception("upstream_crashed", connection=name, cdls_id=mid)
                kind, code, raw, upstream_id = "rejected", codes.PROVIDER_ERROR, "internal error in connection", None
            else:
                kind, code, raw, upstream_id = "ok", codes.OK, ack.raw, ack.upstream_id
        finally:
            self.in_flight_by[name] -= 1
            if self.backlog:
                self.wake.set()  # a window slot is free: the pump may send more
        health = self._count(target, kind)
        if self._on_outcome is not None:
            self._on_outcome(name, code, health.consecutive_failures)
        if kind == "unknown":
            # it may have reached the handset: never sent again; WR until a report or a status
            # query settles it (reconciliation), charged
            await self._note(mid, name, "unknown", raw)
            log.warning("upstream_outcome_unknown", connection=name, cdls_id=mid)
        else:
            code = await self.settler.settle(name, mid, code, raw=raw, upstream_id=upstream_id)
        self.resolve(mid, code)

    def _count(self, target: ConnectionConfig, kind: str) -> Health:
        health = self.health_of(target.name)
        health.outcome(kind, self._clock.now(), has_fallback=bool(self.settings(target).fallback))
        if self._on_attempt is not None:
            self._on_attempt(target.name, kind)
        return health

    async def _route(self, target: ConnectionConfig, job: Job) -> bool:
        """A fallback takes the message: its log row names it (and its cost) before the send,
        so a quick delivery report finds it. False when the store is away (it waits again)."""
        now = self._clock.now()
        try:
            catalog = await self._store.catalog()
            cost = catalog.cost(job.sms.dest, target.name) * job.segments
            await self._store.route_to(message_id=job.sms.id, connection=target.name, cost=cost, now=now)
        except StoreUnavailable:
            await self.wait(job, now=now, not_before=now + 1, note=None)
            return False
        job.routed_to = target.name
        return True

    async def _retry(self, target: ConnectionConfig, job: Job, exc: NotSent) -> None:
        """Not sent: back to wait, after a backoff on the same connection, or at once when the
        connection is now skipped (its fallback takes it)."""
        job.attempts += 1
        now = self._clock.now()
        delay = 0.0 if not self.health_of(target.name).usable(now) else backoff(job.attempts, exc.retry_after)
        log.info("upstream_not_sent", connection=target.name, cdls_id=job.sms.id, retry_in=delay)
        await self.wait(job, now=now, not_before=now + delay, note=exc.raw)

    async def wait(self, job: Job, *, now: float, not_before: float, note: str | None) -> None:
        """Put the message in the durable queue (retried while the store is away)."""
        item = Waiting(job.sms.id, job.customer_id, job.head, job.priority, not_before, job.enqueued_at,
                       job.attempts, note[:500] if note is not None else None)
        try:
            await self._store.enqueue(item, note=note, now=now)
        except StoreUnavailable:
            await self.settler.durably(lambda: self._store.enqueue(item, note=note, now=now),
                                       what="enqueue", cdls_id=job.sms.id)
        self.backlog.add(job.head)
        self.wake.set()

    async def _note(self, message_id: int, name: str, kind: str, raw: str) -> None:
        try:
            await self._store.record_attempt(message_id=message_id, connection=name, kind=kind, raw=raw,
                                             now=self._clock.now())
        except StoreUnavailable:
            log.warning("attempt_not_logged", connection=name, cdls_id=message_id, kind=kind)

    def resolve(self, message_id: int, code: int) -> None:
        """Answer the caller still waiting for this message in this process, if any."""
        waiter = self._waiters.get(message_id)
        if waiter is not None and not waiter.done():
            waiter.set_result(code)

    # ------------------------------------------------------------ visibility

    async def report(self) -> dict[str, dict[str, Any]]:
        """Every configured connection, used yet or not: state, queue length, age of the oldest
        waiting message, sends in flight and outcomes by kind (this process's), and its pacing
        settings (throughput, window, fallback)."""
        catalog = await self._store.catalog()
        stats = await self._store.queue_stats()
        now = self._clock.now()
        out: dict[str, dict[str, Any]] = {}
        for name in sorted({*catalog.connections, *stats, *self.health}):
            health = self.health.get(name) or Health()
            waiting, oldest = stats.get(name, (0, now))
            config = catalog.connections.get(name)
            settings = self.settings(config) if config is not None else None
            out[name] = {
                "state": health.state,
                "consecutive_failures": health.consecutive_failures,
                "sent": health.sent,
                "failed": health.failed,
                "queue": waiting,
                "oldest_age": round(max(0.0, now - oldest), 3) if waiting else 0.0,
                "in_flight": self.in_flight_by.get(name, 0),
                "outcomes": dict(health.by_kind),
                "throughput": settings.throughput if settings is not None else 0.0,
                "window": settings.window if settings is not None else 0,
                "fallback": list(settings.fallback) if settings is not None else [],
                "skipped_for": round(max(0.0, health.skipped_until - now), 3) if health.skipped_until else 0.0,
            }
            # a connection that keeps sessions (smpp) shows them: binds, window use, rates
            observe = getattr(self._live.get(name), "observe", None)
            if callable(observe):
                out[name].update(observe())
        return out

    # ------------------------------------------------------------ life cycle

    def start(self) -> None:
        """Start the pump that sends what waits in the queue (after a restart too)."""
        if self.pump is None:
            self.pump = Pump(self, self._store, self._clock)
            self.pump.start()

    def _keep(self, task: asyncio.Future[Any]) -> None:
        """Hold a reference to background work until it is done (drain() waits for it)."""
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    @property
    def in_flight(self) -> int:
        """Sends and queue writes still running."""
        return sum(1 for task in self._background if not task.done())

    async def drain(self, timeout: float) -> None:
        """Stop the pump, wait for the sends in flight (at shutdown), close every connection."""
        if self.pump is not None:
            await self.pump.stop()
        if self._background:
            await asyncio.wait(set(self._background), timeout=timeout)
        for connection in [*self._live.values(), *self._retired]:
            await connection.close()
        self._live.clear()
        self._retired.clear()


def _answer_wr(waiter: asyncio.Future[int]) -> None:
    if not waiter.done():
        waiter.set_result(codes.WR)

