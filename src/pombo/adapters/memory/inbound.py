"""The Inbound port in memory (SPEC §14): the same rules as the SQL stores."""

from __future__ import annotations

from pombo.adapters.memory.tables import Row, Tables, message_row
from pombo.domain.ids import new_event_id
from pombo.domain.inbound import OPT_IN, OPT_OUT
from pombo.ports import InboundSpec, MessageRow

INBOUND_KEYS = (
    "id", "connection", "provider_id", "customer_id", "reply_to", "routed_by", "source", "dest", "text",
    "received_at", "created_at",
)


def inbound_row(row: Row) -> Row:
    """What the SQL stores' INBOUND_COLUMNS give."""
    return {k: row[k] for k in INBOUND_KEYS}


class InboundPath:
    """Inbound messages over the tables."""

    t: Tables

    async def sent_message(self, *, connection: str, message_id: int) -> MessageRow | None:
        """The message with this id sent on `connection` (any customer's)."""
        message = self.t.messages.get(message_id)
        return message_row(message) if message is not None and message["connection"] == connection else None

    async def latest_sent_to(
        self, *, connection: str | None, dest: str, since: float, limit: int
    ) -> list[MessageRow]:
        """Messages to `dest` on `connection` created since `since`, newest first."""
        found = [
            m for m in self.t.messages.values()
            if m["dest"] == dest and connection in (None, m["connection"]) and m["created_at"] >= since
        ]
        found.sort(key=lambda m: (m["created_at"], m["id"]), reverse=True)
        return [message_row(m) for m in found[:limit]]

    async def save_inbound(self, spec: InboundSpec) -> tuple[int, bool]:
        """Store once; a new message's opt change and `mo` event with it."""
        t = self.t
        for row in t.inbound.values():
            if row["connection"] == spec.connection and row["provider_id"] == spec.provider_id:
                return int(row["id"]), False
        inbound_id = t.next_id("inbound")
        t.inbound[inbound_id] = {
            "id": inbound_id, "connection": spec.connection, "provider_id": spec.provider_id,
            "customer_id": spec.customer_id, "reply_to": spec.reply_to, "routed_by": spec.routed_by,
            "source": spec.sender, "dest": spec.dest, "text": spec.text, "received_at": float(spec.received_at),
            "created_at": float(spec.now), "raw": spec.raw,
        }
        if spec.customer_id is not None:
            self._opt_change(spec, inbound_id)
            self._enqueue_mo(spec, inbound_id)
        return inbound_id, True

    def _opt_change(self, spec: InboundSpec, inbound_id: int) -> None:
        if spec.opt is None or spec.customer_id is None:
            return
        t = self.t
        action, word = spec.opt
        key = (spec.customer_id, spec.sender)
        if action == OPT_OUT and key not in t.opt_outs:
            t.opt_outs[key] = {"word": word[:64], "mo_id": inbound_id, "created_at": float(spec.now)}
        elif action == OPT_IN and key in t.opt_outs:
            del t.opt_outs[key]
        else:
            return
        t.opt_changes.append({
            "customer_id": spec.customer_id, "number": spec.sender, "action": action, "word": word[:64],
            "mo_id": inbound_id, "created_at": float(spec.now),
        })
        t.bump_version()

    def _enqueue_mo(self, spec: InboundSpec, inbound_id: int) -> None:
        t = self.t
        answered = t.messages.get(spec.reply_to) if spec.reply_to is not None else None
        url = (answered["notify_url"] if answered is not None else None) or spec.callback_url
        if not url:
            return
        event_id = t.next_id("callbacks")
        now = float(spec.now)
        t.callbacks[event_id] = {
            "id": event_id, "event_id": new_event_id(), "message_id": -inbound_id,
            "customer_id": spec.customer_id, "url": url, "status_code": 0, "delivery": "mo", "state": "pending",
            "attempts": 0, "next_at": now, "lease_until": None, "last_error": None, "created_at": now,
            "updated_at": now, "inbound_id": inbound_id,
        }

    async def inbound_page(
        self, *, customer_id: int, start: float, end: float, after_id: int, limit: int
    ) -> list[MessageRow]:
        """The customer's inbound messages stored in [start, end) with id > after_id, by id."""
        rows = [
            r for r in self.t.inbound.values()
            if r["customer_id"] == customer_id and start <= r["created_at"] < end and r["id"] > after_id
        ]
        return [inbound_row(r) for r in rows[: max(limit, 0)]]

    async def inbound_replies(
        self, *, customer_id: int, message_id: int, after_id: int, limit: int
    ) -> list[MessageRow]:
        """The customer's inbound messages answering `message_id`."""
        rows = [
            r for r in self.t.inbound.values()
            if r["customer_id"] == customer_id and r["reply_to"] == message_id and r["id"] > after_id
        ]
        return [inbound_row(r) for r in rows[: max(limit, 0)]]

    async def opt_changes(self, *, customer_id: int) -> list[MessageRow]:
        """The customer's opt-out/opt-in changes, oldest first."""
        return [
            {k: c[k] for k in ("number", "action", "word", "mo_id", "created_at")}
            for c in self.t.opt_changes if c["customer_id"] == customer_id
        ]
