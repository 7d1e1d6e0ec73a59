"""The upstream queue's promises (SPEC §11), on every store: what waits is claimed once, fairly,
high priority first; expiry refunds once; the attempts log; a fallback's connection and cost."""

from __future__ import annotations

import asyncio
import time

from pombo.domain.engine import PACE_AHEAD, pace_batch
from pombo.ports import Store, Waiting
from tests.contract.conftest import (
    OTHER,
    RESELLER,
    SHOP,
    SHOP_PRICE,
    T0,
    assert_sound,
    ledger_rows,
    spec,
)


async def accept(store: Store, customer_id: int = SHOP, n: int = 0) -> int:
    result = await store.accept(spec(customer_id, dest=f"55119876{n:05d}"))
    assert isinstance(result, int), result
    return result


def waiting(message_id: int, customer_id: int = SHOP, *, priority: int = 0, not_before: float = T0,
            enqueued_at: float = T0, attempts: int = 0, connection: str = "sim") -> Waiting:
    return Waiting(message_id=message_id, customer_id=customer_id, connection=connection, priority=priority,
                   not_before=not_before, enqueued_at=enqueued_at, attempts=attempts)


async def test_a_queued_message_is_claimed_once_with_what_the_connection_needs(shop: Store) -> None:
    mid = await accept(shop)
    await shop.enqueue(waiting(mid), note=None, now=T0)
    assert await shop.queue_stats() == {"sim": (1, T0)}
    claimed = await shop.claim_due(connection="sim", limit=10, now=T0 + 1)
    assert [c.sms.id for c in claimed] == [mid]
    c = claimed[0]
    assert (c.sms.dest, c.sms.text, c.sms.encoding, c.segments, c.routed_to) == ("551198760000"[:12] + "0", "hello",
                                                                                  "GSM-7", 1, "sim")
    assert c.waiting == waiting(mid)
    assert await shop.claim_due(connection="sim", limit=10, now=T0 + 2) == []
    assert await shop.queue_stats() == {}
    assert [(a["connection"], a["kind"], a["at"]) for a in await shop.attempts(message_id=mid)] == [
        ("sim", "claimed", T0 + 1)
    ]


async def test_claims_wait_for_not_before_and_stay_on_their_connection(shop: Store) -> None:
    a, b = await accept(shop, n=1), await accept(shop, n=2)
    await shop.enqueue(waiting(a, not_before=T0 + 5), note="503 busy", now=T0)
    await shop.enqueue(waiting(b, connection="other"), note=None, now=T0)
    assert await shop.claim_due(connection="sim", limit=10, now=T0 + 4) == []
    assert [c.sms.id for c in await shop.claim_due(connection="sim", limit=10, now=T0 + 5)] == [a]
    assert [c.sms.id for c in await shop.claim_due(connection="other", limit=10, now=T0 + 5)] == [b]
    assert [(r["kind"], r["raw"]) for r in await shop.attempts(message_id=a)] == [("not_sent", "503 busy"),
                                                                                  ("claimed", None)]


async def test_claims_are_round_robin_across_customers_and_high_priority_first(shop: Store) -> None:
    burst = [await accept(shop, SHOP, n) for n in range(6)]
    single = await accept(shop, OTHER, 100)
    urgent = await accept(shop, RESELLER, 200)
    for mid in burst:
        await shop.enqueue(waiting(mid, SHOP), note=None, now=T0)
    await shop.enqueue(waiting(single, OTHER), note=None, now=T0)
    await shop.enqueue(waiting(urgent, RESELLER, priority=1), note=None, now=T0)
    first = [c.sms.id for c in await shop.claim_due(connection="sim", limit=3, now=T0)]
    assert first == [urgent, burst[0], single]
    rest = [c.sms.id for c in await shop.claim_due(connection="sim", limit=10, now=T0)]
    assert rest == burst[1:]


async def test_requeue_keeps_one_row_per_message(shop: Store) -> None:
    mid = await accept(shop)
    await shop.enqueue(waiting(mid), note=None, now=T0)
    await shop.enqueue(waiting(mid, attempts=2, not_before=T0 + 3, connection="other"), note="429", now=T0 + 1)
    assert await shop.queue_stats() == {"other": (1, T0)}
    (c,) = await shop.claim_due(connection="other", limit=5, now=T0 + 3)
    assert c.waiting.attempts == 2 and c.waiting.enqueued_at == T0


