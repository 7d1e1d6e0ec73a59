"""SMPP through the upstream engine (SPEC §11, §12), the whole gateway on SQLite and PostgreSQL
against fake SMSCs on loopback: ESME_RTHROTTLED / ESME_RMSGQFUL and "no live bind" are *not
sent* and retried until accepted once; the window is per bind; a bind lost after the submit_sm
was written is *unknown* and never sent again; a throttled connection fails over to its
fallback. What the SMSC accepted is counted per message (exactly once), and every balance
equals its ledger.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from pombo.adapters.sql.factory import open_store
from pombo.bootstrap import Services, build_services
from pombo.config import Settings
from pombo.domain import codes
from tests.fakes.smsc import FakeSmsc, Rule
from tests.integration.gateway import assert_ledger_balanced, open_gateway, send
from tests.integration.smpp.conftest import wait_for

PRICE = 800  # units of 0.0001: 0.0800 per segment
_dests = itertools.count(1)

Gateway = Callable[..., Awaitable[Services]]


def fresh_dest() -> str:
    return f"119{next(_dests):08d}"


def normalised(dest: str) -> str:
    return "55" + dest


def smpp(name: str, port: int, **options: Any) -> dict[str, Any]:
    return {"name": name, "kind": "smpp", "host": "127.0.0.1", "port": port, "system_id": "pombo",
            "password": "s3cr3t", "ack_timeout": 0.5, "final_timeout": 2.0, **options}


@pytest.fixture
async def smsc2() -> AsyncIterator[FakeSmsc]:
    fake = FakeSmsc()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def gateway(database_url: str, smsc: FakeSmsc, smsc2: FakeSmsc) -> AsyncIterator[Gateway]:
    """gateway(**claro options) -> services whose shop (customer 11) sends to `claro` (smsc),
    with `tim` (smsc2) configured too; every bind opened before it returns."""
    opened: list[Services] = []

    async def make(*, start_binds: bool = True, **claro: Any) -> Services:
        doc = {
            "connections": [smpp("claro", smsc.port, **claro), smpp("tim", smsc2.port)],
            "costs": [{"connection": "claro", "prefix": "55", "cost": "0.0100"},
                      {"connection": "tim", "prefix": "55", "cost": "0.0200"}],
            "customers": [{"id": 10, "name": "Revenda", "balance": "500.00"},
                          {"id": 11, "name": "Loja", "parent": 10, "balance": "20.00", "sms_provider": "claro", "max_length": 500,
                           "tokens": ["tok-shop-0000000001"]}],
            "tariffs": [{"customer": 10, "prefix": "55", "value": "0.0500"},
                        {"customer": 11, "prefix": "55", "value": "0.0800"}],
        }
        services = await open_gateway(database_url, doc, background_jobs=False)
        opened.append(services)
        if start_binds:
            for config in (await services.store.catalog()).connections.values():
                connection: Any = services.dispatcher.connection(config)
                connection.start()
                await wait_for(lambda c=connection: all(s == "bound" for s in c.bind_states()))
        return services

    async def close(services: Services) -> None:
        opened.remove(services)
        await services.aclose()

    make.close = close  # type: ignore[attr-defined]
    yield make
    for services in opened:
        await services.aclose()


async def row(services: Services, cdls_id: int) -> dict[str, Any]:
    found = await services.store.get_message(customer_id=11, message_id=cdls_id)
    assert found is not None
    return dict(found)


async def settled(services: Services, cdls_id: int, code: int = codes.OK, timeout: float = 8.0) -> dict[str, Any]:
    """The message's row once its status_code is `code`."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while (found := await row(services, cdls_id))["status_code"] != code:
        if loop.time() > end:
            raise AssertionError(f"message {cdls_id} stayed {found['status_code']}: {found.get('return_log')}")
        await asyncio.sleep(0.05)
    return found


async def shop_balance(services: Services) -> int:
    return (await services.store.balance(customer_id=11))[0]


