"""The console's Connections page shows an SMPP connection's binds (this worker's): each bind's
state and window use, and submit_sm / receipts per second. A live gateway (uvicorn in a thread)
bound to the fake SMSC (its own event loop in another thread)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from tests import live_server
from tests.console.conftest import (
    OPERATOR,
    PASSWORD,
    Live,
    _add_operators,
    console_doc,
    csrf_of,
    database_for,
    fresh_ip,
)
from tests.fakes.smsc import FakeSmsc
from tests.integration.gateway import provision


@contextlib.contextmanager
def smsc_in_a_thread() -> Iterator[tuple[FakeSmsc, asyncio.AbstractEventLoop]]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fake-smsc", daemon=True)
    thread.start()
    fake = FakeSmsc()
    asyncio.run_coroutine_threadsafe(fake.start(), loop).result(5)
    try:
        yield fake, loop
    finally:
        asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


@pytest.fixture(scope="module")
def smsc() -> Iterator[tuple[FakeSmsc, asyncio.AbstractEventLoop]]:
    with smsc_in_a_thread() as running:
        yield running


@pytest.fixture(scope="module", params=["sqlite"])
def live(request: pytest.FixtureRequest, smsc: tuple[FakeSmsc, Any]) -> Iterator[Live]:
    url = database_for(request, request.param, "console-smpp")
    doc = console_doc()
    doc["connections"].append({"name": "claro", "kind": "smpp", "host": "127.0.0.1", "port": smsc[0].port,
                               "system_id": "pombo", "password": "s3cr3t", "binds": 2, "window": 7})
    provision(url, doc)
    asyncio.run(_add_operators(url))
    with live_server.serve(url) as (host, port, errors):  # background jobs on: the binds open at start
        yield Live(f"http://{host}:{port}", url, errors)


async def test_connections_page_shows_each_bind(live: Live, smsc: tuple[FakeSmsc, Any]) -> None:
    fake, _loop = smsc
    deadline = time.monotonic() + 10
    while len(fake.bound()) < 2:  # both binds opened at start
        assert time.monotonic() < deadline, "the binds did not open"
        await asyncio.sleep(0.05)
    connector = aiohttp.TCPConnector(local_addr=(fresh_ip(), 0), force_close=True)
    jar = aiohttp.CookieJar(unsafe=True)  # cookies from an IP address host
    async with aiohttp.ClientSession(connector=connector, cookie_jar=jar) as http:
        async with http.get(live.base + "/console/login") as r:
            form = {"csrf": csrf_of(await r.text()), "username": OPERATOR, "password": PASSWORD, "next": "/console/"}
        async with http.post(live.base + "/console/login", data=form, allow_redirects=False) as r:
            assert r.status == 303
        async with http.get(live.base + "/console/connections?lang=en") as r:
            assert r.status == 200
            page = await r.text()
    claro = page[page.index('data-connection="claro"'):]
    claro = claro[:claro.index("</section>")]
    assert "SMPP binds (this worker)" in claro
    assert len(re.findall(r'class="tag bind-bound"', claro)) == 2
    assert claro.count("window in use 0/7") == 2
    velip = page[page.index('data-connection="velip"'):]
    assert "SMPP binds" not in velip[:velip.index("</section>")]
