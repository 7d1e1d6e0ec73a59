"""The RejectionLog port on SQL (both engines): counts added to, the newest rejections kept."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pombo.adapters.sql.executor import Database
from pombo.domain.rejections import RejectedRequest, minute_of

ADD_COUNT = (
    "INSERT INTO rejection_counts (minute, customer_id, code, count) VALUES (?,?,?,?) "
    "ON CONFLICT (minute, customer_id, code) DO UPDATE SET count = rejection_counts.count + excluded.count"
)
INSERT = (
    "INSERT INTO rejections (customer_id, created_at, code, status, ip, credential, dest, params) "
    "VALUES (?,?,?,?,?,?,?,?)"
)
TRIM = (
    "DELETE FROM rejections WHERE customer_id=? AND id <= "
    "(SELECT id FROM rejections WHERE customer_id=? ORDER BY id DESC LIMIT 1 OFFSET ?)"
)
PRUNE_COUNTS = "DELETE FROM rejection_counts WHERE minute < ?"
COLUMNS = "id, customer_id, created_at, code, status, ip, credential, dest, params"


def like_pattern(text: str) -> str:
    """`%text%` for LIKE ... ESCAPE '!', lower-cased, with the wildcards in `text` taken literally."""
    escaped = text.lower().replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"%{escaped}%"


class RejectionSide:
    """Rejections kept on SQLite or PostgreSQL (SqlStore mixes this in)."""

    x: Database

    async def record_rejections(
        self, *, counts: Sequence[tuple[int, int, int, int]], events: Sequence[RejectedRequest], keep: int,
        prune_before: float | None = None,
    ) -> None:
        """Add the counts, store the events, trim each touched customer to its `keep` newest."""
        rows = [
            (e.customer_id, e.at, e.code, e.status[:500], e.ip[:64], e.credential[:80], e.dest[:64],
             json.dumps(e.params, ensure_ascii=False))
            for e in events
        ]
        customers = sorted({e.customer_id for e in events})
        async with self.x.transaction() as tx:
            if counts:
                # a fixed order, so two processes adding to the same rows never deadlock
                await tx.executemany(ADD_COUNT, sorted(counts))
            if rows:
                await tx.executemany(INSERT, rows)
                await tx.executemany(TRIM, [(c, c, keep) for c in customers])
            if prune_before is not None:
                await tx.execute(PRUNE_COUNTS, (minute_of(prune_before),))

    async def rejection_counts(self, *, customer_id: int | None, since: float) -> list[dict[str, Any]]:
        """{minute, customer_id, code, count} from the minute of `since` on, by minute."""
        sql = "SELECT minute, customer_id, code, count FROM rejection_counts WHERE minute>=?"
        args: list[Any] = [minute_of(since)]
        if customer_id is not None:
            sql += " AND customer_id=?"
            args.append(customer_id)
        rows = await self.x.fetchall(sql + " ORDER BY minute, customer_id, code", args)
        return [{k: int(v) for k, v in r.items()} for r in rows]

    async def recent_rejections(
        self, *, customer_id: int | None, code: int | None, search: str | None, limit: int
    ) -> list[dict[str, Any]]:
        """The newest stored rejections first, matching the filters."""
        sql = f"SELECT {COLUMNS} FROM rejections WHERE 1=1"
        args: list[Any] = []
        if customer_id is not None:
            sql += " AND customer_id=?"
            args.append(customer_id)
        if code is not None:
            sql += " AND code=?"
            args.append(code)
        if search:
            sql += (
                " AND (LOWER(dest) LIKE ? ESCAPE '!' OR LOWER(params) LIKE ? ESCAPE '!'"
                " OR LOWER(credential) LIKE ? ESCAPE '!' OR LOWER(ip) LIKE ? ESCAPE '!')"
            )
            pattern = like_pattern(search)
            args.extend([pattern] * 4)
        rows = await self.x.fetchall(sql + " ORDER BY id DESC LIMIT ?", [*args, max(0, limit)])
        return [{**r, "created_at": float(r["created_at"]), "params": json.loads(r["params"])} for r in rows]
