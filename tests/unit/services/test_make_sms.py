"""MakeSms on the memory store: auth first, the pure checks in order, the store's checks, the
upstream's outcome, and what is charged and logged (SPEC §2-§6, §13)."""

from __future__ import annotations

from typing import Any

import pytest

from pombo.domain import codes, delivery
from tests.unit.services.conftest import (
    ADM_TOKEN,
    DEST,
    NDEST,
    TOKEN,
    FakeClock,
    Outcome,
    World,
    WorldMaker,
    base_document,
    creds,
    customer,
)

UNITS = 10_000


def ledger(world: World, message_id: int) -> list[tuple[int, int, str]]:
    return sorted((r["customer_id"], r["amount"], r["cause"]) for r in world.store.t.ledger
                  if r["message_id"] == message_id)


# ------------------------------------------------------------------ the happy path and the money


async def test_ok_send_debits_the_chain_and_logs_value_and_cost(world: World) -> None:
    result = await world.send(ctid="c-1", cp_id="camp", cd_id="db_7", **{"from": "ACME"})
    assert (result.code, result.status) == (0, "OK") and result.cdls_id > 0
    row = world.message(result.cdls_id)
    assert row["status_code"] == codes.OK and row["delivery"] == delivery.PENDING
    assert row["upstream_id"] == f"up-{result.cdls_id}" and row["dest"] == NDEST
    assert (row["value"], row["cost"], row["segments"], row["encoding"]) == (500, 100, 1, "GSM-7")
    assert (row["ctid"], row["cp_id"], row["cd_id"], row["sender"], row["customer_id"]) == (
        "c-1", "camp", "db_7", "ACME", 11)
    assert ledger(world, result.cdls_id) == [(10, -300, "message"), (11, -500, "message")]
    assert await world.balance(11) == 50 * UNITS - 500 and await world.balance(10) == 100 * UNITS - 300
    [sms] = world.upstream.sent("velip")
    assert (sms.id, sms.dest, sms.text, sms.sender, sms.ctid) == (result.cdls_id, NDEST, "hello", "ACME", "c-1")


@pytest.mark.parametrize(
    ("body", "segments", "encoding"),
    [("x" * 160, 1, "GSM-7"), ("x" * 161, 2, "GSM-7"), ("x" * 307, 3, "GSM-7"), ("€" * 80, 1, "GSM-7"),
     ("€" * 81, 2, "GSM-7"), ("ã" * 70, 1, "UCS-2"), ("ã" * 71, 2, "UCS-2"), ("ã" * 135, 3, "UCS-2")],
)
async def test_debits_are_price_times_segments_per_chain_account(
    worlds: WorldMaker, body: str, segments: int, encoding: str
) -> None:
    doc = base_document()
    customer(doc, 11)["max_length"] = 1000
    world = await worlds(doc)
    result = await world.send(message=body)
    assert result.code == codes.OK
    row = world.message(result.cdls_id)
    assert (row["segments"], row["encoding"]) == (segments, encoding)
    assert (row["value"], row["cost"]) == (500 * segments, 100 * segments)
    assert ledger(world, result.cdls_id) == [(10, -300 * segments, "message"), (11, -500 * segments, "message")]


async def test_cost_is_zero_without_a_cost_row_and_tariffs_may_name_the_connection(worlds: WorldMaker) -> None:
    doc = base_document()
    customer(doc, 11)["sms_provider"] = "matrix"
    doc["tariffs"] += [{"customer": 11, "prefix": "55", "value": "0.0700", "connection": "matrix"}]
    world = await worlds(doc)
    result = await world.send()
    row = world.message(result.cdls_id)
    assert (row["connection"], row["value"], row["cost"]) == ("matrix", 700, 0)


# ------------------------------------------------------------------ authentication passes through

AUTH_CUSTOMERS: list[dict[str, Any]] = [
    {"id": 31, "name": "Off", "active": False, "tokens": ["inactive-tok-01"]},
    {"id": 32, "name": "NoSend", "aut_send": False, "tokens": ["nosend-token-1"]},
    {"id": 33, "name": "Fenced", "ip_allowlist": ["10.0.0.0/8"], "tokens": ["fenced-token-1"]},
    {"id": 34, "name": "Blocked", "tokens_blocked": True, "tokens": ["blocked-tok-01"]},
]


