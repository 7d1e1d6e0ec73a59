"""Unit tables for the MakeSMS rules that need no database (SPEC §3, §4, §6)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from pombo.domain import codes, delivery, money
from pombo.domain.catalog import Catalog, PriceTable, build_chain
from pombo.domain.model import ConnectionConfig, Customer, PriceRow
from pombo.domain.night import night_start
from pombo.domain.send import Draft, parse_httpdup, parse_request, run_checks
from pombo.domain.textfilter import Models, TextFilter

SP = ZoneInfo("America/Sao_Paulo")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, 10), ("", 10), ("0", 0), ("60", 60), (" 60 ", 60), ("600", 600), ("601", 600),
     ("99999", 600), ("-1", 10), ("1.5", 10), ("abc", 10), ("٣", 10)],
)
def test_httpdup(raw: str | None, expected: int) -> None:
    assert parse_httpdup(raw) == expected


@pytest.mark.parametrize(
    ("params", "body"),
    [
        ({"message": "a", "text": "b", "msg_text": "c"}, "a"),
        ({"text": "b", "msg_text": "c"}, "b"),
        ({"msg_text": "c"}, "c"),
        ({}, None),
    ],
)
def test_body_aliases_in_order(params: dict[str, str], body: str | None) -> None:
    assert parse_request(params).text == body


def test_request_flags() -> None:
    req = parse_request({"ctid": "x" * 100, "setbrasil": "0", "cuttext": "YES", "provider": " Matrix "})
    assert req.ctid == "x" * 64 and not req.setbrasil and req.cuttext and req.provider == "matrix"
    assert parse_request({"setbrasil": "1", "cuttext": "no"}).setbrasil
    assert not parse_request({"cuttext": "no"}).cuttext


VELIP = ConnectionConfig(name="velip", kind="simulator")
OFF = ConnectionConfig(name="flash", kind="simulator", enabled=False)
MATRIX = ConnectionConfig(name="matrix", kind="simulator")


def catalog(**customer: object) -> Catalog:
    reseller = Customer(id=10, name="R")
    shop = Customer(id=11, name="S", parent_id=10, **customer)  # type: ignore[arg-type]
    adm = Customer(id=2, name="ADM")
    customers = {10: reseller, 11: shop, 2: adm}
    return Catalog(
        customers=customers,
        connections={"velip": VELIP, "flash": OFF, "matrix": MATRIX},
        blocklists={10: frozenset({"5511911112222"}), 11: frozenset({"5511933334444"})},
        models={11: Models(["Seu codigo {code} do Banco Exemplo"])},
        text_filter=TextFilter(["banco exemplo", "itau"]),
        chains={cid: build_chain(customers, cid) for cid in customers},
    )


def check(params: dict[str, str], *, customer_id: int = 11, **customer: object) -> int:
    cat = catalog(**customer)
    draft = Draft(request=parse_request(params), customer=cat.customers[customer_id], catalog=cat, adm_customer_id=2)
    rejection = run_checks(draft)
    return 0 if rejection is None else rejection.code


GOOD = {"dest": "11987654321", "message": "hello"}


@pytest.mark.parametrize(
    ("params", "customer", "code"),
    [
        (GOOD, {}, 0),
        (GOOD, {"sms": False}, 220),
        (GOOD, {"sms_provider": "flash"}, 220),
        (GOOD, {"sms_provider": "nowhere"}, 220),
        ({"message": "hi"}, {}, 230),
        ({"dest": "  ", "message": "hi"}, {}, 230),
        ({"dest": "11987654321"}, {}, 235),
        ({"dest": "11987654321", "message": " \n "}, {}, 235),
        ({"dest": "11987654321", "message": "x" * 161}, {}, 238),
        ({"dest": "11987654321", "message": "x" * 161, "cuttext": "1"}, {}, 0),
        ({"dest": "11987654321", "message": "x" * 21}, {"max_length": 20}, 238),
        ({"dest": "1133334444", "message": "hi"}, {}, 240),
        ({"dest": "11933334444", "message": "hi"}, {}, 260),
        ({"dest": "11911112222", "message": "hi"}, {}, 260),
        ({"dest": "11987654321", "message": "Itaú: cartão"}, {}, 270),
        ({"dest": "11987654321", "message": "Seu codigo 1234 do Banco Exemplo"}, {}, 0),
        # the first failure wins
        ({"message": ""}, {"sms": False}, 220),
        ({"dest": "", "message": ""}, {}, 230),
        ({"dest": "123", "message": "x" * 161}, {}, 238),
        ({"dest": "123", "message": "itau"}, {}, 240),
        ({"dest": "11933334444", "message": "itau"}, {}, 260),
    ],
)
def test_checks_in_contract_order(params: dict[str, str], customer: dict[str, object], code: int) -> None:
    assert check(params, **customer) == code


def test_238_text_names_length_and_limit() -> None:
    cat = catalog(max_length=20)
    draft = Draft(request=parse_request({"dest": "11987654321", "message": "x" * 25}), customer=cat.customers[11], catalog=cat, adm_customer_id=2)
    assert run_checks(draft) == codes.Rejection(238, "Text 25 ch more than 20 ch")


def test_cuttext_cuts_to_the_limit() -> None:
    cat = catalog()
    draft = Draft(request=parse_request({"dest": "11987654321", "message": "y" * 200, "cuttext": "yes"}), customer=cat.customers[11], catalog=cat, adm_customer_id=2)
    assert run_checks(draft) is None and draft.body == "y" * 160 and draft.segments == 1


@pytest.mark.parametrize(
    ("customer_id", "provider", "route"),
    [(2, "matrix", "matrix"), (11, "matrix", "velip"), (2, "wavy", "velip"), (2, None, "velip")],
)
def test_provider_override_only_for_adm(customer_id: int, provider: str | None, route: str) -> None:
    cat = catalog()
    params = {**GOOD, **({"provider": provider} if provider else {})}
    draft = Draft(request=parse_request(params), customer=cat.customers[customer_id], catalog=cat, adm_customer_id=2)
    assert run_checks(draft) is None
    assert draft.connection is not None and draft.connection.name == route


def test_adm_override_to_disabled_connection_is_220() -> None:
    assert check({**GOOD, "provider": "flash"}, customer_id=2) == 220


PRICES = PriceTable(
    [
        PriceRow("55", 800),
        PriceRow("5511", 700, "wavy"),
        PriceRow("5511", 750),
        PriceRow("551198", 600, "tww"),
    ]
)


@pytest.mark.parametrize(
    ("dest", "connection", "price"),
    [
        ("5511987654321", "wavy", 700),  # equal length: the row naming the connection wins
        ("5511987654321", "velip", 750),
        ("5511987654321", "tww", 600),  # longest prefix
        ("5521987654321", "wavy", 800),
        ("4420794609580", "wavy", None),
    ],
)
def test_longest_prefix_tariff(dest: str, connection: str, price: int | None) -> None:
    assert PRICES.best(dest, connection) == price


def test_chain_prices_need_every_account() -> None:
    cat = Catalog(tariffs={11: PriceTable([PriceRow("55", 800)])}, customers={})
    assert cat.prices((11,), "5511987654321", "velip") == [800]
    assert cat.prices((11, 10), "5511987654321", "velip") is None


def test_chain_is_cycle_safe() -> None:
    customers = {1: Customer(1, "a", parent_id=2), 2: Customer(2, "b", parent_id=1)}
    assert build_chain(customers, 1) == (1, 2)


def local(y: int, mo: int, d: int, h: int, mi: int) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=SP).timestamp()


@pytest.mark.parametrize(
    ("now", "window", "start"),
    [
        (local(2026, 5, 1, 23, 0), "22:00-06:00", local(2026, 5, 1, 22, 0)),
        (local(2026, 5, 2, 3, 0), "22:00-06:00", local(2026, 5, 1, 22, 0)),
        (local(2026, 5, 2, 6, 0), "22:00-06:00", None),
        (local(2026, 5, 2, 12, 0), "22:00-06:00", None),
        (local(2026, 5, 2, 21, 59), "22:00-06:00", None),
        (local(2026, 5, 2, 0, 0), "00:00-23:59", local(2026, 5, 2, 0, 0)),
        (local(2026, 5, 2, 23, 59), "00:00-23:59", local(2026, 5, 2, 0, 0)),
        (local(2026, 5, 2, 13, 0), "12:00-14:00", local(2026, 5, 2, 12, 0)),
        (local(2026, 5, 2, 15, 0), "12:00-14:00", None),
    ],
)
def test_night_window(now: float, window: str, start: float | None) -> None:
    assert night_start(now, window, SP) == start


@pytest.mark.parametrize(
    ("value", "units"),
    [("500.00", 5_000_000), ("0.0001", 1), (3, 30_000), ("-1.5", -15_000), ("0", 0)],
)
def test_money_parse(value: object, units: int) -> None:
    assert money.parse(value) == units


@pytest.mark.parametrize("value", ["1.00001", "abc", "NaN", "Infinity", True, ""])
def test_money_rejects(value: object) -> None:
    with pytest.raises(money.MoneyError):
        money.parse(value)


@pytest.mark.parametrize(("units", "text"), [(0, "0.0000"), (1, "0.0001"), (-15_000, "-1.5000"), (5_000_000, "500.0000")])
def test_money_format(units: int, text: str) -> None:
    assert money.fmt(units) == text


@pytest.mark.parametrize(
    ("current", "new", "allowed"),
    [
        ("pending", "sent", True),
        ("pending", "delivered", True),
        ("sent", "delivered", True),
        ("sent", "sent", False),
        ("delivered", "sent", False),
        ("delivered", "undelivered", False),
        ("rejected", "delivered", False),
        ("unknown", "delivered", True),
        ("sent", "pending", False),
    ],
)
def test_delivery_moves_forward_only(current: str, new: str, allowed: bool) -> None:
    assert delivery.may_move(current, new) is allowed
