"""An SMPP connection bound to the fake SMSC, with its receipts and MO messages collected."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from pombo.adapters.connections.smpp import SmppConnection, SmppHooks
from pombo.domain.model import ConnectionConfig
from tests.fakes.smsc import FakeSmsc


@dataclass
class Seen:
    """What the adapter handed to the services."""

    receipts: list[tuple[int | None, str, str | None, str]] = field(default_factory=list)
    inbound: list[tuple[str, str, str, str]] = field(default_factory=list)
    fail_receipts: bool = False

    async def on_receipt(self, connection: str, message_id: int | None, upstream_id: str, state: str | None, raw: str) -> int:
        if self.fail_receipts:
            raise RuntimeError("store down")
        self.receipts.append((message_id, upstream_id, state, raw))
        return 1

    async def on_inbound(self, connection: str, source: str, dest: str, text: str, raw: str) -> None:
        self.inbound.append((source, dest, text, raw))


def smpp_config(port: int, **options: Any) -> ConnectionConfig:
    final_timeout = options.pop("final_timeout", 5.0)
    opts = {"host": "127.0.0.1", "port": port, "binds": 1, "window": 100, "enquire_link": 30,
            "system_type": "VMA", "source_addr": "", "dest_ton": 1, "dest_npi": 1} | options
    return ConnectionConfig(name="claro", kind="smpp", url=f"smpp://127.0.0.1:{port}", username="pombo",
                            password="s3cr3t", ack_timeout=1.0, final_timeout=final_timeout, options=opts)


async def wait_for(check: Any, timeout: float = 5.0) -> None:
    """Poll `check()` until true."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not check():
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


@pytest.fixture
async def smsc() -> AsyncIterator[FakeSmsc]:
    fake = FakeSmsc()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def seen() -> Seen:
    return Seen()


@pytest.fixture
async def connect(smsc: FakeSmsc, seen: Seen) -> AsyncIterator[Any]:
    """connect(**options) -> a started SmppConnection whose binds are all up."""
    made: list[SmppConnection] = []

    async def make(**options: Any) -> SmppConnection:
        conn = SmppConnection(smpp_config(smsc.port, **options), hooks=SmppHooks(seen.on_receipt, seen.on_inbound))
        made.append(conn)
        conn.start()
        await wait_for(lambda: all(s == "bound" for s in conn.bind_states()))
        return conn

    yield make
    for conn in made:
        await conn.close()
