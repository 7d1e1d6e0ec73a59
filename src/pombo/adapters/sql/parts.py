"""Durable SMPP receipt matching on SQL (the PartIds port, a mixin of SqlStore): part ids of
multi-part messages in every key form, and held receipts."""

from __future__ import annotations

from collections.abc import Sequence

from pombo.adapters.sql.executor import Database
from pombo.ports import HeldReceipt

INSERT_PART = (
    "INSERT INTO smpp_parts (connection, id_key, message_id, part, parts, delivered, created_at) "
    "VALUES (?,?,?,?,?,?,?) ON CONFLICT (connection, id_key) DO UPDATE SET message_id=excluded.message_id, "
    "part=excluded.part, parts=excluded.parts, delivered=excluded.delivered, created_at=excluded.created_at"
)
MARK_DELIVERED = "UPDATE smpp_parts SET delivered=? WHERE message_id=? AND part=? AND connection=?"
DELIVERED_PARTS = (
    "SELECT COUNT(DISTINCT part) FROM smpp_parts WHERE message_id=? AND connection=? AND delivered=?"
)
HOLD = "INSERT INTO smpp_held (connection, upstream_id, state, raw, created_at) VALUES (?,?,?,?,?)"
HELD = "SELECT id, connection, upstream_id, state, raw, created_at FROM smpp_held ORDER BY id LIMIT ?"
PRUNE_PARTS = "DELETE FROM smpp_parts WHERE created_at<?"


def _marks(n: int) -> str:
    return ",".join("?" * n)


class SqlPartIds:
    """The PartIds port over an Executor."""

    x: Database

    async def record_parts(self, *, connection: str, message_id: int, keys: Sequence[Sequence[str]], now: float) -> None:
        """Index every key form of every part (a later message reusing an id takes it over)."""
        rows = [(connection, key[:160], message_id, i, len(keys), False, now) for i, part in enumerate(keys) for key in part]
        async with self.x.transaction() as tx:
            await tx.executemany(INSERT_PART, rows)

    async def find_part(self, *, connection: str, keys: Sequence[str]) -> tuple[int, int, int] | None:
        """(message id, part, parts) of the part one of `keys` names."""
        if not keys:
            return None
        row = await self.x.fetchone(
            f"SELECT message_id, part, parts FROM smpp_parts WHERE connection=? AND id_key IN ({_marks(len(keys))}) "
            "ORDER BY created_at DESC LIMIT 1",
            (connection, *[k[:160] for k in keys]),
        )
        return (int(row["message_id"]), int(row["part"]), int(row["parts"])) if row else None

    async def part_delivered(self, *, connection: str, message_id: int, part: int) -> int:
        """Mark one part delivered; the parts of the message delivered now."""
        async with self.x.transaction() as tx:
            await tx.execute(MARK_DELIVERED, (True, message_id, part, connection))
            return int(await tx.fetchval(DELIVERED_PARTS, (message_id, connection, True)) or 0)

    async def find_upstream(self, *, connection: str, upstream_ids: Sequence[str]) -> int | None:
        """The newest message of this connection with one of these upstream ids."""
        if not upstream_ids:
            return None
        row = await self.x.fetchone(
            f"SELECT id FROM messages WHERE connection=? AND upstream_id IN ({_marks(len(upstream_ids))}) "
            "ORDER BY id DESC LIMIT 1",
            (connection, *[u[:128] for u in upstream_ids]),
        )
        return int(row["id"]) if row else None

    async def hold_receipt(self, *, connection: str, upstream_id: str, state: str | None, raw: str, now: float) -> None:
        """Keep a receipt that matched nothing yet."""
        clean = raw.replace("\x00", "\ufffd")[:4000]
        await self.x.execute(HOLD, (connection, upstream_id.replace("\x00", "")[:128], state, clean, now))

    async def held_receipts(self, *, limit: int) -> list[HeldReceipt]:
        """The oldest held receipts."""
        return [
            HeldReceipt(int(r["id"]), r["connection"], r["upstream_id"], r["state"], r["raw"], float(r["created_at"]))
            for r in await self.x.fetchall(HELD, (limit,))
        ]

    async def drop_held(self, *, ids: Sequence[int]) -> None:
        """Forget held receipts."""
        if ids:
            await self.x.execute(f"DELETE FROM smpp_held WHERE id IN ({_marks(len(ids))})", tuple(ids))

    async def prune_parts(self, *, older_than: float) -> None:
        """Forget part ids older than this (receipts come within days)."""
        await self.x.execute(PRUNE_PARTS, (older_than,))
