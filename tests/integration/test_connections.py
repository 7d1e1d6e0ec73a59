"""Every connection kind against a fake upstream over real HTTP on loopback (SPEC §8)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from pombo.adapters.connections import KINDS, build_connection
from pombo.adapters.connections.http_template import HttpTemplateConnection
from pombo.adapters.connections.kannel import KannelConnection
from pombo.adapters.connections.simulator import SimulatorConnection
from pombo.adapters.connections.smpp import SmppConnection
from pombo.adapters.connections.tww import TwwConnection
from pombo.adapters.connections.wavy import WavyConnection
from pombo.domain.model import ConnectionConfig, OutboundSms
from pombo.ports import Connection, NotSent, OutcomeUnknown, UpstreamRejected, UpstreamTimeout
from tests.fakes.upstream import FakeUpstream, pick_free_port, tww_body

PUBLIC_URL = "https://pombo.example.com/gw/"
ACCENTED = "Olá, João! Ação às 10h — preço: R$ 5"
UCS2 = "日本語 ✓ 😀 {braces} 1+1=2 & 50% off"

HTTP_FORM = {
    "method": "POST",
    "path": "/api/send",
    "form": {"to": "{dest}", "msg": "{text}", "ref": "{id}", "sender": "{from}", "k": "{x}"},
    "ok": r'"status":\s*"ok"',
    "id": r'"id":\s*"([^"]+)"',
    "headers": {"X-Api-Key": "key-123"},
}

CREDENTIALS: dict[str, dict[str, Any]] = {
    "wavy": {"username": "acme", "token": "tok-s3cret"},
    "tww": {"username": "acme", "password": "tww-s3nh@"},
    "kannel": {"username": "kuser", "password": "p@ss w&rd", "dlr_secret": "s3cr3t"},
    "http": {"options": HTTP_FORM},
}

Make = Callable[..., Connection]


def sms(
    id: int = 42,
    dest: str = "5511987654321",
    text: str = "hello",
    encoding: str = "GSM-7",
    sender: str | None = None,
    ctid: str | None = None,
) -> OutboundSms:
    return OutboundSms(id=id, dest=dest, text=text, encoding=encoding, sender=sender, ctid=ctid)


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    fake = FakeUpstream()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def make(upstream: FakeUpstream) -> AsyncIterator[Make]:
    made: list[Connection] = []

    def factory(kind: str, *, url: str | None = None, **fields: Any) -> Connection:
        settings = {**CREDENTIALS.get(kind, {}), **fields}
        config = ConnectionConfig(
            name=f"{kind}1", kind=kind, url=upstream.url if url is None else url, **settings
        )
        conn = build_connection(config, public_url=PUBLIC_URL)
        made.append(conn)
        return conn

    yield factory
    for conn in made:
        await conn.close()


# -- the factory -----------------------------------------------------------------------------


def test_build_connection_dispatches_on_kind() -> None:
    expected = {
        "wavy": WavyConnection,
        "tww": TwwConnection,
        "kannel": KannelConnection,
        "http": HttpTemplateConnection,
        "simulator": SimulatorConnection,
        "smpp": SmppConnection,
    }
    assert frozenset(expected) == KINDS
    for kind, cls in expected.items():
        config = ConnectionConfig(name="c", kind=kind, **CREDENTIALS.get(kind, {}))
        assert type(build_connection(config, public_url="")) is cls


def test_unknown_kind_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="smtp"):
        build_connection(ConnectionConfig(name="c", kind="smtp"), public_url="")


@pytest.mark.parametrize(
    "options",
    [
        {"ok": "x"},  # no body
        {"ok": "x", "form": {"a": "1"}, "json": {"a": "1"}},  # two bodies
        {"form": {"a": "{dest}"}},  # no ok
    ],
)
def test_http_template_needs_exactly_one_body_and_an_ok_regex(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        build_connection(ConnectionConfig(name="c", kind="http", options=options), public_url="")


@pytest.mark.parametrize("kind", ["wavy", "tww", "kannel"])
def test_repr_never_shows_credentials(kind: str) -> None:
    config = ConnectionConfig(name="c", kind=kind, **CREDENTIALS[kind])
    shown = repr(build_connection(config, public_url=""))
    assert "s3" not in shown and "tok" not in shown and "p@ss" not in shown


# -- wavy ------------------------------------------------------------------------------------


async def test_wavy_wire_format(upstream: FakeUpstream, make: Make) -> None:
    ack = await make("wavy").send(sms(text=ACCENTED))

    [got] = upstream.received("wavy")
    assert (got.method, got.path) == ("POST", "/v1/send-sms")
    assert got.headers["UserName"] == "acme"
    assert got.headers["AuthenticationToken"] == "tok-s3cret"
    assert got.headers["Content-Type"] == "application/json"
    assert got.json == {
        "destination": "5511987654321",
        "messageText": ACCENTED,
        "correlationId": "42",
    }
    assert ack.upstream_id and len(ack.upstream_id) == 36  # the fake's uuid
    assert ack.upstream_id in ack.raw and '"correlationId":"42"' in ack.raw.replace(" ", "")


async def test_wavy_sends_extra_info_only_with_ctid(upstream: FakeUpstream, make: Make) -> None:
    conn = make("wavy")
    await conn.send(sms(id=1, text=UCS2, encoding="UCS-2", ctid="camp-7"))
    await conn.send(sms(id=2))
    with_ctid, without = upstream.received("wavy")
    assert with_ctid.json["extraInfo"] == "camp-7"
    assert with_ctid.json["messageText"] == UCS2
    assert "extraInfo" not in without.json


@pytest.mark.parametrize(
    ("body", "upstream_id"),
    [
        ('[{"id": "abc-1", "correlationId": "42"}]', "abc-1"),
        ('{"id": "abc-2", "correlationId": "42"}', "abc-2"),
        ('{"id": 12345}', "12345"),
    ],
)
async def test_wavy_accepts_both_shapes(
    upstream: FakeUpstream, make: Make, body: str, upstream_id: str
) -> None:
    upstream.behave("wavy", mode="custom", status=200, body=body)
    ack = await make("wavy").send(sms())
    assert (ack.upstream_id, ack.raw) == (upstream_id, body)


@pytest.mark.parametrize(
    "body", ["[]", "{}", '[{"correlationId": "42"}]', '{"id": null}', "<html>ok</html>", ""]
)
async def test_wavy_2xx_without_an_id_is_hard(
    upstream: FakeUpstream, make: Make, body: str
) -> None:
    upstream.behave("wavy", mode="custom", status=201, body=body)
    with pytest.raises(UpstreamRejected) as err:
        await make("wavy").send(sms())
    assert err.value.raw == (body or "HTTP 201 (empty body)")  # the log always says something


async def test_wavy_error_answer_is_hard(upstream: FakeUpstream, make: Make) -> None:
    upstream.behave("wavy", mode="error")
    with pytest.raises(UpstreamRejected) as err:
        await make("wavy").send(sms())
    assert err.value.raw.startswith("HTTP 400: ")
    assert "Invalid destination" in err.value.raw


# -- tww -------------------------------------------------------------------------------------


async def test_tww_wire_format_removes_accents(upstream: FakeUpstream, make: Make) -> None:
    conn = make("tww", url=upstream.url + "/reluzcap/wsreluzcap.asmx/")
    ack = await conn.send(sms(text=ACCENTED + "\u00a0ü 😀"))

    [got] = upstream.received("tww")
    assert (got.method, got.path) == ("POST", "/reluzcap/wsreluzcap.asmx/EnviaSMS")
    assert got.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert got.form["NumUsu"] == "acme"
    assert got.form["Senha"] == "tww-s3nh@"
    assert got.form["SeuNum"] == "42"
    assert got.form["Celular"] == "5511987654321"
    message = got.form["Mensagem"]
    assert message.startswith("Ola, Joao! Acao as 10h")
    assert all(" " <= c <= "~" for c in message)
    assert ack.upstream_id is None and ">OK<" in ack.raw


@pytest.mark.parametrize("answer", ["NOK", "Erro", "NA", "", "OK!", "ok"])
async def test_tww_anything_but_ok_is_hard(upstream: FakeUpstream, make: Make, answer: str) -> None:
    upstream.behave("tww", mode="custom", status=200, body=tww_body(answer))
    with pytest.raises(UpstreamRejected) as err:
        await make("tww").send(sms())
    assert err.value.raw == tww_body(answer)


async def test_tww_ok_tolerates_whitespace_and_attributes(
    upstream: FakeUpstream, make: Make
) -> None:
    body = '<?xml version="1.0"?>\r\n<string xmlns:xsi="x" xmlns="y">\r\n  OK \r\n</string>'
    upstream.behave("tww", mode="custom", status=200, body=body)
    ack = await make("tww").send(sms())
    assert ack.raw == body


async def test_tww_error_mode_and_bare_ok_are_hard(upstream: FakeUpstream, make: Make) -> None:
    conn = make("tww")
    upstream.behave("tww", mode="error")
    with pytest.raises(UpstreamRejected, match="NOK"):
        await conn.send(sms())
    upstream.behave("tww", mode="custom", status=200, body="OK")  # no <string> around it
    with pytest.raises(UpstreamRejected):
        await conn.send(sms())


# -- kannel ----------------------------------------------------------------------------------


async def test_kannel_wire_format_gsm(upstream: FakeUpstream, make: Make) -> None:
    ack = await make("kannel").send(sms(text="Olá 1+1=2 & 50% off", sender="Pombo"))

    [got] = upstream.received("kannel")
    assert (got.method, got.path, got.body) == ("GET", "/cgi-bin/sendsms", b"")
    assert got.query == {
        "username": "kuser",
        "password": "p@ss w&rd",
        "charset": "UTF-8",
        "dlr-mask": "31",
        "to": "5511987654321",
        "text": "Olá 1+1=2 & 50% off",
        "coding": "0",
        "from": "Pombo",
        "dlr-url": "https://pombo.example.com/gw/dlr/kannel1/s3cr3t?id=42&type=%d&answer=%A",
    }
    assert (ack.upstream_id, ack.raw) == (None, "0: Accepted for delivery")


async def test_kannel_ucs2_has_coding_2_and_no_from(upstream: FakeUpstream, make: Make) -> None:
    await make("kannel").send(sms(id=7, text=UCS2, encoding="UCS-2"))
    [got] = upstream.received("kannel")
    assert got.query["coding"] == "2"
    assert got.query["text"] == UCS2
    assert "from" not in got.query
    assert got.query["dlr-url"].endswith("?id=7&type=%d&answer=%A")


@pytest.mark.parametrize("body", ["0: Accepted for delivery", "3: Queued for later delivery"])
async def test_kannel_accepts_0_and_3(upstream: FakeUpstream, make: Make, body: str) -> None:
    upstream.behave("kannel", mode="custom", status=202, body=body)
    assert (await make("kannel").send(sms())).raw == body


@pytest.mark.parametrize(
    ("status", "body"),
    [(200, "Sent."), (202, "4: Something else"), (200, "1: Error"), (200, "")],
)
async def test_kannel_other_2xx_answers_are_hard(
    upstream: FakeUpstream, make: Make, status: int, body: str
) -> None:
    upstream.behave("kannel", mode="custom", status=status, body=body)
    with pytest.raises(UpstreamRejected) as err:
        await make("kannel").send(sms())
    assert err.value.raw == (body or f"HTTP {status} (empty body)")  # the log always says something


async def test_kannel_error_mode_is_hard(upstream: FakeUpstream, make: Make) -> None:
    upstream.behave("kannel", mode="error")
    with pytest.raises(UpstreamRejected) as err:
        await make("kannel").send(sms())
    assert err.value.raw == "HTTP 403: Authorization failed for sendsms"


async def test_kannel_get_is_not_resent_on_a_dropped_keepalive_socket(
    upstream: FakeUpstream, make: Make
) -> None:
    conn = make("kannel")
    await conn.send(sms(id=1))  # leaves a keep-alive socket in the pool
    upstream.behave("kannel", mode="reset")
    with pytest.raises(OutcomeUnknown, match=r"^no valid answer"):  # it went out: never again
        await conn.send(sms(id=2))
    assert [r.query["dlr-url"][-22:] for r in upstream.received("kannel")] == [
        "id=1&type=%d&answer=%A",
        "id=2&type=%d&answer=%A",
    ]


# -- http template ---------------------------------------------------------------------------


async def test_http_template_form(upstream: FakeUpstream, make: Make) -> None:
    ack = await make("http").send(sms(text=ACCENTED, sender="ACME"))

    [got] = upstream.received("http")
    assert (got.method, got.path) == ("POST", "/api/send")
    assert got.headers["X-Api-Key"] == "key-123"
    assert got.form == {
        "to": "5511987654321",
        "msg": ACCENTED,
        "ref": "42",
        "sender": "ACME",
        "k": "{x}",
    }
    assert ack.upstream_id == "m-1"


async def test_http_template_json_nested(upstream: FakeUpstream, make: Make) -> None:
    options = {
        "path": "v2/messages",
        "json": {
            "to": ["+{dest}"],
            "body": {"content": "{text}", "meta": {"ref": "cdls-{id}", "literal": "{0} {name}"}},
            "from": "{from}",
            "priority": 1,
            "flash": False,
        },
        "ok": '"status": "ok"',
    }
    ack = await make("http", options=options).send(sms(text="{dest} é {id}", encoding="UCS-2"))

    [got] = upstream.received("http")
    assert (got.method, got.path) == ("POST", "/v2/messages")
    assert got.headers["Content-Type"] == "application/json"
    assert got.json == {
        "to": ["+5511987654321"],
        # substituted in one pass: tokens inside the message text stay as the customer wrote
        "body": {"content": "{dest} é {id}", "meta": {"ref": "cdls-42", "literal": "{0} {name}"}},
        "from": "",
        "priority": 1,
        "flash": False,
    }
    assert ack.upstream_id is None  # no id regex


async def test_http_template_query(upstream: FakeUpstream, make: Make) -> None:
    options = {
        "method": "get",
        "path": "/send.php?key=abc",
        "query": {"to": "{dest}", "msg": "{text}", "id": "{id}"},
        "ok": r"^OK (\d+)",
        "id": r"^OK (\d+)",
    }
    upstream.behave("http", mode="custom", status=200, body="OK 998877")
    ack = await make("http", options=options).send(sms(text="a+b & c=d 100% ✓"))

    [got] = upstream.received("http")
    assert (got.method, got.path, got.body) == ("GET", "/send.php", b"")
    assert got.query == {"key": "abc", "to": "5511987654321", "msg": "a+b & c=d 100% ✓", "id": "42"}
    assert (ack.upstream_id, ack.raw) == ("998877", "OK 998877")


async def test_http_template_error_keeps_the_raw_body_as_is(
    upstream: FakeUpstream, make: Make
) -> None:
    conn = make("http")
    upstream.behave("http", mode="error")
    with pytest.raises(UpstreamRejected) as err:
        await conn.send(sms())
    assert err.value.raw == '{"status": "error"}'
    upstream.behave("http", mode="custom", status=500, body='{"status": "ok"}')
    with pytest.raises(UpstreamRejected) as err:  # ok matches but the status is not 2xx
        await conn.send(sms())
    assert err.value.raw == '{"status": "ok"}'


async def test_http_template_reads_a_huge_body_capped(upstream: FakeUpstream, make: Make) -> None:
    body = '{"status": "ok", "id": "big"}' + " " * (3 << 20)
    upstream.behave("http", mode="custom", status=200, body=body)
    ack = await make("http").send(sms())
    assert ack.upstream_id == "big"
    assert len(ack.raw) == 4000


# -- the failure policy, every kind ------------------------------------------------------------

HTTP_KINDS = ["wavy", "tww", "kannel", "http"]


@pytest.mark.parametrize("kind", HTTP_KINDS)
@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, "Internal Server Error"),
        (401, "unauthorised"),  # 429 and 503 are "not now": test_upstream_outcomes.py
        (302, ""),  # never followed
        (200, b"\xff\xfe\x00garbage\x80"),
    ],
)
async def test_hard_errors_are_rejected_once(
    upstream: FakeUpstream, make: Make, kind: str, status: int, body: str | bytes
) -> None:
    upstream.behave(kind, mode="custom", status=status, body=body)
    with pytest.raises(UpstreamRejected) as err:
        await make(kind).send(sms())
    if isinstance(body, bytes):
        assert "\ufffd" in err.value.raw  # decoded with replacement, not crashed
    elif body:
        assert body in err.value.raw
    assert len(upstream.requests) == 1


@pytest.mark.parametrize("kind", HTTP_KINDS)
async def test_error_mode_is_rejected(upstream: FakeUpstream, make: Make, kind: str) -> None:
    upstream.behave(kind, mode="error")
    with pytest.raises(UpstreamRejected):
        await make(kind).send(sms())
    assert len(upstream.received(kind)) == 1


@pytest.mark.parametrize("kind", HTTP_KINDS)
async def test_reset_after_the_request_is_unknown_and_sent_once(
    upstream: FakeUpstream, make: Make, kind: str
) -> None:
    upstream.behave(kind, mode="reset")
    with pytest.raises(OutcomeUnknown, match=r"^no valid answer"):
        await make(kind).send(sms())
    assert len(upstream.requests) == 1


@pytest.mark.parametrize("kind", HTTP_KINDS)
@pytest.mark.parametrize("behaviour", [{"mode": "hang"}, {"mode": "ok", "delay": 2.0}])
async def test_no_answer_in_time_is_a_timeout(
    upstream: FakeUpstream, make: Make, kind: str, behaviour: dict[str, Any]
) -> None:
    upstream.behave(kind, **behaviour)
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout) as err:
        await make(kind, final_timeout=0.3).send(sms())
    assert time.monotonic() - started < 1.5
    assert err.value.raw == "no answer within 0.3s"
    assert len(upstream.requests) == 1


async def test_a_slow_answer_within_the_timeout_is_ok(upstream: FakeUpstream, make: Make) -> None:
    upstream.behave("kannel", mode="ok", delay=0.2)
    ack = await make("kannel", final_timeout=2).send(sms())
    assert ack.raw.startswith("0:")


@pytest.mark.parametrize("kind", HTTP_KINDS)
async def test_refused_connection_is_not_sent(make: Make, kind: str) -> None:
    conn = make(kind, url=f"http://127.0.0.1:{pick_free_port()}")
    with pytest.raises(NotSent, match=r"^not sent") as err:
        await conn.send(sms())
    assert err.value.retry_after is None
    for secret in ("s3", "p@ss", "p%40ss", "tok-"):
        assert secret not in err.value.raw


async def test_invalid_http_is_unknown(make: Make) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"SMTP ready, not HTTP\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(OutcomeUnknown, match=r"^no valid answer: invalid HTTP") as err:
            await make("kannel", url=f"http://127.0.0.1:{port}").send(sms())
        assert "p@ss" not in err.value.raw and "p%40ss" not in err.value.raw
    finally:
        server.close()
        await server.wait_closed()


async def test_concurrent_sends_each_reach_the_upstream_once(
    upstream: FakeUpstream, make: Make
) -> None:
    conn = make("wavy")
    acks = await asyncio.gather(*(conn.send(sms(id=i)) for i in range(200)))
    assert len({a.upstream_id for a in acks}) == 200
    ids = sorted(int(r.json["correlationId"]) for r in upstream.received("wavy"))
    assert ids == list(range(200))


async def test_close_then_send_opens_a_new_session(upstream: FakeUpstream, make: Make) -> None:
    conn = make("tww")
    await conn.send(sms(id=1))
    await conn.close()
    await conn.close()  # idempotent
    await conn.send(sms(id=2))
    assert [r.form["SeuNum"] for r in upstream.received("tww")] == ["1", "2"]


# -- the fake itself, in a thread -------------------------------------------------------------


async def test_fake_upstream_in_a_thread() -> None:
    fake = FakeUpstream()
    fake.start_in_thread()
    config = ConnectionConfig(name="k", kind="kannel", url=fake.url)
    conn = build_connection(config, public_url="http://x")
    try:
        await conn.send(sms())
        fake.behave("kannel", mode="error")
        with pytest.raises(UpstreamRejected):
            await conn.send(sms())
        assert len(fake.received("kannel")) == 2
        fake.reset()
        assert fake.requests == []
    finally:
        await conn.close()
        fake.stop_thread()


# -- simulator -------------------------------------------------------------------------------


def simulator(**options: Any) -> Connection:
    config = ConnectionConfig(name="sim", kind="simulator", final_timeout=0.2, options=options)
    return build_connection(config, public_url="")


async def test_simulator_accepts_with_a_sim_id() -> None:
    ack = await simulator().send(sms(id=9))
    assert ack.upstream_id == "sim-9"


async def test_simulator_fails_by_prefix() -> None:
    conn = simulator(fail_prefix="55119")
    with pytest.raises(UpstreamRejected, match="simulated failure"):
        await conn.send(sms(dest="5511987654321"))
    assert (await conn.send(sms(dest="5521987654321"))).upstream_id == "sim-42"


async def test_simulator_delay_and_timeout() -> None:
    started = time.monotonic()
    await simulator(delay=0.05).send(sms())
    assert time.monotonic() - started >= 0.05
    with pytest.raises(UpstreamTimeout):
        await simulator(delay=5).send(sms())
    assert time.monotonic() - started < 1
