"""The upstream queue on SQL (SPEC §11): one row per message waiting for its turn, claimed by
deleting it (the attempt logged in the same transaction), so a claimed message is never sent
twice, by this worker or another."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pombo.adapters.sql.batch import Batcher
from pombo.adapters.sql.executor import Database, Executor
from pombo.domain.engine import pace
from pombo.domain.model import OutboundSms
from pombo.ports import Claimed, MessageRow, Waiting

EXPIRED = "expired in queue"
WAITING_COLUMNS = "message_id, customer_id, connection, priority, not_before, enqueued_at, attempts, last_error"
ENQUEUE = (
    f"INSERT INTO upstream_queue ({WAITING_COLUMNS}) VALUES (?,?,?,?,?,?,?,?) "
    "ON CONFLICT (message_id) DO UPDATE SET connection=excluded.connection, not_before=excluded.not_before, "
    "attempts=excluded.attempts, last_error=excluded.last_error"
)
# The next `limit` due messages in fair order: priority first, then in rounds (each customer's
# n-th due message in round n), then by age. DUE is the definition, every due row ranked; the
# two below rank only what can make it: each customer's first `limit` due messages. The
# customers with waiting messages are found one index probe each (a loose index scan on
# ix_upstream_queue_customer), then each one's first `limit` due by the same index. A claim
# costs what it takes, not the length of the queue (the definition cost O(queue log queue) per
# claim: 2,000/s offered to a 500/s connection spent ~28% of the process in it). Property
# tests compare both with DUE (tests/integration/test_queue_order.py).
DUE = (
    "SELECT id FROM (SELECT id, priority, ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY id) AS rn "
    "FROM upstream_queue WHERE connection=? AND not_before<=?) t ORDER BY priority DESC, rn, id LIMIT ?"
)
_WAITING_CUSTOMERS = (
    "WITH RECURSIVE waiting(customer_id) AS ("
    " SELECT (SELECT MIN(customer_id) FROM upstream_queue WHERE connection=?)"
    " UNION ALL"
    " SELECT (SELECT MIN(u.customer_id) FROM upstream_queue u WHERE u.connection=? AND u.customer_id>w.customer_id)"
    " FROM waiting w WHERE w.customer_id IS NOT NULL) "
)
# SQLite: a correlated IN per customer. `not_before+0`: not an index term, so SQLite walks each
# customer's messages by age instead of every due message of the connection.
DUE_BY_INDEX = (
    _WAITING_CUSTOMERS
    + "SELECT id FROM (SELECT q.id, q.priority, ROW_NUMBER() OVER (PARTITION BY q.customer_id ORDER BY q.id) AS rn "
    "FROM waiting w JOIN upstream_queue q ON q.id IN (SELECT u.id FROM upstream_queue u WHERE u.connection=? "
    "AND u.customer_id=w.customer_id AND u.not_before+0<=? ORDER BY u.id LIMIT ?)) t "
    "ORDER BY priority DESC, rn, id LIMIT ?"
)
# PostgreSQL: the same as a LATERAL join (its planner ran the correlated IN once per joined
# row: with two workers and 1,600 waiting, most were still unsent a minute after a restart).
DUE_LATERAL = (
    _WAITING_CUSTOMERS
    + "SELECT id FROM (SELECT q.id, q.priority, ROW_NUMBER() OVER (PARTITION BY w.customer_id ORDER BY q.id) AS rn "
    "FROM waiting w CROSS JOIN LATERAL (SELECT u.id, u.priority FROM upstream_queue u WHERE u.connection=? "
    "AND u.customer_id=w.customer_id AND u.not_before<=? ORDER BY u.id LIMIT ?) q) t "
    "ORDER BY priority DESC, rn, id LIMIT ?"
)
LOG_ATTEMPT = "INSERT INTO upstream_attempts (message_id, connection, kind, raw, at) VALUES (?,?,?,?,?)"
TOO_OLD = "SELECT message_id FROM upstream_queue WHERE connection=? AND enqueued_at<? ORDER BY id LIMIT 500"
STATS = "SELECT connection, COUNT(*) AS n, MIN(enqueued_at) AS oldest FROM upstream_queue GROUP BY connection"
ROUTE_TO = "UPDATE messages SET connection=?, cost=?, updated_at=? WHERE id=? AND status_code=1"
PACE_ROW = "INSERT INTO upstream_pace (connection, at) VALUES (?, 0) ON CONFLICT (connection) DO NOTHING"
PACE_LOCK = "UPDATE upstream_pace SET at=at WHERE connection=? RETURNING at"
ATTEMPTS = "SELECT connection, kind, raw, at FROM upstream_attempts WHERE message_id=? ORDER BY at, id"


def _marks(n: int) -> str:
    return ",".join("?" * n)


class SqlQueue:
    """The Queue port over an Executor (a mixin of SqlStore)."""

    x: Database

    async def _fail_and_refund(self, tx: Executor, message_id: int, raw: str, now: float) -> bool:
        raise NotImplementedError  # SqlStore's

    _enqueues: Batcher[tuple[Waiting, str | None, float], None] | None = None

    async def enqueue(self, item: Waiting, *, note: str | None, now: float) -> None:
        """Put a message in the queue (or back, logging the not_sent attempt). Messages that
        must wait together share one transaction (a burst over capacity is one commit)."""
        if self._enqueues is None:
            self._enqueues = Batcher(self._enqueue_batch, max_batch=256, concurrency=1)
        await self._enqueues.submit((item, note, now))

    async def _enqueue_batch(self, items: Sequence[tuple[Waiting, str | None, float]]) -> list[None]:
        rows = [
            (w.message_id, w.customer_id, w.connection, w.priority, float(w.not_before), float(w.enqueued_at),
             w.attempts, _cut(w.last_error))
            for w, _, _ in items
        ]
        notes = [(w.message_id, w.connection, "not_sent", _cut(note), float(now)) for w, note, now in items
                 if note is not None]
        async with self.x.transaction() as tx:
            await tx.executemany(ENQUEUE, rows)
            await tx.executemany(LOG_ATTEMPT, notes)
        return [None] * len(items)

    async def claim_due(self, *, connection: str, limit: int, now: float) -> list[Claimed]:
        """Take up to `limit` due messages off the queue, fairly, each logged as claimed."""
        if limit <= 0:
            return []
        async with self.x.transaction() as tx:
            due = await tx.fetchall(DUE_BY_INDEX if self.x.dialect == "sqlite" else DUE_LATERAL,
                                    (connection, connection, connection, float(now), limit, limit))
            ids = [r["id"] for r in due]
            if not ids:
                return []
            taken = await tx.fetchall(
                f"DELETE FROM upstream_queue WHERE id IN ({_marks(len(ids))}) RETURNING {WAITING_COLUMNS}", ids
            )
            if not taken:
                return []  # another worker took them first
            mids = [r["message_id"] for r in taken]
            await tx.executemany(LOG_ATTEMPT, [(m, connection, "claimed", None, float(now)) for m in mids])
            messages = await tx.fetchall(
                "SELECT id, dest, text, corr_id, sender, encoding, segments, connection FROM messages "
                f"WHERE id IN ({_marks(len(mids))}) AND status_code=1", mids
            )
        by_id = {int(m["id"]): m for m in messages}
        return [_claimed(w, by_id[w["message_id"]]) for w in _fair(taken) if w["message_id"] in by_id]

    async def expire(self, *, connection: str, enqueued_before: float, now: float) -> list[int]:
        """300 `expired in queue`, refunded once, for messages waiting too long."""
        expired = []
        for row in await self.x.fetchall(TOO_OLD, (connection, float(enqueued_before))):
            mid = int(row["message_id"])
            async with self.x.transaction() as tx:
                if await tx.execute("DELETE FROM upstream_queue WHERE message_id=?", (mid,)) != 1:
                    continue  # claimed meanwhile: it is being sent
                await tx.execute(LOG_ATTEMPT, (mid, connection, "expired", EXPIRED, float(now)))
                if await self._fail_and_refund(tx, mid, EXPIRED, float(now)):
                    expired.append(mid)
        return expired

    async def queue_stats(self) -> dict[str, tuple[int, float]]:
        """Per connection with waiting messages: (count, oldest enqueued_at)."""
        return {r["connection"]: (int(r["n"]), float(r["oldest"])) for r in await self.x.fetchall(STATS)}

    async def record_attempt(self, *, message_id: int, connection: str, kind: str, raw: str, now: float) -> None:
        """Log one attempt's outcome kind."""
        await self.x.execute(LOG_ATTEMPT, (message_id, connection, kind, _cut(raw), float(now)))

    async def route_to(self, *, message_id: int, connection: str, cost: int, now: float) -> None:
        """A fallback takes the message: its connection and cost."""
        await self.x.execute(ROUTE_TO, (connection, cost, float(now), message_id))

    async def grant(self, *, connection: str, want: int, rate: int, now: float) -> int:
        """Up to `want` sends that may begin now on the connection's even schedule (pace()):
        its pace row is locked while it is decided (every worker waits its turn), and on
        PostgreSQL the database's clock is the one clock of every host."""
        async with self.x.transaction() as tx:
            await tx.execute(PACE_ROW, (connection,))
            # the row locked (every worker waits its turn) and read in one statement
            due = float(await tx.fetchval(PACE_LOCK, (connection,)))
            if self.x.dialect == "postgresql":
                # a grant lost in a crash of the database server only wastes tokens: no WAL wait
                await tx.execute("SET LOCAL synchronous_commit = off")
                now = float(await tx.fetchval("SELECT extract(epoch FROM clock_timestamp())::float8"))
            n, due = pace(due, float(now), want, rate)
            if n:
                await tx.execute("UPDATE upstream_pace SET at=? WHERE connection=?", (due, connection))
        return n

    async def attempts(self, *, message_id: int) -> list[MessageRow]:
        """The message's attempts, oldest first."""
        return [{**r, "at": float(r["at"])} for r in await self.x.fetchall(ATTEMPTS, (message_id,))]


def _cut(text: str | None) -> str | None:
    return text.replace("\x00", "\ufffd")[:500] if text is not None else None


def _fair(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """RETURNING gives no order: put the claimed rows back in claim order."""
    rank: dict[int, int] = {}
    keyed = []
    for row in sorted(rows, key=lambda r: r["message_id"]):
        n = rank[row["customer_id"]] = rank.get(row["customer_id"], 0) + 1
        keyed.append((-row["priority"], n, row["message_id"], row))
    return [k[3] for k in sorted(keyed, key=lambda k: k[:3])]


def _claimed(w: dict[str, Any], m: dict[str, Any]) -> Claimed:
    waiting = Waiting(
        message_id=int(w["message_id"]), customer_id=int(w["customer_id"]), connection=w["connection"],
        priority=int(w["priority"]), not_before=float(w["not_before"]), enqueued_at=float(w["enqueued_at"]),
        attempts=int(w["attempts"]), last_error=w["last_error"],
    )
    sms = OutboundSms(id=int(m["id"]), dest=m["dest"], text=m["text"], encoding=m["encoding"],
                      sender=m["sender"], ctid=m["corr_id"])
    return Claimed(waiting, sms, int(m["segments"]), m["connection"])
