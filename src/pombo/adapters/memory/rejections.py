"""Rejections kept in memory, as the SQL stores keep them (the contract tests compare)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pombo.adapters.memory.tables import Tables
from pombo.domain.rejections import RejectedRequest, minute_of


class RejectionKeeping:
    """The RejectionLog port over the tables."""

    t: Tables

    async def record_rejections(
        self, *, counts: Sequence[tuple[int, int, int, int]], events: Sequence[RejectedRequest], keep: int,
        prune_before: float | None = None,
    ) -> None:
        """Add the counts, store the events, trim each touched customer to its `keep` newest."""
        t = self.t
        for minute, customer_id, code, n in counts:
            key = (minute, customer_id, code)
            t.rejection_counts[key] = t.rejection_counts.get(key, 0) + n
        for e in events:
            t.rejections.append({
                "id": t.next_id("rejections"), "customer_id": e.customer_id, "created_at": float(e.at),
                "code": e.code, "status": e.status[:500], "ip": e.ip[:64], "credential": e.credential[:80],
                "dest": e.dest[:64], "params": dict(e.params),
            })
        touched = {e.customer_id for e in events}
        if touched:
            seen: dict[int, int] = {}
            kept: list[dict[str, Any]] = []
            for row in reversed(t.rejections):
                c = row["customer_id"]
                if c in touched:
                    seen[c] = seen.get(c, 0) + 1
                    if seen[c] > keep:
                        continue
                kept.append(row)
            kept.reverse()
            t.rejections = kept
        if prune_before is not None:
            first = minute_of(prune_before)
            t.rejection_counts = {k: n for k, n in t.rejection_counts.items() if k[0] >= first}

    async def rejection_counts(self, *, customer_id: int | None, since: float) -> list[dict[str, Any]]:
        """{minute, customer_id, code, count} from the minute of `since` on, by minute."""
        first = minute_of(since)
        return [
            {"minute": m, "customer_id": c, "code": code, "count": n}
            for (m, c, code), n in sorted(self.t.rejection_counts.items())
            if m >= first and (customer_id is None or c == customer_id)
        ]

    async def recent_rejections(
        self, *, customer_id: int | None, code: int | None, search: str | None, limit: int
    ) -> list[dict[str, Any]]:
        """The newest stored rejections first, matching the filters."""
        needle = (search or "").lower()
        out: list[dict[str, Any]] = []
        for row in reversed(self.t.rejections):
            if len(out) >= limit:
                break
            if customer_id is not None and row["customer_id"] != customer_id:
                continue
            if code is not None and row["code"] != code:
                continue
            if needle and not _matches(row, needle):
                continue
            out.append({**row, "params": dict(row["params"])})
        return out


def _matches(row: dict[str, Any], needle: str) -> bool:
    haystacks = (row["dest"], json.dumps(row["params"], ensure_ascii=False), row["credential"], row["ip"])
    return any(needle in h.lower() for h in haystacks)
