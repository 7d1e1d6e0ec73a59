"""The Inbound port on SQL (SPEC §14): a mixin of SqlStore, the same SQL on both engines."""

from __future__ import annotations

from collections.abc import Sequence

from pombo.adapters.sql.batch import Batcher
from pombo.adapters.sql.executor import Database, Executor
from pombo.adapters.sql.queries import MESSAGE_COLUMNS
from pombo.domain.ids import new_event_id
from pombo.domain.inbound import OPT_IN, OPT_OUT
from pombo.ports import InboundSpec, MessageRow

INBOUND_COLUMNS = (
    "id, connection, provider_id, customer_id, reply_to, routed_by, source, dest, text, received_at, created_at"
)
SENT_MESSAGE = f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id=? AND connection=?"
LATEST_SENT_TO = (
    f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE dest=? AND created_at>=? AND connection=? "
    "ORDER BY created_at DESC, id DESC LIMIT ?"
)
LATEST_SENT_TO_ANY = (
    f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE dest=? AND created_at>=? "
    "ORDER BY created_at DESC, id DESC LIMIT ?"
)
INSERT_INBOUND = (
    "INSERT INTO inbound (connection, provider_id, customer_id, reply_to, routed_by, source, dest, text, "
    "received_at, created_at, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (connection, provider_id) DO NOTHING RETURNING id"
)
INBOUND_ID = "SELECT id FROM inbound WHERE connection=? AND provider_id=?"
NOTIFY_URL = "SELECT notify_url FROM messages WHERE id=?"
ENQUEUE_MO = (
    "INSERT INTO callbacks (event_id, message_id, customer_id, url, status_code, delivery, state, attempts, "
    "next_at, created_at, updated_at, inbound_id) VALUES (?, ?, ?, ?, 0, 'mo', 'pending', 0, ?, ?, ?, ?)"
)
OPT_OUT_ADD = (
    "INSERT INTO opt_outs (customer_id, number, word, mo_id, created_at) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (customer_id, number) DO NOTHING"
)
OPT_OUT_LIFT = "DELETE FROM opt_outs WHERE customer_id=? AND number=?"
OPT_CHANGE = (
    "INSERT INTO opt_changes (customer_id, number, action, word, mo_id, created_at, seq) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
# the upsert locks the meta row until commit: opt changes commit one at a time in seq order, so a
# process that has read version N has seen every change up to N
NEXT_OPT_VERSION = (
    "INSERT INTO meta (key, value) VALUES ('opt_version', '1') ON CONFLICT (key) "
    "DO UPDATE SET value = CAST(CAST(meta.value AS BIGINT) + 1 AS TEXT) RETURNING value"
)
INBOUND_PAGE = (
    f"SELECT {INBOUND_COLUMNS} FROM inbound WHERE customer_id=? AND created_at>=? AND created_at<? AND id>? "
    "ORDER BY id LIMIT ?"
)
INBOUND_REPLIES = (
    f"SELECT {INBOUND_COLUMNS} FROM inbound WHERE customer_id=? AND reply_to=? AND id>? ORDER BY id LIMIT ?"
)
INBOUND_ROW = f"SELECT {INBOUND_COLUMNS} FROM inbound WHERE id=?"
OPT_CHANGES = (
    "SELECT number, action, word, mo_id, created_at FROM opt_changes WHERE customer_id=? ORDER BY id"
)


class InboundSide:
    """Inbound messages over `self.x`."""

    x: Database

    async def sent_message(self, *, connection: str, message_id: int) -> MessageRow | None:
        """The message with this id sent on `connection` (any customer's)."""
        return await self.x.fetchone(SENT_MESSAGE, (message_id, connection))

    async def latest_sent_to(
        self, *, connection: str | None, dest: str, since: float, limit: int
    ) -> list[MessageRow]:
        """Messages to `dest` on `connection` (None: any) created since `since`, newest first."""
        if connection is None:
            return await self.x.fetchall(LATEST_SENT_TO_ANY, (dest, float(since), limit))
        return await self.x.fetchall(LATEST_SENT_TO, (dest, float(since), connection, limit))

    _inbound_batcher: Batcher[InboundSpec, tuple[int, bool]] | None = None

    async def save_inbound(self, spec: InboundSpec) -> tuple[int, bool]:
        """Store once; a new message's opt change and `mo` event in the same transaction. The
        messages arriving together share one transaction (group commit), each stored in turn."""
        if self._inbound_batcher is None:
            self._inbound_batcher = Batcher(self._save_inbound_batch, max_batch=128)
        return await self._inbound_batcher.submit(spec)

    async def _save_inbound_batch(self, specs: Sequence[InboundSpec]) -> list[tuple[int, bool]]:
        async with self.x.transaction() as tx:
            return [await self._save_one(tx, spec) for spec in specs]

    async def _save_one(self, tx: Executor, spec: InboundSpec) -> tuple[int, bool]:
        new_id = await tx.fetchval(
            INSERT_INBOUND,
            (
                spec.connection, spec.provider_id, spec.customer_id, spec.reply_to, spec.routed_by,
                spec.sender, spec.dest, spec.text.replace("\x00", "\ufffd"), float(spec.received_at),
                float(spec.now), spec.raw.replace("\x00", "\ufffd"),
            ),
        )
        if new_id is None:
            return int(await tx.fetchval(INBOUND_ID, (spec.connection, spec.provider_id))), False
        inbound_id = int(new_id)
        if spec.customer_id is not None:
            await self._opt_change(tx, spec, inbound_id)
            await self._enqueue_mo(tx, spec, inbound_id)
        return inbound_id, True

    async def _opt_change(self, tx: Executor, spec: InboundSpec, inbound_id: int) -> None:
        if spec.opt is None or spec.customer_id is None:
            return
        action, word = spec.opt
        now = float(spec.now)
        if action == OPT_OUT:
            changed = await tx.execute(OPT_OUT_ADD, (spec.customer_id, spec.sender, word[:64], inbound_id, now))
        elif action == OPT_IN:  # only what an opt-out put there: the provisioned list stays
            changed = await tx.execute(OPT_OUT_LIFT, (spec.customer_id, spec.sender))
        else:
            return
        if changed:  # every server's next catalog check reads this change (not the whole catalog)
            seq = int(await tx.fetchval(NEXT_OPT_VERSION))
            await tx.execute(OPT_CHANGE, (spec.customer_id, spec.sender, action, word[:64], inbound_id, now, seq))
            if self.x.dialect == "postgresql":
                await tx.execute("SELECT pg_notify('pombo_config', '')")  # delivered at commit

    async def _enqueue_mo(self, tx: Executor, spec: InboundSpec, inbound_id: int) -> None:
        url = None
        if spec.reply_to is not None:
            url = await tx.fetchval(NOTIFY_URL, (spec.reply_to,))
        url = url or spec.callback_url
        if url:
            now = float(spec.now)
            await tx.execute(ENQUEUE_MO, (new_event_id(), -inbound_id, spec.customer_id, url, now, now, now, inbound_id))

    async def inbound_page(
        self, *, customer_id: int, start: float, end: float, after_id: int, limit: int
    ) -> list[MessageRow]:
        """The customer's inbound messages stored in [start, end) with id > after_id, by id."""
        return await self.x.fetchall(INBOUND_PAGE, (customer_id, float(start), float(end), after_id, limit))

    async def inbound_replies(
        self, *, customer_id: int, message_id: int, after_id: int, limit: int
    ) -> list[MessageRow]:
        """The customer's inbound messages answering `message_id`."""
        return await self.x.fetchall(INBOUND_REPLIES, (customer_id, message_id, after_id, limit))

    async def inbound_row(self, inbound_id: int) -> MessageRow | None:
        """One inbound message (for its callback event)."""
        return await self.x.fetchone(INBOUND_ROW, (inbound_id,))

    async def opt_changes(self, *, customer_id: int) -> list[MessageRow]:
        """The customer's opt-out/opt-in changes, oldest first."""
        return await self.x.fetchall(OPT_CHANGES, (customer_id,))
