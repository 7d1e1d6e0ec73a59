"""The send path on real SQLite and real HTTP to a fake upstream: outcomes, money, atomicity."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pombo.adapters.sql.factory import open_store
from pombo.bootstrap import Services
from tests.fakes.upstream import FakeUpstream
from tests.integration.gateway import (
    RESELLER_TOKEN,
    assert_ledger_balanced,
    open_gateway,
    provisioning,
    send,
)


@pytest.fixture
async def gw(database_url: str, upstream: FakeUpstream) -> AsyncIterator[Services]:
    services = await open_gateway(database_url, provisioning(upstream.url, ack_timeout=0.5, final_timeout=2.0))
    try:
        yield services
    finally:
        await services.aclose()


async def balance(services: Services, customer_id: int) -> int:
    return (await services.store.balance(customer_id=customer_id))[0]


async def message(services: Services, message_id: int) -> dict:
    row = await services.store.get_message(customer_id=11, message_id=message_id)
    assert row is not None
    return row


async def test_ok_debits_the_chain_and_logs(gw: Services, upstream: FakeUpstream) -> None:
    result = await send(gw, dest="11987654321", message="hello", ctid="c-1")
    assert (result.code, result.status) == (0, "OK") and result.cdls_id > 0
    row = await message(gw, result.cdls_id)
    assert row["status_code"] == 0 and row["delivery"] == "pending"
    assert row["value"] == 800 and row["cost"] == 100 and row["dest"] == "5511987654321"
    assert await balance(gw, 11) == 200_000 - 800
    assert await balance(gw, 10) == 5_000_000 - 500
    sent = upstream.received("kannel")
    assert len(sent) == 1 and sent[0].query["to"] == "5511987654321"
    await assert_ledger_balanced(gw)


async def test_segments_multiply_every_price(gw: Services) -> None:
    result = await send(gw, dest="11987654322", message="x" * 161, cuttext="0")
    assert result.code == 238
    result = await send(gw, dest="11987654322", message="ã" * 71)
    # "ã" is not GSM-7: UCS-2, 71 > 70 characters -> 2 segments
    row = await message(gw, result.cdls_id)
    assert (row["encoding"], row["segments"], row["value"]) == ("UCS-2", 2, 1600)
    assert await balance(gw, 10) == 5_000_000 - 1000


async def test_hard_error_is_300_refunded_and_frees_the_window(gw: Services, upstream: FakeUpstream) -> None:
    upstream.behave("kannel", mode="error")
    result = await send(gw, dest="11987654323", message="hello")
    assert (result.code, result.status) == (300, "error sms provider") and result.cdls_id > 0
    row = await message(gw, result.cdls_id)
    assert row["status_code"] == 300 and row["delivery"] == "rejected" and row["return_log"]
    assert await balance(gw, 11) == 200_000 and await balance(gw, 10) == 5_000_000
    upstream.behave("kannel", mode="ok")
    again = await send(gw, dest="11987654323", message="hello")
    assert again.code == 0  # a 300 does not take the duplicate window
    await assert_ledger_balanced(gw)


async def test_slow_upstream_answers_wr_then_settles(gw: Services, upstream: FakeUpstream) -> None:
    upstream.behave("kannel", mode="ok", delay=1.0)
    result = await send(gw, dest="11987654324", message="hello")
    assert (result.code, result.status) == (1, "WR") and result.cdls_id > 0
    assert (await message(gw, result.cdls_id))["status_code"] == 1
    assert await balance(gw, 11) == 200_000 - 800  # charged while waiting
    await asyncio.sleep(1.3)
    assert (await message(gw, result.cdls_id))["status_code"] == 0
    assert len(upstream.received("kannel")) == 1


async def test_wr_with_no_answer_stays_wr_charged_and_is_never_sent_again(gw: Services, upstream: FakeUpstream) -> None:
    # SPEC §11: no answer by final_timeout is an unknown outcome (it may have reached the
    # handset), not a refunded 300: a report or a status query settles it
    upstream.behave("kannel", mode="hang")
    result = await send(gw, dest="11987654325", message="hello")
    assert result.code == 1
    await asyncio.sleep(2.5)  # final_timeout is 2 s
    row = await message(gw, result.cdls_id)
    assert (row["status_code"], row["delivery"]) == (1, "pending")
    assert await balance(gw, 11) == 200_000 - 800
    assert len(upstream.received("kannel")) == 1  # never sent twice
    await assert_ledger_balanced(gw)


async def test_no_tariff_for_the_reseller_is_255(database_url: str, upstream: FakeUpstream) -> None:
    doc = provisioning(upstream.url)
    doc["tariffs"] = [t for t in doc["tariffs"] if t["customer"] != 10]
    services = await open_gateway(database_url, doc)
    try:
        assert (await send(services, dest="11987654326", message="hi")).code == 255
    finally:
        await services.aclose()


async def test_reseller_without_credit_is_250(database_url: str, upstream: FakeUpstream) -> None:
    services = await open_gateway(database_url, provisioning(upstream.url, reseller_balance="0"))
    try:
        result = await send(services, dest="11987654327", message="hi")
        assert (result.code, result.status, result.cdls_id) == (250, "no credit", 0)
        assert await balance(services, 11) == 200_000  # nothing half-debited
        await assert_ledger_balanced(services)
    finally:
        await services.aclose()


async def test_twenty_concurrent_identical_sends_yield_one_acceptance(gw: Services, upstream: FakeUpstream) -> None:
    results = await asyncio.gather(*(send(gw, dest="11987650000", message="same") for _ in range(20)))
    codes = sorted(r.code for r in results)
    assert codes == [0] + [244] * 19
    assert len(upstream.received("kannel")) == 1
    await assert_ledger_balanced(gw)


async def test_thirty_concurrent_sends_against_credit_for_five(database_url: str, upstream: FakeUpstream) -> None:
    # a send is allowed while balance > credit_limit: 5 sends of 0.0800 take 0.4000 to exactly 0
    services = await open_gateway(database_url, provisioning(upstream.url, shop_balance="0.4000"))
    try:
        results = await asyncio.gather(
            *(send(services, dest=f"119876{i:05d}", message="hi") for i in range(30))
        )
        codes = [r.code for r in results]
        assert codes.count(0) == 5 and codes.count(250) == 25
        assert await balance(services, 11) == 0
        assert len(upstream.received("kannel")) == 5
        await assert_ledger_balanced(services)
    finally:
        await services.aclose()


WORKER = textwrap.dedent(
    """
    import asyncio, json, sys
    from pombo.adapters.sql.factory import open_store
    from pombo.bootstrap import build_services
    from pombo.config import Settings
    from tests.integration.gateway import send

    async def main(url, offset, n, same):
        services = await build_services(Settings(database_url=url), store=await open_store(url))
        try:
            results = await asyncio.gather(*(
                send(services, dest="11987600000" if same else f"119876{offset + i:05d}", message="hi")
                for i in range(n)))
        finally:
            await services.aclose()
        print(json.dumps([r.code for r in results]))

    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "same"))
    """
)


@pytest.mark.parametrize("same", [True, False])
async def test_concurrent_processes_on_one_file(database_url: str, upstream: FakeUpstream, same: bool) -> None:
    """Two processes on one database (two workers): dedup and credit stay exact."""
    services = await open_gateway(database_url, provisioning(upstream.url, shop_balance="0.4000"))
    url = services.settings.database_url
    await services.aclose()
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", WORKER, url, str(k * 100), "15", "same" if same else "distinct",
            stdout=subprocess.PIPE, cwd=str(Path(__file__).parents[2]),
        )
        for k in range(2)
    ]
    outputs = [await p.communicate() for p in procs]
    codes = [c for out, _ in outputs for c in json.loads(out)]
    if same:
        assert codes.count(0) == 1 and codes.count(244) == 29
    else:
        assert codes.count(0) == 5 and codes.count(250) == 25
    store = await open_store(url)
    try:
        for customer_id, bal, ledger in await store.ledger_sums():
            assert bal == ledger, customer_id
    finally:
        await store.close()


async def test_reseller_token_sees_its_own_balance(gw: Services) -> None:
    await send(gw, dest="11987654328", message="hi")
    answer = await gw.accounts.get_balance(creds=_creds(RESELLER_TOKEN))
    assert answer == {"status": "OK", "status_code": "0", "balance": "499.9500", "credit_limit": "0.0000"}


def _creds(token: str):  # type: ignore[no-untyped-def]
    from pombo.services.auth import Credentials

    return Credentials(token=token, basic=None, ip="127.0.0.1")


async def test_commits_without_waiting_for_the_wal_flush_when_asked(database_url: str, upstream: FakeUpstream) -> None:
    """POMBO_PG_SYNCHRONOUS_COMMIT=false (PostgreSQL only; SQLite ignores it) changes durability,
    not behaviour: sends, outcomes and money are the same."""
    services = await open_gateway(database_url, provisioning(upstream.url), pg_synchronous_commit=False)
    try:
        results = await asyncio.gather(*(send(services, dest=f"119876{i:05d}", message="hi") for i in range(10)))
        assert [r.code for r in results] == [0] * 10
        await asyncio.sleep(0.1)
        rows = [await message(services, r.cdls_id) for r in results]
        assert all(r["status_code"] == 0 for r in rows)
        await assert_ledger_balanced(services)
    finally:
        await services.aclose()
