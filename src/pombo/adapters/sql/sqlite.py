"""The store on SQLite: the stdlib driver on the event-loop thread, one writer transaction per batch."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import create_engine, event

from pombo.adapters.sql import queries as q
from pombo.adapters.sql.executor import SqliteDatabase
from pombo.adapters.sql.failures import check_sqlite
from pombo.adapters.sql.store import SettleItem, SqlStore, message_values
from pombo.domain import codes
from pombo.domain.codes import Rejection
from pombo.domain.ids import new_event_id
from pombo.ports import AcceptSpec

_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA temp_store=MEMORY",
    "PRAGMA busy_timeout=10000",
    "PRAGMA foreign_keys=ON",
)


def sqlite_path(database_url: str) -> str:
    """sqlite:///relative.db or sqlite:////abs/path.db -> a filesystem path."""
    if not database_url.startswith("sqlite:///"):
        raise ValueError(f"not a SQLite URL: {database_url!r}")
    return database_url[len("sqlite:///") :] or ":memory:"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any = None) -> None:
    for pragma in _SQLITE_PRAGMAS:
        dbapi_conn.execute(pragma)


def _no_autocheckpoint(dbapi_conn: Any, _record: Any = None) -> None:
    dbapi_conn.execute("PRAGMA wal_autocheckpoint=0")


