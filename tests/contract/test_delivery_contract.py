"""After the send (SPEC §8): delivery reports move forward only, orphans are claimed under a lease,
and every state change of a message with a callback URL becomes one outbox event, handed out in
order per message under a lease."""

from __future__ import annotations

import re
from typing import Any

import pytest

from pombo.ports import Store
from tests.contract.conftest import (
    OTHER,
    RESELLER,
    RESELLER_PRICE,
    SHOP,
    SHOP_PRICE,
    T0,
    assert_sound,
    ledger_rows,
    raw_reports,
    spec,
)

HOOK = "http://hook.example/cb"
HEX32 = re.compile(r"[0-9a-f]{32}")


async def accepted(store: Store, **kw: Any) -> int:
    result = await store.accept(spec(**kw))
    assert isinstance(result, int), result
    return result


async def delivery(store: Store, message_id: int) -> str:
    row = await store.get_message(customer_id=SHOP, message_id=message_id)
    assert row is not None
    return str(row["delivery"])


async def report(store: Store, state: str | None, *, message_id: int | None = None, upstream_id: str | None = None,
                 raw: str = "raw", now: float = T0 + 10, connection: str = "sim") -> bool:
    return await store.apply_delivery(connection=connection, message_id=message_id, upstream_id=upstream_id,
                                      state=state, raw=raw, now=now)


async def drain(store: Store, *, now: float = T0 + 1000) -> list[dict[str, Any]]:
    """Every event, taking each as it becomes due (done at once)."""
    events: list[dict[str, Any]] = []
    while batch := await store.due_callbacks(now=now, lease=30, limit=100):
        for event in batch:
            await store.callback_done(event_id=event["id"], now=now)
        events += batch
    return events


# ------------------------------------------------------------ delivery reports


async def test_reports_move_forward_only_and_are_all_kept(shop: Store) -> None:
    mid = await accepted(shop)
    await shop.settle_ok(message_id=mid, upstream_id="up-1", raw="ok", now=T0 + 1)
    steps = [("pending", False, "pending"), ("sent", True, "sent"), ("sent", False, "sent"),
             ("delivered", True, "delivered"), ("sent", False, "delivered"), ("undelivered", False, "delivered"),
             ("bogus", False, "delivered"), (None, False, "delivered")]
    for i, (state, moved, now_in) in enumerate(steps):
        assert await report(shop, state, message_id=mid, raw=f"r{i}", now=T0 + 10 + i) is moved, (i, state)
        assert await delivery(shop, mid) == now_in
    row = await shop.get_message(customer_id=SHOP, message_id=mid)
    assert row is not None
    assert (row["sent_at"], row["final_at"], row["updated_at"]) == (T0 + 11, T0 + 13, T0 + 13)
    assert await raw_reports(shop) == [("sim", mid, state, f"r{i}") for i, (state, _, _) in enumerate(steps)]


@pytest.mark.parametrize(
    ("first", "then", "moves"),
    [("unknown", "sent", True), ("unknown", "delivered", True), ("pending", "expired", True),
     ("sent", "rejected", True), ("rejected", "delivered", False), ("expired", "sent", False),
     ("unknown", "undelivered", True), ("unknown", "expired", True), ("unknown", "rejected", True),
     ("unknown", "unknown", False), ("unknown", "pending", False)],
)
async def test_forward_moves(shop: Store, first: str, then: str, moves: bool) -> None:
    mid = await accepted(shop)
    if first == "unknown":
        assert await shop.mark_unknown(message_id=mid, now=T0 + 1)
    elif first != "pending":
        assert await report(shop, first, message_id=mid)
    assert await report(shop, then, message_id=mid, now=T0 + 20) is moves
    assert await delivery(shop, mid) == (then if moves else first)


async def test_reports_find_messages_by_upstream_id_on_their_connection(shop: Store) -> None:
    mid = await accepted(shop)
    await shop.settle_ok(message_id=mid, upstream_id="up-7", raw="ok", now=T0 + 1)
    assert not await report(shop, "delivered", upstream_id="nope")  # unknown upstream id: ignored
    assert not await report(shop, "delivered", upstream_id="up-7", connection="other")
    assert not await report(shop, "delivered", message_id=mid, connection="other")
    assert not await report(shop, "delivered", message_id=99999)
    assert not await report(shop, "delivered")  # neither id
    assert await delivery(shop, mid) == "pending"
    assert await report(shop, "delivered", upstream_id="up-7")
    assert await delivery(shop, mid) == "delivered"
    kept = await raw_reports(shop)
    assert [r[1] for r in kept] == [None, None, None, None, None, mid]  # every report kept, found or not


