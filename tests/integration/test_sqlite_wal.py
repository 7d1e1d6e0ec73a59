"""SQLite's WAL starts over under constant writes, and nothing is lost on the way.

The store checkpoints from a thread and, once the WAL is long, holds the batches for a last pass
so that the next commit restarts it (see SqliteStore). Here the thresholds are shrunk so that
happens many times within a second of concurrent sends; the WAL header's checkpoint sequence
number (bytes 12-15 of the -wal file) counts the restarts.
"""

from __future__ import annotations

import asyncio
import struct
import time
from pathlib import Path

from pombo.adapters.sql.sqlite import SqliteStore
from tests.fakes.upstream import FakeUpstream
from tests.integration.gateway import assert_ledger_balanced, open_gateway, provisioning, send


def _wal_sequence(db: Path) -> int:
    with open(f"{db}-wal", "rb") as f:
        header = f.read(16)
    return int(struct.unpack(">I", header[12:16])[0]) if len(header) == 16 else -1


async def test_the_wal_starts_over_under_constant_writes(tmp_path: Path, upstream: FakeUpstream) -> None:
    db = tmp_path / "pombo.db"
    doc = provisioning(upstream.url, shop_balance="100000.00", reseller_balance="100000.00")
    for customer in doc["customers"]:
        customer["night_limit"] = None  # whatever the time of day
    services = await open_gateway(f"sqlite:///{db}", doc)
    store = services.store
    assert isinstance(store, SqliteStore)
    store.CHECKPOINT_EVERY = 0.01
    store.RESET_FRAMES = 64
    store.CATCH_UP_FRAMES = 16
    holds = 0
    hold = store._with_writes_held

    async def counted(job):  # type: ignore[no-untyped-def]
        nonlocal holds
        holds += 1
        await hold(job)

    store._with_writes_held = counted  # type: ignore[method-assign]
    codes: list[int] = []
    sequences: set[int] = set()
    try:
        deadline = time.monotonic() + 1.5

        async def sender(k: int) -> None:
            n = 0
            while time.monotonic() < deadline:
                result = await send(services, dest=f"1198{k:03d}{n:04d}", message="wal")
                codes.append(result.code)
                sequences.add(_wal_sequence(db))
                n += 1

        await asyncio.gather(*(sender(k) for k in range(16)))
        assert set(codes) == {0}, f"every send is accepted: {sorted(set(codes))}"
        assert holds >= 2, "the WAL never got long enough to be started over"
        assert len(sequences) >= 3, f"the WAL did not start over under load: {sorted(sequences)}"
        logged = await store.x.fetchval("SELECT COUNT(*) FROM messages", ())  # type: ignore[attr-defined]
        assert logged == len(codes)
        await assert_ledger_balanced(services)
    finally:
        await services.aclose()
