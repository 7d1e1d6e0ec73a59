"""A customer's own log (SPEC §4 GetSMSStatus): by id, by ctid, by page, never another's."""

from __future__ import annotations

import pytest

from pombo.ports import Store
from tests.contract.conftest import OTHER, SHOP, T0, spec


@pytest.fixture
async def log(shop: Store) -> dict[str, list[int]]:
    """Six sends of the shop one second apart (two share a ctid), and three of another customer."""
    ids: dict[str, list[int]] = {"shop": [], "other": []}
    for i in range(6):
        result = await shop.accept(spec(SHOP, dest=f"55119876500{i:02d}", now=T0 + i, ctid="k" if i in (1, 4) else None))
        assert isinstance(result, int)
        ids["shop"].append(result)
        if i % 2:
            other = await shop.accept(spec(OTHER, dest=f"55119876500{i:02d}", now=T0 + i, ctid="k"))
            assert isinstance(other, int)
            ids["other"].append(other)
    return ids


async def page(store: Store, customer_id: int = SHOP, *, start: float = 0, end: float = T0 * 2,
               after_id: int = 0, limit: int = 100) -> list[int]:
    rows = await store.messages_page(customer_id=customer_id, start=start, end=end, after_id=after_id, limit=limit)
    assert all(r["customer_id"] == customer_id for r in rows)
    return [r["id"] for r in rows]


async def test_pages_ascend_by_id_within_their_bounds(shop: Store, log: dict[str, list[int]]) -> None:
    mine = log["shop"]
    assert await page(shop) == mine
    assert await page(shop, start=T0 + 1, end=T0 + 4) == mine[1:4]  # [start, end)
    assert await page(shop, start=T0 + 1.5, end=T0 + 4.5) == mine[2:5]
    assert await page(shop, after_id=mine[2]) == mine[3:]
    assert await page(shop, limit=2) == mine[:2]
    assert await page(shop, after_id=mine[1], limit=2) == mine[2:4]
    assert await page(shop, start=T0 + 6, end=T0 + 10) == []
    assert await page(shop, OTHER) == log["other"]
    assert await page(shop, 999) == []


async def test_walking_the_pages_sees_each_message_once(shop: Store, log: dict[str, list[int]]) -> None:
    seen: list[int] = []
    while batch := await page(shop, after_id=seen[-1] if seen else 0, limit=4):
        seen += batch
    assert seen == log["shop"]


async def test_by_ctid_oldest_first_and_per_customer(shop: Store, log: dict[str, list[int]]) -> None:
    rows = await shop.messages_by_ctid(customer_id=SHOP, ctid="k", limit=10)
    assert [r["id"] for r in rows] == [log["shop"][1], log["shop"][4]]
    assert all(r["ctid"] == "k" for r in rows)
    assert [r["id"] for r in await shop.messages_by_ctid(customer_id=SHOP, ctid="k", limit=1)] == [log["shop"][1]]
    assert [r["id"] for r in await shop.messages_by_ctid(customer_id=OTHER, ctid="k", limit=10)] == log["other"]
    assert await shop.messages_by_ctid(customer_id=SHOP, ctid="nope", limit=10) == []


async def test_by_id_only_the_customers_own(shop: Store, log: dict[str, list[int]]) -> None:
    theirs = log["other"][0]
    assert await shop.get_message(customer_id=SHOP, message_id=theirs) is None
    row = await shop.get_message(customer_id=OTHER, message_id=theirs)
    assert row is not None and row["id"] == theirs
    assert await shop.get_message(customer_id=SHOP, message_id=10**9) is None
    assert theirs not in await page(shop)