async def test_a_message_id_wins_over_an_upstream_id(shop: Store) -> None:
    first, second = await accepted(shop), await accepted(shop, dest="5511987650002")
    await shop.settle_ok(message_id=second, upstream_id="up-2", raw="ok", now=T0 + 1)
    assert await report(shop, "delivered", message_id=first, upstream_id="up-2")
    assert (await delivery(shop, first), await delivery(shop, second)) == ("delivered", "pending")


# ------------------------------------------------------------ what a report does to the money and the status


async def status(store: Store, message_id: int) -> tuple[int, str]:
    row = await store.get_message(customer_id=SHOP, message_id=message_id)
    assert row is not None
    return int(row["status_code"]), str(row["delivery"])


async def refunds(store: Store, message_id: int) -> list[tuple[int, int]]:
    return sorted((c, a) for c, a, cause, m in await ledger_rows(store) if cause == "refund" and m == message_id)


CHAIN_REFUND = [(RESELLER, RESELLER_PRICE), (SHOP, SHOP_PRICE)]


@pytest.mark.parametrize("before", ["pending", "sent"])
async def test_a_rejected_report_refunds_the_chain_once(shop: Store, before: str) -> None:
    start = await shop.ledger_sums()
    mid = await accepted(shop, notify_url=HOOK)
    assert await shop.settle_ok(message_id=mid, upstream_id="u1", raw="0: Accepted", now=T0 + 1)
    if before == "sent":
        assert await report(shop, "sent", message_id=mid, now=T0 + 2)
    assert await report(shop, "rejected", message_id=mid, raw="type=16", now=T0 + 3)
    assert await refunds(shop, mid) == CHAIN_REFUND
    assert await status(shop, mid) == (0, "rejected")  # the caller was told OK: it stays OK
    assert await shop.ledger_sums() == start  # exactly what was debited came back
    assert not await report(shop, "rejected", message_id=mid, now=T0 + 4)  # a second report: nothing more
    assert not await report(shop, "undelivered", message_id=mid, now=T0 + 5)
    assert not await shop.settle_failed(message_id=mid, raw="late", now=T0 + 6)
    assert await refunds(shop, mid) == CHAIN_REFUND
    assert (await drain(shop))[-1]["delivery"] == "rejected"
    row = await shop.get_message(customer_id=SHOP, message_id=mid)
    assert row is not None and (row["return_log"], row["final_at"]) == ("0: Accepted", T0 + 3)
    await assert_sound(shop)


async def test_a_300_message_is_not_refunded_again(shop: Store) -> None:
    mid = await accepted(shop)
    assert await shop.settle_failed(message_id=mid, raw="NOK", now=T0 + 1)
    assert await refunds(shop, mid) == CHAIN_REFUND
    for i, state in enumerate(["rejected", "sent", "delivered", "expired"]):
        assert not await report(shop, state, message_id=mid, now=T0 + 2 + i)
    assert await refunds(shop, mid) == CHAIN_REFUND
    assert await status(shop, mid) == (300, "rejected")
    await assert_sound(shop)


async def test_a_rejected_report_fails_a_waiting_message_once(shop: Store) -> None:
    start = await shop.ledger_sums()
    mid = await accepted(shop, notify_url=HOOK)
    assert await shop.mark_unknown(message_id=mid, now=T0 + 1)
    assert await report(shop, "rejected", message_id=mid, raw="stat:REJECTD", now=T0 + 2)
    assert await status(shop, mid) == (300, "rejected")  # a WR that finally fails (§6)
    assert await refunds(shop, mid) == CHAIN_REFUND
    assert not await shop.settle_failed(message_id=mid, raw="late NOK", now=T0 + 3)  # no second refund
    assert not await shop.settle_ok(message_id=mid, upstream_id="late", raw="late OK", now=T0 + 3)
    assert await refunds(shop, mid) == CHAIN_REFUND and await shop.ledger_sums() == start
    assert [(e["status_code"], e["delivery"]) for e in await drain(shop)] == [(1, "unknown"), (300, "rejected")]
    row = await shop.get_message(customer_id=SHOP, message_id=mid)
    assert row is not None and row["return_log"] == "stat:REJECTD"
    await assert_sound(shop)


