"""Inbound messages, replies and opt-out (SPEC §14) on both engines.

The intake at /mo/{connection}/{dlr_secret} is driven over real HTTP against the app under
uvicorn (providers' real field names: Kannel's get-url, Wavy's MO callback, an http `mo`
mapping); routing, opt-out and the `mo` callback event through the services on a real database.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest

from pombo.bootstrap import Services
from pombo.domain.inbound import BadInbound
from pombo.services.auth import Credentials
from pombo.services.dlr import Forbidden
from tests.fakes.upstream import FakeUpstream
from tests.integration.gateway import TOKEN, open_gateway, provision, provisioning, send
from tests.integration.test_delivery import LOOPBACK, Hook
from tests.integration.test_hardening_api import fake_upstream, module_database
from tests.live_server import serve

OTHER_TOKEN = "tok-other-000000001"
WAVY_TOKEN = "tok-wavy-0000000001"
MATRIX_TOKEN = "tok-matrix-000000001"
SECRETS = {"velip": "k-secret", "wavy": "w-secret", "matrix": "m-secret", "tww": "t-secret"}
_numbers = itertools.count(1000)


def fresh_dest() -> str:
    """A handset no other test of the module has used (national form)."""
    return f"1198765{next(_numbers):04d}"


def doc(upstream_url: str, *, callback_url: str | None = None) -> dict[str, Any]:
    base = provisioning(upstream_url, ack_timeout=1.0, final_timeout=2.0)
    for c in base["connections"]:
        c["dlr_secret"] = SECRETS[c["name"]]
    base["connections"][3]["mo"] = {"from": "msisdn", "to": "shortcode", "text": "body", "id": "mid", "correlation": "ref"}
    shop = base["customers"][1]
    shop["numbers"] = ["28000"]
    if callback_url:
        shop["callback"] = {"url": callback_url}
    base["customers"] += [
        {"id": 12, "name": "Outra", "balance": "20.00", "tokens": [OTHER_TOKEN]},
        {"id": 13, "name": "Wavy", "balance": "20.00", "sms_provider": "wavy", "tokens": [WAVY_TOKEN], "reply_window": 1},
        {"id": 14, "name": "Matrix", "balance": "20.00", "sms_provider": "matrix", "tokens": [MATRIX_TOKEN]},
    ]
    base["tariffs"] += [{"customer": c, "prefix": "55", "value": "0.0800"} for c in (12, 13, 14)]
    return base


# --------------------------------------------------------------------------------------------
# over HTTP: one live gateway per engine for the module
# --------------------------------------------------------------------------------------------


class Live:
    def __init__(self, base: str, upstream: FakeUpstream, database_url: str) -> None:
        self.base = base
        self.upstream = upstream
        self.database_url = database_url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(request: pytest.FixtureRequest) -> Iterator[Live]:
    url = module_database(request, "inbound")
    with fake_upstream() as upstream:
        provision(url, doc(upstream.url))
        with serve(url) as (host, port, errors):
            yield Live(f"http://{host}:{port}", upstream, url)
            assert errors.take() == [], "the server logged an error"


@pytest.fixture
async def client(live: Live) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(live.base) as session:
        yield session


async def get(client: aiohttp.ClientSession, path: str, params: dict[str, str] | None = None) -> tuple[int, Any]:
    async with client.get(path, params=params) as r:
        return r.status, await r.json()


async def post(client: aiohttp.ClientSession, path: str, body: bytes, ctype: str) -> tuple[int, Any]:
    async with client.post(path, data=body, headers={"Content-Type": ctype}) as r:
        return r.status, await r.json()


async def replies(client: aiohttp.ClientSession, token: str, **params: str) -> list[dict[str, Any]]:
    status, body = await get(client, "/api/v2/GetSMSReply.php", {"tsid": token, **params})
    assert status == 200 and body["return"]["status_code"] == "0", body
    return list(body["messages"])


async def make_sms(client: aiohttp.ClientSession, token: str, dest: str, text: str = "hello") -> tuple[int, str]:
    params = {"tsid": token, "dest": dest, "message": text, "httpdup": "0"}
    _, body = await get(client, "/api/v2/MakeSMS.php", params)
    return int(body["return"]["status_code"]), body["return"]["cdls_id"]


def kannel(sender: str, text: str, to: str = "28000", **extra: str) -> str:
    """The path Kannel's get-url `from=%p&to=%P&text=%a&time=%t` produces."""
    return f"/mo/velip/{SECRETS['velip']}?" + urlencode({"from": sender, "to": to, "text": text, **extra})