@pytest.mark.parametrize("status", [0x58, 0x14], ids=["ESME_RTHROTTLED", "ESME_RMSGQFUL"])
async def test_not_now_is_retried_until_accepted_once(gateway: Gateway, smsc: FakeSmsc, status: int) -> None:
    services = await gateway()
    before = await shop_balance(services)
    dest = fresh_dest()
    smsc.script[normalised(dest)] = [Rule(status=status), Rule(status=status)]
    sent = await send(services, dest=dest, message="oi")
    assert sent.code in (codes.OK, codes.WR)  # two backoffs (0.5 s, 1 s) outlast ack_timeout 0.5 s
    found = await settled(services, sent.cdls_id)
    assert found["connection"] == "claro"
    assert len([s for s in smsc.submits if s.dest == normalised(dest)]) == 3
    assert [s.message_id for s in smsc.accepted(normalised(dest))] == [found["upstream_id"]]  # once
    attempts = await services.store.attempts(message_id=sent.cdls_id)
    assert [a["kind"] for a in attempts].count("not_sent") == 2
    assert await shop_balance(services) == before - PRICE  # charged once, never refunded
    await assert_ledger_balanced(services)


async def test_window_is_per_bind_and_the_engine_keeps_the_rest(gateway: Gateway, smsc: FakeSmsc) -> None:
    smsc.default = Rule(answer_delay=0.15)
    services = await gateway(binds=2, window=3)
    dests = [fresh_dest() for _ in range(24)]
    results = await asyncio.gather(*(send(services, dest=d, message="janela") for d in dests))
    assert {r.code for r in results} <= {codes.OK, codes.WR}
    for r in results:
        await settled(services, r.cdls_id)
    assert smsc.most_outstanding() == 3  # never more than `window` unanswered on one bind
    assert len(smsc.bound()) == 2
    assert sorted(s.dest for s in smsc.accepted()) == sorted(normalised(d) for d in dests)  # each once
    # the engine held what did not fit (window x binds = 6): the connection never said "window full"
    assert services.dispatcher.health["claro"].by_kind["not_sent"] == 0
    await assert_ledger_balanced(services)


async def test_bind_lost_after_writing_is_unknown_and_never_resent(gateway: Gateway, smsc: FakeSmsc) -> None:
    services = await gateway()
    before = await shop_balance(services)
    lost, good = fresh_dest(), fresh_dest()
    smsc.rules[normalised(lost)] = Rule(drop=True)  # the SMSC reads the submit_sm and the socket dies
    sent = await send(services, dest=lost, message="perdida")
    assert sent.code == codes.WR
    await wait_for(lambda: services.dispatcher.health["claro"].by_kind["unknown"] == 1)
    attempts = await services.store.attempts(message_id=sent.cdls_id)
    assert [a["kind"] for a in attempts] == ["unknown"]
    assert "bind lost after submit_sm was written" in attempts[0]["raw"]
    # the keeper re-binds (1 s); a new message goes out, the lost one never again
    await wait_for(lambda: len(smsc.bound()) == 1, timeout=5)
    ok = await send(services, dest=good, message="boa")
    await settled(services, ok.cdls_id)
    await asyncio.sleep(1.0)
    assert len([s for s in smsc.submits if s.dest == normalised(lost)]) == 1
    found = await row(services, sent.cdls_id)
    assert found["status_code"] == codes.WR  # it may have reached the handset: charged, WR
    assert await shop_balance(services) == before - 2 * PRICE
    await assert_ledger_balanced(services)


async def test_no_live_bind_is_not_sent_and_goes_once_the_bind_is_up(gateway: Gateway, smsc: FakeSmsc) -> None:
    smsc.bind_status = 0x0E  # ESME_RINVPASWD: every bind refused for now
    services = await gateway(start_binds=False)
    config = (await services.store.catalog()).connections["claro"]
    connection: Any = services.dispatcher.connection(config)
    connection.start()
    await wait_for(lambda: len(smsc.bind_attempts) == 1 and connection.bind_states() == ["down"])
    dest = fresh_dest()
    sent = await send(services, dest=dest, message="espera")
    assert sent.code == codes.WR
    assert smsc.submits == []
    smsc.bind_status = 0  # the next re-bind (2 s after the first) succeeds
    found = await settled(services, sent.cdls_id, timeout=10)
    assert [s.message_id for s in smsc.accepted(normalised(dest))] == [found["upstream_id"]]
    assert len(smsc.submits) == 1
    kinds = [a["kind"] for a in await services.store.attempts(message_id=sent.cdls_id)]
    assert kinds.count("not_sent") >= 1 and "unknown" not in kinds
    await assert_ledger_balanced(services)


