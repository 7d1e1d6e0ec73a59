"""Tenant isolation through the real API (issue: hardening).

Two shops under one reseller, a third under another, each with messages sharing a ctid. Nobody
may see another account's messages or balance by any way of asking; a reseller's token sees
its own messages only, not its children's (the current contract).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from tests.integration.gateway import RESELLER_TOKEN, TOKEN, provision, provisioning
from tests.integration.test_hardening_api import (
    Live,
    call,
    expect,
    fake_upstream,
    fresh_dest,
    fresh_ip,
    module_database,
    post_form,
    serve,
)

STATUS = "/api/v2/GetSMSStatus.php"
A, B, C, R1, R2 = "shop-a", "shop-b", "shop-c", "reseller-1", "reseller-2"
TOKENS = {A: TOKEN, B: "tok-shop-b-000000001", C: "tok-shop-c-000000001", R1: RESELLER_TOKEN, R2: "tok-resel-2-00000001"}
IDS = {A: 11, B: 12, C: 51, R1: 10, R2: 50}
B_USER, B_PASSWORD = "loja-b", "senha-b"
SENDS = {A: ["shared", "shared", "a-only"], B: ["shared", "b-only", "shared"], C: ["shared"], R1: ["shared"], R2: []}


def tenants_doc(upstream_url: str) -> dict[str, Any]:
    doc = provisioning(upstream_url, ack_timeout=2.0, final_timeout=4.0)
    doc["customers"] = [
        {"id": 10, "name": "Revenda 1", "balance": "500.00", "tokens": [TOKENS[R1]], "night_limit": None},
        {"id": 11, "name": "Loja A", "parent": 10, "balance": "20.00", "tokens": [TOKENS[A]], "night_limit": None},
        {"id": 12, "name": "Loja B", "parent": 10, "balance": "30.00", "credit_limit": "-5.00", "tokens": [TOKENS[B]],
         "night_limit": None, "users": [{"username": B_USER, "password": B_PASSWORD, "send": True}]},
        {"id": 50, "name": "Revenda 2", "balance": "700.00", "tokens": [TOKENS[R2]], "night_limit": None},
        {"id": 51, "name": "Loja C", "parent": 50, "balance": "40.00", "tokens": [TOKENS[C]], "night_limit": None},
    ]
    doc["tariffs"] = [{"customer": cid, "prefix": "55", "value": "0.0500"} for cid in IDS.values()]
    return doc


def session(live: Live) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(local_addr=(fresh_ip(), 0), force_close=True)
    return aiohttp.ClientSession(live.base, connector=connector)


async def seed(live: Live) -> dict[str, list[str]]:
    """Each account's sends, in order; the cdls_ids it got."""
    ids: dict[str, list[str]] = {name: [] for name in TOKENS}
    async with session(live) as client:
        for round_ in range(3):  # interleaved, so the accounts' ids alternate
            for name, ctids in SENDS.items():
                if round_ < len(ctids):
                    answer = await post_form(
                        client, "/api/v2/MakeSMS.php",
                        {"tsid": TOKENS[name], "dest": fresh_dest(), "message": f"from {name}", "ctid": ctids[round_]},
                    )
                    ids[name].append(expect(answer, 0)["cdls_id"])
    return ids


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest) -> Iterator[tuple[Live, dict[str, list[str]]]]:
    url = module_database(request, "hardening-tenants")
    with fake_upstream() as upstream:
        provision(url, tenants_doc(upstream.url))
        with serve(url) as (host, port, errors):
            live = Live(host, port, url, upstream, errors, request.param)
            yield live, asyncio.run(seed(live))
            assert errors.take() == [], "the server logged an error"


@pytest.fixture
def live(world: tuple[Live, dict[str, list[str]]]) -> Live:
    return world[0]


@pytest.fixture
def ids(world: tuple[Live, dict[str, list[str]]]) -> dict[str, list[str]]:
    return world[1]


@pytest.fixture
async def client(live: Live) -> AsyncIterator[aiohttp.ClientSession]:
    async with session(live) as client:
        yield client


