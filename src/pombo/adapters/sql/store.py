"""The Store port on SQL: the logic written once over an Executor, the send path per engine.

SQLite: the stdlib driver on the event-loop thread, one writer transaction per batch.
PostgreSQL: asyncpg; a batch of sends is one call of the `pombo_accept` function (see the
migrations), so the database's latency is paid once per batch, not five times per send.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine

from pombo.adapters.sql import queries as q
from pombo.adapters.sql.batch import Batcher
from pombo.adapters.sql.executor import Database, Executor
from pombo.adapters.sql.inbound import InboundSide
from pombo.adapters.sql.operator_store import OperatorSide
from pombo.adapters.sql.parts import SqlPartIds
from pombo.adapters.sql.queue import SqlQueue
from pombo.adapters.sql.rejections import RejectionSide
from pombo.adapters.sql.snapshot import CatalogSide
from pombo.domain import codes, delivery
from pombo.domain.catalog import Catalog
from pombo.domain.codes import Rejection
from pombo.domain.ids import new_event_id
from pombo.ports import AcceptSpec, AuthPolicy, MessageRow

CLAIM_SECONDS = 60.0  # how long a reconciliation claim keeps other processes away
SettleItem = tuple[int, str | None, str, float]  # (message id, upstream id, raw, now)


class SqlStore(CatalogSide, SqlQueue, SqlPartIds, OperatorSide, RejectionSide, InboundSide):
    """What both engines share (the operator's ports among it). Subclasses provide the batched
    send path."""

    def __init__(self, x: Database, engine: Engine) -> None:
        self.x = x
        self.engine = engine  # SQLAlchemy, for the operator's functions and the catalog
        self._catalog = Catalog(version="")
        self._catalog_checked = float("-inf")
        self._loading: asyncio.Future[Catalog] | None = None
        self._accepts: Batcher[AcceptSpec, int | Rejection] = Batcher(
            self._accept_batch, max_batch=128, concurrency=self.flushes
        )
        self._settles: Batcher[SettleItem, bool] = Batcher(
            self._settle_batch, max_batch=256, concurrency=self.flushes
        )

    flushes = 1

    async def close(self) -> None:
        """Close the connections."""
        await self.x.close()
        self.engine.dispose()

    async def ping(self) -> None:
        """Raise unless the database answers now (for /healthz; never from a cache)."""
        await self.x.fetchval("SELECT 1")

    # ------------------------------------------------------------ the send

    async def accept(self, spec: AcceptSpec) -> int | Rejection:
        """244, 245, 255, 250 and the log row with the chain debit, in one transaction shared
        with the sends that arrive meanwhile (group commit)."""
        return await self._accepts.submit(spec)

    async def _accept_batch(self, specs: Sequence[AcceptSpec]) -> Sequence[int | Rejection]:
        raise NotImplementedError

    async def settle_ok(self, *, message_id: int, upstream_id: str | None, raw: str, now: float) -> bool:
        """Record the upstream's acceptance; False when the message was already settled."""
        uid = storable(upstream_id)[:128] if upstream_id is not None else None
        return await self._submit_settle((message_id, uid, storable(raw)[:4000], now))

    async def _submit_settle(self, item: SettleItem) -> bool:
        return await self._settles.submit(item)

    async def _settle_batch(self, items: Sequence[SettleItem]) -> Sequence[bool]:
        raise NotImplementedError

    async def settle_failed(self, *, message_id: int, raw: str, now: float) -> bool:
        """Record a hard error and refund the chain exactly what was debited, once."""
        async with self.x.transaction() as tx:
            return await self._fail_and_refund(tx, message_id, raw, now)

    async def _fail_and_refund(self, tx: Executor, message_id: int, raw: str, now: float) -> bool:
        """Inside `tx`: 300 and the chain's refund, when the message is still waiting."""
        if await tx.execute(q.SETTLE_FAILED, (storable(raw)[:4000], now, now, message_id)) != 1:
            return False
        await self._refund(tx, message_id, now)
        await tx.execute(q.NIGHT_TAKE_BACK, (message_id,))
        await enqueue(tx, message_id, now)
        return True

    async def _refund(self, tx: Executor, message_id: int, now: float) -> None:
        """Credit the chain back exactly what the message debited (a ledger row each)."""
        debits = await tx.fetchall(q.MESSAGE_DEBITS, (message_id,))
        await self._lock_accounts(tx, [d["customer_id"] for d in debits])
        await tx.executemany(q.CREDIT_BACK, [(d["amount"], d["customer_id"]) for d in debits])
        await tx.executemany(
            q.INSERT_LEDGER,
            [(d["customer_id"], -d["amount"], "refund", message_id, now) for d in debits],
        )

    async def _lock_accounts(self, tx: Executor, ids: Sequence[int]) -> None:
        """Lock balance rows in id order (the order the send path uses: no deadlocks)."""

    async def maintain(self) -> None:
        """Periodic upkeep (PostgreSQL: the message log's partitions for the months ahead)."""

    async def claim_orphans(self, *, older_than: float, now: float, limit: int = 100) -> list[MessageRow]:
        """Waiting messages older than `older_than` that this process now owns for reconciliation
        (a claim lasts a minute, so two processes never reconcile the same message at once)."""
        rows = await self.x.fetchall(q.ORPHAN_ROWS, (older_than, now - CLAIM_SECONDS, older_than, limit))
        claimed = []
        for row in rows:
            if await self.x.execute(q.CLAIM_ORPHAN, (now, row["id"], now - CLAIM_SECONDS)) == 1:
                claimed.append(row)
        return claimed

    async def mark_unknown(self, *, message_id: int, now: float) -> bool:
        """The outcome of a waiting message cannot be learnt: delivery `unknown` (kept charged)."""
        async with self.x.transaction() as tx:
            if await tx.execute(q.MARK_UNKNOWN, (now, message_id)) != 1:
                return False
            await enqueue(tx, message_id, now)
        return True

    # ------------------------------------------------------------ reading the log

    async def balance(self, *, customer_id: int) -> tuple[int, int]:
        """(balance, credit_limit) in units."""
        row = await self.x.fetchone(q.BALANCE, (customer_id,))
        return (int(row["balance"]), int(row["credit_limit"])) if row else (0, 0)

    async def get_message(self, *, customer_id: int, message_id: int) -> MessageRow | None:
        """One message of this customer."""
        return await self.x.fetchone(q.MESSAGE_BY_ID, (message_id, customer_id))

    async def messages_by_ctid(self, *, customer_id: int, ctid: str, limit: int) -> list[MessageRow]:
        """The customer's messages with this ctid, oldest first."""
        return await self.x.fetchall(q.MESSAGES_BY_CTID, (customer_id, ctid, limit))

    async def messages_page(
        self, *, customer_id: int, start: float, end: float, after_id: int, limit: int
    ) -> list[MessageRow]:
        """Up to `limit` messages created in [start, end) with id > after_id, by id."""
        return await self.x.fetchall(q.MESSAGES_PAGE, (customer_id, start, end, after_id, limit))

    # ------------------------------------------------------------ delivery reports

    async def apply_delivery(
        self,
        *,
        connection: str,
        message_id: int | None,
        upstream_id: str | None,
        state: str | None,
        raw: str,
        now: float,
    ) -> bool:
        """Keep the raw report; move the message forward when the state allows it: a waiting
        message the provider took becomes OK, a `rejected` one is refunded once (SPEC §8, §11)."""
        async with self.x.transaction() as tx:
            found = await self._report_target(tx, connection, message_id, upstream_id)
            raw = storable(raw)[:4000]
            await tx.execute(q.INSERT_REPORT, (connection, found["id"] if found else None, state, raw, now))
            if found is None:
                return False
            refunded = state == delivery.REJECTED and bool(await tx.fetchval(q.MESSAGE_REFUNDED, (found["id"],)))
            move = delivery.report_move(found["delivery"], found["status_code"], state, refunded=refunded)
            if move is None:
                return False
            stamp = "sent_at" if move.delivery == delivery.SENT else "final_at"
            head = (move.delivery, now, move.status_code, now)
            guard = (found["id"], found["delivery"], found["status_code"])
            if move.status_code == found["status_code"]:
                moved = await tx.execute(q.REPORT_MOVE.format(stamp=stamp), (*head, *guard))
            else:
                uid = storable(upstream_id)[:128] if upstream_id else None
                moved = await tx.execute(q.REPORT_SETTLE.format(stamp=stamp), (*head, raw, uid, *guard))
            if moved != 1:  # cannot happen under the row lock; never refund on a stale read
                return False
            if move.refund:
                await self._refund(tx, found["id"], now)
            if move.status_code not in (codes.OK, codes.WR) and found["status_code"] in (codes.OK, codes.WR):
                await tx.execute(q.NIGHT_TAKE_BACK, (found["id"],))  # no longer counts toward its night
            await enqueue(tx, found["id"], now)
            return True

    async def count_part(self, *, connection: str, message_id: int, now: float) -> None:
        """One more final receipt for a multi-part message (Kannel sends one a part)."""
        async with self.x.transaction() as tx:
            await tx.execute(q.COUNT_PART, (now, message_id, connection))

    async def settle_parts(self, *, before: float, now: float) -> list[MessageRow]:
        """Judge the counted messages whose first receipt came before `before`, once each (the
        DELETE claims them): fewer parts than segments go to the connection's part warnings."""
        async with self.x.transaction() as tx:
            rows = await tx.fetchall(q.SETTLE_PARTS, (before,))
            short = sorted((r for r in rows if int(r["parts"]) < int(r["segments"])), key=lambda r: r["message_id"])
            for r in short:
                await tx.execute(q.PART_WARNING, (r["connection"], r["message_id"], r["segments"], r["parts"], now))
        return [dict(r) for r in short]

    async def _report_target(
        self, tx: Executor, connection: str, message_id: int | None, upstream_id: str | None
    ) -> dict[str, Any] | None:
        """The reported message (locked on PostgreSQL until the report is applied), or None."""
        lock = " FOR UPDATE" if self.x.dialect == "postgresql" else ""  # SQLite: one writer anyway
        if message_id is not None:
            return await tx.fetchone(q.FIND_BY_ID + lock, (message_id, connection))
        if upstream_id:
            return await tx.fetchone(q.FIND_BY_UPSTREAM + lock, (connection, storable(upstream_id)[:128]))
        return None

    # ------------------------------------------------------------ customer callbacks

    async def due_callbacks(
        self, *, now: float, lease: float, limit: int, per_customer: int | None = None
    ) -> list[MessageRow]:
        """Claim callback events that are due (the oldest pending one of each message only, at
        most `per_customer` of a customer, customers taking turns), each with its message row
        under "message"."""
        if per_customer is None:
            rows = await self.x.fetchall(q.DUE_CALLBACKS, (now, now, limit))
        else:
            rows = await self.x.fetchall(q.DUE_CALLBACKS_FAIR, (now, now, per_customer, limit))
        ids = [r["id"] for r in rows]
        events = []
        for event_id in ids:
            if await self.x.execute(q.LEASE_CALLBACK, (now + lease, event_id, now)) == 1:
                row = await self.x.fetchone(q.CALLBACK_EVENT, (event_id,))
                if row is not None and row.get("inbound_id") is not None:  # an `mo` event (SPEC §14)
                    inbound = await self.inbound_row(int(row.pop("inbound_id")))
                    if inbound is not None:
                        events.append({**row, "inbound": inbound})
                    continue
                if row is not None:
                    row.pop("inbound_id", None)
                message = await self.x.fetchone(q.MESSAGE_ROW, (row["message_id"],)) if row else None
                if row is not None and message is not None:
                    events.append({**row, "message": message})
        return events

    async def callback_done(self, *, event_id: int, now: float) -> None:
        """The customer's endpoint took the event."""
        await self.x.execute(q.CALLBACK_DONE, (now, event_id))

    async def callback_retry(self, *, event_id: int, error: str, next_at: float | None, now: float) -> None:
        """Try again at `next_at`, or give up (None) after the last try."""
        state = "pending" if next_at is not None else "failed"
        await self.x.execute(q.CALLBACK_RETRY, (state, next_at or now, error[:500], now, event_id))

    # ------------------------------------------------------------ brute force

    async def auth_block(self, *, ip: str, username: str | None, policy: AuthPolicy, now: float) -> int | None:
        """199, 131 or 132 when the IP or username is blocked right now (199 > 131 > 132)."""
        if await self.x.fetchval(q.IP_BLOCKED, (ip,)):
            return codes.IP_BLOCKED
        if await self.x.fetchval(q.IP_FAILURES, (ip, now - policy.ip_window)) >= policy.ip_limit:
            return codes.IP_TRIALS_EXCEEDED
        if username is not None:
            count = await self.x.fetchval(
                q.USER_FAILURES, (username, codes.INVALID_USER_PASS, now - policy.user_window)
            )
            if count >= policy.user_limit:
                return codes.USER_TRIALS_EXCEEDED
        return None

    async def record_auth_failure(
        self, *, ip: str, username: str | None, code: int, policy: AuthPolicy, now: float
    ) -> None:
        """Count a failed attempt; block the IP for good past the permanent thresholds."""
        async with self.x.transaction() as tx:
            await tx.execute(q.INSERT_FAILURE, (ip, username, code, now))
            hour = await tx.fetchval(q.IP_FAILURES, (ip, now - policy.block_window))
            sids = await tx.fetchval(q.IP_CODE_FAILURES, (ip, codes.SID_NOT_FOUND, now - policy.sid_window))
            wrong = await tx.fetchval(q.IP_CODE_FAILURES, (ip, codes.INVALID_USER_PASS, now - policy.pass_window))
            reason = policy.permanent_block(hour=hour, sids=sids, wrong=wrong)
            if reason is not None:
                await tx.execute(q.BLOCK_IP, (ip, reason, now))

    async def auth_suspects(self, *, since: float, blocked_since: float | None = None) -> dict[str, float]:
        """Who failed since `since` (latest failure time), and IPs blocked (since `blocked_since`,
        or ever when None) at +inf."""
        found: dict[str, float] = {}
        for r in await self.x.fetchall(q.SUSPECT_FAILURES, (since, since)):
            found[r["who"]] = max(float(r["at"]), found.get(r["who"], float("-inf")))
        if blocked_since is None:
            blocked = await self.x.fetchall(q.BLOCKED_IPS)
        else:
            blocked = await self.x.fetchall(q.BLOCKED_IPS_SINCE, (blocked_since,))
        found.update((r["ip"], float("inf")) for r in blocked)
        return found

    def auth_version(self) -> int:
        """Other processes' failures are not announced here: the suspects refresh finds them."""
        return 0

    async def ledger_sums(self) -> list[tuple[int, int, int]]:
        """(customer_id, balance, sum of its ledger) for every customer: they must be equal."""
        return [(r["id"], int(r["balance"]), int(r["ledger"])) for r in await self.x.fetchall(q.LEDGER_SUMS)]


def message_values(spec: AcceptSpec) -> tuple[Any, ...]:
    """The INSERT_MESSAGE parameters for an accepted send (value = the customer's debit)."""
    assert spec.debits is not None
    return (
        spec.customer_id,
        spec.user_id,
        spec.dest,
        spec.text,
        spec.ctid,
        spec.cp_id,
        spec.cd_id,
        spec.sender,
        spec.connection,
        spec.debits[0][1],
        spec.cost,
        spec.segments,
        spec.encoding,
        spec.now,
        spec.now,
        spec.notify_url,
        spec.text_received,
        spec.night_since,
    )


def storable(text: str) -> str:
    """Text from outside (an upstream's answer, a report) as both engines can store it."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


async def enqueue(tx: Executor, message_id: int, now: float) -> None:
    """One callback event for the message's new state, when it has somewhere to go."""
    await tx.execute(q.ENQUEUE_CALLBACK, (new_event_id(), now, now, now, message_id))
