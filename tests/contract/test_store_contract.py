"""The send path's promises (SPEC §4, §6): 244, 245, 255, 250 in that order, the chain debit with
its ledger rows, settling and refunds, on every store."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pombo.domain.codes import Rejection
from pombo.ports import Store
from tests.contract.conftest import (
    DEST,
    OTHER,
    OTHER_PRICE,
    RESELLER,
    RESELLER_PRICE,
    SHOP,
    SHOP_PRICE,
    T0,
    assert_sound,
    base_doc,
    ledger_rows,
    provision,
    spec,
)


def code(result: int | Rejection) -> int:
    """0 for an accepted send (a message id), else the rejection's code."""
    return result.code if isinstance(result, Rejection) else 0


async def accepted(store: Store, **kw: Any) -> int:
    result = await store.accept(spec(**kw))
    assert isinstance(result, int), result
    return result


async def test_an_accepted_send_writes_the_row_the_ports_read(shop: Store) -> None:
    message_id = await accepted(shop, ctid="c-1", notify_url="http://hook.example/x")
    row = await shop.get_message(customer_id=SHOP, message_id=message_id)
    assert row == {
        "id": message_id, "customer_id": SHOP, "user_id": None, "dest": DEST, "text": "hello", "ctid": "c-1",
        "cp_id": None, "cd_id": None, "sender": None, "connection": "sim", "status_code": 1,
        "upstream_id": None, "value": SHOP_PRICE, "cost": 100, "segments": 1, "encoding": "GSM-7",
        "delivery": "pending", "return_log": None, "created_at": T0, "updated_at": T0, "sent_at": None,
        "final_at": None, "text_received": None,
    }
    assert type(row["id"]) is int and type(row["created_at"]) is float and type(row["value"]) is int


async def test_the_body_as_received_is_kept_beside_the_body_as_sent(shop: Store) -> None:
    """SPEC §13: the log's text is the body as sent; the body as received only where it differs."""
    received = "Olá! Promoção de verão: ação até amanhã 😀 " + "ç" * 2000
    message_id = await accepted(shop, text="Ola! Promocao", text_received=received)
    row = await shop.get_message(customer_id=SHOP, message_id=message_id)
    assert row is not None
    assert (row["text"], row["text_received"]) == ("Ola! Promocao", received)
    (paged,) = await shop.messages_page(customer_id=SHOP, start=T0 - 1, end=T0 + 1, after_id=0, limit=10)
    assert paged["text_received"] == received


# ------------------------------------------------------------ the order of the checks

DUP = {"httpdup": 60}
NIGHT = {"night_since": T0 - 3600, "night_limit": 1}
NO_TARIFF = {"debits": None}


@pytest.mark.parametrize(
    ("name", "kw", "expected"),
    [
        ("nothing wrong", {}, 0),
        ("duplicate alone", DUP, 244),
        ("night cap alone", {"night_since": T0 - 3600, "night_limit": 1}, 245),
        ("no tariff alone", NO_TARIFF, 255),
        ("duplicate and night cap", {**DUP, **NIGHT}, 244),
        ("night cap and no tariff", {**NIGHT, **NO_TARIFF}, 245),
        ("duplicate, night cap, no tariff", {**DUP, **NIGHT, **NO_TARIFF}, 244),
    ],
)
async def test_the_checks_answer_in_order(shop: Store, name: str, kw: dict[str, Any], expected: int) -> None:
    await accepted(shop, now=T0 - 10)  # one earlier send of the same customer to the same dest
    assert code(await shop.accept(spec(now=T0, **kw))) == expected, name


async def test_no_credit_alone_and_behind_no_tariff(store: Store) -> None:
    await provision(store, base_doc(shop_balance="0"))
    assert code(await store.accept(spec())) == 250
    assert code(await store.accept(spec(debits=None))) == 255  # 255 before 250
    await assert_sound(store)


async def test_a_rejected_send_writes_nothing(shop: Store) -> None:
    before = await shop.ledger_sums()
    assert code(await shop.accept(spec(debits=None))) == 255
    assert await shop.ledger_sums() == before
    assert await shop.messages_page(customer_id=SHOP, start=0, end=T0 * 2, after_id=0, limit=10) == []


# ------------------------------------------------------------ the duplicate window (244)


@pytest.mark.parametrize(
    ("name", "earlier_at", "httpdup", "expected"),
    [
        ("inside the window", T0 - 59, 60, 244),
        ("exactly at the window's start", T0 - 60, 60, 244),
        ("just before the window", T0 - 60.5, 60, 0),
        ("httpdup 0 disables the check", T0 - 1, 0, 0),
    ],
)
async def test_duplicate_window_edges(shop: Store, name: str, earlier_at: float, httpdup: int, expected: int) -> None:
    await accepted(shop, now=earlier_at)
    assert code(await shop.accept(spec(now=T0, httpdup=httpdup))) == expected, name