async def test_expiry_answers_300_and_refunds_once(shop: Store) -> None:
    old, young = await accept(shop, n=1), await accept(shop, n=2)
    await shop.enqueue(waiting(old, enqueued_at=T0), note=None, now=T0)
    await shop.enqueue(waiting(young, enqueued_at=T0 + 100), note=None, now=T0 + 100)
    assert await shop.expire(connection="sim", enqueued_before=T0 + 50, now=T0 + 3601) == [old]
    assert await shop.expire(connection="sim", enqueued_before=T0 + 50, now=T0 + 3602) == []
    row = await shop.get_message(customer_id=SHOP, message_id=old)
    assert row is not None
    assert (row["status_code"], row["delivery"], row["return_log"]) == (300, "rejected", "expired in queue")
    refunds = [r for r in await ledger_rows(shop) if r[2] == "refund"]
    assert sorted(refunds) == [(RESELLER, 500, "refund", old), (SHOP, SHOP_PRICE, "refund", old)]
    assert await shop.queue_stats() == {"sim": (1, T0 + 100)}
    await assert_sound(shop)


async def test_a_claimed_message_cannot_expire_and_an_expired_one_cannot_be_claimed(shop: Store) -> None:
    a, b = await accept(shop, n=1), await accept(shop, n=2)
    await shop.enqueue(waiting(a), note=None, now=T0)
    await shop.enqueue(waiting(b), note=None, now=T0)
    claims = await asyncio.gather(
        shop.claim_due(connection="sim", limit=1, now=T0),
        shop.expire(connection="sim", enqueued_before=T0 + 1, now=T0 + 3601),
    )
    claimed = {c.sms.id for c in claims[0]}
    assert claimed.isdisjoint(claims[1]) and claimed | set(claims[1]) == {a, b}
    await assert_sound(shop)


async def test_a_settled_message_is_never_handed_out(shop: Store) -> None:
    mid = await accept(shop)
    await shop.enqueue(waiting(mid), note=None, now=T0)
    assert await shop.settle_ok(message_id=mid, upstream_id="u1", raw="OK", now=T0)
    assert await shop.claim_due(connection="sim", limit=5, now=T0) == []


async def test_route_to_moves_connection_and_cost_not_the_price(shop: Store) -> None:
    mid = await accept(shop)
    await shop.route_to(message_id=mid, connection="other", cost=250, now=T0 + 1)
    row = await shop.get_message(customer_id=SHOP, message_id=mid)
    assert row is not None and (row["connection"], row["cost"], row["value"]) == ("other", 250, SHOP_PRICE)


async def test_queued_and_recently_claimed_messages_are_not_orphans(shop: Store) -> None:
    queued, claimed, orphan = await accept(shop, n=1), await accept(shop, n=2), await accept(shop, n=3)
    await shop.enqueue(waiting(claimed), note=None, now=T0)
    assert [c.sms.id for c in await shop.claim_due(connection="sim", limit=5, now=T0 + 100)] == [claimed]
    await shop.enqueue(waiting(queued), note=None, now=T0)
    rows = await shop.claim_orphans(older_than=T0 + 50, now=T0 + 120)
    assert [r["id"] for r in rows] == [orphan]
    # the claim is older than the orphan age now: a process that died mid-send left it
    rows = await shop.claim_orphans(older_than=T0 + 200, now=T0 + 300)
    assert sorted(r["id"] for r in rows) == [claimed, orphan]


async def test_grants_follow_one_even_schedule_across_callers(store: Store) -> None:
    # callers asking as fast as they can for 0.6 s (on PostgreSQL the database's clock decides,
    # so the test runs in real time): the grants keep the schedule of 100/s, each one at most
    # pace_batch(100) = 3, and the callers together take what the schedule gives
    rate, seconds = 100, 0.6
    got: list[tuple[float, int]] = []

    async def caller(name: str) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            n = await store.grant(connection=name, want=40, rate=rate, now=time.time())
            if n:
                got.append((time.monotonic(), n))
            await asyncio.sleep(0.002)

    started = time.monotonic()
    await asyncio.gather(caller("sim"), caller("sim"))
    assert max(n for _, n in got) == pace_batch(rate)
    total = sum(n for _, n in got)
    assert rate * seconds * 0.8 <= total <= rate * (seconds + PACE_AHEAD) + 1
    for t, _ in got:  # every 0.2 s of it holds no more than the schedule plus one grant
        inside = sum(n for u, n in got if t <= u < t + 0.2)
        assert inside <= rate * (0.2 + PACE_AHEAD) + 1
    assert got[0][0] - started < 0.1
    assert await store.grant(connection="other", want=5, rate=rate, now=time.time()) == 3  # its own