@pytest.mark.parametrize(
    ("token", "code"),
    [(None, 100), ("", 100), ("unknown-token-99", 102), ("inactive-tok-01", 110), ("nosend-token-1", 123),
     ("fenced-token-1", 142), ("blocked-tok-01", 198)],
)
async def test_auth_rejections_pass_through_and_write_nothing(
    worlds: WorldMaker, token: str | None, code: int
) -> None:
    doc = base_document()
    doc["customers"] += [{**c, "balance": 10} for c in AUTH_CUSTOMERS]
    world = await worlds(doc)
    result = await world.send(token=token)
    assert (result.code, result.status, result.cdls_id) == (code, codes.TEXTS[code], 0)
    assert world.store.t.messages == {} and world.upstream.sent() == []


async def test_ip_allow_list_lets_its_range_in(worlds: WorldMaker) -> None:
    doc = base_document()
    doc["customers"] += [{**AUTH_CUSTOMERS[2], "balance": 10}]
    doc["tariffs"] += [{"customer": 33, "prefix": "55", "value": "0.01"}]
    world = await worlds(doc)
    assert (await world.send(token="fenced-token-1", ip="10.1.2.3")).code == codes.OK


# ------------------------------------------------------------------ the pure checks, in order

PURE_ORDER: list[tuple[str, dict[str, str], int]] = [
    # each row also fails every later check, so the first one in the contract's order must win
    ("flash", {"dest": " ", "message": ""}, 220),
    ("velip", {"dest": " ", "message": ""}, 230),
    ("velip", {"dest": "123", "message": "  "}, 235),
    ("velip", {"dest": "123", "message": "banco do brasil " + "x" * 150}, 238),
    ("velip", {"dest": "123", "message": "banco do brasil"}, 240),
    ("velip", {"dest": "11 91111-2222", "message": "banco do brasil"}, 260),
    ("velip", {"dest": DEST, "message": "banco do brasil"}, 270),
]


@pytest.mark.parametrize(("provider", "params", "code"), PURE_ORDER)
async def test_pure_checks_in_contract_order_before_the_store(
    worlds: WorldMaker, provider: str, params: dict[str, str], code: int
) -> None:
    doc = base_document()
    shop = customer(doc, 11)
    shop.update(sms_provider=provider, blocklist=["11911112222"], balance=0)
    doc["tariffs"] = [t for t in doc["tariffs"] if t["customer"] != 11]  # the store would say 255
    world = await worlds(doc)
    result = await world.send(**params)
    assert result.code == code and result.cdls_id == 0
    if code == 238:
        assert result.status == "Text 166 ch more than 160 ch"
    else:
        assert result.status == codes.TEXTS[code]
    assert world.store.t.messages == {} and world.store.t.ledger[-1]["cause"] == "opening"


async def test_sms_false_is_220(worlds: WorldMaker) -> None:
    doc = base_document()
    customer(doc, 11)["sms"] = False
    world = await worlds(doc)
    assert (await world.send()).code == codes.NO_SMS_ACCOUNT


async def test_reseller_block_list_applies_to_its_customers(worlds: WorldMaker) -> None:
    doc = base_document()
    customer(doc, 10)["blocklist"] = ["+55 (11) 98765-4321"]
    world = await worlds(doc)
    assert (await world.send()).code == codes.NUMBER_BLOCKED
    assert (await world.send(token="other-token-001")).code == codes.OK  # not in that chain


async def test_models_let_a_filtered_text_through(worlds: WorldMaker) -> None:
    doc = base_document()
    customer(doc, 11)["models"] = ["Banco do Brasil: seu codigo e {code}"]
    world = await worlds(doc)
    assert (await world.send(message="BANCO DO BRASIL:  seu código é 1234")).code == codes.OK
    assert (await world.send(message="banco do brasil: pague aqui", httpdup="0")).code == codes.BLOCKED_TEXT


@pytest.mark.parametrize(("field", "code"), [("message", 0), ("text", 0), ("msg_text", 0)])
async def test_body_aliases(world: World, field: str, code: int) -> None:
    result = await world.make_sms(params={"dest": DEST, field: "via alias"}, creds=creds())
    assert result.code == code and world.message(result.cdls_id)["text"] == "via alias"


# ------------------------------------------------------------------ the store's checks, in order


async def test_244_duplicate_window_then_other_dest_passes(world: World) -> None:
    assert (await world.send()).code == codes.OK
    assert (await world.send()).code == codes.HTTP_DUPLICATE
    assert (await world.send(dest="11987654322")).code == codes.OK
    world.clock.advance(10.5)
    assert (await world.send()).code == codes.OK  # default window is 10 s
    assert (await world.send(httpdup="0")).code == codes.OK  # 0 disables
    assert (await world.send(token="other-token-001")).code == codes.OK  # per customer