async def status(client: aiohttp.ClientSession, query: str, headers: dict[str, str] | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    answer = await call(client, "GET", STATUS, query=query, headers=headers)
    ret = expect(answer, 0, http=200)
    data = json.loads(answer.body)
    assert isinstance(data["messages"], list)
    return ret, data["messages"]


def days() -> tuple[str, str]:
    """Yesterday and tomorrow in the gateway's timezone: a range that holds every seeded message."""
    today = datetime.now(ZoneInfo("America/Sao_Paulo")).date()
    return str(today - timedelta(days=1)), str(today + timedelta(days=1))


# --------------------------------------------------------------------------------------------


def all_pairs() -> list[tuple[str, str]]:
    return [(reader, owner) for reader in TOKENS for owner in TOKENS if reader != owner]


@pytest.mark.parametrize(("reader", "owner"), all_pairs())
async def test_foreign_ids_are_ok_and_empty(client: aiohttp.ClientSession, ids: dict[str, list[str]], reader: str, owner: str) -> None:
    for cdls_id in ids[owner]:
        for query in (f"cdls_id={cdls_id}", f"cdls_id=%20{cdls_id}%20", f"cdls_id=000{cdls_id}", f"cdls_id={cdls_id}&ctid=shared"):
            ret, messages = await status(client, f"tsid={TOKENS[reader]}&{query}")
            assert messages == [], (reader, owner, query)
            assert ret["pagination"] == {"has_more": False, "next_id": None}


@pytest.mark.parametrize("name", list(TOKENS))
async def test_own_ids_are_visible_with_every_way_of_authenticating(client: aiohttp.ClientSession, ids: dict[str, list[str]], name: str) -> None:
    for cdls_id in ids[name]:
        for query, headers in (
            (f"tsid={TOKENS[name]}&cdls_id={cdls_id}", None),
            (f"sid={TOKENS[name]}&cdls_id={cdls_id}", None),
            (f"cdls_id={cdls_id}", {"Authorization": f"Bearer {TOKENS[name]}"}),
        ):
            _, messages = await status(client, query, headers)
            assert [m["cdls_id"] for m in messages] == [cdls_id]
            assert messages[0]["text"] == f"from {name}"


@pytest.mark.parametrize("name", list(TOKENS))
async def test_ctid_finds_only_the_callers_messages(client: aiohttp.ClientSession, ids: dict[str, list[str]], name: str) -> None:
    expected = [i for i, ctid in zip(ids[name], SENDS[name], strict=True) if ctid == "shared"]
    _, messages = await status(client, f"tsid={TOKENS[name]}&ctid=shared")
    assert [m["cdls_id"] for m in messages] == expected
    for other in ("a-only", "b-only"):
        _, messages = await status(client, f"tsid={TOKENS[name]}&ctid={other}")
        own = [i for i, ctid in zip(ids[name], SENDS[name], strict=True) if ctid == other]
        assert [m["cdls_id"] for m in messages] == own


@pytest.mark.parametrize("name", list(TOKENS))
@pytest.mark.parametrize("dated", [True, False])
async def test_date_pages_hold_only_the_callers_messages(
    client: aiohttp.ClientSession, ids: dict[str, list[str]], name: str, dated: bool
) -> None:
    start, end = days()
    base = f"tsid={TOKENS[name]}&maxreg=1" + (f"&date_start={start}&date_end={end}" if dated else "")
    seen: list[str] = []
    query = base
    for _ in range(20):
        ret, messages = await status(client, query)
        seen += [m["cdls_id"] for m in messages]
        if not ret["pagination"]["has_more"]:
            assert ret["pagination"]["next_id"] is None
            break
        query = f"{base}&last_id={ret['pagination']['next_id']}"
    assert seen == ids[name]  # ascending, all of them, nobody else's
    # a foreign id as the cursor shows nothing foreign either
    foreign = [i for other, some in ids.items() if other != name for i in some]
    for cursor in foreign[:3]:
        _, messages = await status(client, f"tsid={TOKENS[name]}&last_id={cursor}&maxreg=100")
        assert {m["cdls_id"] for m in messages} <= set(ids[name])


async def test_a_reseller_sees_its_own_messages_not_its_childrens(client: aiohttp.ClientSession, ids: dict[str, list[str]]) -> None:
    _, messages = await status(client, f"tsid={TOKENS[R1]}&maxreg=1000")
    assert [m["cdls_id"] for m in messages] == ids[R1]
    _, messages = await status(client, f"tsid={TOKENS[R2]}")
    assert messages == []  # it sent nothing itself; its child C did


@pytest.mark.parametrize(
    "query",
    ["cdls_id=999999999", "cdls_id=0", "cdls_id=abc", "cdls_id=-1", "cdls_id=1e3", "cdls_id=%C2%B2", "ctid=nope",
     "ctid=" + "s" * 65, "date_start=1999-01-01&date_end=1999-12-31", "last_id=999999999", "cdls_id=99999999999999999999"],
)
async def test_unknown_ids_are_ok_and_empty(client: aiohttp.ClientSession, query: str) -> None:
    for name in (A, B):
        _, messages = await status(client, f"tsid={TOKENS[name]}&{query}")
        assert messages == [], query


@pytest.mark.parametrize("name", list(TOKENS))
async def test_balance_is_the_callers_whatever_is_asked(client: aiohttp.ClientSession, live: Live, ids: dict[str, list[str]], name: str) -> None:
    expected = None
    for extra in ("", "&cdcs_id=12", "&customer_id=12", "&customer=12", "&id=12&cdcsu_id=1", "&tsid_other=" + TOKENS[B]):
        ret = expect(await call(client, "GET", "/api/v2/GetBalance.php", query=f"tsid={TOKENS[name]}{extra}"), 0)
        assert set(ret) == {"status", "status_code", "balance", "credit_limit"}
        expected = expected or (ret["balance"], ret["credit_limit"])
        assert (ret["balance"], ret["credit_limit"]) == expected, extra
    credit = {B: "-5.0000"}.get(name, "0.0000")
    assert expected[1] == credit
    user = expect(await call(client, "GET", "/api/v2/GetUserID.php", query=f"tsid={TOKENS[name]}"), 0)
    assert user["cdcs_id"] == str(IDS[name])


async def test_tsid_wins_over_a_foreign_bearer_and_sid(client: aiohttp.ClientSession, ids: dict[str, list[str]]) -> None:
    headers = {"Authorization": f"Bearer {TOKENS[B]}"}
    _, messages = await status(client, f"tsid={TOKENS[A]}&sid={TOKENS[B]}", headers)
    assert [m["cdls_id"] for m in messages] == ids[A]
    balance_a = expect(await call(client, "GET", "/api/v2/GetBalance.php", query=f"tsid={TOKENS[A]}"), 0)
    mixed = expect(await call(client, "GET", "/api/v2/GetBalance.php", query=f"tsid={TOKENS[A]}&sid={TOKENS[B]}", headers=headers), 0)
    assert mixed == balance_a


async def test_a_users_basic_login_sees_its_customer_only(client: aiohttp.ClientSession, ids: dict[str, list[str]]) -> None:
    basic = {"Authorization": "Basic " + base64.b64encode(f"{B_USER}:{B_PASSWORD}".encode()).decode()}
    _, messages = await status(client, "", basic)
    assert [m["cdls_id"] for m in messages] == ids[B]
    _, messages = await status(client, f"cdls_id={ids[A][0]}", basic)
    assert messages == []


async def test_a_message_sent_now_stays_with_its_sender(client: aiohttp.ClientSession, ids: dict[str, list[str]]) -> None:
    ret = expect(await post_form(client, "/api/v2/MakeSMS.php", {"tsid": TOKENS[C], "dest": fresh_dest(), "message": "late", "ctid": "shared"}), 0)
    for name in (A, B, R1, R2):
        _, messages = await status(client, f"tsid={TOKENS[name]}&cdls_id={ret['cdls_id']}")
        assert messages == []
    _, messages = await status(client, f"tsid={TOKENS[C]}&ctid=shared")
    assert [m["cdls_id"] for m in messages] == [*ids[C], ret["cdls_id"]]
    ids[C].append(ret["cdls_id"])  # later tests see it as C's