async def test_kannel_get_url_is_stored_once_and_routed_by_number(client: aiohttp.ClientSession) -> None:
    d = fresh_dest()
    path = kannel(f"+55 ({d[:2]}) {d[2:7]}-{d[7:]}", "Sim, confirmo", time="2026-12-01 10:00:00")
    assert await get(client, path) == (200, {"ok": True, "stored": 1})
    assert await get(client, path) == (200, {"ok": True, "stored": 0})  # Kannel's retry: the same message
    mine = [m for m in await replies(client, TOKEN) if m["from"] == "55" + d]
    assert len(mine) == 1
    m = mine[0]
    assert (m["to"], m["text"], m["received_at"], m["reply_to"]) == ("28000", "Sim, confirmo", "2026-12-01T10:00:00-03:00", None)
    assert m["mo_id"].isdigit()
    assert [x for x in await replies(client, OTHER_TOKEN) if x["from"] == "55" + d] == []  # another customer


async def test_bodies_in_utf8_or_latin1(client: aiohttp.ClientSession) -> None:
    d = fresh_dest()
    path = f"/mo/velip/{SECRETS['velip']}"
    form = f"from={d}&to=28000&text=N%C3%A3o+quero&time=2026-12-01+10:01:00".encode()
    assert (await post(client, path, form, "application/x-www-form-urlencoded"))[0] == 200
    latin = f"from={d}&to=28000&text=Ol\xe1 a\xe7\xe3o&time=2026-12-01 10:02:00".encode("latin-1")
    assert (await post(client, path, latin, "application/x-www-form-urlencoded"))[0] == 200
    wavy = f'{{"id": "lat-{d}", "source": "55{d}", "messageText": "Ol\xe1", "shortCode": "28000"}}'.encode("latin-1")
    assert (await post(client, f"/mo/wavy/{SECRETS['wavy']}", wavy, "application/json"))[0] == 200
    texts = sorted(m["text"] for m in await replies(client, TOKEN) if m["from"] == "55" + d)
    assert texts == ["Não quero", "Olá", "Olá ação"]


@pytest.mark.parametrize("path", [
    "/mo/velip/wrong", "/mo/velip", "/mo", "/mo/nope/k-secret", f"/mo/tww/{SECRETS['tww']}",
    f"/mo/wavy/{SECRETS['velip']}",
])
async def test_a_wrong_or_missing_secret_is_403_and_stores_nothing(client: aiohttp.ClientSession, path: str) -> None:
    d = fresh_dest()
    status, body = await get(client, path, {"from": d, "to": "28000", "text": "x"})
    assert status == 403 and body == {"error": "forbidden"}
    async with client.post(path, json=[{"id": "f" + d, "source": d, "messageText": "x", "shortCode": "28000"}]) as r:
        assert r.status == 403
    assert [m for m in await replies(client, TOKEN) if m["from"] == "55" + d] == []


BAD = {"return": {"status": "bad request", "status_code": "400", "cdls_id": "0"}}


@pytest.mark.parametrize("body", [
    b"{not json", b"", b"42", b'"text"', b"[1]", b'{"source": "5511987650001", "messageText": "x"}',
    b'{"id": "1", "messageText": "x"}', b'{"id": "1", "source": "5511987650001"}',
])
async def test_a_bad_wavy_body_is_400_in_the_envelope(client: aiohttp.ClientSession, body: bytes) -> None:
    assert await post(client, f"/mo/wavy/{SECRETS['wavy']}", body, "application/json") == (400, BAD)


async def test_a_list_with_one_bad_item_stores_none_of_it(client: aiohttp.ClientSession) -> None:
    d = fresh_dest()
    good = {"id": f"good-{d}", "source": "55" + d, "messageText": "ok", "shortCode": "28000"}
    async with client.post(f"/mo/wavy/{SECRETS['wavy']}", json=[good, {"id": "x"}]) as r:
        assert r.status == 400 and await r.json() == BAD
    assert [m for m in await replies(client, TOKEN) if m["from"] == "55" + d] == []
    async with client.post(f"/mo/wavy/{SECRETS['wavy']}", json=[good]) as r:
        assert r.status == 200 and await r.json() == {"ok": True, "stored": 1}