async def test_244_before_245_before_255_before_250(worlds: WorldMaker) -> None:
    doc = base_document()
    shop = customer(doc, 11)
    shop.update(night_limit=1, balance=0.05)  # enough for exactly one send
    doc["tariffs"] = [t for t in doc["tariffs"] if t["customer"] != 11]
    doc["tariffs"] += [{"customer": 11, "prefix": "5511", "value": "0.0500"}]
    night = FakeClock(FakeClock().now() + 11 * 3600)  # 23:00 local
    world = await worlds(doc, clock=night)
    assert (await world.send()).code == codes.OK  # balance is now 0: 250 from here on
    assert (await world.send()).code == codes.HTTP_DUPLICATE  # also night, also no credit
    assert (await world.send(dest="21987654321")).code == codes.NIGHT_LIMIT  # also no tariff
    world.clock.advance(8 * 3600)  # 07:00: the night is over
    assert (await world.send(dest="21987654321")).code == codes.NO_TARIFF  # also no credit
    assert (await world.send(dest="11987654322")).code == codes.NO_CREDIT


async def test_250_when_a_reseller_has_no_credit_and_credit_limit_allows_negative(worlds: WorldMaker) -> None:
    doc = base_document()
    customer(doc, 10)["balance"] = 0
    customer(doc, 20).update(balance=0, credit_limit=-1)
    world = await worlds(doc)
    assert (await world.send()).code == codes.NO_CREDIT
    assert await world.balance(11) == 50 * UNITS  # nothing debited anywhere
    assert (await world.send(token="other-token-001")).code == codes.OK
    assert await world.balance(20) == -500


async def test_night_limit_counts_this_night_only(worlds: WorldMaker) -> None:
    doc = base_document()
    customer(doc, 11)["night_limit"] = 2
    world = await worlds(doc, clock=FakeClock(FakeClock().now() + 12 * 3600))  # 00:00
    assert (await world.send(dest="11987650001")).code == codes.OK
    assert (await world.send(dest="11987650002")).code == codes.OK
    assert (await world.send(dest="11987650003")).code == codes.NIGHT_LIMIT
    world.clock.advance(22 * 3600)  # 22:00 the next day: a new night
    assert (await world.send(dest="11987650003")).code == codes.OK


# ------------------------------------------------------------------ the upstream's outcome


async def test_300_refunds_the_chain_once_and_frees_the_duplicate_window(world: World) -> None:
    world.upstream.script("velip", Outcome("reject", raw="NOK: bad number"))
    result = await world.send()
    assert (result.code, result.status) == (300, "error sms provider") and result.cdls_id > 0
    row = world.message(result.cdls_id)
    assert (row["status_code"], row["delivery"], row["return_log"]) == (300, "rejected", "NOK: bad number")
    assert ledger(world, result.cdls_id) == [(10, -300, "message"), (10, 300, "refund"),
                                             (11, -500, "message"), (11, 500, "refund")]
    assert await world.balance(11) == 50 * UNITS and await world.balance(10) == 100 * UNITS
    assert (await world.send()).code == codes.OK  # the failed send did not take the window


async def test_wr_then_the_background_outcome_lands(world: World) -> None:
    world.upstream.script("velip", Outcome(delay=0.3, upstream_id="late-1"))
    result = await world.send()
    assert (result.code, result.status) == (1, "WR") and result.cdls_id > 0
    assert world.message(result.cdls_id)["status_code"] == codes.WR
    assert world.dispatcher.in_flight == 1
    await world.dispatcher.drain(timeout=5)
    row = world.message(result.cdls_id)
    assert (row["status_code"], row["upstream_id"]) == (codes.OK, "late-1")
    assert await world.balance(11) == 50 * UNITS - 500


async def test_wr_that_finally_fails_is_refunded(world: World) -> None:
    world.upstream.script("velip", Outcome("reject", delay=0.3))
    result = await world.send()
    assert result.code == codes.WR
    await world.dispatcher.drain(timeout=5)
    assert world.message(result.cdls_id)["status_code"] == codes.PROVIDER_ERROR
    assert await world.balance(11) == 50 * UNITS


async def test_wr_whose_outcome_stays_unknown_is_kept_charged(world: World) -> None:
    world.upstream.script("velip", Outcome("timeout", delay=0.3))
    result = await world.send()
    assert result.code == codes.WR
    await world.dispatcher.drain(timeout=5)
    assert world.message(result.cdls_id)["status_code"] == codes.WR
    assert await world.balance(11) == 50 * UNITS - 500


# ------------------------------------------------------------------ notify_url, cuttext, provider


