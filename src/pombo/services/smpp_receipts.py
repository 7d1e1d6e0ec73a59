"""SMPP receipts the connection could not match in memory (SPEC §12), matched in the store:
after a restart, on another worker's bind, or before the submit_sm_resp was recorded.

The adapter matches what it can in memory (its own submits). What it hands over here by upstream
id alone is looked up by every spelling of the id among the messages' upstream ids, then among
the part ids of multi-part messages (indexed by `parts()` when such a message is accepted); a
receipt that matches nothing is **held** in the store and tried again by `retry_held()` (a
background job) until its message is known, for HOLD_FOR seconds. Nothing is dropped that may
still match.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from pombo.domain import delivery
from pombo.domain.delivery import StatusReport
from pombo.domain.receipt_ids import id_keys, id_spellings
from pombo.ports import Clock, PartIds
from pombo.services.dlr import DeliveryReports

log = structlog.get_logger("pombo.smpp")

HOLD_FOR = 72 * 3600.0  # a held receipt that matched nothing for this long is dropped
PARTS_FOR = 7 * 24 * 3600.0  # part ids kept this long (receipts come within days)
BATCH = 500


class SmppReceipts:
    """Store-side matching of SMPP receipts, held receipts and multi-part settling."""

    def __init__(self, *, store: PartIds, dlr: DeliveryReports, clock: Clock) -> None:
        self._store = store
        self._dlr = dlr
        self._clock = clock

    async def parts(self, connection: str, message_id: int, ids: Sequence[str]) -> None:
        """A multi-part message was accepted: index each part's id in every form."""
        await self._store.record_parts(connection=connection, message_id=message_id,
                                       keys=[id_keys(i) for i in ids], now=self._clock.now())

    async def part_delivered(self, connection: str, message_id: int, part: int) -> None:
        """A part's delivered receipt the adapter matched in memory: counted durably too, so a
        restart before the last part's receipt still settles the message."""
        await self._store.part_delivered(connection=connection, message_id=message_id, part=part)

    async def receipt(self, connection: str, message_id: int | None, upstream_id: str, state: str | None,
                      raw: str) -> int:
        """Apply one receipt; the state moves made (0 when it was held)."""
        if message_id is None:
            matched = await self._match(connection, upstream_id, state)
            if matched is None:
                await self._store.hold_receipt(connection=connection, upstream_id=upstream_id, state=state, raw=raw,
                                               now=self._clock.now())
                log.info("smpp_receipt_held", connection=connection, upstream_id=upstream_id, state=state)
                return 0
            message_id, state = matched
        report = StatusReport(message_id, upstream_id, (state,) if state else (), raw=raw)
        return await self._dlr.apply(connection, [report])

    async def _match(self, connection: str, upstream_id: str, state: str | None) -> tuple[int, str | None] | None:
        """(message id, the state to apply) for a receipt known by its upstream id only."""
        part = await self._store.find_part(connection=connection, keys=id_keys(upstream_id))
        if part is not None:
            message_id, index, parts = part
            if state == delivery.DELIVERED:
                done = await self._store.part_delivered(connection=connection, message_id=message_id, part=index)
                return message_id, (delivery.DELIVERED if done >= parts else None)
            return message_id, state  # a failed part settles the message; sent/unknown move as such
        found = await self._store.find_upstream(connection=connection, upstream_ids=id_spellings(upstream_id))
        return (found, state) if found is not None else None

    async def retry_held(self) -> int:
        """Apply the held receipts whose message is known now; drop those held too long.
        Returns how many were applied."""
        now = self._clock.now()
        held = await self._store.held_receipts(limit=BATCH)
        done: list[int] = []
        applied = 0
        for h in held:
            matched = await self._match(h.connection, h.upstream_id, h.state)
            if matched is not None:
                message_id, state = matched
                report = StatusReport(message_id, h.upstream_id, (state,) if state else (), raw=h.raw)
                await self._dlr.apply(h.connection, [report])
                applied += 1
                done.append(h.id)
                log.info("smpp_receipt_matched_late", connection=h.connection, upstream_id=h.upstream_id,
                         cdls_id=message_id, held_for=round(now - h.created_at, 3))
            elif h.created_at < now - HOLD_FOR:
                done.append(h.id)
                log.warning("smpp_receipt_never_matched", connection=h.connection, upstream_id=h.upstream_id)
        await self._store.drop_held(ids=done)
        return applied

    async def prune(self) -> None:
        """Forget old part ids (maintenance)."""
        await self._store.prune_parts(older_than=self._clock.now() - PARTS_FOR)
