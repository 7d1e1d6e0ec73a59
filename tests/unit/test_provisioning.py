"""Provisioning files (SPEC §9): parsing, whole-file validation, errors that name the entry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from pombo.domain.model import ConnectionConfig
from pombo.services.provisioning import (
    HttpSpec,
    Provisioning,
    ProvisioningError,
    Reference,
    parse_document,
    parse_file,
)

SPEC_EXAMPLE = r"""
connections:
  - {name: velip, kind: kannel, url: "http://127.0.0.1:13013", username: u, password: p, ack_timeout: 5}
  - {name: wavy, kind: wavy, url: "https://api-messaging.wavy.global", username: u, token: t, dlr_secret: "k3y"}
  - {name: tww, kind: tww, url: "https://webservices2.twwwireless.com.br/reluzcap/wsreluzcap.asmx", username: NUMUSU, password: SENHA}
  - name: matrix
    kind: http
    url: "https://sms.example.net"
    method: POST
    path: /api/send
    json: {to: "{dest}", body: "{text}", ref: "{id}"}
    ok: '"status"\s*:\s*"ok"'
    id: '"id"\s*:\s*"([^"]+)"'
costs:
  - {connection: wavy, prefix: "55", cost: "0.0300"}
text_filter: ["banco do brasil", "bradesco", "itau", "febraban"]   # replaces the default list
customers:
  - id: 10
    name: Revenda Sul
    balance: "500.00"          # applied when the customer is created
    credit_limit: "0"
  - id: 11
    name: Loja Exemplo
    parent: 10
    sms_provider: wavy
    balance: "20.00"
    night_limit: 300
    night_window: "22:00-06:00"
    max_length: 160
    active: true
    tokens_blocked: false
    tokens: ["c2a7f0e1b9d84e6fa1b2"]
    users: [{username: loja, password: "s3cret", send: true}]
    ip_allowlist: []            # addresses or CIDR ranges; empty = any
    blocklist: ["5511988887777"]
    models: ["Seu codigo {code} do Banco Exemplo"]
tariffs:
  - {customer: 10, prefix: "55", value: "0.0500"}
  - {customer: 11, prefix: "55", value: "0.0800"}
  - {customer: 11, prefix: "5511", value: "0.0700", connection: wavy}
