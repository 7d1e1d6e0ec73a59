"""The operator's ports on SQL (Admin, OperatorReads, LogStats, Operators): a mixin of SqlStore.

Cold paths: each call is one transaction on the store's synchronous SQLAlchemy engine, run on a
worker thread so the event loop keeps serving sends meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from pombo.adapters.sql import admin, edits, operators, provision, stats, views
from pombo.adapters.sql.catalog import TOKEN_VERSION_BUMP, TOKENS_NOTIFY
from pombo.adapters.sql.executor import Database
from pombo.adapters.sql.failures import check_sqlalchemy
from pombo.domain import credentials
from pombo.domain.customer_edits import CustomerChange
from pombo.domain.provisioning import Provisioning
from pombo.errors import NotFound
from pombo.ports import InboundFilter, MessageFilter, OperatorAccount, ProvisionReport, Row

T = TypeVar("T")
# GetUserID tsid=1 (a token that expires, the user's oldest minted ones beyond `keep` revoked):
# a few statements on the store's own connection, as a send's are. On the engine's connection,
# on a thread, each held SQLite's one write lock while it waited for the interpreter lock (the
# send path's next batch slept in SQLite's busy handler meanwhile) and cost ~1 ms of SQLAlchemy;
# 200 at once moved other customers' p99 by 20-40 ms.
INSERT_MINTED = (
    "INSERT INTO tokens (customer_id, user_id, token_hash, prefix, created_at, minted, expires_at, changed_seq) "
    "VALUES (?,?,?,?,?,?,?,?)"
)
LIVE_MINTED = "SELECT id FROM tokens WHERE minted=? AND revoked_at IS NULL AND "
PRUNE_AUTH_FAILURES = (
    "DELETE FROM auth_failures WHERE id IN "
    "(SELECT id FROM auth_failures WHERE created_at<? ORDER BY created_at LIMIT ?)"
)


class OperatorSide:
    """Admin, OperatorReads, LogStats and Operators over `self.engine`."""

    engine: Engine
    x: Database

    def invalidate(self) -> None:
        """Provided by the store: look at the configuration version again."""
        raise NotImplementedError

    async def _read(self, fn: Callable[..., T], /, **kwargs: Any) -> T:
        def work() -> T:
            with self.engine.connect() as conn:
                return fn(conn, **kwargs)

        return await _translated(work)

    async def _write(self, fn: Callable[..., T], /, **kwargs: Any) -> T:
        def work() -> T:
            with self.engine.begin() as conn:
                return fn(conn, **kwargs)

        try:
            return await _translated(work)
        finally:
            self.invalidate()  # whatever changed, this process reads it on its next request

    # ------------------------------------------------------------ Admin

    async def provision(
        self, plan: Provisioning, *, now: float, apply: bool = True, progress: Callable[[int], None] | None = None
    ) -> ProvisionReport:
        """Check the plan's references against what is stored, then apply it whole, or nothing;
        `apply=False` only checks; `progress(n)` is called from the writing thread."""
        return await self._write(provision.provision, plan=plan, now=now, apply=apply, progress=progress)

    async def credit_add(self, *, customer_id: int, amount: int, note: str | None, now: float) -> int:
        """Top up (negative: debit) a customer with a ledger row; the new balance. NotFound."""
        return await self._write(admin.credit_add, customer_id=customer_id, amount=amount, note=note, now=now)

    async def issue_token(self, *, customer_id: int, user_id: int | None, now: float) -> str:
        """A new random token (only its hash is kept); NotFound for an unknown customer."""
        return await self._write(admin.issue_token, customer_id=customer_id, user_id=user_id, now=now)

    async def mint_token(self, *, customer_id: int, user_id: int | None, keep: int, ttl: float, now: float) -> str:
        """A token that expires after `ttl` s; the user keeps its `keep` newest minted ones."""
        token = credentials.new_token()
        try:
            async with self.x.transaction() as tx:
                # the version first: it locks the meta row until commit, so token changes commit
                # one at a time in version order (catalog.bump_token_version)
                seq = int(await tx.fetchval(TOKEN_VERSION_BUMP))
                if self.x.dialect == "postgresql":
                    await tx.execute(TOKENS_NOTIFY)  # delivered at commit
                if await tx.fetchval("SELECT id FROM customers WHERE id=?", (customer_id,)) is None:
                    raise NotFound(f"customer {customer_id} does not exist")
                await tx.execute(INSERT_MINTED, (customer_id, user_id, credentials.hash_token(token),
                                                 credentials.token_prefix(token), now, True, now + ttl, seq))
                owner, args = ("user_id=?", (True, user_id)) if user_id is not None else \
                    ("user_id IS NULL AND customer_id=?", (True, customer_id))
                live = [r["id"] for r in await tx.fetchall(f"{LIVE_MINTED}{owner} ORDER BY id DESC", args)]
                if len(live) > keep:
                    old = live[keep:]
                    await tx.execute(f"UPDATE tokens SET revoked_at=?, changed_seq=? WHERE id IN ({','.join('?' * len(old))})",
                                     (now, seq, *old))
        finally:
            self.invalidate()
        return token

    async def revoke_token(self, *, token_or_prefix: str, now: float) -> int:
        """Revoke a token given whole or by its 10-character prefix; how many were revoked."""
        return await self._write(admin.revoke_token, token_or_prefix=token_or_prefix, now=now)

    async def revoke_customer_token(self, *, customer_id: int, token_id: int, now: float) -> str | None:
        """Revoke one token of this customer by its id; its prefix, or None when not live."""
        return await self._write(admin.revoke_customer_token, customer_id=customer_id, token_id=token_id, now=now)

    async def set_connection_enabled(self, *, name: str, enabled: bool) -> bool:
        """Enable or disable a connection; False when it does not exist."""
        return await self._write(admin.set_connection_enabled, name=name, enabled=enabled)

    async def set_customer_accents(self, *, customer_id: int, accents: str) -> bool:
        """Set a customer's `accents` (keep | fold); False when the customer does not exist."""
        return await self._write(admin.set_customer_accents, customer_id=customer_id, accents=accents)

    async def edit_customer(self, *, customer_id: int, change: CustomerChange, operator: str, now: float) -> Row | None:
        """One console change with its audit row; None when the customer or the item is not there."""
        return await self._write(edits.edit_customer, customer_id=customer_id, change=change, operator=operator,
                                 now=now)

    async def console_audit(self, *, customer_id: int, limit: int) -> list[Row]:
        """The customer's newest console_audit rows, newest first."""
        return await self._read(edits.console_audit, customer_id=customer_id, limit=limit)

    async def prune_log(self, *, before: float, now: float) -> dict[str, int]:
        """Delete settled messages created before `before` (never one still waiting)."""
        return await self._write(admin.prune_log, before=before, now=now)

    async def ip_report(self, *, since: float) -> list[Row]:
        """Blocked IPs and IPs with failures since `since`, with their counts."""
        return await self._read(admin.ip_report, since=since)

    # Failures go a batch per transaction, on the store's own connection (as a send's statements
    # go): on SQLite a long delete would hold the one write lock (and so every send) for as long
    # as it runs, so batches stay small and a pause between them lets the sends through. On a
    # thread with the engine, each batch also held that lock while it waited for the interpreter
    # lock, and the send path's next batch slept in SQLite's busy handler meanwhile. Measured with
    # bench/run.py sqlite-log1m-night-32 (1,000,000 old failures): 1,000-row batches back to back
    # cost the sends ~3x their CPU per send while the prune ran.
    PRUNE_BATCH = 200
    PRUNE_PAUSE = 0.02  # seconds between batches

    async def prune_auth_failures(self, *, before: float) -> int:
        """Forget failures older than `before` (no rule looks back that far); how many went."""
        total = 0
        while True:
            async with self.x.transaction() as tx:
                removed = await tx.execute(PRUNE_AUTH_FAILURES, (before, self.PRUNE_BATCH))
            total += removed
            if removed < self.PRUNE_BATCH:
                return total
            await asyncio.sleep(self.PRUNE_PAUSE)

    async def unblock_ip(self, *, ip: str) -> int:
        """Lift an IP's permanent block and forget its failures; how many rows went."""
        return await self._write(admin.unblock_ip, ip=ip)

    # ------------------------------------------------------------ OperatorReads

    async def customer_summaries(self) -> list[Row]:
        """Every customer by id with its count of live tokens."""
        return await self._read(views.customer_summaries)

    async def customer_detail(self, *, customer_id: int) -> Row | None:
        """The customer's columns and everything hanging from it; None when unknown."""
        return await self._read(views.customer_detail, customer_id=customer_id)

    async def search_messages(self, *, where: MessageFilter, limit: int) -> list[Row]:
        """Messages matching `where`, newest first, with their customer's name."""
        return await self._read(views.search_messages, where=where, limit=limit)

    async def message_story(self, *, message_id: int) -> Row | None:
        """One message with its ledger rows and reports; None when unknown."""
        return await self._read(views.message_story, message_id=message_id)

    async def search_inbound(self, *, where: InboundFilter, limit: int) -> list[Row]:
        """Inbound messages matching `where`, newest first, with their customer's name."""
        return await self._read(views.search_inbound, where=where, limit=limit)

    async def part_warnings(self) -> dict[str, Row]:
        """{connection: its count of messages sent in fewer parts than charged, and the latest}."""
        return await self._read(views.part_warnings)

    async def connections(self) -> list[Row]:
        """Every connection by name with how many customers route to it."""
        return await self._read(views.connections)

    # ------------------------------------------------------------ LogStats

    async def sends_since(self, *, since: float) -> int:
        """Messages created since `since`."""
        return await self._read(stats.sends_since, since=since)

    async def sends_per_minute(self, *, since: float) -> dict[int, dict[int, int]]:
        """{epoch minute: {status_code: count}} since `since`."""
        return await self._read(stats.sends_per_minute, since=since)

    async def delivery_by_connection(self, *, since: float) -> dict[str, dict[str, int]]:
        """{connection: {delivery state: count}} since `since`."""
        return await self._read(stats.delivery_by_connection, since=since)

    async def latency_per_minute(self, *, since: float) -> dict[str, dict[int, tuple[float, float]]]:
        """{connection: {epoch minute: (average, maximum) answer seconds}} since `since`."""
        return await self._read(stats.latency_per_minute, since=since)

    async def connection_health(self, *, since: float) -> dict[str, dict[str, Any]]:
        """Per connection: counts by status, answer time, waiting now, last error."""
        return await self._read(stats.connection_health, since=since)

    async def recent_attempts(self, *, limit: int) -> list[Row]:
        """The newest logged upstream attempts, newest first."""
        return await self._read(stats.recent_attempts, limit=limit)

    async def waiting_count(self) -> int:
        """Messages whose provider has not answered yet."""
        return await self._read(stats.waiting_now)

    async def spend_since(self, *, since: float) -> dict[int, int]:
        """{customer id: net spend on sends} since `since`."""
        return await self._read(stats.spend_since, since=since)

    # ------------------------------------------------------------ Operators

    async def save_operator(self, *, username: str, password_hash: str, now: float) -> bool:
        """Create the operator, or give it a new hash and end its sessions; True when created."""
        return await self._write(operators.save_operator, username=username, password_hash=password_hash, now=now)

    async def find_operator(self, *, username: str) -> OperatorAccount | None:
        """An active operator by username."""
        return await self._read(operators.find_operator, username=username)

    async def get_operator(self, *, operator_id: int) -> OperatorAccount | None:
        """An active operator by id."""
        return await self._read(operators.find_operator, operator_id=operator_id)

    async def end_sessions(self, *, operator_id: int, now: float) -> None:
        """Void every session of the operator issued until `now`."""
        await self._write(operators.end_sessions, operator_id=operator_id, now=now)

    async def console_secret(self, *, candidate: str) -> str:
        """The stored signing secret, `candidate` stored first when there is none."""
        return await asyncio.to_thread(operators.console_secret, self.engine, candidate=candidate)


async def _translated(work: Callable[[], T]) -> T:
    """Run off the event loop; the database away becomes StoreUnavailable (503, like every path)."""
    try:
        return await asyncio.to_thread(work)
    except SQLAlchemyError as exc:
        check_sqlalchemy(exc)
        raise