async def test_odd_but_readable_bodies_are_stored(client: aiohttp.ClientSession) -> None:
    d = fresh_dest()
    long_id = "x" * 300
    items = [{"id": long_id, "source": "55" + d, "messageText": "nul\u0000 inside " + "é" * 5000, "shortCode": "28000"},
             {"id": 12345, "source": int("55" + d), "messageText": 42, "shortCode": 28000,
              "receivedDate": 1764597600000, "correlationId": "not a number"}]
    async with client.post(f"/mo/wavy/{SECRETS['wavy']}", json=items) as r:
        assert r.status == 200 and await r.json() == {"ok": True, "stored": 2}
    got = [m for m in await replies(client, TOKEN) if m["from"] == "55" + d]
    assert [m["text"][:12] for m in got] == ["nul\ufffd inside ", "42"]
    assert len(got[0]["text"]) == 4000 and got[1]["received_at"] == "2025-12-01T11:00:00-03:00"


async def test_a_kannel_push_without_from_or_text_is_400(client: aiohttp.ClientSession) -> None:
    assert await get(client, f"/mo/velip/{SECRETS['velip']}?to=28000&text=x") == (400, BAD)
    assert await get(client, f"/mo/velip/{SECRETS['velip']}?from=5511987650001&to=28000") == (400, BAD)


async def test_wavy_answers_route_by_correlation(client: aiohttp.ClientSession) -> None:
    d = fresh_dest()
    code, cdls = await make_sms(client, WAVY_TOKEN, d)
    assert code == 0
    items = [
        {"id": f"mo-a-{d}", "source": "55" + d, "messageText": "Sim", "receivedDate": "2026-12-01T13:00:00Z",
         "correlationId": cdls},
        {"id": f"mo-b-{d}", "source": "55" + d, "messageText": "Obrigado", "correlationId": cdls},
    ]
    async with client.post(f"/mo/wavy/{SECRETS['wavy']}", json=items) as r:
        assert r.status == 200 and await r.json() == {"ok": True, "stored": 2}
    got = await replies(client, WAVY_TOKEN, cdls_id=cdls)
    assert [(m["text"], m["reply_to"]) for m in got] == [("Sim", cdls), ("Obrigado", cdls)]
    assert got[0]["received_at"] == "2026-12-01T10:00:00-03:00"
    for token in (TOKEN, OTHER_TOKEN, MATRIX_TOKEN):  # nobody else sees them, whatever it asks
        assert await replies(client, token, cdls_id=cdls) == []
        assert [m for m in await replies(client, token) if m["from"] == "55" + d] == []


async def test_http_mo_mapping(client: aiohttp.ClientSession) -> None:
    d = fresh_dest()
    code, cdls = await make_sms(client, MATRIX_TOKEN, d)
    assert code == 0
    body = {"msisdn": "55" + d, "shortcode": "4000", "body": "pode ser", "mid": f"m-{d}", "ref": cdls}
    async with client.post(f"/mo/matrix/{SECRETS['matrix']}", json=body) as r:
        assert r.status == 200 and await r.json() == {"ok": True, "stored": 1}
    got = await replies(client, MATRIX_TOKEN, cdls_id=cdls)
    assert [(m["text"], m["to"], m["from"]) for m in got] == [("pode ser", "4000", "55" + d)]
    assert await get(client, f"/mo/matrix/{SECRETS['matrix']}", {"msisdn": d}) == (400, BAD)


async def test_get_sms_reply_checks(client: aiohttp.ClientSession) -> None:
    status, body = await get(client, "/api/v2/GetSMSReply.php", {})
    assert status == 401 and body["return"]["status_code"] == "100"
    status, body = await get(client, "/api/v2/GetSMSReply", {"tsid": TOKEN, "date_start": "yesterday"})
    assert status == 400 and body["return"]["status_code"] == "400"
    status, body = await get(client, "/api/v2/GetSMSReply.php", {"tsid": TOKEN, "cdls_id": "abc"})
    assert status == 200 and body["messages"] == [] and body["return"]["pagination"] == {"has_more": False, "next_id": None}


