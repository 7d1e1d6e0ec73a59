"""Inbound messages (SPEC §14): intake from providers, routing, opt-out, and GetSMSReply.

Every source ends in `InboundIntake.accept`: the push of a provider at `/mo/{connection}/
{dlr_secret}` (Kannel's get-url, Wavy's callbacks, an http connection's `mo` mapping) and the
`deliver_sm` of an SMPP bind that is not a receipt. Each message is routed, then stored once in
one transaction with its opt-out/opt-in change and its `mo` callback event; the intake answers
only after that commit, so an acknowledged message is never lost (a store outage answers 503 and
the provider retries; the retry is the same message).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from pombo.domain import codes, inbound
from pombo.domain.catalog import Catalog
from pombo.domain.codes import Rejection
from pombo.domain.inbound import BadInbound, InboundItem, Route
from pombo.domain.ints import uint
from pombo.domain.model import ConnectionConfig
from pombo.ports import Catalogs, Clock, Inbound, InboundSpec, MessageRow
from pombo.services.auth import Authenticator, Credentials
from pombo.services.dlr import Forbidden
from pombo.services.status import (
    DEFAULT_MAXREG,
    FAR_FUTURE,
    MAX_MAXREG,
    BadRequest,
    day_start,
    int_param,
    iso,
    page_info,
)

__all__ = ["BadInbound", "Forbidden", "InboundIntake", "Replies", "render_inbound"]

WINDOW_CANDIDATES = 50  # the latest messages to a handset looked at for a window match


class InboundStore(Catalogs, Inbound, Protocol):
    """What the intake needs: the configuration and the inbound messages."""


def render_inbound(row: MessageRow, tz: ZoneInfo) -> dict[str, Any]:
    """One inbound message as the customer sees it (GetSMSReply, the `mo` event)."""
    return {
        "mo_id": str(row["id"]),
        "from": row["source"],
        "to": row["dest"],
        "text": row["text"],
        "received_at": iso(row["received_at"], tz),
        "reply_to": str(row["reply_to"]) if row["reply_to"] is not None else None,
    }


class InboundIntake:
    """Authenticates a provider's push by the connection's secret, parses, routes and stores."""

    def __init__(
        self, *, store: InboundStore, clock: Clock, tz: ZoneInfo, on_message: Callable[[str, bool], None] | None = None
    ) -> None:
        self._store = store
        self._clock = clock
        self._tz = tz
        self._on_message = on_message

    async def receive(self, *, connection: str, secret: str, params: Mapping[str, str], body: bytes) -> int:
        """Store a pushed MO (one or a list); how many were new. Raises Forbidden (unknown
        connection, wrong secret, or a connection that takes no MO push) or BadInbound (the
        body is not the provider's format: nothing of it is stored)."""
        catalog = await self._store.catalog()
        config = catalog.connections.get(connection)
        if config is None or not config.dlr_secret or not hmac.compare_digest(
            config.dlr_secret.encode(), secret.encode("utf-8", "surrogatepass")
        ):
            raise Forbidden(connection)
        items = self._parse(config, params, body)
        saved = await self.accept(connection, items, catalog=catalog)
        return sum(1 for _, new in saved if new)

    def _parse(self, config: ConnectionConfig, params: Mapping[str, str], body: bytes) -> list[InboundItem]:
        now = self._clock.now()
        if config.kind == "wavy":
            return inbound.parse_wavy(body, self._tz, now=now)
        if config.kind in ("kannel", "simulator"):
            return inbound.parse_kannel(params, self._tz, now=now)
        mapping = config.options.get("mo") if config.kind == "http" else None
        if isinstance(mapping, dict):
            return inbound.parse_mapped(mapping, params, body, self._tz, now=now)
        raise Forbidden(config.name)  # this connection takes no MO push

    async def accept(
        self, connection: str, items: Sequence[InboundItem], *, catalog: Catalog | None = None
    ) -> list[tuple[int, bool]]:
        """Route and store each message once: (inbound id, new) each. The SMPP hand-over."""
        catalog = catalog or await self._store.catalog()
        out = []
        for item in items:
            now = self._clock.now()
            route = await self.route(catalog, connection, item, now)
            customer = catalog.customers.get(route.customer_id) if route.customer_id is not None else None
            opt = (
                inbound.opt_change(item.text, opt_out=catalog.opt_out_words, opt_in=catalog.opt_in_words)
                if customer is not None
                else None
            )
            spec = InboundSpec(
                connection=connection,
                provider_id=item.provider_id,
                sender=item.sender,
                dest=item.dest,
                text=item.text,
                received_at=item.received_at if item.received_at is not None else now,
                customer_id=route.customer_id,
                reply_to=route.reply_to,
                routed_by=route.by,
                raw=item.raw,
                now=now,
                callback_url=customer.callback.url if customer is not None and customer.callback else None,
                opt=opt,
            )
            saved = await self._store.save_inbound(spec)
            if saved[1] and opt is not None:
                # before the answer, this process's catalog has the block list change, so a send
                # after the acknowledgement gets 260: the first look ends any refresh that began
                # before the commit, the second reads the change itself
                for _ in range(2):
                    self._store.invalidate()
                    await self._store.catalog()
            if self._on_message is not None:
                self._on_message(connection, route.customer_id is not None)
            out.append(saved)
        return out

    async def route(self, catalog: Catalog, connection: str, item: InboundItem, now: float) -> Route:
        """SPEC §14's order: a provisioned number, the provider's correlation, the reply window."""
        owner = catalog.inbound_numbers.get(inbound.route_key(item.dest)) if item.dest else None
        if owner is not None:
            window = catalog.customers[owner].reply_window * 3600.0
            recent = await self._store.latest_sent_to(
                connection=None, dest=item.sender, since=now - window, limit=WINDOW_CANDIDATES
            )
            answered = next((int(m["id"]) for m in recent if m["customer_id"] == owner), None)
            return Route(owner, answered, inbound.BY_NUMBERS)
        if item.correlation is not None:
            message = await self._store.sent_message(connection=connection, message_id=item.correlation)
            if message is not None and message["dest"] == item.sender:
                return Route(int(message["customer_id"]), int(message["id"]), inbound.BY_CORRELATION)
        longest = max((c.reply_window for c in catalog.customers.values()), default=inbound.DEFAULT_REPLY_WINDOW)
        recent = await self._store.latest_sent_to(
            connection=connection, dest=item.sender, since=now - longest * 3600.0, limit=WINDOW_CANDIDATES
        )
        for message in recent:
            customer = catalog.customers.get(int(message["customer_id"]))
            if customer is not None and message["created_at"] >= now - customer.reply_window * 3600.0:
                return Route(customer.id, int(message["id"]), inbound.BY_WINDOW)
        return inbound.UNROUTED


class ReplyStore(Catalogs, Inbound, Protocol):
    """What GetSMSReply needs."""


class Replies:
    """GetSMSReply: the customer's own inbound messages, paged as GetSMSStatus (SPEC §14)."""

    def __init__(self, *, store: ReplyStore, authenticator: Authenticator, tz: ZoneInfo) -> None:
        self._store = store
        self._auth = authenticator
        self._tz = tz

    async def __call__(
        self, *, params: Mapping[str, str], creds: Credentials
    ) -> tuple[dict[str, Any], list[dict[str, Any]]] | Rejection:
        """(pagination, messages) or a rejection."""
        catalog = await self._store.catalog()
        principal = await self._auth.authenticate(creds, catalog, need_send=False)
        if isinstance(principal, Rejection):
            return principal
        try:
            rows, has_more = await self._find(principal.customer.id, params)
        except BadRequest:
            return codes.reject(codes.BAD_REQUEST)
        return page_info(rows, has_more), [render_inbound(row, self._tz) for row in rows]

    async def _find(self, customer_id: int, params: Mapping[str, str]) -> tuple[list[MessageRow], bool]:
        maxreg = int_param(params.get("maxreg"), DEFAULT_MAXREG, low=1, high=MAX_MAXREG)
        after = int_param(params.get("last_id"), 0, low=0, high=2**62)
        cdls_id = (params.get("cdls_id") or "").strip()
        if cdls_id:
            message_id = uint(cdls_id)
            if message_id is None:
                return [], False
            rows = await self._store.inbound_replies(
                customer_id=customer_id, message_id=message_id, after_id=after, limit=maxreg + 1
            )
            return rows[:maxreg], len(rows) > maxreg
        start = day_start(params.get("date_start"), self._tz, default=0.0)
        end = day_start(params.get("date_end"), self._tz, default=None, next_day=True)
        rows = await self._store.inbound_page(
            customer_id=customer_id,
            start=0.0 if start is None else start,
            end=FAR_FUTURE if end is None else end,
            after_id=after,
            limit=maxreg + 1,
        )
        return rows[:maxreg], len(rows) > maxreg
