"""The single place where settings, the store, connections and services are wired."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from pombo import metrics
from pombo.adapters.connections import SmppHooks, build_connection
from pombo.adapters.sql import migrate
from pombo.adapters.sql.factory import open_store
from pombo.config import Settings
from pombo.domain.inbound import from_smpp
from pombo.errors import StoreUnavailable
from pombo.ports import Clock, Store
from pombo.services.account import Accounts
from pombo.services.auth import Authenticator
from pombo.services.callbacks import CallbackSender
from pombo.services.dispatch import Dispatcher
from pombo.services.dlr import DeliveryReports
from pombo.services.inbound import InboundIntake, Replies
from pombo.services.make_sms import MakeSms
from pombo.services.operator import Operator
from pombo.services.reconcile import Reconciler, every
from pombo.services.rejections import RejectionRecorder
from pombo.services.smpp_receipts import SmppReceipts
from pombo.services.status import Status
from pombo.services.urlguard import UrlGuard

log = structlog.get_logger("pombo")

MAINTAIN_EVERY = 3600.0
HELD_RECEIPTS_EVERY = 2.0  # held SMPP receipts are tried again this often
AUTH_PRUNE_EVERY = 600.0  # failed attempts past the longest window (60 min) are forgotten this often


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        """Seconds since the epoch."""
        return time.time()


def configure_logging(settings: Settings) -> None:
    """structlog to stderr, JSON lines by default; never a whole token or a password."""
    level = logging.getLevelName(settings.log_level.upper())
    renderer: Any = structlog.processors.JSONRenderer() if settings.log_json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level if isinstance(level, int) else logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


@dataclass
class Services:
    """Everything the API calls, built once per process."""

    settings: Settings
    store: Store
    dispatcher: Dispatcher
    make_sms: MakeSms
    accounts: Accounts
    status: Status
    dlr: DeliveryReports
    operator: Operator
    inbound: InboundIntake
    replies: Replies
    rejections: RejectionRecorder
    reconciler: Reconciler | None = None
    smpp_receipts: SmppReceipts | None = None
    callbacks: CallbackSender | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def aclose(self) -> None:
        """Stop background work, let waiting sends finish, close everything."""
        try:
            for task in self.tasks:
                task.cancel()
            for task in self.tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            try:
                catalog = await self.store.catalog()
                longest = max((c.final_timeout for c in catalog.connections.values()), default=5.0)
            except StoreUnavailable:  # stopping during an outage: the default wait
                longest = 5.0
            await self.dispatcher.drain(timeout=longest + 1)
            await self.rejections.flush()  # the last seconds' rejections (kept on an outage: lost)
            if self.callbacks is not None:
                await self.callbacks.close()
        finally:  # whatever failed above, the database connections are closed
            await self.store.close()


async def build_services(settings: Settings, *, clock: Clock | None = None, store: Store | None = None) -> Services:
    """Wire the services for one process."""
    configure_logging(settings)
    clock = clock or SystemClock()
    store = store or await open_store(settings.database_url, durable=settings.pg_synchronous_commit)
    public_url = settings.public_url or "http://127.0.0.1:8000"
    authenticator = Authenticator(store, clock=clock)
    dlr = DeliveryReports(
        store=store, clock=clock, on_report=metrics.delivery_report, parts_settle=settings.kannel_parts_settle
    )
    smpp_receipts = SmppReceipts(store=store, dlr=dlr, clock=clock)
    intake = InboundIntake(store=store, clock=clock, tz=settings.tz, on_message=metrics.inbound_message)
    smpp_hooks = _smpp_hooks(smpp_receipts, intake, clock)
    dispatcher = Dispatcher(
        store,
        factory=lambda config: build_connection(config, public_url=public_url, smpp_hooks=smpp_hooks),
        clock=clock,
        on_outcome=metrics.upstream_outcome,
        on_attempt=metrics.upstream_attempt,
        # PostgreSQL may have several workers and hosts: `throughput` is granted by the database
        shared_throughput=settings.database_url.startswith("postgres"),
    )
    dispatcher.start()  # what waits in the queue (a restart after a crash) goes out now

    operator = Operator(store=store, clock=clock)
    guard = UrlGuard(settings.callback_allow)

    async def issue(customer_id: int, user_id: int | None) -> str:  # GetUserID tsid=1
        return await operator.mint_token(
            customer_id=customer_id, user_id=user_id, keep=settings.minted_tokens_per_user, ttl=settings.minted_token_ttl
        )

    services = Services(
        settings=settings,
        store=store,
        dispatcher=dispatcher,
        make_sms=MakeSms(
            store=store,
            authenticator=authenticator,
            dispatcher=dispatcher,
            clock=clock,
            tz=settings.tz,
            adm_customer_id=settings.adm_customer_id,
            url_guard=guard,
        ),
        accounts=Accounts(store=store, authenticator=authenticator, token_issuer=issue),
        status=Status(store=store, authenticator=authenticator, tz=settings.tz),
        dlr=dlr,
        operator=operator,
        inbound=intake,
        replies=Replies(store=store, authenticator=authenticator, tz=settings.tz),
        rejections=RejectionRecorder(store, clock=clock),
    )
    reconciler = Reconciler(
        store=store,
        connection_for=dispatcher.connection,
        reports=services.dlr,
        clock=clock,
        not_found_after=settings.not_found_after,
    )
    callbacks = CallbackSender(
        store=store,
        clock=clock,
        tz=settings.tz,
        max_tries=settings.callback_max_tries,
        base_delay=settings.callback_base_delay,
        guard=guard,
        timeout=settings.callback_timeout,
        per_customer=settings.callback_concurrency,
    )
    services.reconciler, services.callbacks, services.smpp_receipts = reconciler, callbacks, smpp_receipts
    jobs = (
        (settings.reconcile_every, reconciler.run_once, "reconcile"),
        (settings.poll_every, reconciler.poll, "poll"),
        # starts the due pushes and returns: a slow endpoint never holds the next claim
        (settings.callback_every, callbacks.pump, "callbacks"),
        (MAINTAIN_EVERY, store.maintain, "maintain"),
        (settings.reconcile_every, dlr.settle_parts, "kannel_parts"),
        (AUTH_PRUNE_EVERY, operator.prune_auth_failures, "auth_prune"),
        (settings.rejections_flush_every, services.rejections.flush, "rejections"),
        # SMPP receipts that matched nothing yet (another worker's, before its id was recorded)
        (HELD_RECEIPTS_EVERY, smpp_receipts.retry_held, "smpp_held"),
        (MAINTAIN_EVERY, smpp_receipts.prune, "smpp_parts_prune"),
    )
    for seconds, job, name in jobs if settings.background_jobs else ():
        services.tasks.append(asyncio.create_task(every(seconds, job, name)))
    if settings.background_jobs:  # SMPP binds open now: receipts come in whether we send or not
        for config in (await store.catalog()).connections.values():
            if config.kind == "smpp" and config.enabled:
                getattr(dispatcher.connection(config), "start", lambda: None)()
    # what exists now lives as long as the process: keep it out of every future full collection
    gc.collect()
    gc.freeze()
    # a send allocates a few hundred objects, nearly all short-lived: collect the young generation
    # every 10,000 allocations instead of 700 (sqlite-slow50-256: 3,988-4,256 -> ~4,330/s, RSS
    # unchanged at 97 MB)
    gc.set_threshold(10_000, 50, 100)
    return services


def _smpp_hooks(receipts: SmppReceipts, intake: InboundIntake, clock: Clock) -> SmppHooks:
    """SMPP receipts go to DeliveryReports (matched in the store, or held, when the adapter
    could not match them in memory); a deliver_sm that is not a receipt is an inbound message
    (SPEC §12, §14) and goes to the inbound intake. A failure propagates: the deliver_sm is
    answered with an error and the SMSC delivers it again."""

    async def on_inbound(connection: str, source: str, dest: str, text: str, raw: str) -> None:
        await intake.accept(connection, [from_smpp(source, dest, text, raw, now=clock.now())])

    return SmppHooks(on_receipt=receipts.receipt, on_inbound=on_inbound, on_parts=receipts.parts,
                     on_part_delivered=receipts.part_delivered)


def upgrade_database(database_url: str) -> None:
    """Apply the schema migrations (before any worker starts)."""
    migrate.upgrade(database_url)


async def open_operator(settings: Settings) -> tuple[Operator, Callable[[], Awaitable[None]]]:
    """The operator service on the configured database (migrated), and how to close it."""
    store = await open_store(settings.database_url, durable=settings.pg_synchronous_commit)
    return Operator(store=store, clock=SystemClock()), store.close