async def test_throttled_connection_fails_over_to_its_fallback(
    gateway: Gateway, smsc: FakeSmsc, smsc2: FakeSmsc
) -> None:
    smsc.default = Rule(status=0x58)  # claro throttles everything
    services = await gateway(fallback=["tim"])
    before = await shop_balance(services)
    dests = [fresh_dest() for _ in range(6)]
    results = await asyncio.gather(*(send(services, dest=d, message="desvio") for d in dests))
    rows = [await settled(services, r.cdls_id, timeout=10) for r in results]
    assert {r["connection"] for r in rows} == {"tim"}
    assert {r["cost"] for r in rows} == {200}  # tim's cost; the customer's price is claro's tariff
    assert smsc.accepted() == []
    assert sorted(s.dest for s in smsc2.accepted()) == sorted(normalised(d) for d in dests)  # each once
    assert services.dispatcher.health["claro"].state == "skipped"
    assert await shop_balance(services) == before - 6 * PRICE
    await assert_ledger_balanced(services)


async def test_rejected_is_300_refunded_and_never_tried_elsewhere(
    gateway: Gateway, smsc: FakeSmsc, smsc2: FakeSmsc
) -> None:
    services = await gateway(fallback=["tim"])
    before = await shop_balance(services)
    dest = fresh_dest()
    smsc.rules[normalised(dest)] = Rule(status=0x0B)
    sent = await send(services, dest=dest, message="nao")
    assert sent.code == codes.PROVIDER_ERROR
    found = await row(services, sent.cdls_id)
    assert "ESME_RINVDSTADR (0x0000000B)" in found["return_log"]
    assert smsc2.submits == [] and len(smsc.submits) == 1
    assert await shop_balance(services) == before
    await assert_ledger_balanced(services)


async def test_receipt_before_the_submit_sm_resp_settles_the_message(gateway: Gateway, smsc: FakeSmsc) -> None:
    services = await gateway()
    dest = fresh_dest()
    smsc.rules[normalised(dest)] = Rule(stat="DELIVRD", receipt_first=True)
    sent = await send(services, dest=dest, message="cedo")
    found = await settled(services, sent.cdls_id)
    await wait_for(lambda: bool(smsc.deliver_answers))
    for _ in range(100):
        found = await row(services, sent.cdls_id)
        if found["delivery"] == "delivered":
            break
        await asyncio.sleep(0.05)
    assert found["delivery"] == "delivered"
    assert smsc.deliver_answers == [(0x80000005, 0)]


async def test_report_shows_each_bind_its_window_and_rates(gateway: Gateway, smsc: FakeSmsc) -> None:
    smsc.default = Rule(answer_delay=0.3, stat="DELIVRD")
    services = await gateway(binds=2, window=5)
    sends = [asyncio.ensure_future(send(services, dest=fresh_dest(), message="ver")) for _ in range(4)]
    await wait_for(lambda: sum(s.outstanding for s in smsc.bound()) == 4)
    claro = (await services.dispatcher.report())["claro"]
    assert [b["state"] for b in claro["binds"]] == ["bound", "bound"]
    assert sum(b["window_used"] for b in claro["binds"]) == 4 and claro["window"] == 5
    await asyncio.gather(*sends)
    smsc.drop_all()  # both binds cut: down until the keepers re-bind
    await wait_for(lambda: "bound" not in services.dispatcher._live["claro"].bind_states())  # type: ignore[attr-defined]
    claro = (await services.dispatcher.report())["claro"]
    assert {b["state"] for b in claro["binds"]} <= {"down", "binding"}
    await wait_for(lambda: len(smsc.bound()) == 2, timeout=5)
    await asyncio.sleep(1.1)  # a whole second has passed since the submits
    claro = (await services.dispatcher.report())["claro"]
    assert claro["submits_per_s"] == 0.4 and claro["receipts_per_s"] == 0.4
    assert "binds" not in (await services.dispatcher.report()).get("nobody", {})


# -- durable matching: receipts the adapter cannot match in memory ------------------------------


async def second_worker(services: Services, database_url: str) -> Services:
    """Another process on the same database (its own binds), as a second worker would be."""
    other = await build_services(Settings(database_url=database_url, background_jobs=False),
                                 store=await open_store(database_url))
    config = (await other.store.catalog()).connections["claro"]
    connection: Any = other.dispatcher.connection(config)
    connection.start()
    await wait_for(lambda: connection.bind_states() == ["bound"])
    return other


async def held(services: Services) -> list[Any]:
    return await services.store.held_receipts(limit=100)