async def test_paging_like_get_sms_status(client: aiohttp.ClientSession) -> None:
    d = fresh_dest()
    for i in range(3):
        assert (await get(client, kannel(d, f"page {i}", id=f"pg-{d}-{i}")))[0] == 200
    status, body = await get(client, "/api/v2/GetSMSReply.php", {"tsid": OTHER_TOKEN})  # nothing of its own
    assert status == 200 and body["messages"] == []
    seen: list[str] = []
    last = ""
    for _ in range(10):
        params = {"tsid": TOKEN, "maxreg": "1", **({"last_id": last} if last else {})}
        status, body = await get(client, "/api/v2/GetSMSReply.php", params)
        seen += [m["text"] for m in body["messages"] if m["from"] == "55" + d]
        if not body["return"]["pagination"]["has_more"]:
            break
        last = body["return"]["pagination"]["next_id"]
    assert seen == ["page 0", "page 1", "page 2"]


async def test_opt_out_races_sends_and_opt_in_lifts_it(client: aiohttp.ClientSession) -> None:
    d = fresh_dest()
    assert (await make_sms(client, TOKEN, d))[0] == 0
    results: list[tuple[float, int]] = []
    acked = asyncio.Event()
    ack_at: list[float] = []

    async def sender() -> None:
        while not acked.is_set() or len([r for r in results if r[0] > ack_at[0]]) < 5:
            started = time.monotonic()
            code, _ = await make_sms(client, TOKEN, d, f"race {len(results)}")
            results.append((started, code))

    async def opt_out() -> None:
        await asyncio.sleep(0.05)
        assert (await get(client, kannel(d, " Sair. ", to="9999")))[0] == 200
        ack_at.append(time.monotonic())
        acked.set()

    await asyncio.gather(sender(), sender(), opt_out())
    after = [code for started, code in results if started > ack_at[0]]
    assert after and set(after) == {260}, results
    assert (await make_sms(client, OTHER_TOKEN, d))[0] == 0  # another customer's sends go on
    # by the window this answer would now go to the other customer (its send is the latest to d):
    # to the shop's number, it is the shop's
    assert (await get(client, kannel(d, "VOLTAR", to="28000")))[0] == 200
    assert (await make_sms(client, TOKEN, d))[0] == 0


# --------------------------------------------------------------------------------------------
# routing and events through the services, on a fresh database per test
# --------------------------------------------------------------------------------------------


@pytest.fixture
async def gw(database_url: str, upstream: FakeUpstream) -> AsyncIterator[Services]:
    services = await open_gateway(database_url, doc(upstream.url), background_jobs=False)
    try:
        yield services
    finally:
        await services.aclose()


async def push(gw: Services, connection: str, **params: str) -> int:
    return await gw.inbound.receive(connection=connection, secret=SECRETS[connection], params=params, body=b"")


async def inbound_rows(gw: Services) -> list[dict[str, Any]]:
    rows = await gw.store.x.fetchall(  # type: ignore[attr-defined]
        "SELECT customer_id, reply_to, routed_by, source, dest, text FROM inbound ORDER BY id"
    )
    return [dict(r) for r in rows]


async def test_routing_in_the_order_of_spec(gw: Services) -> None:
    d = "11987650101"
    shop_first = await send(gw, dest=d, message="a")
    other = await send(gw, OTHER_TOKEN, dest=d, message="b")  # the latest to d on velip
    assert shop_first.code == other.code == 0
    assert await push(gw, "velip", **{"from": d, "to": "28000", "text": "by number"}) == 1
    assert await push(gw, "velip", **{"from": d, "to": "9999", "text": "by window"}) == 1
    assert await push(gw, "velip", **{"from": "11987650102", "to": "9999", "text": "nobody"}) == 1
    assert await push(gw, "velip", **{"from": d, "to": "", "text": "no to"}) == 1
    rows = await inbound_rows(gw)
    assert [(r["customer_id"], r["reply_to"], r["routed_by"]) for r in rows] == [
        (11, shop_first.cdls_id, "numbers"),  # the number's customer, its own latest message to d
        (12, other.cdls_id, "window"),  # the latest message to d on that connection
        (None, None, None),  # unrouted: kept for the operator
        (12, other.cdls_id, "window"),
    ]