"""

TOKEN = "c2a7f0e1b9d84e6fa1b2"


def example() -> dict[str, Any]:
    return yaml.safe_load(SPEC_EXAMPLE)


def errors_of(doc: Any) -> list[str]:
    with pytest.raises(ProvisioningError) as caught:
        parse_document(doc)
    return caught.value.errors


def one(section: str, entry: Any, **extra: Any) -> dict[str, Any]:
    """A minimal document with one entry in `section` (plus any other sections given)."""
    return {section: [entry], **extra}


KANNEL = {"name": "velip", "kind": "kannel", "url": "http://k", "username": "u", "password": "p"}
HTTP = {
    "name": "matrix",
    "kind": "http",
    "url": "https://sms.example.net",
    "path": "/send",
    "form": {"to": "{dest}", "msg": "{text}"},
    "ok": "OK",
}
CUSTOMER = {"id": 11, "name": "Loja Exemplo", "sms": False}


# --- the SPEC §9 example ------------------------------------------------------------------


def check_example(p: Provisioning) -> None:
    assert [(c.name, c.kind) for c in p.connections] == [
        ("velip", "kannel"),
        ("wavy", "wavy"),
        ("tww", "tww"),
        ("matrix", "http"),
    ]
    velip, wavy, _tww, matrix = p.connections
    assert (velip.url, velip.ack_timeout, velip.final_timeout, velip.enabled) == (
        "http://127.0.0.1:13013",
        5.0,
        60.0,
        True,
    )
    assert velip.dlr_secret is None and wavy.dlr_secret == "k3y"
    assert isinstance(matrix, HttpSpec)
    assert matrix.method == "POST" and matrix.json_ == {"to": "{dest}", "body": "{text}", "ref": "{id}"}
    assert [(c.connection, c.prefix, c.cost) for c in p.costs] == [("wavy", "55", 300)]
    assert p.text_filter == ("banco do brasil", "bradesco", "itau", "febraban")

    reseller, shop = p.customers
    assert (reseller.id, reseller.name, reseller.parent) == (10, "Revenda Sul", None)
    assert (reseller.balance, reseller.credit_limit, reseller.sms_provider) == (5_000_000, 0, "velip")
    assert (shop.id, shop.parent, shop.sms_provider, shop.balance) == (11, 10, "wavy", 200_000)
    assert (shop.night_limit, shop.night_window, shop.max_length) == (300, "22:00-06:00", 160)
    assert (shop.active, shop.tokens_blocked, shop.tokens) == (True, False, (TOKEN,))
    (user,) = shop.users
    assert (user.username, user.password, user.send, user.app, user.camp, user.active) == (
        "loja",
        "s3cret",
        True,
        False,
        False,
        True,
    )
    assert shop.ip_allowlist == () and shop.blocklist == ("5511988887777",)
    assert shop.models == ("Seu codigo {code} do Banco Exemplo",)
    assert (shop.aut_app, shop.aut_send, shop.aut_camp) == (True, True, True)

    assert [(t.customer, t.prefix, t.value, t.connection) for t in p.tariffs] == [
        (10, "55", 500, None),
        (11, "55", 800, None),
        (11, "5511", 700, "wavy"),
    ]
    assert p.warnings == ()
    assert p.references() == ()
    assert p.referenced_customer_ids() == set() and p.referenced_connections() == set()


@pytest.mark.parametrize(
    ("filename", "render"),
    [
        ("pombo.yaml", lambda: SPEC_EXAMPLE),
        ("pombo.yml", lambda: SPEC_EXAMPLE),
        ("pombo.json", lambda: json.dumps(example(), indent=2)),
        ("pombo.conf", lambda: json.dumps(example())),  # unknown extension: YAML, which reads JSON
    ],
)
def test_spec_example_parses_from_a_file(tmp_path: Path, filename: str, render: Any) -> None:
    path = tmp_path / filename
    path.write_text(render(), encoding="utf-8")
    check_example(parse_file(path))


def test_spec_example_parses_from_a_document() -> None:
    check_example(parse_document(example()))


def test_specs_are_frozen() -> None:
    p = parse_document(example())
    with pytest.raises(ValueError):
        p.customers[0].name = "other"  # type: ignore[misc]


# --- one bad field, one line naming the entry ---------------------------------------------


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        # unknown keys, with a hint
        (one("connections", {**KANNEL, "passwrd": "p"}), "connections[0] ('velip'): passwrd: unknown key for kind 'kannel' (did you mean 'password'?)"),
        (one("connections", {**KANNEL, "token": "t"}), "connections[0] ('velip'): token: unknown key for kind 'kannel'"),
        (one("customers", {**CUSTOMER, "balanse": "1"}), "customers[0] (id 11, 'Loja Exemplo'): balanse: unknown key (did you mean 'balance'?)"),
        (one("customers", {**CUSTOMER, "users": [{"username": "a", "password": "b", "sned": True}]}), "customers[0] (id 11, 'Loja Exemplo'): users[0].sned: unknown key (did you mean 'send'?)"),
        (one("tariffs", {"customer": 11, "prefix": "55", "value": "1", "conection": "x"}), "tariffs[0] (customer 11, prefix '55'): conection: unknown key (did you mean 'connection'?)"),
        (one("costs", {"connection": "wavy", "prefix": "55", "cost": "1", "x": 1}), "costs[0] (connection 'wavy', prefix '55'): x: unknown key"),
        ({"customer": []}, "'customer': unknown top-level key (did you mean 'customers'?)"),
        # connections
        (one("connections", {**KANNEL, "name": "Velip"}), "connections[0] ('Velip'): name: a connection name is 1-64 of a-z 0-9 _ -"),
        (one("connections", {**KANNEL, "kind": "smtp"}), "connections[0] ('velip'): kind: 'smtp' is not one of wavy, tww, kannel, http, simulator, smpp"),
        (one("connections", {"name": "velip"}), "connections[0] ('velip'): kind: required"),
        (one("connections", {**KANNEL, "url": "ftp://k"}), "connections[0] ('velip'): url: expected an http:// or https:// URL"),
        (one("connections", {**KANNEL, "url": "https://u:pw@k"}), "connections[0] ('velip'): url: credentials do not belong in the url"),
        (one("connections", {**KANNEL, "ack_timeout": 0}), "connections[0] ('velip'): ack_timeout: Input should be greater than 0"),
        (one("connections", {**KANNEL, "ack_timeout": True}), "connections[0] ('velip'): ack_timeout: expected a number, not true/false"),
        (one("connections", {**KANNEL, "ack_timeout": 10, "final_timeout": 5}), "connections[0] ('velip'): final_timeout (5) is shorter than ack_timeout (10)"),
        (one("connections", {**KANNEL, "dlr_secret": "a/b"}), "connections[0] ('velip'): dlr_secret: a dlr_secret is 1-128 URL-safe characters"),
        # what each kind needs
        (one("connections", {"name": "wavy", "kind": "wavy", "url": "https://w", "username": "u"}), "connections[0] ('wavy'): token: required"),
        (one("connections", {"name": "tww", "kind": "tww", "url": "https://t", "username": "u"}), "connections[0] ('tww'): password: required"),
        (one("connections", {"name": "k", "kind": "kannel", "url": "http://k", "password": "p"}), "connections[0] ('k'): username: required"),
        (one("connections", {"name": "k", "kind": "kannel", "username": "u", "password": "p"}), "connections[0] ('k'): url: required"),
        (one("connections", {**KANNEL, "password": ""}), "connections[0] ('velip'): password: must not be empty"),
        # the http template
        (one("connections", {k: v for k, v in HTTP.items() if k != "ok"}), "connections[0] ('matrix'): ok: required"),
        (one("connections", {k: v for k, v in HTTP.items() if k != "path"}), "connections[0] ('matrix'): path: required"),
        (one("connections", {**HTTP, "ok": "(ok"}), "connections[0] ('matrix'): ok: not a valid regular expression: missing ), unterminated subpattern at position 0"),
        (one("connections", {**HTTP, "id": "[a-"}), "connections[0] ('matrix'): id: not a valid regular expression"),
        (one("connections", {**HTTP, "id": "id=\\w+"}), "connections[0] ('matrix'): id: needs a group ( ) around the upstream id"),
        (one("connections", {**HTTP, "path": "send"}), "connections[0] ('matrix'): path: must start with '/'"),
        (one("connections", {**HTTP, "method": "BREW"}), "connections[0] ('matrix'): method: Input should be 'GET', 'POST', 'PUT' or 'PATCH'"),
        (one("connections", {**HTTP, "json": {"to": "{dest}"}}), "connections[0] ('matrix'): exactly one of form, json, query is needed (got 2)"),
        (one("connections", {k: v for k, v in HTTP.items() if k != "form"}), "connections[0] ('matrix'): exactly one of form, json, query is needed (got 0)"),
        (one("connections", {**HTTP, "method": "get"}), "connections[0] ('matrix'): a GET request carries no body: use query"),
        (one("connections", {**HTTP, "form": {"to": "{dst}", "msg": "{text}"}}), "connections[0] ('matrix'): unknown placeholder {dst} (allowed: {dest}, {text}, {id}, {from}); the template never sends {dest}"),
        (one("connections", {**HTTP, "form": {"to": "{dest}"}}), "connections[0] ('matrix'): the template never sends {text}"),
        (one("connections", {**HTTP, "json_": {}}), "connections[0] ('matrix'): json_: unknown key for kind 'http' (did you mean 'json'?)"),
        # costs and tariffs
        (one("costs", {"connection": "wavy", "prefix": "55a", "cost": "1"}), "costs[0] (connection 'wavy', prefix '55a'): prefix: a prefix is 1-15 digits"),
        (one("costs", {"connection": "wavy", "prefix": "", "cost": "1"}), "costs[0] (connection 'wavy', prefix ''): prefix: a prefix is 1-15 digits"),
        (one("costs", {"connection": "wavy", "prefix": "55", "cost": "-0.01"}), "costs[0] (connection 'wavy', prefix '55'): cost: must not be negative"),
        (one("tariffs", {"customer": 11, "prefix": "55", "value": "0.00001"}), "tariffs[0] (customer 11, prefix '55'): value: more than 4 decimal places: '0.00001'"),
        (one("tariffs", {"customer": 11, "prefix": "55", "value": "abc"}), "tariffs[0] (customer 11, prefix '55'): value: not an amount: 'abc'"),
        (one("tariffs", {"customer": 0, "prefix": "55", "value": "1"}), "tariffs[0] (customer 0, prefix '55'): customer: Input should be greater than 0"),
        (one("tariffs", {"prefix": "55", "value": "1"}), "tariffs[0] (prefix '55'): customer: required"),
        # customers
        (one("customers", {**CUSTOMER, "balance": "1.23456"}), "customers[0] (id 11, 'Loja Exemplo'): balance: more than 4 decimal places: '1.23456'"),
        (one("customers", {**CUSTOMER, "id": True}), "customers[0] ('Loja Exemplo'): id: expected a number, not true/false"),
        (one("customers", {"name": "x"}), "customers[0] ('x'): id: required"),
        (one("customers", {**CUSTOMER, "name": "  "}), "customers[0] (id 11, '  '): name: must not be blank"),
        (one("customers", {**CUSTOMER, "name": 5}), "customers[0] (id 11): name: expected a string (put the value in quotes)"),
        (one("customers", {**CUSTOMER, "sms": "maybe"}), "customers[0] (id 11, 'Loja Exemplo'): sms: expected true or false"),
        (one("customers", {**CUSTOMER, "sms_provider": "Wavy"}), "customers[0] (id 11, 'Loja Exemplo'): sms_provider: a connection name is 1-64 of a-z 0-9 _ -"),
        (one("customers", {**CUSTOMER, "night_limit": -1}), "customers[0] (id 11, 'Loja Exemplo'): night_limit: Input should be greater than or equal to 0"),
        (one("customers", {**CUSTOMER, "max_length": 0}), "customers[0] (id 11, 'Loja Exemplo'): max_length: Input should be greater than or equal to 1"),
        (one("customers", {**CUSTOMER, "max_length": 10001}), "customers[0] (id 11, 'Loja Exemplo'): max_length: Input should be less than or equal to 10000"),
        (one("customers", {**CUSTOMER, "tokens": "abc"}), "customers[0] (id 11, 'Loja Exemplo'): tokens: expected a list"),
        (one("customers", {**CUSTOMER, "tokens": ["short"]}), "customers[0] (id 11, 'Loja Exemplo'): tokens[0]: a token is 10-64 of A-Z a-z 0-9 _ -"),
        (one("customers", {**CUSTOMER, "tokens": ["a" * 65]}), "customers[0] (id 11, 'Loja Exemplo'): tokens[0]: a token is 10-64 of A-Z a-z 0-9 _ -"),
        (one("customers", {**CUSTOMER, "tokens": ["c2a7f0e1b9d84e6f a1b2"]}), "customers[0] (id 11, 'Loja Exemplo'): tokens[0]: a token is 10-64 of A-Z a-z 0-9 _ -"),
        (one("customers", {**CUSTOMER, "tokens": [1234567890123]}), "customers[0] (id 11, 'Loja Exemplo'): tokens[0]: expected a string (put the value in quotes)"),
        (one("customers", {**CUSTOMER, "users": [{"username": "loja"}]}), "customers[0] (id 11, 'Loja Exemplo'): users[0].password: required"),
        (one("customers", {**CUSTOMER, "users": [{"username": "loja", "password": ""}]}), "customers[0] (id 11, 'Loja Exemplo'): users[0].password: must not be empty"),
        (one("customers", {**CUSTOMER, "users": [{"username": "a:b", "password": "x"}]}), "customers[0] (id 11, 'Loja Exemplo'): users[0].username: a username is 1-64 characters, no ':' or spaces"),
        (one("customers", {**CUSTOMER, "users": ["loja"]}), "customers[0] (id 11, 'Loja Exemplo'): users[0]: expected a mapping (key: value)"),
        (one("customers", {**CUSTOMER, "blocklist": ["55 11 abc"]}), "customers[0] (id 11, 'Loja Exemplo'): blocklist[0]: not a phone number (8 to 15 digits): '55 11 abc'"),
        (one("customers", {**CUSTOMER, "models": ["ok", " "]}), "customers[0] (id 11, 'Loja Exemplo'): models[1]: must not be blank"),
        # the document's shape
        ({"customers": {"id": 11}}, "customers: expected a list of entries, not a mapping"),
        ({"customers": [7]}, "customers[0]: expected a mapping (key: value), not a number"),
        ({"text_filter": "itau"}, "text_filter: expected a list of patterns, not a string"),
        ({"text_filter": ["itau", ""]}, "text_filter[1]: must not be blank"),
    ],
)
def test_a_bad_field_is_reported_with_its_entry(doc: dict[str, Any], expected: str) -> None:
    errors = errors_of(doc)
    assert any(line.startswith(expected) for line in errors), errors


@pytest.mark.parametrize(
    ("ip", "message"),
    [
        ("10.0.0.0/33", "not an IP address or CIDR range: '10.0.0.0/33'"),
        ("300.1.2.3", "not an IP address or CIDR range: '300.1.2.3'"),
        ("10.0.0.0/8/8", "not an IP address or CIDR range: '10.0.0.0/8/8'"),
        ("fe80::/129", "not an IP address or CIDR range: 'fe80::/129'"),
        ("localhost", "not an IP address or CIDR range: 'localhost'"),
    ],
)
def test_bad_cidr(ip: str, message: str) -> None:
    errors = errors_of(one("customers", {**CUSTOMER, "ip_allowlist": ["10.0.0.1", ip]}))
    assert errors == [f"customers[0] (id 11, 'Loja Exemplo'): ip_allowlist[1]: {message}"]


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        (["10.0.0.1"], ("10.0.0.1/32",)),
        (["10.0.0.7/24"], ("10.0.0.0/24",)),  # host bits are dropped, not refused
        (["2001:db8::1", "2001:DB8::/32"], ("2001:db8::1/128", "2001:db8::/32")),
        (["10.0.0.1", "10.0.0.1/32"], ("10.0.0.1/32",)),
    ],
)
def test_ip_allowlist_is_normalised(given: list[str], stored: tuple[str, ...]) -> None:
    (customer,) = parse_document(one("customers", {**CUSTOMER, "ip_allowlist": given})).customers
    assert customer.ip_allowlist == stored
    assert tuple(str(n) for n in customer.to_customer().ip_allowlist) == stored


@pytest.mark.parametrize(
    "window",
    ["25:00-06:00", "22:60-06:00", "22:00-24:00", "22-06", "22:00", "22:00-06:00-07:00", "ab:cd-ef:gh", "22:00-22:00"],
)
def test_bad_night_window(window: str) -> None:
    (line,) = errors_of(one("customers", {**CUSTOMER, "night_window": window}))
    assert line.startswith("customers[0] (id 11, 'Loja Exemplo'): night_window: ")


@pytest.mark.parametrize(
    ("window", "stored"),
    [("22:00-06:00", "22:00-06:00"), ("6:00 - 7:30", "06:00-07:30"), ("00:00-23:59", "00:00-23:59")],
)
def test_night_window_is_normalised(window: str, stored: str) -> None:
    (customer,) = parse_document(one("customers", {**CUSTOMER, "night_window": window})).customers
    assert customer.night_window == stored


@pytest.mark.parametrize(
    ("field", "given", "stored"),
    [
        ("balance", "20.00", 200_000),
        ("balance", 20, 200_000),
        ("balance", 0.03, 300),
        ("balance", None, None),
        ("credit_limit", "-50", -500_000),
        ("night_limit", None, None),
        ("blocklist", [5511988887777, "+55 (11) 98888-7777", "5511988887777"], ("5511988887777",)),
        ("models", [" Seu codigo {code} "], ("Seu codigo {code}",)),
    ],
)
def test_customer_values_are_coerced(field: str, given: Any, stored: Any) -> None:
    (customer,) = parse_document(one("customers", {**CUSTOMER, field: given})).customers
    assert getattr(customer, field) == stored


def test_defaults() -> None:
    (customer,) = parse_document(one("customers", {"id": 5, "name": "x"})).customers
    assert customer.to_customer() == customer.to_customer().__class__(id=5, name="x")
    assert (customer.balance, customer.credit_limit, customer.tokens, customer.users) == (None, 0, (), ())


def test_yaml_ints_are_taken_as_digits() -> None:
    doc = yaml.safe_load("tariffs: [{customer: 11, prefix: 5511, value: 0.07}]\ncosts: [{connection: w, prefix: 55, cost: 1}]")
    p = parse_document(doc)
    assert (p.tariffs[0].prefix, p.tariffs[0].value) == ("5511", 700)
    assert (p.costs[0].prefix, p.costs[0].cost) == ("55", 10_000)


# --- many problems, one error ---------------------------------------------------------------


def test_every_bad_entry_is_reported_in_one_error() -> None:
    doc = example()
    doc["connections"][1].pop("token")  # wavy
    doc["connections"][3]["ok"] = "("  # matrix
    doc["costs"][0]["cost"] = "0.00001"
    doc["customers"][1]["balance"] = "1.23456"
    doc["customers"][1]["ip_allowlist"] = ["10.0.0.0/99"]
    doc["tariffs"][2]["prefix"] = "55-11"
    with pytest.raises(ProvisioningError) as caught:
        parse_document(doc, source="pombo.yaml")
    assert caught.value.errors == [
        "connections[1] ('wavy'): token: required",
        "connections[3] ('matrix'): ok: not a valid regular expression: missing ), unterminated subpattern at position 0",
        "costs[0] (connection 'wavy', prefix '55'): cost: more than 4 decimal places: '0.00001'",
        "customers[1] (id 11, 'Loja Exemplo'): balance: more than 4 decimal places: '1.23456'",
        "customers[1] (id 11, 'Loja Exemplo'): ip_allowlist[0]: not an IP address or CIDR range: '10.0.0.0/99'",
        "tariffs[2] (customer 11, prefix '55-11', connection 'wavy'): prefix: a prefix is 1-15 digits",
    ]
    assert str(caught.value).startswith("pombo.yaml: 6 problem(s)\n  connections[1] ('wavy')")
    assert isinstance(caught.value, ValueError)


# --- checks across entries ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (
            {"connections": [KANNEL, {**KANNEL, "url": "http://other"}]},
            ["connections[1] ('velip'): name: 'velip' is already defined by connections[0]"],
        ),
        (
            {"customers": [CUSTOMER, {**CUSTOMER, "name": "Outra"}]},
            ["customers[1] (id 11, 'Outra'): id: 11 is already defined by customers[0]"],
        ),
        (
            {"tariffs": [{"customer": 11, "prefix": "55", "value": "1"}, {"customer": 11, "prefix": 55, "value": "2"}]},
            ["tariffs[1] (customer 11, prefix '55'): duplicate of tariffs[0] (same customer, prefix and connection)"],
        ),
        (
            {"costs": [{"connection": "w", "prefix": "55", "cost": "1"}, {"connection": "w", "prefix": "55", "cost": "2"}]},
            ["costs[1] (connection 'w', prefix '55'): duplicate of costs[0] (same connection and prefix)"],
        ),
        (
            {"customers": [{**CUSTOMER, "parent": 11}]},
            ["customers[0] (id 11, 'Loja Exemplo'): parent: customer 11 is its own ancestor (11 -> 11)"],
        ),
        (
            {
                "customers": [
                    {"id": 1, "name": "a", "parent": 2},
                    {"id": 2, "name": "b", "parent": 3},
                    {"id": 3, "name": "c", "parent": 1},
                    {"id": 4, "name": "d", "parent": 1},  # below the cycle, not in it
                ]
            },
            [
                "customers[0] (id 1, 'a'): parent: customer 1 is its own ancestor (1 -> 2 -> 3 -> 1)",
                "customers[1] (id 2, 'b'): parent: customer 2 is its own ancestor (2 -> 3 -> 1 -> 2)",
                "customers[2] (id 3, 'c'): parent: customer 3 is its own ancestor (3 -> 1 -> 2 -> 3)",
            ],
        ),
        (
            {"customers": [{**CUSTOMER, "tokens": [TOKEN]}, {"id": 12, "name": "b", "tokens": [TOKEN]}]},
            [
                "customers[1] (id 12, 'b'): tokens[0]: token 'c2a7f0e1b9'... is already given to "
                "customers[0] (id 11, 'Loja Exemplo') tokens[0]"
            ],
        ),
        (
            {
                "customers": [
                    {**CUSTOMER, "users": [{"username": "loja", "password": "a"}]},
                    {"id": 12, "name": "b", "users": [{"username": "x", "password": "b"}, {"username": "loja", "password": "c"}]},
                ]
            },
            [
                "customers[1] (id 12, 'b'): users[1].username: 'loja' is already used by "
                "customers[0] (id 11, 'Loja Exemplo') users[0]"
            ],
        ),
    ],
)
def test_cross_entry_checks(doc: dict[str, Any], expected: list[str]) -> None:
    assert errors_of(doc) == expected


def test_cross_entry_checks_join_the_entry_errors() -> None:
    doc = {"customers": [CUSTOMER, {**CUSTOMER, "name": "Outra"}, {"id": 12, "name": "x", "balance": "x"}]}
    assert errors_of(doc) == [
        "customers[2] (id 12, 'x'): balance: not an amount: 'x'",
        "customers[1] (id 11, 'Outra'): id: 11 is already defined by customers[0]",
    ]


# --- what the caller checks against the database ------------------------------------------


def test_references_outside_the_file() -> None:
    doc = {
        "connections": [KANNEL],
        "costs": [{"connection": "tww", "prefix": "55", "cost": "0.01"}, {"connection": "velip", "prefix": "55", "cost": "0.01"}],
        "customers": [{"id": 11, "name": "Loja", "parent": 10, "sms_provider": "wavy"}, {"id": 12, "name": "x", "sms": False, "sms_provider": "off"}],
        "tariffs": [
            {"customer": 11, "prefix": "55", "value": "0.08"},
            {"customer": 9, "prefix": "55", "value": "0.08", "connection": "flash"},
        ],
    }
    p = parse_document(doc)
    assert p.references() == (
        Reference("customers[0] (id 11, 'Loja')", "parent", "customer", 10),
        Reference("customers[0] (id 11, 'Loja')", "sms_provider", "connection", "wavy", required=False),
        Reference("costs[0] (connection 'tww', prefix '55')", "connection", "connection", "tww"),
        Reference("tariffs[1] (customer 9, prefix '55', connection 'flash')", "customer", "customer", 9),
        Reference("tariffs[1] (customer 9, prefix '55', connection 'flash')", "connection", "connection", "flash"),
    )
    assert p.referenced_customer_ids() == {10, 9}
    assert p.referenced_connections() == {"wavy", "tww", "flash"}


# --- warnings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "warnings"),
    [
        # routes to absent or disabled connections are the store's warnings: it also knows the
        # stored connections (issue 17: no "not defined in this file" for one in the database)
        ({"customers": [{"id": 11, "name": "Loja", "sms_provider": "wavy"}]}, ()),
        ({"connections": [{**KANNEL, "enabled": False}], "customers": [{"id": 11, "name": "Loja"}]}, ()),
        (
            {"customers": [{"id": 11, "name": "Loja", "balance": "-5"}, {"id": 12, "name": "x", "balance": "0"}]},
            ("customers[0] (id 11, 'Loja'): balance: the opening balance -5.0000 is negative (the customer starts in debt)",),
        ),
        ({"connections": [KANNEL], "customers": [{"id": 11, "name": "Loja"}]}, ()),
        ({"customers": [{"id": 11, "name": "Loja", "sms": False, "sms_provider": "gone"}]}, ()),
        ({"text_filter": []}, ("text_filter: the list is empty, so no text is blocked as bank impersonation",)),
        ({"text_filter": None}, ()),
    ],
)
def test_warnings(doc: dict[str, Any], warnings: tuple[str, ...]) -> None:
    assert parse_document(doc).warnings == warnings


def test_text_filter_absent_or_given() -> None:
    assert parse_document({}).text_filter is None
    assert parse_document({"text_filter": ["itau"]}).text_filter == ("itau",)
    assert parse_document({"text_filter": []}).text_filter == ()


# --- to_config and secrets ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            {**KANNEL, "ack_timeout": "2.5", "enabled": False},
            ConnectionConfig(
                name="velip", kind="kannel", url="http://k", username="u", password="p",
                ack_timeout=2.5, enabled=False, dlr_secret="S",
            ),
        ),
        (
            {"name": "wavy", "kind": "wavy", "url": "https://w/", "username": "u", "token": "t", "dlr_secret": "k3y"},
            ConnectionConfig(
                name="wavy", kind="wavy", url="https://w", username="u", token="t", dlr_secret="S",
                options={"status_path": "/v1/sms/status/search"},
            ),
        ),
        (
            {"name": "sim", "kind": "simulator", "delay": 0.2, "fail_prefix": "5511999"},
            ConnectionConfig(name="sim", kind="simulator", dlr_secret="S", options={"delay": 0.2, "fail_prefix": "5511999"}),
        ),
        (
            {"name": "sim", "kind": "simulator"},
            ConnectionConfig(name="sim", kind="simulator", dlr_secret="S", options={"delay": 0.0}),
        ),
        (
            {**HTTP, "method": "get", "form": None, "query": {"to": "{dest}", "m": "{text}", "acct": 42}, "headers": {"X-Key": "hdr-secret"}},
            ConnectionConfig(
                name="matrix", kind="http", url="https://sms.example.net", dlr_secret="S",
                options={
                    "method": "GET", "path": "/send", "ok": "OK",
                    "query": {"to": "{dest}", "m": "{text}", "acct": "42"}, "headers": {"X-Key": "hdr-secret"},
                },
            ),
        ),
    ],
)
def test_to_config(entry: dict[str, Any], expected: ConnectionConfig) -> None:
    (spec,) = parse_document(one("connections", entry)).connections
    config = spec.to_config(dlr_secret="S")
    assert config == expected
    assert config.options == expected.options


def test_to_config_puts_the_http_template_in_options() -> None:
    matrix = parse_document(example()).connections[3]
    assert matrix.to_config(dlr_secret="S").options == {
        "method": "POST",
        "path": "/api/send",
        "json": {"to": "{dest}", "body": "{text}", "ref": "{id}"},
        "ok": r'"status"\s*:\s*"ok"',
        "id": r'"id"\s*:\s*"([^"]+)"',
        "headers": {},
    }


def test_secrets_never_show_in_repr_or_errors() -> None:
    doc = example()
    doc["connections"][0]["password"] = "kannel-pw-123"
    doc["connections"][1]["token"] = "wavy-token-456"
    doc["connections"][3]["headers"] = {"Authorization": "Bearer hdr-secret-789"}
    doc["customers"][1]["users"][0]["password"] = "user-pw-000"
    p = parse_document(doc)
    secrets = ["kannel-pw-123", "wavy-token-456", "hdr-secret-789", "user-pw-000", TOKEN, "k3y"]
    shown = repr(p) + str(p) + "".join(repr(c.to_config(dlr_secret="k3y")) for c in p.connections)
    for secret in secrets:
        assert secret not in shown

    doc["connections"][1]["ack_timeout"] = -1  # errors in the entries that hold the secrets
    doc["connections"][1]["url"] = "https://user:wavy-token-456@w"
    doc["customers"][1]["users"][0]["send"] = "maybe"
    doc["customers"][1]["tokens"].append(TOKEN)
    doc["customers"][1]["tokens"].append("short-secret")
    lines = "\n".join(errors_of(doc))
    for secret in [*secrets, "short-secret"]:
        assert secret not in lines


# --- reading files --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "content", "expected"),
    [
        ("p.yaml", "customers:\n  - id: 1\n   name: [\n", "line 3, column 4: invalid YAML: "),
        ("p.yaml", "customers:\n  - id: 1\n    name: a\n    name: b\n", "line 4, column 5: invalid YAML: found the key 'name' twice"),
        ("p.json", '{"customers": [\n  {"id": 1,}\n]}', "line 2, column 12: invalid JSON: Expecting property name"),
        ("p.json", '{"customers": [{"id": 1, "id": 2}]}', "invalid JSON: found the key 'id' twice"),
        ("p.json", "customers: []", "line 1, column 1: invalid JSON: "),
        ("p.yaml", "", "the document is empty"),
        ("p.yaml", "- id: 1\n", "the document is a list; expected a mapping with keys connections, costs"),
        ("p.yaml", b"\xff\xfe\x00", "not UTF-8 text"),
    ],
)
def test_unreadable_files(tmp_path: Path, filename: str, content: str | bytes, expected: str) -> None:
    path = tmp_path / filename
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ProvisioningError) as caught:
        parse_file(path)
    (line,) = caught.value.errors
    assert line.startswith(expected), line
    assert caught.value.source == str(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ProvisioningError) as caught:
        parse_file(tmp_path / "nope.yaml")
    assert caught.value.errors == ["cannot read the file: No such file or directory"]


def test_yaml_merge_keys_still_work(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("customers:\n  - &c {id: 1, name: x, sms: false}\n  - {<<: *c, id: 2}\n", encoding="utf-8")
    assert [c.id for c in parse_file(path).customers] == [1, 2]


def test_a_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"customers": [CUSTOMER]}).encode())
    assert parse_file(path).customers[0].name == "Loja Exemplo"


def test_blocklist_numbers_are_stored_normalised() -> None:
    """A Brazilian mobile in any §5 form matches the normalised destination; others stay digits."""
    doc = {"customers": [{**CUSTOMER, "blocklist": ["11988887777", "+55 (11) 98888-7777", "442079460958"]}]}
    assert parse_document(doc).customers[0].blocklist == ("5511988887777", "442079460958")


# --- the upstream engine's settings (SPEC §11) ---------------------------------------------

KANNEL = {"name": "velip", "kind": "kannel", "url": "http://k.test", "username": "u", "password": "p"}


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({**KANNEL, "throughput": -1}, "connections[0] ('velip'): throughput:"),
        ({**KANNEL, "throughput": True}, "connections[0] ('velip'): throughput:"),
        ({**KANNEL, "window": 0}, "connections[0] ('velip'): window:"),
        ({**KANNEL, "max_queue_time": 0}, "connections[0] ('velip'): max_queue_time:"),
        ({**KANNEL, "fallback": ["velip"]}, "connections[0] ('velip'): fallback names the connection itself"),
        ({**KANNEL, "fallback": ["Bad Name"]}, "connections[0] ('velip'): fallback"),
    ],
)
def test_bad_engine_settings_are_named(entry: dict[str, Any], expected: str) -> None:
    errors = errors_of(one("connections", entry))
    assert any(line.startswith(expected) for line in errors), errors


def test_engine_settings_and_priority_reach_the_records() -> None:
    plan = parse_document({
        "connections": [{**KANNEL, "throughput": 300, "window": 20, "fallback": "wavy", "max_queue_time": 600}],
        "customers": [{**CUSTOMER, "priority": "high"}],
    })
    config = plan.connections[0].to_config(dlr_secret="s")
    assert config.options == {"throughput": 300, "window": 20, "fallback": ["wavy"], "max_queue_time": 600}
    assert plan.customers[0].to_customer().priority == "high"
    assert "priority" in " ".join(errors_of(one("customers", {**CUSTOMER, "priority": "urgent"})))


def test_a_fallback_that_does_not_exist_or_is_disabled_is_a_warning() -> None:
    from pombo.domain.plan_checks import routing_warnings

    plan = parse_document({"connections": [{**KANNEL, "fallback": ["wavy", "tww"]}]})
    assert routing_warnings(plan, {"tww": False}) == [
        "connections[0] ('velip'): fallback 'wavy' does not exist (skipped until it does)",
        "connections[0] ('velip'): fallback 'tww' is disabled (skipped while it is)",
    ]
