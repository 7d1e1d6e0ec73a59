"""The night cap's counter is exact across workers: two stores on one database (two processes'
worth of connections) firing at a customer near its night limit let exactly the limit through."""

from __future__ import annotations

import asyncio

from pombo.adapters.sql.factory import open_store
from pombo.domain.codes import Rejection
from tests.contract.conftest import SHOP, T0, base_doc, provision, spec


def code(result: int | Rejection) -> int:
    return result.code if isinstance(result, Rejection) else 0


async def test_two_workers_at_the_night_limit_let_exactly_the_limit_through(database_url: str) -> None:
    first = await open_store(database_url)
    second = await open_store(database_url)
    try:
        assert (await provision(first, base_doc())).errors == []
        night = {"night_since": T0 - 100, "night_limit": 30}
        for i in range(25):
            assert code(await first.accept(spec(dest=f"5511986{i:06d}", now=T0 - 50, **night))) == 0
        results = await asyncio.gather(
            *(store.accept(spec(dest=f"5511987{i:06d}", **night))
              for i in range(40) for store in (first, second))
        )
        assert sorted(code(r) for r in results) == [0] * 5 + [245] * 75
        rows = await first.x.fetchall("SELECT customer_id, night_since, sent FROM night_counts")
        assert [(r["customer_id"], r["night_since"], r["sent"]) for r in rows] == [(SHOP, T0 - 100, 30)]
    finally:
        await second.close()
        await first.close()