@pytest.mark.parametrize(
    ("rurl", "expected"),
    [(None, "https://shop.test/cb"), ("https://mine.test/x?id=1", "https://mine.test/x?id=1"),
     ("  ", "https://shop.test/cb")],
)
async def test_notify_url_is_rurl_else_the_customer_callback(
    worlds: WorldMaker, rurl: str | None, expected: str
) -> None:
    doc = base_document()
    customer(doc, 11)["callback"] = {"url": "https://shop.test/cb"}
    world = await worlds(doc)
    result = await world.send(**({} if rurl is None else {"rurl": rurl}))
    assert world.message(result.cdls_id)["notify_url"] == expected
    other = await world.send(token="other-token-001")
    assert world.message(other.cdls_id)["notify_url"] is None  # no callback, no rurl
    with_rurl = await world.send(token="other-token-001", dest="11987654322", rurl="http://o.test/")
    assert world.message(with_rurl.cdls_id)["notify_url"] == "http://o.test/"


async def test_cuttext_cuts_to_the_limit_instead_of_238(world: World) -> None:
    result = await world.send(message="y" * 200, cuttext="1")
    assert result.code == codes.OK
    row = world.message(result.cdls_id)
    assert (row["text"], row["segments"]) == ("y" * 160, 1)
    too_long = await world.send(message="y" * 200, cuttext="0", dest="11987654322")
    assert (too_long.code, too_long.status) == (238, "Text 200 ch more than 160 ch")


async def test_cuttext_cuts_an_accented_body_to_one_segment(world: World) -> None:
    body = "ação " * 20  # 100 characters, UCS-2
    result = await world.send(message=body, cuttext="1")
    row = world.message(result.cdls_id)
    assert (row["text"], row["segments"], row["encoding"]) == (body[:70], 1, "UCS-2")
    assert row["value"] == 500


@pytest.mark.parametrize(
    ("accents", "provider", "body", "cuttext", "sent"),
    [
        ("keep", "velip", "Olá, tudo bem?", "0", "Olá, tudo bem?"),
        ("fold", "velip", "Olá, tudo bem?", "0", "Ola, tudo bem?"),
        ("fold", "velip", "Olá 😀", "0", "Olá 😀"),
        ("keep", "velip", "ação " * 20, "1", ("ação " * 20)[:70]),
        ("keep", "velip", "x" * 160, "1", "x" * 160),
        ("keep", "tww", "Ação já", "0", "Acao ja"),
        ("keep", "tww", "plain", "0", "plain"),
    ],
)
async def test_the_log_keeps_the_body_as_received_only_where_it_differs(
    worlds: WorldMaker, accents: str, provider: str, body: str, cuttext: str, sent: str
) -> None:
    """SPEC §13 / issue 13 item 5: `text` is the body as sent, `text_received` the body as it came
    when that differs (folded, cut, or ASCII for tww), else None."""
    doc = base_document()
    customer(doc, 11).update(accents=accents, sms_provider=provider)
    world = await worlds(doc)
    result = await world.send(message=body, cuttext=cuttext)
    assert result.code == codes.OK
    row = world.message(result.cdls_id)
    assert row["text"] == sent
    assert row["text_received"] == (None if sent == body else body)


@pytest.mark.parametrize(
    ("token", "provider", "expected"),
    [(ADM_TOKEN, "matrix", "matrix"), (ADM_TOKEN, " TWW ", "tww"), (ADM_TOKEN, "wavy", "velip"),
     (ADM_TOKEN, "", "velip"), (TOKEN, "matrix", "velip"), (TOKEN, "tww", "velip")],
)
async def test_provider_override_only_for_adm(world: World, token: str, provider: str, expected: str) -> None:
    result = await world.send(token=token, provider=provider)
    assert result.code == codes.OK
    assert world.message(result.cdls_id)["connection"] == expected
    assert [s.id for s in world.upstream.sent(expected)] == [result.cdls_id]


async def test_adm_override_to_a_disabled_connection_is_220(world: World) -> None:
    assert (await world.send(token=ADM_TOKEN, provider="flash")).code == codes.NO_SMS_ACCOUNT
    assert (await world.send(token=TOKEN, provider="flash")).code == codes.OK  # ignored for others


async def test_setbrasil_0_sends_international_numbers_as_given(worlds: WorldMaker) -> None:
    doc = base_document()
    doc["tariffs"] += [{"customer": c, "prefix": "44", "value": "0.2"} for c in (10, 11)]
    world = await worlds(doc)
    result = await world.send(dest="+44 7700-900.123", setbrasil="0")
    assert result.code == codes.OK and world.message(result.cdls_id)["dest"] == "447700900123"
    assert (await world.send(dest="+44 7700-900.123")).code == codes.MOBILE_NOT_VALID