async def test_correlation_must_name_a_message_of_that_connection_and_handset(gw: Services) -> None:
    d = "11987650111"
    sent = await send(gw, dest=d, message="a")  # on velip
    body = f'{{"id": "c1", "source": "55{d}", "messageText": "x", "correlationId": "{sent.cdls_id}"}}'
    await gw.inbound.receive(connection="wavy", secret=SECRETS["wavy"], params={}, body=body.encode())
    # another handset naming the message: not an answer to it
    body = f'{{"mid": "c2", "msisdn": "5511987650112", "body": "x", "ref": "{sent.cdls_id}"}}'
    await gw.inbound.receive(connection="matrix", secret=SECRETS["matrix"], params={}, body=body.encode())
    rows = await inbound_rows(gw)
    assert [(r["customer_id"], r["reply_to"]) for r in rows] == [(None, None), (None, None)]


async def test_reply_window_is_the_customers(gw: Services, upstream: FakeUpstream) -> None:
    d = "11987650121"
    sent = await send(gw, WAVY_TOKEN, dest=d, message="a")  # customer 13: reply_window 1 hour
    assert sent.code == 0
    await gw.store.x.execute("UPDATE messages SET created_at = created_at - 7200 WHERE id = ?", (sent.cdls_id,))  # type: ignore[attr-defined]
    body = f'{{"id": "w1", "source": "55{d}", "messageText": "late"}}'
    await gw.inbound.receive(connection="wavy", secret=SECRETS["wavy"], params={}, body=body.encode())
    await gw.store.x.execute("UPDATE messages SET created_at = created_at + 5400 WHERE id = ?", (sent.cdls_id,))  # type: ignore[attr-defined]
    body = f'{{"id": "w2", "source": "55{d}", "messageText": "in time"}}'
    await gw.inbound.receive(connection="wavy", secret=SECRETS["wavy"], params={}, body=body.encode())
    rows = await inbound_rows(gw)
    assert [(r["text"], r["customer_id"], r["reply_to"]) for r in rows] == [
        ("late", None, None), ("in time", 13, sent.cdls_id)]


async def test_errors_of_the_intake(gw: Services) -> None:
    with pytest.raises(Forbidden):
        await gw.inbound.receive(connection="velip", secret="nope", params={"from": "1", "text": "x"}, body=b"")
    with pytest.raises(BadInbound):
        await gw.inbound.receive(connection="wavy", secret=SECRETS["wavy"], params={}, body=b"[{}]")
    assert await inbound_rows(gw) == []


async def test_mo_event_through_the_outbox(database_url: str, upstream: FakeUpstream) -> None:
    async with Hook(failures=1) as hook:
        services = await open_gateway(
            database_url, doc(upstream.url, callback_url=hook.url), background_jobs=False,
            callback_allow=LOOPBACK, callback_base_delay=0.05,
        )
        try:
            d = "11987650131"
            sent = await send(services, dest=d, message="a")
            assert sent.code == 0
            await push(services, "velip", **{"from": d, "to": "9999", "text": "Sim", "time": "2026-12-01 09:00:00"})
            await push(services, "velip", **{"from": d, "to": "9999", "text": "Sim", "time": "2026-12-01 09:00:00"})
            assert services.callbacks is not None
            for _ in range(60):
                await services.callbacks.run_once()
                if any(e.get("event") == "mo" for e in hook.got):
                    break
                await asyncio.sleep(0.05)
        finally:
            await services.aclose()
    mo = [e for e in hook.got if e.get("event") == "mo"]
    assert len(mo) == 1
    event = mo[0]
    assert (event["from"], event["to"], event["text"], event["reply_to"]) == ("55" + d, "9999", "Sim", str(sent.cdls_id))
    assert event["received_at"] == "2026-12-01T09:00:00-03:00" and len(event["event_id"]) == 32


async def test_opt_out_is_recorded_and_only_for_that_customer(gw: Services) -> None:
    d = "11987650141"
    assert (await send(gw, dest=d, message="a")).code == 0
    await push(gw, "velip", **{"from": d, "to": "28000", "text": "PARAR"})
    assert (await send(gw, dest=d, message="b")).code == 260
    assert (await send(gw, OTHER_TOKEN, dest=d, message="b")).code == 0
    changes = await gw.store.opt_changes(customer_id=11)
    assert [(c["number"], c["action"], c["word"]) for c in changes] == [("55" + d, "out", "parar")]
    await push(gw, "velip", **{"from": d, "to": "28000", "text": "não quero sair"})  # not the word alone
    await push(gw, "velip", **{"from": d, "to": "28000", "text": "Start"})
    assert (await send(gw, dest=d, message="c", httpdup="0")).code == 0
    assert [c["action"] for c in await gw.store.opt_changes(customer_id=11)] == ["out", "in"]