class SqliteStore(SqlStore):
    """The embedded default."""

    # SQLite's automatic checkpoint runs inside a commit on the writing connection and fsyncs the
    # database file: tens of milliseconds on the event loop now and then (that was the p99). The
    # hot connection never checkpoints: a thread does, PASSIVE (never blocking a writer), every
    # 0.2 s. Under constant writes a PASSIVE checkpoint never quite catches up, and the WAL only
    # starts over once one has, so once the WAL is RESET_FRAMES long the thread catches up in
    # passes and then holds the batches for one last pass (requests queue meanwhile and go as one
    # batch); the next commit starts the WAL over. Measured (bench/run.py sqlite-32): that last
    # pass takes 3-25 ms however few pages are left, so it is made rare; and WAL_LIMIT is above
    # any WAL it leaves, because a restart that also truncates the file does so on the event
    # loop (cutting a 150 MB WAL back to 64 MB stalled it 20-40 ms). An idle gateway's WAL
    # starts over without any hold: its passive pass catches up on its own.
    CHECKPOINT_EVERY = 0.2
    RESET_FRAMES = 16384  # pages (64 MiB): at 5,000 sends/s a held pass about every 3 s
    CATCH_UP_FRAMES = 256  # pages a pass may leave behind before the held one
    WAL_LIMIT = 256 << 20  # bytes a restarted WAL file is truncated to

    def __init__(self, database_url: str) -> None:
        path = sqlite_path(database_url)
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        _sqlite_pragmas(db)
        db.execute("PRAGMA wal_autocheckpoint=0")
        db.execute(f"PRAGMA journal_size_limit={self.WAL_LIMIT}")
        engine = create_engine(database_url)
        event.listen(engine, "connect", _sqlite_pragmas)
        # the checkpoint thread is the one that checkpoints: a commit of the engine's (a minted
        # token, an operator's edit) otherwise ran an automatic checkpoint of the hot WAL, which
        # is always past 1,000 pages under load (~1 ms each; a tenth of the process when 33
        # GetUserID tsid=1 a second ran beside the sends)
        event.listen(engine, "connect", _no_autocheckpoint)
        self.db = db
        self._path = path
        self._checkpointer: asyncio.Task[None] | None = None
        super().__init__(SqliteDatabase(db), engine)

    def _change_mark(self) -> object:
        """SQLite's data_version: it moves when another connection commits (another process's
        `pombo load`, this process's operator writes, which invalidate() as well). The versions
        query it spares cost ~0.1 ms with a long WAL, 200 times a second under load."""
        try:
            return self.db.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.Error:
            return None  # the versions query then says what is wrong

    async def accept(self, spec: AcceptSpec) -> int | Rejection:
        if self._checkpointer is None:
            self._checkpointer = asyncio.ensure_future(self._checkpoints())
        return await super().accept(spec)

    async def _checkpoints(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=10000")

        def checkpoint() -> int:
            """Copy what it can; the WAL's length in pages."""
            _busy, frames, _copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            return int(frames)

        # One thread of its own runs every pass and finally the close, in that order: a pass still
        # running when this task is cancelled (the store closing) never has its connection closed
        # under it (sqlite3 does not guard that; it can crash the process).
        worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pombo-checkpoint")
        loop = asyncio.get_running_loop()

        def in_thread() -> Awaitable[int]:
            return loop.run_in_executor(worker, checkpoint)

        try:
            while True:
                await asyncio.sleep(self.CHECKPOINT_EVERY)
                frames = await in_thread()
                if frames < self.RESET_FRAMES:
                    continue
                # catch up without holding anyone first: each pass has only what the commits
                # added during the one before, so the held pass is short
                for _ in range(4):
                    before, frames = frames, await in_thread()
                    if frames - before <= self.CATCH_UP_FRAMES:
                        break
                await self._with_writes_held(in_thread)
        finally:
            worker.submit(conn.close)
            worker.shutdown(wait=False)

    async def _with_writes_held(self, job: Callable[[], Awaitable[Any]]) -> None:
        batchers = (self._accepts, self._settles)
        for b in batchers:
            b.hold()
        try:
            while not all(b.idle for b in batchers):
                await asyncio.sleep(0)
            await job()
        finally:
            for b in batchers:
                b.release()

    async def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpointer
        self.db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        await super().close()

    async def _accept_batch(self, specs: Sequence[AcceptSpec]) -> list[int | Rejection]:
        db = self.db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                results = [self._accept_one(db, spec) for spec in specs]
            except BaseException:
                if db.in_transaction:  # SQLite ends it by itself on some errors (a full disk)
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            check_sqlite(exc)
            raise
        return results

    @staticmethod
    def _accept_one(db: sqlite3.Connection, spec: AcceptSpec) -> int | Rejection:
        # Inside BEGIN IMMEDIATE this connection is the only writer, so checking and then
        # updating is exact; earlier sends of the same batch are already visible.
        if spec.httpdup > 0 and db.execute(q.DEDUP, (spec.customer_id, spec.dest, spec.now - spec.httpdup)).fetchone():
            return codes.reject(codes.HTTP_DUPLICATE)
        night = spec.night_since
        if night is not None and spec.night_limit is not None:
            # a counter kept by this transaction and by whatever moves a message to 300: the same
            # answer as counting the night's OK/WR messages, at the cost of a key probe
            row = db.execute(q.NIGHT_COUNT, (spec.customer_id, night)).fetchone()
            if (row[0] if row is not None else 0) >= spec.night_limit:
                return codes.reject(codes.NIGHT_LIMIT)
        if spec.debits is None:
            return codes.reject(codes.NO_TARIFF)
        for customer_id, _ in spec.debits:
            row = db.execute(q.CREDIT_OK, (customer_id,)).fetchone()
            if row is None or not row[0]:
                return codes.reject(codes.NO_CREDIT)
        db.executemany(q.DEBIT, [(amount, cid) for cid, amount in spec.debits])
        cur = db.execute(q.INSERT_MESSAGE, message_values(spec))
        message_id = int(cur.lastrowid or 0)
        db.executemany(q.INSERT_LEDGER, [(cid, -amount, "message", message_id, spec.now) for cid, amount in spec.debits])
        if night is not None:
            db.execute(q.NIGHT_ADD, (spec.customer_id, night))
        return message_id

    async def _settle_batch(self, items: Sequence[SettleItem]) -> list[bool]:
        db = self.db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                results = [self._settle_one(db, *item) for item in items]
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            check_sqlite(exc)
            raise
        return results

    @staticmethod
    def _settle_one(db: sqlite3.Connection, mid: int, uid: str | None, raw: str, now: float) -> bool:
        settled = db.execute(q.SETTLE_OK, (uid, raw, now, mid)).rowcount == 1
        if settled:
            db.execute(q.ENQUEUE_CALLBACK, (new_event_id(), now, now, now, mid))
        return settled


