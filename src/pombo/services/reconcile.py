"""WR is never limbo: messages whose upstream outcome was lost are reconciled, never resent.

A message still waiting (status 1) after its connection's final_timeout plus a grace has no
process left that will settle it (the process died). One process claims it and asks the
provider (Wavy status search, TWW StatusSMS): accepted -> OK plus its delivery state;
refused -> 300 with a refund; not known after `not_found_after` -> it never arrived: 300 with
a refund. Connections without a status query (Kannel, http template) -> delivery `unknown`,
still charged, for the operator to decide.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

import structlog

from pombo.domain.delivery import StatusReport
from pombo.domain.model import ConnectionConfig
from pombo.errors import StoreUnavailable, new_error_id
from pombo.ports import Catalogs, Clock, Connection, Orphans, SendLedger, UpstreamError
from pombo.services.dlr import DeliveryReports

log = structlog.get_logger("pombo.reconcile")

GRACE = 5.0  # on top of final_timeout: a live process settles within final_timeout
NOT_FOUND_AFTER = 300.0  # a provider may index a message late
GIVE_UP_AFTER = 86400.0  # a provider that cannot be asked for a day: `unknown`

class ReconcileStore(Catalogs, Orphans, SendLedger, Protocol):
    """What reconciliation needs: the configuration, orphans and settling."""


class Reconciler:
    """Settles orphaned WR messages and polls providers that have no push (TWW)."""

    def __init__(
        self,
        *,
        store: ReconcileStore,
        connection_for: Callable[[ConnectionConfig], Connection],
        reports: DeliveryReports,
        clock: Clock,
        not_found_after: float = NOT_FOUND_AFTER,
    ) -> None:
        self._store = store
        self._connection_for = connection_for
        self._reports = reports
        self._clock = clock
        self._not_found_after = not_found_after

    async def run_once(self) -> dict[str, int]:
        """One pass over the orphans this process could claim."""
        catalog = await self._store.catalog()
        longest = max((c.final_timeout for c in catalog.connections.values()), default=60.0)
        now = self._clock.now()
        counts = {"ok": 0, "failed": 0, "unknown": 0, "later": 0}
        for row in await self._store.claim_orphans(older_than=now - longest - GRACE, now=now):
            config = catalog.connections.get(row["connection"])
            outcome = await self._reconcile(row, config, now)
            counts[outcome] += 1
        if any(counts[k] for k in ("ok", "failed", "unknown")):
            log.warning("reconciled", **counts)
        return counts

    async def _reconcile(self, row: dict[str, Any], config: ConnectionConfig | None, now: float) -> str:
        message_id, age = int(row["id"]), now - float(row["created_at"])
        query = getattr(self._connection_for(config), "query", None) if config else None
        if query is None:
            await self._store.mark_unknown(message_id=message_id, now=now)
            return "unknown"
        try:
            report: StatusReport | None = await query(message_id, row["upstream_id"])
        except UpstreamError as exc:
            if age > GIVE_UP_AFTER:
                await self._store.mark_unknown(message_id=message_id, now=now)
                return "unknown"
            log.info("reconcile_query_failed", cdls_id=message_id, error=type(exc).__name__)
            return "later"
        if report is None:
            if age < self._not_found_after:
                return "later"
            await self._store.settle_failed(
                message_id=message_id, raw="not found at the provider when reconciling", now=now
            )
            return "failed"
        if not report.accepted:
            await self._store.settle_failed(message_id=message_id, raw=f"reconciled: {report.raw}", now=now)
            return "failed"
        await self._store.settle_ok(
            message_id=message_id, upstream_id=report.upstream_id, raw=f"reconciled: {report.raw}", now=now
        )
        found = StatusReport(message_id, report.upstream_id, report.states, True, report.raw)
        await self._reports.apply(row["connection"], [found])
        return "ok"

    async def poll(self) -> int:
        """Ask every enabled connection that can be polled (TWW) for its unread statuses."""
        catalog = await self._store.catalog()
        moved = 0
        for config in catalog.connections.values():
            poll = getattr(self._connection_for(config), "poll_unread", None) if config.enabled else None
            if poll is None:
                continue
            try:
                reports = await poll()
            except UpstreamError as exc:
                log.info("poll_failed", connection=config.name, error=type(exc).__name__)
                continue
            moved += await self._reports.apply(config.name, reports)
        return moved


async def every(seconds: float, job: Callable[[], Any], name: str) -> None:
    """Run `job` now and then every `seconds`, logging (not raising) its failures: the database
    away is expected now and then (a warning), anything else is a bug (an error, its traceback)."""
    while True:
        try:
            await job()
        except StoreUnavailable as exc:
            log.warning("background_job_deferred", job=name, error=str(exc))
        except Exception:
            log.exception("background_job_failed", job=name, error_id=new_error_id())
        await asyncio.sleep(seconds)
