"""Durable SMPP receipt matching in memory (the PartIds port): part ids by key, held receipts."""

from __future__ import annotations

from collections.abc import Sequence

from pombo.adapters.memory.tables import Row, Tables
from pombo.ports import HeldReceipt


class PartIdsPath:
    """The PartIds port over the tables."""

    t: Tables

    async def record_parts(self, *, connection: str, message_id: int, keys: Sequence[Sequence[str]], now: float) -> None:
        """Index every key form of every part."""
        for i, part in enumerate(keys):
            for key in part:
                self.t.smpp_parts[(connection, key[:160])] = {
                    "message_id": message_id, "part": i, "parts": len(keys), "delivered": False, "created_at": now}

    async def find_part(self, *, connection: str, keys: Sequence[str]) -> tuple[int, int, int] | None:
        """(message id, part, parts) of the part one of `keys` names."""
        found = [r for k in keys if (r := self.t.smpp_parts.get((connection, k[:160]))) is not None]
        if not found:
            return None
        row = max(found, key=lambda r: r["created_at"])
        return row["message_id"], row["part"], row["parts"]

    async def part_delivered(self, *, connection: str, message_id: int, part: int) -> int:
        """Mark one part delivered; the parts of the message delivered now."""
        rows = [r for (c, _k), r in self.t.smpp_parts.items() if c == connection and r["message_id"] == message_id]
        for r in rows:
            if r["part"] == part:
                r["delivered"] = True
        return len({r["part"] for r in rows if r["delivered"]})

    async def find_upstream(self, *, connection: str, upstream_ids: Sequence[str]) -> int | None:
        """The newest message of this connection with one of these upstream ids."""
        wanted = {u[:128] for u in upstream_ids}
        ids = [m["id"] for m in self.t.messages.values() if m["connection"] == connection and m["upstream_id"] in wanted]
        return max(ids) if ids else None

    async def hold_receipt(self, *, connection: str, upstream_id: str, state: str | None, raw: str, now: float) -> None:
        """Keep a receipt that matched nothing yet."""
        held_id = self.t.next_id("smpp_held")
        self.t.smpp_held[held_id] = {"id": held_id, "connection": connection, "upstream_id": upstream_id[:128],
                                     "state": state, "raw": raw[:4000], "created_at": now}

    async def held_receipts(self, *, limit: int) -> list[HeldReceipt]:
        """The oldest held receipts."""
        rows: list[Row] = list(self.t.smpp_held.values())[:limit]
        return [HeldReceipt(r["id"], r["connection"], r["upstream_id"], r["state"], r["raw"], r["created_at"]) for r in rows]

    async def drop_held(self, *, ids: Sequence[int]) -> None:
        """Forget held receipts."""
        for held_id in ids:
            self.t.smpp_held.pop(held_id, None)

    async def prune_parts(self, *, older_than: float) -> None:
        """Forget part ids older than this."""
        for key in [k for k, r in self.t.smpp_parts.items() if r["created_at"] < older_than]:
            del self.t.smpp_parts[key]
