"""Rejections counted in memory and written in batches (issue 17): exact counts, bounded
buffers, nothing lost of the counts when the database is away, and each refusal under the
customer its credentials name."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from pombo.adapters.memory import MemoryStore
from pombo.domain.rejections import RejectedRequest, minute_of
from pombo.errors import StoreUnavailable
from pombo.services.rejections import RejectionRecorder
from tests.unit.services.conftest import (
    NOON,
    OTHER_TOKEN,
    TOKEN,
    FakeClock,
    World,
    WorldMaker,
    base_document,
    customer,
)


def record(recorder: RejectionRecorder, customer_id: int, code: int = 240, **params: str) -> None:
    recorder.record(customer_id=customer_id, code=code, status="Mobile is not valid", ip="203.0.113.7",
                    credential="shop-to…", params={"dest": "123", "tsid": "shop-token-0001", **params})


async def test_a_flood_is_counted_exactly_and_kept_only_as_its_newest_few() -> None:
    store, clock = MemoryStore(), FakeClock(NOON)
    recorder = RejectionRecorder(store, clock=clock, keep=20, buffer=5)
    for i in range(10_000):
        record(recorder, 11, n=str(i))
        if i == 4_999:
            clock.advance(60)
    record(recorder, 20, code=238)
    assert recorder.dropped == 10_000 - 5
    assert recorder.pending_minutes() == {minute_of(NOON): {240: 5_000}, minute_of(NOON) + 1: {240: 5_000, 238: 1}}
    await recorder.flush()
    assert recorder.pending_minutes() == {}
    counts = await store.rejection_counts(customer_id=None, since=0)
    assert [(r["minute"] - minute_of(NOON), r["customer_id"], r["code"], r["count"]) for r in counts] == [
        (0, 11, 240, 5_000), (1, 11, 240, 5_000), (1, 20, 238, 1)]
    kept = await store.recent_rejections(customer_id=11, code=None, search=None, limit=100)
    assert [r["params"]["n"] for r in kept] == ["9999", "9998", "9997", "9996", "9995"]
    assert all(r["params"]["tsid"] == "shop-to…" for r in kept)  # masked when written
    for _ in range(30):
        record(recorder, 11)
        await recorder.flush()
    assert len(await store.recent_rejections(customer_id=11, code=None, search=None, limit=100)) == 20  # keep


class Away(MemoryStore):
    """A store whose database is away until `back` is set."""

    back = False

    async def record_rejections(self, *, counts: Sequence[tuple[int, int, int, int]],
                                events: Sequence[RejectedRequest], keep: int, prune_before: float | None = None,
                                ) -> None:
        if not self.back:
            raise StoreUnavailable("database unavailable: test")
        await super().record_rejections(counts=counts, events=events, keep=keep, prune_before=prune_before)


async def test_counts_wait_for_the_database_to_come_back() -> None:
    store, clock = Away(), FakeClock(NOON)
    recorder = RejectionRecorder(store, clock=clock)
    record(recorder, 11)
    record(recorder, 11)
    await recorder.flush()  # logged, not raised
    record(recorder, 11)
    store.back = True
    await recorder.flush()
    counts = await store.rejection_counts(customer_id=11, since=0)
    assert [r["count"] for r in counts] == [3]
    assert len(await store.recent_rejections(customer_id=11, code=None, search=None, limit=10)) == 1


async def test_each_refusal_names_the_customer_its_credentials_name(worlds: WorldMaker) -> None:
    doc = base_document()
    customer(doc, 20)["active"] = False
    customer(doc, 11)["ip_allowlist"] = ["198.51.100.0/24"]
    world: World = await worlds(doc)
    answers: list[Any] = [
        await world.send(token=TOKEN, ip="198.51.100.9", dest="123"),  # 240
        await world.send(token=TOKEN, ip="203.0.113.1"),  # 142
        await world.send(token=OTHER_TOKEN),  # 110
        await world.send(token="nobody-token-000001"),  # 102
        await world.send(token=None),  # 100
        await world.send(token=TOKEN, ip="198.51.100.9"),  # OK
    ]
    assert [(a.code, a.customer_id) for a in answers] == [(240, 11), (142, 11), (110, 20), (102, 0), (100, 0), (0, 11)]


class Slow(MemoryStore):
    """A store whose write waits until `go` is set (a database that takes its time to commit)."""

    def __init__(self) -> None:
        super().__init__()
        self.go = asyncio.Event()

    async def record_rejections(self, **kwargs: Any) -> None:
        await self.go.wait()
        await super().record_rejections(**kwargs)


async def test_counts_being_written_are_still_shown_until_the_write_commits() -> None:
    """The overview reads the store and then this process: while a write is in flight its counts
    are in neither place unless the recorder keeps showing them (the chart missed a 240)."""
    store, clock = Slow(), FakeClock(NOON)
    recorder = RejectionRecorder(store, clock=clock)
    record(recorder, 11)
    flush = asyncio.ensure_future(recorder.flush())
    await asyncio.sleep(0)
    assert await store.rejection_counts(customer_id=None, since=0) == []
    assert recorder.pending_minutes() == {minute_of(NOON): {240: 1}}  # in flight, still shown
    store.go.set()
    await flush
    assert recorder.pending_minutes() == {}
    assert [r["count"] for r in await store.rejection_counts(customer_id=None, since=0)] == [1]
