"""The store on PostgreSQL: asyncpg, one `pombo_write` call per flush (its SQL: migrations/versions/)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import create_engine

from pombo.adapters.sql import migrate
from pombo.adapters.sql.batch import Batcher
from pombo.adapters.sql.executor import Executor, Lease, PostgresDatabase
from pombo.adapters.sql.store import SettleItem, SqlStore
from pombo.domain import codes
from pombo.domain.catalog import Catalog
from pombo.domain.codes import Rejection
from pombo.ports import AcceptSpec, AuthPolicy

CATALOG_POLL = 1.0  # seconds; NOTIFY pombo_config makes changes visible at once


class PostgresStore(SqlStore):
    """asyncpg pool; the send path is one function call per batch."""

    # One batch in flight per process. pombo_accept holds its lock through the commit (and so
    # through the WAL flush): more batches in flight would only wait there, and split the
    # requests into smaller batches, each paying a flush of its own.
    flushes = 1

    def __init__(self, database_url: str, pool: Any) -> None:
        super().__init__(PostgresDatabase(pool), create_engine(migrate.sqlalchemy_url(database_url)))
        self.pool = pool
        self._writes: Batcher[tuple[str, Any], Any] = Batcher(self._write_batch, max_batch=256, concurrency=self.flushes)
        self._checked_at = 0.0
        self._notified = True
        self._refresh: asyncio.Future[Catalog] | None = None
        self._listener: Any = None
        self._relistening = False
        self._closed = False
        self._url = database_url
        self._auth_version = 0

    durable = True  # commits wait for the WAL flush (POMBO_PG_SYNCHRONOUS_COMMIT)

    @classmethod
    async def open(cls, database_url: str, *, pool_size: int = 16, durable: bool = True) -> PostgresStore:
        """Connect a pool and listen for configuration changes."""
        import asyncpg

        pool = await asyncpg.create_pool(database_url, min_size=2, max_size=pool_size, command_timeout=30)
        store = cls(database_url, pool)
        store.durable = durable
        try:
            store._listener = await store._listen()
        except BaseException:
            pool.terminate()
            raise
        return store

    async def _listen(self) -> Any:
        import asyncpg

        listener = await asyncpg.connect(self._url, timeout=5)
        try:
            await listener.add_listener("pombo_config", self._on_notify)
            await listener.add_listener("pombo_tokens", self._on_notify)  # a token issued or revoked
            await listener.add_listener("pombo_auth", self._on_auth_notify)
        except BaseException:
            listener.terminate()  # never left open behind us
            raise
        return listener

    def _on_notify(self, *_: Any) -> None:
        self._notified = True

    def _on_auth_notify(self, *_: Any) -> None:
        self._auth_version += 1

    def auth_version(self) -> int:
        # bumped by every worker's failed attempt (NOTIFY pombo_auth after its commit)
        return self._auth_version

    async def record_auth_failure(
        self, *, ip: str, username: str | None, code: int, policy: AuthPolicy, now: float
    ) -> None:
        await super().record_auth_failure(ip=ip, username=username, code=code, policy=policy, now=now)
        await self.x.execute("NOTIFY pombo_auth")

    def invalidate(self) -> None:
        self._notified = True

    async def close(self) -> None:
        self._closed = True
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                await listener.close(timeout=5)
            except Exception:
                listener.terminate()
        await super().close()

    async def catalog(self) -> Catalog:
        if self._refresh is None and (self._notified or time.monotonic() - self._checked_at > CATALOG_POLL):
            self._notified = False
            self._refresh = asyncio.ensure_future(self._refresh_catalog())
        if self._refresh is not None:
            # every caller waits for the one refresh in flight, never for a stale snapshot
            refresh = self._refresh
            try:
                return await asyncio.shield(refresh)
            finally:
                if refresh.done() and self._refresh is refresh:
                    self._refresh = None
                    if refresh.cancelled() or refresh.exception() is not None:
                        self._notified = True  # not checked: the next call tries again
                    else:
                        self._checked_at = time.monotonic()
                        await self._keep_listening()
        return self._catalog

    async def _keep_listening(self) -> None:
        """LISTEN again after the listening connection was lost (the poll covers the gap)."""
        if self._closed or self._relistening or (self._listener is not None and not self._listener.is_closed()):
            return
        import asyncpg

        self._relistening = True  # one reconnection at a time: a second would leak the first
        try:
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncio.TimeoutError):
                listener = await self._listen()
                if self._closed:  # the store closed while we connected
                    listener.terminate()
                    return
                old, self._listener = self._listener, listener
                if old is not None:
                    old.terminate()
                self._auth_version += 1  # failures while deaf: look again
        finally:
            self._relistening = False

    # New sends and the outcomes of earlier ones share one flush: one call, one transaction, one
    # WAL flush (pombo_write), instead of a transaction for each.
    async def accept(self, spec: AcceptSpec) -> int | Rejection:
        return await self._writes.submit(("accept", spec))

    async def _submit_settle(self, item: SettleItem) -> bool:
        return await self._writes.submit(("settle", item))

    async def _write_batch(self, items: Sequence[tuple[str, Any]]) -> list[Any]:
        import orjson

        accepts = [_spec_json(x) for kind, x in items if kind == "accept"]
        settles = [{"id": x[0], "uid": x[1], "raw": x[2], "at": x[3]} for kind, x in items if kind == "settle"]
        async with Lease(self.pool) as conn:
            row = await conn.fetchrow(
                "SELECT accepted, settled FROM pombo_write($1::jsonb, $2::jsonb, $3)",
                orjson.dumps(accepts).decode(),
                orjson.dumps(settles).decode(),
                self.durable,
            )
        accepted, settled = iter(row["accepted"]), set(row["settled"])
        out: list[Any] = []
        for kind, x in items:
            if kind == "accept":
                r = next(accepted)
                out.append(r if r > 0 else codes.reject(-r))
            else:
                out.append(x[0] in settled)
        return out

    async def _lock_accounts(self, tx: Executor, ids: Sequence[int]) -> None:
        if ids:
            await tx.fetchall("SELECT id FROM customers WHERE id = ANY(?::int[]) ORDER BY id FOR UPDATE", (list(ids),))


def _spec_json(spec: AcceptSpec) -> dict[str, Any]:
    return {
        "customer_id": spec.customer_id,
        "user_id": spec.user_id,
        "dest": spec.dest,
        "text": spec.text,
        "ctid": spec.ctid,
        "cp_id": spec.cp_id,
        "cd_id": spec.cd_id,
        "sender": spec.sender,
        "connection": spec.connection,
        "httpdup": spec.httpdup,
        "night_since": spec.night_since,
        "night_limit": spec.night_limit,
        "debits": [list(d) for d in spec.debits] if spec.debits is not None else None,
        "cost": spec.cost,
        "segments": spec.segments,
        "encoding": spec.encoding,
        "now": spec.now,
        "notify_url": spec.notify_url,
        "text_received": spec.text_received,
    }


