"""Delivery reports: pushed by providers (SPEC §8), polled (TWW) or asked for (reconciliation).

Every source ends in `DeliveryReports.apply`, which keeps the raw report and moves the message
forward only (a `delivered` never goes back to `sent`).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import orjson
import structlog

from pombo.domain import delivery
from pombo.domain.delivery import StatusReport
from pombo.domain.ints import uint
from pombo.domain.model import ConnectionConfig
from pombo.errors import StoreUnavailable
from pombo.ports import Catalogs, Clock, Deliveries

log = structlog.get_logger("pombo.dlr")
# Kannel reports each part it sent with a final receipt (%d 1, 2, 16, 34, 66; %A stat: ...)
PART_RECEIPTS = delivery.FINAL | {delivery.UNKNOWN}

class ReportStore(Catalogs, Deliveries, Protocol):
    """What delivery reports need: the configuration and the deliveries."""


class Forbidden(Exception):
    """Unknown connection or wrong secret: answered 403 alike, nothing changes."""


Parser = Callable[[ConnectionConfig, Mapping[str, str], bytes], list[StatusReport]]


def parse_wavy(_: ConnectionConfig, params: Mapping[str, str], body: bytes) -> list[StatusReport]:
    """Wavy's callbacks: one JSON object, or a list of them."""
    try:
        data = orjson.loads(body) if body else dict(params)
    except orjson.JSONDecodeError:
        return [StatusReport(None, None)]
    items = data if isinstance(data, list) else [data]
    reports = [
        StatusReport(
            message_id=uint(str(item.get("correlationId") or "")),
            upstream_id=str(item["id"]) if item.get("id") is not None else None,
            states=delivery.wavy_states(item),
        )
        for item in items
        if isinstance(item, dict)
    ]
    return reports or [StatusReport(None, None)]


def parse_kannel(_: ConnectionConfig, params: Mapping[str, str], body: bytes) -> list[StatusReport]:
    """Kannel's dlr-url: our id, the %d bit mask and the receipt text %A (`answer`)."""
    state = delivery.kannel_state(params.get("type") or "", params.get("answer") or "")
    return [StatusReport(uint(params.get("id")), None, (state,) if state else ())]


def parse_template(config: ConnectionConfig, params: Mapping[str, str], body: bytes) -> list[StatusReport]:
    """The http template's optional `dlr` mapping: which fields carry the id and the status,
    and how its values map to states, e.g.
    dlr: {id_field: ref, id_is: cdls_id, status_field: status, states: {DELIVRD: delivered}}."""
    mapping = config.options.get("dlr") or {}
    fields: dict[str, Any] = dict(params)
    if body:
        try:
            data = orjson.loads(body)
            if isinstance(data, dict):
                fields.update(data)
        except orjson.JSONDecodeError:
            pass
    raw_id = str(fields.get(mapping.get("id_field", "id"), "") or "")
    status = str(fields.get(mapping.get("status_field", "status"), "") or "")
    state = (mapping.get("states") or {}).get(status) or (status.lower() if status.lower() in delivery.STATES else None)
    if mapping.get("id_is", "cdls_id") == "cdls_id":
        return [StatusReport(uint(raw_id), None, (state,) if state else ())]
    return [StatusReport(None, raw_id or None, (state,) if state else ())]


PARSERS: dict[str, Parser] = {"wavy": parse_wavy, "kannel": parse_kannel, "http": parse_template}


class DeliveryReports:
    """Authenticates pushed reports by the connection's secret and applies every report."""

    def __init__(
        self,
        *,
        store: ReportStore,
        clock: Clock,
        on_report: Callable[[str, str], None] | None = None,
        parts_settle: float = 60.0,
    ) -> None:
        self._store = store
        self._clock = clock
        self._on_report = on_report
        self._parts_settle = parts_settle

    async def receive(
        self, *, connection: str, secret: str, params: Mapping[str, str], body: bytes
    ) -> int:
        """Apply a pushed report; returns how many state moves it made. Raises Forbidden."""
        catalog = await self._store.catalog()
        config = catalog.connections.get(connection)
        if config is None or not config.dlr_secret or not hmac.compare_digest(
            config.dlr_secret.encode(), secret.encode("utf-8", "surrogatepass")
        ):
            raise Forbidden(connection)
        raw = _raw(params, body)
        parser = PARSERS.get(config.kind, parse_kannel)
        reports = [_with_raw(r, raw) for r in parser(config, params, body)]
        moved = await self.apply(connection, reports)
        if config.kind == "kannel":
            try:
                await self._count_parts(connection, reports)
            except StoreUnavailable as exc:  # the report itself is applied: the count is advisory
                log.warning("kannel_parts_not_counted", connection=connection, error=str(exc))
        return moved

    async def _count_parts(self, connection: str, reports: list[StatusReport]) -> None:
        """Kannel splits a long body itself and each part it sends has a final receipt of its
        own: count them against the segments charged (issue 13)."""
        for report in reports:
            if report.message_id is not None and any(s in PART_RECEIPTS for s in report.states):
                await self._store.count_part(connection=connection, message_id=report.message_id,
                                             now=self._clock.now())
        await self.settle_parts()

    async def settle_parts(self) -> int:
        """Judge the multi-part Kannel messages whose receipts have settled: each sent in fewer
        parts than charged is warned about once (no text, no secrets); how many were."""
        now = self._clock.now()
        short = await self._store.settle_parts(before=now - self._parts_settle, now=now)
        for row in short:
            log.warning(
                "kannel_parts_short",
                connection=row["connection"],
                cdls_id=int(row["message_id"]),
                charged_segments=int(row["segments"]),
                reported_parts=int(row["parts"]),
                hint="set concatenation = true and max-messages >= the longest body's segments on Kannel's sendsms-user",
            )
        return len(short)

    async def apply(self, connection: str, reports: list[StatusReport]) -> int:
        """Keep each report and move its message forward, state by state."""
        moved = 0
        for report in reports:
            for state in report.states or (None,):
                if await self._store.apply_delivery(
                    connection=connection,
                    message_id=report.message_id,
                    upstream_id=report.upstream_id,
                    state=state,
                    raw=report.raw,
                    now=self._clock.now(),
                ):
                    moved += 1
                if self._on_report is not None:
                    self._on_report(connection, state or "none")
        return moved


def _with_raw(report: StatusReport, raw: str) -> StatusReport:
    return StatusReport(report.message_id, report.upstream_id, report.states, report.accepted, raw)


def _raw(params: Mapping[str, str], body: bytes) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    text = body.decode("utf-8", "replace")
    return f"{query}\n{text}" if text else query