# --------------------------------------------------------------------------------------------
# SMPP: a deliver_sm that is not a receipt is an inbound message (SPEC §12, §14)
# --------------------------------------------------------------------------------------------


async def test_smpp_deliver_sm_goes_to_the_intake(database_url: str, upstream: FakeUpstream) -> None:
    from tests.fakes.smsc import FakeSmsc
    from tests.integration.smpp.conftest import wait_for

    smsc = FakeSmsc()
    await smsc.start()
    base = doc(upstream.url)
    base["connections"].append({"name": "claro", "kind": "smpp", "host": "127.0.0.1", "port": smsc.port,
                                "system_id": "pombo", "password": "s3cr3t", "dlr_secret": "c-secret"})
    base["customers"][1]["sms_provider"] = "claro"
    base["tariffs"].append({"customer": 11, "prefix": "55", "value": "0.0800", "connection": "claro"})
    services = await open_gateway(database_url, base, background_jobs=False)
    try:
        config = (await services.store.catalog()).connections["claro"]
        connection = services.dispatcher.connection(config)
        connection.start()  # type: ignore[attr-defined]
        await wait_for(lambda: len(smsc.bound()) == 1)
        assert await smsc.mo("5511987650151", "28000", "Sim {já}".encode("utf-16-be"), coding=8) == 0
        assert await smsc.mo("5511987650151", "28000", "Sim {já}".encode("utf-16-be"), coding=8) == 0  # redelivered
        assert await smsc.mo("11987650152", "28000", b"SAIR") == 0
        rows = await inbound_rows(services)
        assert [(r["customer_id"], r["routed_by"], r["source"], r["dest"], r["text"]) for r in rows] == [
            (11, "numbers", "5511987650151", "28000", "Sim {já}"),
            (11, "numbers", "5511987650152", "28000", "SAIR"),
        ]
        assert (await send(services, dest="11987650152", message="x")).code == 260
        got = await services.replies(params={}, creds=Credentials(token=TOKEN, basic=None, ip="127.0.0.1"))
        assert isinstance(got, tuple) and [m["text"] for m in got[1]] == ["Sim {já}", "SAIR"]
    finally:
        await services.aclose()
        await smsc.stop()


def closed_port() -> int:
    """A loopback port nothing listens on (connections to it are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_the_demo_handset_answers_questions(database_url: str) -> None:
    """`pombo demo`'s simulated upstream answers any message with a "?" (GetSMSReply works)."""
    from pombo.cli import DEMO_CUSTOMER, DEMO_PROVISIONING

    base = copy.deepcopy(DEMO_PROVISIONING)
    # the reply follows the `delivered` report: both come fast, and every message is delivered
    base["connections"][0] |= {"reply_after": 0.05, "report_delay": 0.05, "undelivered": 0.0}
    base["customers"][0]["tokens"] = ["tok-demo-question-01"]
    # nothing serves /dlr here: the reports are refused at once (a closed loopback port), the replies still come
    services = await open_gateway(database_url, base, background_jobs=False, public_url=f"http://127.0.0.1:{closed_port()}")
    creds = Credentials(token="tok-demo-question-01", basic=None, ip="127.0.0.1")
    try:
        statement = await send(services, "tok-demo-question-01", dest="11987650161", message="Lembrete: consulta amanha.")
        question = await send(services, "tok-demo-question-01", dest="11987650162", message="Confirma a consulta?")
        again = await send(services, "tok-demo-question-01", dest="11987650162", message="Mesmo?", httpdup="0")
        assert statement.code == question.code == again.code == 0
        got: Any = None
        for _ in range(100):
            got = await services.replies(params={}, creds=creds)
            if isinstance(got, tuple) and len(got[1]) == 2:
                break
            await asyncio.sleep(0.02)
        assert isinstance(got, tuple)
        # no correlation from this upstream: both answers go to the latest message to the handset
        assert [(m["from"], m["text"], m["reply_to"]) for m in got[1]] == [
            ("5511987650162", "Sim, confirmo", str(again.cdls_id)),
            ("5511987650162", "Sim, confirmo", str(again.cdls_id)),
        ]
        rows = await inbound_rows(services)
        assert {r["customer_id"] for r in rows} == {DEMO_CUSTOMER}
    finally:
        await services.aclose()