async def test_a_failed_send_is_no_duplicate_and_others_sends_do_not_count(shop: Store) -> None:
    failed = await accepted(shop, now=T0 - 5)
    assert await shop.settle_failed(message_id=failed, raw="refused", now=T0 - 4)
    await accepted(shop, customer_id=OTHER, now=T0 - 3)  # another customer, same dest
    await accepted(shop, dest="5511987650002", now=T0 - 2)  # same customer, another dest
    assert code(await shop.accept(spec(now=T0, httpdup=60))) == 0
    assert code(await shop.accept(spec(now=T0 + 1, httpdup=60))) == 244  # an accepted one (status 0/1) counts
    ok = await accepted(shop, dest="5511987650003", now=T0)
    assert await shop.settle_ok(message_id=ok, upstream_id="u", raw="ok", now=T0)
    assert code(await shop.accept(spec(dest="5511987650003", now=T0 + 1, httpdup=60))) == 244


# ------------------------------------------------------------ the night cap (245)


@pytest.mark.parametrize(("sent", "limit", "expected"), [(2, 3, 0), (3, 3, 245), (4, 3, 245), (0, 0, 245)])
async def test_night_cap_at_the_limit(shop: Store, sent: int, limit: int, expected: int) -> None:
    for i in range(sent):
        await accepted(shop, dest=f"55119876500{i:02d}", now=T0 - 100 + i)
    result = await shop.accept(spec(now=T0, night_since=T0 - 100, night_limit=limit))
    assert code(result) == expected


async def test_night_cap_counts_only_this_night_and_accepted_sends(shop: Store) -> None:
    await accepted(shop, dest="5511987650010", now=T0 - 200)  # before the night began
    failed = await accepted(shop, dest="5511987650011", now=T0 - 50)
    await shop.settle_failed(message_id=failed, raw="no", now=T0 - 49)
    await accepted(shop, customer_id=OTHER, dest="5511987650012", now=T0 - 40)  # another customer's
    assert code(await shop.accept(spec(now=T0, night_since=T0 - 100, night_limit=1))) == 0
    assert code(await shop.accept(spec(now=T0, dest="5511987650013", night_since=T0 - 100, night_limit=1))) == 245


# ------------------------------------------------------------ credit along the chain (250)


async def test_exact_debits_per_chain_account_and_the_ledger(shop: Store) -> None:
    before = {c: (await shop.balance(customer_id=c))[0] for c in (SHOP, RESELLER, OTHER)}
    message_id = await accepted(shop)
    after = {c: (await shop.balance(customer_id=c))[0] for c in (SHOP, RESELLER, OTHER)}
    assert after == {SHOP: before[SHOP] - SHOP_PRICE, RESELLER: before[RESELLER] - RESELLER_PRICE,
                     OTHER: before[OTHER]}
    rows = [r for r in await ledger_rows(shop) if r[3] == message_id]
    assert sorted(rows) == sorted([(SHOP, -SHOP_PRICE, "message", message_id),
                                   (RESELLER, -RESELLER_PRICE, "message", message_id)])
    await assert_sound(shop)


async def test_a_reseller_at_its_limit_stops_its_childs_send(store: Store) -> None:
    await provision(store, base_doc(reseller_balance="0.0600"))  # 600 units: one send of 500 leaves 100
    await accepted(store)
    assert await store.balance(customer_id=RESELLER) == (100, 0)
    await accepted(store)  # 100 > 0: accepted, and the reseller goes below 0
    assert await store.balance(customer_id=RESELLER) == (-400, 0)
    assert code(await store.accept(spec(dest="5511987650002"))) == 250
    assert (await store.balance(customer_id=SHOP))[0] == 200_000 - 2 * SHOP_PRICE  # the child paid twice only
    await assert_sound(store)


@pytest.mark.parametrize(
    ("balance", "limit", "sends_accepted", "final"),
    [
        ("0", "0", 0, 0),  # balance must be above the limit: equal is not enough
        ("0.0001", "0", 1, 1 - OTHER_PRICE),
        ("0", "-0.1000", 2, -2 * OTHER_PRICE),  # -1000: 0 and -700 are above it, -1400 is not
        ("0", "-0.0700", 1, -OTHER_PRICE),  # -700 is not above -700
    ],
)
async def test_credit_limit_rule(store: Store, balance: str, limit: str, sends_accepted: int, final: int) -> None:
    doc = base_doc(other_balance=balance)
    doc["customers"][2]["credit_limit"] = limit
    await provision(store, doc)
    results = [await store.accept(spec(OTHER, dest=f"55119876500{i:02d}")) for i in range(4)]
    assert [code(r) for r in results] == [0] * sends_accepted + [250] * (4 - sends_accepted)
    assert (await store.balance(customer_id=OTHER))[0] == final
    await assert_sound(store)


async def test_balance_of_an_unknown_customer(shop: Store) -> None:
    assert await shop.balance(customer_id=999) == (0, 0)
    assert await shop.balance(customer_id=SHOP) == (200_000, 0)


# ------------------------------------------------------------ settling and refunds


