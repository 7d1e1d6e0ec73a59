"""Rejections kept (issue 17): counts add up across writes, each customer keeps its newest few,
the search finds them by destination, parameter, credential or address, the same on every engine."""

from __future__ import annotations

from pombo.domain.rejections import RejectedRequest, minute_of, scrub_params
from pombo.ports import Store
from tests.contract.conftest import OTHER, SHOP, T0


def event(customer_id: int, at: float, code: int = 240, dest: str = "123", **params: str) -> RejectedRequest:
    raw = {"dest": dest, "message": "oi", "tsid": "tok-shop-0000000001", **params}
    return RejectedRequest(at=at, customer_id=customer_id, code=code, status="Mobile is not valid", ip="203.0.113.9",
                           credential="tok-shop-0…", dest=dest, params=scrub_params(raw))


async def test_counts_add_up_per_minute_customer_and_code(store: Store) -> None:
    m = minute_of(T0)
    await store.record_rejections(counts=[(m, SHOP, 240, 3), (m, SHOP, 238, 1)], events=[], keep=10)
    await store.record_rejections(counts=[(m, SHOP, 240, 2), (m + 1, OTHER, 102, 7)], events=[], keep=10)
    rows = await store.rejection_counts(customer_id=None, since=T0)
    assert rows == [
        {"minute": m, "customer_id": SHOP, "code": 238, "count": 1},
        {"minute": m, "customer_id": SHOP, "code": 240, "count": 5},
        {"minute": m + 1, "customer_id": OTHER, "code": 102, "count": 7},
    ]
    assert await store.rejection_counts(customer_id=OTHER, since=T0) == rows[2:]
    assert await store.rejection_counts(customer_id=None, since=T0 + 60) == rows[2:]
    await store.record_rejections(counts=[], events=[], keep=10, prune_before=T0 + 60)
    assert await store.rejection_counts(customer_id=None, since=0) == rows[2:]


async def test_each_customer_keeps_its_newest_and_the_search_finds_them(store: Store) -> None:
    await store.record_rejections(
        counts=[], keep=3,
        events=[event(SHOP, T0 + i, dest=f"55119{i}") for i in range(5)] + [event(OTHER, T0, code=260, dest="5521999")],
    )
    await store.record_rejections(counts=[], keep=3, events=[event(SHOP, T0 + 10, code=238, dest="5511x", ctid="Pedido_7%")])
    shop = await store.recent_rejections(customer_id=SHOP, code=None, search=None, limit=50)
    assert [r["dest"] for r in shop] == ["5511x", "551194", "551193"]  # newest first, 3 kept
    assert all(r["customer_id"] == SHOP for r in shop)
    first = shop[0]
    assert first["code"] == 238 and first["ip"] == "203.0.113.9" and first["created_at"] == T0 + 10
    assert first["params"]["tsid"] == "tok-shop-…" and first["params"]["ctid"] == "Pedido_7%"
    assert [r["dest"] for r in await store.recent_rejections(customer_id=OTHER, code=None, search=None, limit=50)] == [
        "5521999"
    ]
    find = store.recent_rejections
    assert [r["dest"] for r in await find(customer_id=None, code=260, search=None, limit=50)] == ["5521999"]
    assert [r["dest"] for r in await find(customer_id=None, code=None, search="pedido_7%", limit=50)] == ["5511x"]
    assert await find(customer_id=None, code=None, search="pedidoX7", limit=50) == []  # _ and % are literal
    assert [r["dest"] for r in await find(customer_id=SHOP, code=None, search="551193", limit=50)] == ["551193"]
    assert len(await find(customer_id=None, code=None, search="203.0.113", limit=2)) == 2
    assert len(await find(customer_id=None, code=None, search="TOK-SHOP", limit=50)) == 4


async def test_a_stored_rejection_never_holds_a_whole_token_or_a_password() -> None:
    kept = scrub_params({"tsid": "abcdefghijklmnopqrstuvwxyz", "sid": "0123456789", "password": "hunter22",
                         "message": "x" * 1000, "dest": "1"})
    assert kept["tsid"] == "abcdefghij…" and kept["sid"] == "01234…" and kept["password"] == "***"
    assert len(kept["message"]) == 300