@pytest.mark.parametrize("state", ["undelivered", "expired", "delivered"])
async def test_reports_the_network_took_are_not_refunded(shop: Store, state: str) -> None:
    before = await ledger_rows(shop)
    mid = await accepted(shop)
    assert await shop.settle_ok(message_id=mid, upstream_id="u", raw="ok", now=T0 + 1)
    assert await report(shop, state, message_id=mid)
    assert await refunds(shop, mid) == []
    assert len(await ledger_rows(shop)) == len(before) + 2  # the two debits only
    assert await status(shop, mid) == (0, state)
    await assert_sound(shop)


@pytest.mark.parametrize("first", ["pending", "unknown"])
@pytest.mark.parametrize("state", ["sent", "delivered", "undelivered", "expired"])
async def test_a_report_the_provider_took_settles_a_waiting_message_ok(shop: Store, first: str, state: str) -> None:
    mid = await accepted(shop, notify_url=HOOK)
    if first == "unknown":
        assert await shop.mark_unknown(message_id=mid, now=T0 + 1)
    assert await report(shop, state, message_id=mid, upstream_id="up-9", raw=f"report {state}", now=T0 + 2)
    assert await status(shop, mid) == (0, state)
    row = await shop.get_message(customer_id=SHOP, message_id=mid)
    assert row is not None
    assert (row["return_log"], row["upstream_id"], row["updated_at"]) == (f"report {state}", "up-9", T0 + 2)
    assert not await shop.settle_ok(message_id=mid, upstream_id="late", raw="late", now=T0 + 3)  # settled already
    assert not await shop.settle_failed(message_id=mid, raw="late", now=T0 + 3)
    events = [(e["status_code"], e["delivery"]) for e in await drain(shop)]
    assert events == ([(1, "unknown")] if first == "unknown" else []) + [(0, state)]
    assert await refunds(shop, mid) == []
    await assert_sound(shop)


async def test_an_unknown_report_moves_nothing_and_the_message_keeps_waiting(shop: Store) -> None:
    mid = await accepted(shop)
    assert not await report(shop, "unknown", message_id=mid)
    assert await shop.mark_unknown(message_id=mid, now=T0 + 11)
    assert not await report(shop, "unknown", message_id=mid, now=T0 + 12)
    assert await status(shop, mid) == (1, "unknown")
    assert await report(shop, "delivered", message_id=mid, now=T0 + 13)  # unknown is not final (§11)
    assert await status(shop, mid) == (0, "delivered")


async def test_a_settled_message_keeps_its_answer_when_a_report_comes(shop: Store) -> None:
    mid = await accepted(shop)
    assert await shop.settle_ok(message_id=mid, upstream_id="u1", raw="0: Accepted", now=T0 + 1)
    assert await report(shop, "delivered", message_id=mid, upstream_id="other", raw="dlr", now=T0 + 2)
    row = await shop.get_message(customer_id=SHOP, message_id=mid)
    assert row is not None and (row["return_log"], row["upstream_id"]) == ("0: Accepted", "u1")


# ------------------------------------------------------------ orphans


async def test_orphans_are_claimed_under_a_lease(shop: Store) -> None:
    ids = [await accepted(shop, dest=f"55119876500{i:02d}", now=T0 + 10 * i) for i in range(4)]
    await shop.settle_ok(message_id=ids[1], upstream_id=None, raw="ok", now=T0 + 11)  # settled: no orphan

    async def claim(now: float, limit: int = 100) -> list[int]:
        return [r["id"] for r in await shop.claim_orphans(older_than=T0 + 25, now=now, limit=limit)]

    assert await claim(T0 + 100, limit=1) == [ids[0]]
    assert await claim(T0 + 100) == [ids[2]]  # ids[3] is too young, ids[0] is claimed
    assert await claim(T0 + 160) == []  # a claim lasts 60 s: not yet over at exactly 60
    assert await claim(T0 + 160.5) == [ids[0], ids[2]]
    assert await shop.mark_unknown(message_id=ids[0], now=T0 + 200)
    assert not await shop.mark_unknown(message_id=ids[0], now=T0 + 201)  # only from pending
    assert not await shop.mark_unknown(message_id=ids[1], now=T0 + 201)  # settled
    assert await claim(T0 + 400) == [ids[2]]  # unknown is no orphan any more
    assert await delivery(shop, ids[0]) == "unknown"
    row = await shop.get_message(customer_id=SHOP, message_id=ids[0])
    assert row is not None and row["status_code"] == 1  # still charged and waiting
    assert await shop.settle_ok(message_id=ids[0], upstream_id="late", raw="ok", now=T0 + 500)


