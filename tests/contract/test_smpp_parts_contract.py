"""Durable SMPP receipt matching (the PartIds port, SPEC §12) on memory, SQLite and PostgreSQL:
part ids found by any key form, delivered parts counted once each, upstream ids found by any
spelling, held receipts kept in order until dropped."""

from __future__ import annotations

from pombo.domain.receipt_ids import id_keys, id_spellings
from pombo.ports import Store
from tests.contract.conftest import T0, spec


async def test_parts_are_found_by_any_form_and_counted_once(shop: Store) -> None:
    message_id = await shop.accept(spec())
    assert isinstance(message_id, int)
    ids = ["A0000001", "A0000002", "A0000003"]
    await shop.record_parts(connection="sim", message_id=message_id, keys=[id_keys(i) for i in ids], now=T0)
    assert await shop.find_part(connection="sim", keys=id_keys("2684354562")) == (message_id, 1, 3)  # decimal
    assert await shop.find_part(connection="sim", keys=id_keys("a0000003")) == (message_id, 2, 3)
    assert await shop.find_part(connection="other", keys=id_keys("A0000003")) is None
    assert await shop.find_part(connection="sim", keys=id_keys("B0000001")) is None
    assert await shop.part_delivered(connection="sim", message_id=message_id, part=0) == 1
    assert await shop.part_delivered(connection="sim", message_id=message_id, part=0) == 1  # again: once
    assert await shop.part_delivered(connection="sim", message_id=message_id, part=2) == 2
    await shop.prune_parts(older_than=T0 + 1)
    assert await shop.find_part(connection="sim", keys=id_keys("A0000001")) is None


async def test_upstream_ids_are_found_by_any_spelling(shop: Store) -> None:
    message_id = await shop.accept(spec())
    assert isinstance(message_id, int)
    await shop.settle_ok(message_id=message_id, upstream_id="A0000001", raw="ok", now=T0)
    assert await shop.find_upstream(connection="sim", upstream_ids=id_spellings("2684354561")) == message_id
    assert await shop.find_upstream(connection="sim", upstream_ids=id_spellings("a0000001")) == message_id
    assert await shop.find_upstream(connection="other", upstream_ids=id_spellings("A0000001")) is None
    assert await shop.find_upstream(connection="sim", upstream_ids=()) is None


async def test_held_receipts_kept_in_order_until_dropped(shop: Store) -> None:
    await shop.hold_receipt(connection="sim", upstream_id="X1", state="delivered", raw="id:X1 stat:DELIVRD", now=T0)
    await shop.hold_receipt(connection="sim", upstream_id="X2", state=None, raw="id:X2\x00", now=T0 + 1)
    held = await shop.held_receipts(limit=10)
    assert [(h.upstream_id, h.state, h.created_at) for h in held] == [("X1", "delivered", T0), ("X2", None, T0 + 1)]
    await shop.drop_held(ids=[held[0].id])
    assert [h.upstream_id for h in await shop.held_receipts(limit=10)] == ["X2"]
    await shop.drop_held(ids=[])
    assert len(await shop.held_receipts(limit=1)) == 1