async def test_receipt_on_another_workers_bind_before_the_id_is_recorded_is_held_then_applied(
    gateway: Gateway, smsc: FakeSmsc, database_url: str
) -> None:
    a = await gateway()
    b = await second_worker(a, database_url)
    try:
        dest = fresh_dest()
        smsc.rules[normalised(dest)] = Rule(answer_delay=1.0)  # worker A waits for its submit_sm_resp
        sending = asyncio.ensure_future(send(a, dest=dest, message="outro"))
        await wait_for(lambda: bool(smsc.submits))
        submitted = smsc.submits[0]
        on_b = smsc.bound()[1]  # the SMSC reports on worker B's bind, before A knows the id
        assert await smsc.receipt(on_b, Rule(stat="DELIVRD", id_form="dec"), submitted.message_id, submitted.dest) == 0
        assert [h.state for h in await held(b)] == ["delivered"]  # B matched nothing: held, not lost
        sent = await sending
        found = await settled(a, sent.cdls_id)
        assert found["delivery"] == "pending" and found["upstream_id"] == submitted.message_id
        assert b.smpp_receipts is not None
        assert await b.smpp_receipts.retry_held() == 1  # the background job, once
        assert (await row(a, sent.cdls_id))["delivery"] == "delivered"
        assert await held(b) == []
        assert await b.smpp_receipts.retry_held() == 0
    finally:
        await b.aclose()


async def test_receipt_for_no_message_stays_held(gateway: Gateway, smsc: FakeSmsc) -> None:
    services = await gateway()
    assert await smsc.receipt(smsc.bound()[0], Rule(stat="DELIVRD"), "00ABCDEF", "5511900000000") == 0
    assert services.smpp_receipts is not None
    assert await services.smpp_receipts.retry_held() == 0
    assert [(h.upstream_id, h.state) for h in await held(services)] == [("00ABCDEF", "delivered")]


@pytest.mark.parametrize(("last", "state"), [("DELIVRD", "delivered"), ("UNDELIV", "undelivered")])
async def test_multipart_receipts_after_a_restart_settle_by_any_part(
    gateway: Gateway, smsc: FakeSmsc, database_url: str, last: str, state: str
) -> None:
    first = await gateway()
    dest = fresh_dest()
    sent = await send(first, dest=dest, message="a" * 400)  # 3 parts
    assert sent.code == codes.OK
    parts = smsc.accepted(normalised(dest))
    assert len(parts) == 3
    # part 1 delivered before the restart (counted in memory and in the store)
    assert await smsc.receipt(smsc.bound()[0], Rule(stat="DELIVRD"), parts[0].message_id, parts[0].dest) == 0
    await asyncio.sleep(0.2)
    assert (await row(first, sent.cdls_id))["delivery"] == "pending"
    await gateway.close(first)  # type: ignore[attr-defined]
    await wait_for(lambda: not smsc.bound())

    again = await second_worker(first, database_url)  # the restarted process: an empty memory
    try:
        session = smsc.bound()[0]
        assert await smsc.receipt(session, Rule(stat="DELIVRD", id_form="dec"), parts[1].message_id, parts[1].dest) == 0
        assert (await row(again, sent.cdls_id))["delivery"] == "pending"  # 2 of 3
        assert await smsc.receipt(session, Rule(stat=last, id_form="lower"), parts[2].message_id, parts[2].dest) == 0
        assert (await row(again, sent.cdls_id))["delivery"] == state
        assert await held(again) == []
    finally:
        await again.aclose()


async def test_a_bind_down_shrinks_the_engines_window(gateway: Gateway, smsc: FakeSmsc) -> None:
    services = await gateway(binds=2, window=3)
    connection: Any = services.dispatcher._live["claro"]  # type: ignore[attr-defined]
    assert connection.window_now() == 6
    smsc.bind_status = 0x0E  # re-binds refused from now on
    smsc.sessions[1].writer.close()  # one bind drops and stays down
    await wait_for(lambda: connection.bind_states().count("bound") == 1)
    assert connection.window_now() == 3
    smsc.default = Rule(answer_delay=0.15)
    waited: list[int] = []
    sending = asyncio.gather(*(send(services, dest=fresh_dest(), message="meia") for _ in range(12)))
    while not sending.done():
        waited.append(connection._slot_waiters)  # sends waiting inside the connection for a slot
        await asyncio.sleep(0.01)
    for r in sending.result():
        await settled(services, r.cdls_id)
    assert max(waited) == 0  # what did not fit waited in the engine, not in the connection
    assert smsc.most_outstanding() == 3 and len(smsc.accepted()) == 12
    assert services.dispatcher.health["claro"].by_kind["not_sent"] == 0
    await assert_ledger_balanced(services)