async def test_claimed_rows_are_message_rows(shop: Store) -> None:
    mid = await accepted(shop, ctid="k")
    [row] = await shop.claim_orphans(older_than=T0 + 1, now=T0 + 100)
    assert row == await shop.get_message(customer_id=SHOP, message_id=mid)


# ------------------------------------------------------------ the outbox


async def every_change(store: Store, notify_url: str | None) -> int:
    """A message through every kind of change: settled, unknown-free path, three reports."""
    mid = await accepted(store, notify_url=notify_url)
    assert await store.settle_ok(message_id=mid, upstream_id="u1", raw="ok", now=T0 + 1)
    assert await report(store, "sent", message_id=mid, now=T0 + 2)
    assert not await report(store, "sent", message_id=mid, now=T0 + 3)  # no change, no event
    assert await report(store, "delivered", message_id=mid, now=T0 + 4)
    return mid


async def test_one_event_per_change_in_order(shop: Store) -> None:
    mid = await every_change(shop, HOOK)
    events = await drain(shop)
    assert [(e["status_code"], e["delivery"], e["occurred_at"]) for e in events] == [
        (0, "pending", T0 + 1), (0, "sent", T0 + 2), (0, "delivered", T0 + 4)]
    assert {(e["url"], e["customer_id"], e["message_id"], e["attempts"]) for e in events} == {(HOOK, SHOP, mid, 0)}
    assert events[-1]["message"] == await shop.get_message(customer_id=SHOP, message_id=mid)


async def test_no_events_without_a_url(shop: Store) -> None:
    await every_change(shop, None)
    failed = await accepted(shop, dest="5511987650002")
    await shop.settle_failed(message_id=failed, raw="no", now=T0 + 1)
    unknown = await accepted(shop, dest="5511987650003")
    await shop.mark_unknown(message_id=unknown, now=T0 + 1)
    assert await drain(shop) == []


async def test_event_ids_of_refunds_reports_and_unknowns(shop: Store) -> None:
    failed = await accepted(shop, notify_url=HOOK)
    await shop.settle_failed(message_id=failed, raw="no", now=T0 + 1)
    lost = await accepted(shop, dest="5511987650002", notify_url=HOOK)
    await shop.mark_unknown(message_id=lost, now=T0 + 1)
    await report(shop, "sent", message_id=lost, now=T0 + 2)
    events = await drain(shop)
    assert [(e["message_id"], e["status_code"], e["delivery"]) for e in events] == [
        (failed, 300, "rejected"), (lost, 1, "unknown"), (lost, 0, "sent")]  # the report settles it OK (§11)
    ids = [e["event_id"] for e in events]
    assert all(HEX32.fullmatch(i) for i in ids) and len(set(ids)) == len(ids)


async def test_event_ids_are_32_lowercase_hex_and_unique(request: pytest.FixtureRequest, shop: Store) -> None:
    await every_change(shop, HOOK)  # settled, sent, delivered: three events
    for i in range(3):
        mid = await accepted(shop, dest=f"55119876501{i:02d}", notify_url=HOOK)
        await shop.settle_ok(message_id=mid, upstream_id=f"v{i}", raw="ok", now=T0 + 5)
    ids = [e["event_id"] for e in await drain(shop)]
    assert len(ids) == 6
    assert len(set(ids)) == len(ids)
    assert all(HEX32.fullmatch(i) for i in ids), ids


async def test_the_next_event_waits_for_the_one_before(shop: Store) -> None:
    mid = await every_change(shop, HOOK)
    [first] = await shop.due_callbacks(now=T0 + 10, lease=30, limit=10)
    assert first["delivery"] == "pending"
    await shop.callback_retry(event_id=first["id"], error="502", next_at=T0 + 100, now=T0 + 10)
    assert await shop.due_callbacks(now=T0 + 50, lease=30, limit=10) == []  # nothing overtakes it
    [again] = await shop.due_callbacks(now=T0 + 100, lease=30, limit=10)
    assert (again["id"], again["attempts"]) == (first["id"], 1)
    await shop.callback_retry(event_id=again["id"], error="502 again", next_at=None, now=T0 + 100)  # given up
    [second] = await shop.due_callbacks(now=T0 + 101, lease=30, limit=10)
    assert (second["delivery"], second["message_id"]) == ("sent", mid)
    await shop.callback_done(event_id=second["id"], now=T0 + 101)
    [third] = await shop.due_callbacks(now=T0 + 101, lease=30, limit=10)
    assert third["delivery"] == "delivered"