async def test_settle_ok_once(shop: Store) -> None:
    message_id = await accepted(shop)
    assert await shop.settle_ok(message_id=message_id, upstream_id="up-1", raw="OK", now=T0 + 1)
    assert not await shop.settle_ok(message_id=message_id, upstream_id="up-2", raw="again", now=T0 + 2)
    assert not await shop.settle_failed(message_id=message_id, raw="late", now=T0 + 3)
    row = await shop.get_message(customer_id=SHOP, message_id=message_id)
    assert row is not None
    assert (row["status_code"], row["upstream_id"], row["return_log"], row["updated_at"]) == (0, "up-1", "OK", T0 + 1)
    assert row["delivery"] == "pending"
    await assert_sound(shop)


async def test_settle_failed_refunds_exactly_once(shop: Store) -> None:
    start = await shop.ledger_sums()
    message_id = await accepted(shop)
    assert await shop.settle_failed(message_id=message_id, raw="refused", now=T0 + 1)
    assert not await shop.settle_failed(message_id=message_id, raw="refused again", now=T0 + 2)
    assert not await shop.settle_ok(message_id=message_id, upstream_id="u", raw="late ok", now=T0 + 3)
    assert await shop.ledger_sums() == start
    rows = sorted(r for r in await ledger_rows(shop) if r[3] == message_id)
    assert rows == sorted([(SHOP, -SHOP_PRICE, "message", message_id), (RESELLER, -RESELLER_PRICE, "message", message_id),
                           (SHOP, SHOP_PRICE, "refund", message_id), (RESELLER, RESELLER_PRICE, "refund", message_id)])
    row = await shop.get_message(customer_id=SHOP, message_id=message_id)
    assert row is not None
    assert (row["status_code"], row["delivery"], row["return_log"], row["final_at"]) == (300, "rejected", "refused", T0 + 1)
    await assert_sound(shop)


async def test_settling_an_unknown_message_does_nothing(shop: Store) -> None:
    assert not await shop.settle_ok(message_id=12345, upstream_id=None, raw="", now=T0)
    assert not await shop.settle_failed(message_id=12345, raw="", now=T0)


async def test_upstream_text_is_kept_storable(shop: Store) -> None:
    message_id = await accepted(shop)
    assert await shop.settle_ok(message_id=message_id, upstream_id="a\x00b" + "x" * 200, raw="r\x00" + "y" * 5000, now=T0)
    row = await shop.get_message(customer_id=SHOP, message_id=message_id)
    assert row is not None
    assert row["upstream_id"] == ("a\ufffdb" + "x" * 200)[:128]
    assert row["return_log"] == ("r\ufffd" + "y" * 5000)[:4000]


# ------------------------------------------------------------ concurrency


async def test_concurrent_duplicates_accept_exactly_one(shop: Store) -> None:
    results = await asyncio.gather(*(shop.accept(spec(now=T0 + i * 0.01, httpdup=60)) for i in range(50)))
    assert sorted(code(r) for r in results) == [0] + [244] * 49
    await assert_sound(shop)


async def test_concurrent_sends_against_limited_credit(store: Store) -> None:
    await provision(store, base_doc(shop_balance="1.0000"))  # 10000 units, 800 a send
    results = await asyncio.gather(*(store.accept(spec(dest=f"5511987{i:06d}")) for i in range(30)))
    # accepted while the balance is above 0 before the send: 10000, 9200, ..., 400 -> 13 sends
    assert sorted(code(r) for r in results) == [0] * 13 + [250] * 17
    assert await store.balance(customer_id=SHOP) == (10_000 - 13 * SHOP_PRICE, 0)
    await assert_sound(store)


async def test_concurrent_settles_refund_once(shop: Store) -> None:
    start = await shop.ledger_sums()
    message_id = await accepted(shop)
    results = await asyncio.gather(
        *(shop.settle_failed(message_id=message_id, raw=f"no {i}", now=T0 + 1) for i in range(10)),
        *(shop.settle_ok(message_id=message_id, upstream_id="u", raw="ok", now=T0 + 1) for _ in range(10)),
    )
    assert results.count(True) == 1
    row = await shop.get_message(customer_id=SHOP, message_id=message_id)
    assert row is not None
    if row["status_code"] == 300:
        assert await shop.ledger_sums() == start
    await assert_sound(shop)


async def test_concurrent_sends_under_the_night_cap(shop: Store) -> None:
    results = await asyncio.gather(
        *(shop.accept(spec(dest=f"5511987{i:06d}", night_since=T0 - 100, night_limit=5)) for i in range(20))
    )
    assert sorted(code(r) for r in results) == [0] * 5 + [245] * 15


async def test_concurrent_sends_of_a_reseller_and_its_child_share_its_credit(store: Store) -> None:
    await provision(store, base_doc(reseller_balance="0.2000"))  # 2000 units, 500 a send on its account
    results = await asyncio.gather(
        *(store.accept(spec(SHOP if i % 2 else RESELLER, dest=f"5511987{i:06d}")) for i in range(12))
    )
    # accepted while the reseller is above 0 before the send: 2000, 1500, 1000, 500 -> 4 sends
    assert sorted(code(r) for r in results) == [0] * 4 + [250] * 8
    assert await store.balance(customer_id=RESELLER) == (0, 0)
    await assert_sound(store)
