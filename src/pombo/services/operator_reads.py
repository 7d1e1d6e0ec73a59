"""What the operator reads: the customer tree, a customer's page, the log, the connections, the
overview's numbers. The rules of presentation (tree order, "low" balances, URLs without
secrets) live here; the store only counts and fetches."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pombo.ports import Clock, InboundFilter, MessageFilter, OperatorStore, Row

PAGE = 50
MAX_TREE = 1000
DEFAULT_NIGHT_LIMIT = 300
WINDOW = 3600.0  # the overview and the connections page look back an hour
DAY = 86400.0
LOW_FLOOR = 100_000  # 10.0000: below this much available credit a customer is always "low"
LOW_SHOWN = 8


def safe_url(url: str) -> str:
    """A connection URL without credentials, query or fragment (they may carry secrets)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def customer_tree(rows: list[Row], *, query: str = "") -> list[Row]:
    """Customers depth-first under their resellers, each with its depth, available credit and
    whether that is low; with a query, the matches (name contains it, or id is it) flat."""
    by_id = {r["id"]: r for r in rows}
    children: dict[int | None, list[Row]] = {}
    for r in rows:
        parent = r["parent_id"] if r["parent_id"] in by_id else None
        children.setdefault(parent, []).append(r)
    out: list[Row] = []
    seen: set[int] = set()

    def walk(parent: int | None, depth: int) -> None:
        for r in children.get(parent, []):
            if r["id"] in seen or len(out) >= MAX_TREE:
                continue
            seen.add(r["id"])
            available = int(r["balance"]) - int(r["credit_limit"])
            out.append({**r, "depth": depth, "available": available, "low": available <= LOW_FLOOR})
            walk(r["id"], depth + 1)

    walk(None, 0)
    for r in rows:  # customers in a loop of parent links have no root: list them at the top
        if r["id"] not in seen:
            children[None] = [r]
            walk(None, 0)
    needle = query.strip().casefold()
    if needle:
        out = [r for r in out if needle in str(r["name"]).casefold() or needle == str(r["id"])]
        for r in out:
            r["depth"] = 0
    return out


def low_balances(customers: list[Row], spend: dict[int, int], *, limit: int = LOW_SHOWN) -> list[Row]:
    """Active sms customers with the least credit left against what they spent in a day."""
    out = []
    for r in customers:
        if not (r["active"] and r["sms"]):
            continue
        available = int(r["balance"]) - int(r["credit_limit"])
        spent = max(int(spend.get(r["id"]) or 0), 0)
        hours = available / spent * 24 if spent > 0 else None
        low = available <= LOW_FLOOR or (hours is not None and hours <= 24)
        out.append({"id": r["id"], "name": r["name"], "available": available, "spend_24h": spent,
                    "hours_left": hours, "low": low})
    out.sort(key=lambda x: (not x["low"], x["hours_left"] if x["hours_left"] is not None else 1e12, x["available"]))
    return [x for x in out if x["low"]][:limit]


class OperatorViews:
    """The operator's reads (a base of services.operator.Operator)."""

    def __init__(self, *, store: OperatorStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def customer_tree(self, *, query: str = "") -> list[Row]:
        """Customers under their resellers, or those matching `query`."""
        return customer_tree(await self._store.customer_summaries(), query=query)

    async def customer(self, *, customer_id: int) -> Row | None:
        """Everything the operator manages about one customer; None when unknown."""
        c = await self._store.customer_detail(customer_id=customer_id)
        if c is None:
            return None
        c["available"] = int(c["balance"]) - int(c["credit_limit"])
        c["low"] = c["available"] <= LOW_FLOOR
        c["night_cap"] = c["night_limit"] if c["night_limit"] is not None else DEFAULT_NIGHT_LIMIT
        return c

    async def search_messages(self, *, where: MessageFilter, limit: int = PAGE) -> list[Row]:
        """Messages matching every given filter, newest first."""
        return await self._store.search_messages(where=where, limit=limit)

    async def message_story(self, *, message_id: int) -> Row | None:
        """One message with its ledger rows and delivery reports."""
        return await self._store.message_story(message_id=message_id)

    async def search_inbound(self, *, where: InboundFilter, limit: int = PAGE) -> list[Row]:
        """Inbound messages matching every given filter, newest first (SPEC §14)."""
        return await self._store.search_inbound(where=where, limit=limit)

    async def connections(self) -> list[Row]:
        """Every connection (its URL without credentials) with how many customers route to it."""
        return [{**c, "url": safe_url(c["url"])} for c in await self._store.connections()]

    async def overview_numbers(self, *, now: float) -> dict[str, Any]:
        """Everything the overview reads: the last hour per minute, the day's spend, now."""
        store, since = self._store, now - WINDOW
        low = low_balances(await store.customer_summaries(), await store.spend_since(since=now - DAY))
        return {
            "sends": await store.sends_per_minute(since=since),
            "delivery": await store.delivery_by_connection(since=since),
            "latency": await store.latency_per_minute(since=since),
            "low": low,
            "waiting": await store.waiting_count(),
            "last_minute": await store.sends_since(since=now - 60),
        }

    async def part_warnings(self) -> dict[str, Row]:
        """{connection: how many messages Kannel sent in fewer parts than were charged, and the
        latest one (message_id, segments, parts, at)} (issue 13)."""
        return await self._store.part_warnings()

    async def connection_health(self, *, now: float) -> dict[str, dict[str, Any]]:
        """Per connection over the last hour: counts by status, answer time, waiting, last error."""
        return await self._store.connection_health(since=now - WINDOW)

    async def recent_attempts(self, *, limit: int = 200) -> list[Row]:
        """The newest logged upstream attempts (not sent, claimed, unknown, expired), newest first."""
        return await self._store.recent_attempts(limit=limit)

    async def delivery_by_connection(self, *, now: float) -> dict[str, dict[str, int]]:
        """{connection: {delivery state: count}} of the last hour's messages."""
        return await self._store.delivery_by_connection(since=now - WINDOW)

    async def rejections(
        self, *, customer_id: int | None = None, code: int | None = None, search: str | None = None,
        limit: int = PAGE,
    ) -> list[Row]:
        """The newest kept rejections (tokens masked), matching every given filter."""
        search = (search or "").strip()[:100] or None
        return await self._store.recent_rejections(customer_id=customer_id, code=code, search=search, limit=limit)

    async def rejection_minutes(self, *, customer_id: int | None = None, since: float) -> dict[int, dict[int, int]]:
        """{minute: {code: count}} of the stored per-minute counts since `since`."""
        out: dict[int, dict[int, int]] = {}
        for r in await self._store.rejection_counts(customer_id=customer_id, since=since):
            bucket = out.setdefault(r["minute"], {})
            bucket[r["code"]] = bucket.get(r["code"], 0) + r["count"]
        return out

    async def rejection_totals(self, *, customer_id: int, since: float) -> list[tuple[int, int]]:
        """[(code, count)] of one customer since `since`, the most frequent first."""
        totals: dict[int, int] = {}
        for r in await self._store.rejection_counts(customer_id=customer_id, since=since):
            totals[r["code"]] = totals.get(r["code"], 0) + r["count"]
        return sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))
