"""Callback events in memory: handed out in order per message, under a lease, retried or done."""

from __future__ import annotations

from pombo.adapters.memory.inbound import inbound_row
from pombo.adapters.memory.tables import Row, Tables, callback_row, message_row
from pombo.ports import MessageRow


class CallbackOutbox:
    """The Outbox port over the tables (the events are written by the state changes themselves)."""

    t: Tables

    async def due_callbacks(
        self, *, now: float, lease: float, limit: int, per_customer: int | None = None
    ) -> list[MessageRow]:
        """Claim the callback events due now (the oldest pending one of each message only, at
        most `per_customer` of a customer, customers taking turns), each with its message row
        under "message"."""
        pending_before: set[int] = set()  # messages with an older pending event
        due: list[Row] = []
        for event in self.t.callbacks.values():
            if event["state"] != "pending":
                continue
            first = event["message_id"] not in pending_before
            pending_before.add(event["message_id"])
            if first and event["next_at"] <= now and (event["lease_until"] is None or event["lease_until"] < now):
                due.append(event)
        rank: dict[int, int] = {}
        ranked = []
        for event in due:  # ids ascending: the n-th due event of its customer
            rank[event["customer_id"]] = rank.get(event["customer_id"], 0) + 1
            if per_customer is None or rank[event["customer_id"]] <= per_customer:
                ranked.append((rank[event["customer_id"]], event["id"], event))
        ranked.sort(key=lambda r: (r[0], r[1]) if per_customer is not None else r[1])
        out = []
        for _, _, event in ranked[: max(limit, 0)]:
            event["lease_until"] = float(now + lease)
            if event.get("inbound_id") is not None:  # an `mo` event (SPEC §14)
                inbound = self.t.inbound.get(event["inbound_id"])
                if inbound is not None:
                    out.append({**callback_row(event), "inbound": inbound_row(inbound)})
                continue
            message = self.t.messages.get(event["message_id"])
            if message is not None:
                out.append({**callback_row(event), "message": message_row(message)})
        return out

    async def callback_done(self, *, event_id: int, now: float) -> None:
        """The customer's endpoint took the event."""
        event = self.t.callbacks.get(event_id)
        if event is not None:
            event.update(state="done", attempts=event["attempts"] + 1, lease_until=None, updated_at=float(now))

    async def callback_retry(self, *, event_id: int, error: str, next_at: float | None, now: float) -> None:
        """Try the event again at `next_at`, or give up when None."""
        event = self.t.callbacks.get(event_id)
        if event is not None:
            event.update(state="pending" if next_at is not None else "failed", attempts=event["attempts"] + 1,
                         next_at=float(next_at or now), lease_until=None, last_error=error[:500],
                         updated_at=float(now))
