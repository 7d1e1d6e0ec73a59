"""The upstream queue in memory (SPEC §11): waiting messages, fair claims, expiry, attempts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict

from pombo.adapters.memory.tables import Row, Tables
from pombo.domain import codes
from pombo.domain.engine import pace
from pombo.domain.model import OutboundSms
from pombo.ports import Claimed, MessageRow, Waiting

EXPIRED = "expired in queue"


def fair_order(rows: list[Row]) -> list[Row]:
    """High priority first, then round robin across customers (each customer's rows in id
    order): the order every store claims in."""
    rank: dict[int, int] = {}
    keyed = []
    for row in sorted(rows, key=lambda r: r["id"]):
        n = rank[row["customer_id"]] = rank.get(row["customer_id"], 0) + 1
        keyed.append((-row["priority"], n, row["id"], row))
    return [k[3] for k in sorted(keyed, key=lambda k: k[:3])]


class QueuePath:
    """The Queue port over the tables."""

    t: Tables
    settle_failed: Callable[..., Awaitable[bool]]  # the send path's (expiry refunds through it)

    async def enqueue(self, item: Waiting, *, note: str | None, now: float) -> None:
        """Put a message in the queue (or back, logging the not_sent attempt)."""
        row = {**asdict(item), "id": self.t.next_id("upstream_queue")}
        self.t.queue[item.message_id] = row
        if note is not None:
            self._log(item.message_id, item.connection, "not_sent", note, now)

    async def claim_due(self, *, connection: str, limit: int, now: float) -> list[Claimed]:
        """Take up to `limit` due messages off the queue, fairly, each logged as claimed."""
        due = [r for r in self.t.queue.values() if r["connection"] == connection and r["not_before"] <= now]
        out = []
        for row in fair_order(due)[: max(limit, 0)]:
            del self.t.queue[row["message_id"]]
            message = self.t.messages.get(row["message_id"])
            if message is None or message["status_code"] != codes.WR:
                continue  # settled meanwhile (a status query): nothing left to send
            self._log(row["message_id"], connection, "claimed", None, now)
            waiting = Waiting(**{k: v for k, v in row.items() if k != "id"})
            sms = OutboundSms(id=message["id"], dest=message["dest"], text=message["text"],
                              encoding=message["encoding"], sender=message["sender"], ctid=message["ctid"])
            out.append(Claimed(waiting, sms, int(message["segments"]), message["connection"]))
        return out

    async def expire(self, *, connection: str, enqueued_before: float, now: float) -> list[int]:
        """300 `expired in queue`, refunded once, for messages waiting too long."""
        old = [m for m, r in self.t.queue.items() if r["connection"] == connection and r["enqueued_at"] < enqueued_before]
        expired = []
        for message_id in old:
            del self.t.queue[message_id]
            self._log(message_id, connection, "expired", EXPIRED, now)
            if await self.settle_failed(message_id=message_id, raw=EXPIRED, now=now):
                expired.append(message_id)
        return expired

    async def queue_stats(self) -> dict[str, tuple[int, float]]:
        """Per connection with waiting messages: (count, oldest enqueued_at)."""
        stats: dict[str, tuple[int, float]] = {}
        for r in self.t.queue.values():
            n, oldest = stats.get(r["connection"], (0, r["enqueued_at"]))
            stats[r["connection"]] = (n + 1, min(oldest, r["enqueued_at"]))
        return stats

    async def record_attempt(self, *, message_id: int, connection: str, kind: str, raw: str, now: float) -> None:
        """Log one attempt's outcome kind."""
        self._log(message_id, connection, kind, raw, now)

    async def route_to(self, *, message_id: int, connection: str, cost: int, now: float) -> None:
        """A fallback takes the message: its connection and cost."""
        message = self.t.messages.get(message_id)
        if message is not None and message["status_code"] == codes.WR:
            message.update(connection=connection, cost=cost, updated_at=float(now))

    async def grant(self, *, connection: str, want: int, rate: int, now: float) -> int:
        """Up to `want` sends now on the connection's even schedule (pace())."""
        n, self.t.pace[connection] = pace(self.t.pace.get(connection, 0.0), float(now), want, rate)
        return n

    async def attempts(self, *, message_id: int) -> list[MessageRow]:
        """The message's attempts, oldest first."""
        return [{k: r[k] for k in ("connection", "kind", "raw", "at")}
                for r in self.t.attempts if r["message_id"] == message_id]

    def _log(self, message_id: int, connection: str, kind: str, raw: str | None, now: float) -> None:
        self.t.attempts.append({"id": self.t.next_id("upstream_attempts"), "message_id": message_id,
                                "connection": connection, "kind": kind,
                                "raw": raw[:500] if raw is not None else None, "at": float(now)})