async def test_a_leased_event_is_not_handed_out_again_until_the_lease_passes(shop: Store) -> None:
    await every_change(shop, HOOK)
    other = await accepted(shop, dest="5511987650002", notify_url=HOOK)
    await shop.settle_ok(message_id=other, upstream_id="u2", raw="ok", now=T0 + 1)
    leased = await shop.due_callbacks(now=T0 + 10, lease=30, limit=1)
    assert len(leased) == 1
    [next_one] = await shop.due_callbacks(now=T0 + 10, lease=30, limit=10)  # the other message's
    assert next_one["message_id"] == other
    assert await shop.due_callbacks(now=T0 + 40, lease=30, limit=10) == []  # exactly at the lease's end
    again = await shop.due_callbacks(now=T0 + 40.5, lease=30, limit=10)
    assert [e["id"] for e in again] == [leased[0]["id"], next_one["id"]]


async def test_an_event_not_yet_due_waits(shop: Store) -> None:
    mid = await accepted(shop, notify_url=HOOK)
    await shop.settle_ok(message_id=mid, upstream_id="u", raw="ok", now=T0 + 5)
    assert await shop.due_callbacks(now=T0 + 4.9, lease=30, limit=10) == []
    assert len(await shop.due_callbacks(now=T0 + 5, lease=30, limit=10)) == 1


async def test_per_customer_claims_take_turns(shop: Store) -> None:
    """Issue 16: at most `per_customer` events of one customer per claim, the customers taking
    turns (each one's first, then each one's second...), so one backlog never hides another."""
    mine = []
    for i in range(4):
        mid = await accepted(shop, dest=f"55119876502{i:02d}", notify_url=HOOK)
        await shop.settle_ok(message_id=mid, upstream_id=f"s{i}", raw="ok", now=T0 + 1)
        mine.append(mid)
    other = await accepted(shop, customer_id=OTHER, dest="5511987650299", notify_url=HOOK)
    await shop.settle_ok(message_id=other, upstream_id="o", raw="ok", now=T0 + 1)
    claimed = await shop.due_callbacks(now=T0 + 10, lease=30, limit=3, per_customer=2)
    assert [e["message_id"] for e in claimed] == [mine[0], other, mine[1]]
    assert [e["customer_id"] for e in claimed] == [SHOP, OTHER, SHOP]
    rest = await shop.due_callbacks(now=T0 + 10, lease=30, limit=10, per_customer=2)
    assert [e["message_id"] for e in rest] == [mine[2], mine[3]]


# ------------------------------------------------------------ Kannel's parts against the charge (issue 13)


async def test_parts_are_counted_and_judged_once(shop: Store) -> None:
    """count_part counts final receipts of multi-part messages on their own connection only;
    settle_parts takes out those whose first receipt is old enough and returns, once, those
    with fewer parts than segments, which also count in the connection's part warnings."""
    short = await accepted(shop, segments=2, dest="5511987650011")
    full = await accepted(shop, segments=3, dest="5511987650012")
    single = await accepted(shop, segments=1, dest="5511987650013")
    late = await accepted(shop, segments=2, dest="5511987650014")
    for message_id, receipts in ((short, 1), (full, 3), (single, 1)):
        for i in range(receipts):
            await shop.count_part(connection="sim", message_id=message_id, now=T0 + 10 + i)
    await shop.count_part(connection="other", message_id=late, now=T0 + 10)  # not its connection
    await shop.count_part(connection="sim", message_id=999_999, now=T0 + 10)  # unknown
    await shop.count_part(connection="sim", message_id=late, now=T0 + 50)
    assert await shop.settle_parts(before=T0 + 10, now=T0 + 60) == []
    judged = await shop.settle_parts(before=T0 + 40, now=T0 + 70)
    assert judged == [{"message_id": short, "connection": "sim", "segments": 2, "parts": 1}]
    assert await shop.settle_parts(before=T0 + 40, now=T0 + 80) == []
    assert await shop.settle_parts(before=T0 + 100, now=T0 + 110) == [
        {"message_id": late, "connection": "sim", "segments": 2, "parts": 1}]
    if hasattr(shop, "part_warnings"):  # the SQL stores: the console reads it
        warnings = await shop.part_warnings()
        assert {k: warnings["sim"][k] for k in ("count", "message_id", "segments", "parts", "at")} == {
            "count": 2, "message_id": late, "segments": 2, "parts": 1, "at": T0 + 110}
