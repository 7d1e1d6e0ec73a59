"""Bad input against the real ASGI app under uvicorn on loopback (issue: hardening).

Every answer must be the documented envelope, JSON, with the HTTP status SPEC §1 gives its code,
and never a 5xx or a stack trace in the server's log. The server runs in a thread of its own
(uvicorn.Server on a socket we bound), the fake upstream in another; clients are aiohttp or, for
what aiohttp will not send (lying lengths, trickled bodies), raw sockets.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes, urlencode

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yarl import URL

from pombo.adapters.sql.factory import open_store
from pombo.api.envelope import http_status
from tests.conftest import _empty_pg as empty_pg
from tests.fakes.upstream import FakeUpstream
from tests.integration.gateway import TOKEN, provision, provisioning
from tests.live_server import ErrorLog, serve

JSON_CT = "application/json; charset=utf-8"
MAKESMS = "/api/v2/MakeSMS.php"
API_PATHS = (MAKESMS, "/api/v2/GetUserID.php", "/api/v2/GetSMSStatus.php", "/api/v2/GetBalance.php")
WAVY_TOKEN = "tok-wavy-0000000001"
WAVY_SECRET = "wavy-dlr-secret"
KANNEL_SECRET = "kannel-dlr-secret"
USER, PASSWORD = "loja", "s3cret"
KIB64 = 64 * 1024


# --------------------------------------------------------------------------------------------
# A live gateway: uvicorn in a thread, errors of the server's loggers collected
# --------------------------------------------------------------------------------------------


@dataclass
class Live:
    """A running gateway: its base URL, database and the fake upstream behind it."""

    host: str
    port: int
    database_url: str
    upstream: FakeUpstream
    errors: ErrorLog
    engine: str = "sqlite"

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"


@contextlib.contextmanager
def fake_upstream() -> Iterator[FakeUpstream]:
    fake = FakeUpstream()
    fake.start_in_thread()
    try:
        yield fake
    finally:
        fake.stop_thread()


_ips = itertools.count(1)
_dests = itertools.count(1)


def fresh_ip() -> str:
    """A loopback source address of its own (failed-auth counters are per IP)."""
    n = next(_ips)
    return f"127.1.{n // 250}.{1 + n % 250}"


def fresh_dest() -> str:
    """A valid mobile (DDD 21) no other test in this session sends to."""
    return f"219{next(_dests) + 10_000_000:08d}"


def api_doc(upstream_url: str) -> dict[str, Any]:
    doc = provisioning(upstream_url, shop_balance="1000.00", ack_timeout=0.5, final_timeout=2.0)
    for conn in doc["connections"]:
        conn["dlr_secret"] = {"wavy": WAVY_SECRET, "velip": KANNEL_SECRET}.get(conn["name"])
    shop = next(c for c in doc["customers"] if c["id"] == 11)
    shop.update(night_limit=None, users=[{"username": USER, "password": PASSWORD, "send": True}])
    doc["customers"].append(
        {"id": 12, "name": "Loja Wavy", "parent": 10, "balance": "100.00", "sms_provider": "wavy",
         "night_limit": None, "tokens": [WAVY_TOKEN]}
    )
    doc["tariffs"].append({"customer": 12, "prefix": "55", "value": "0.0800"})
    return doc


def module_database(request: pytest.FixtureRequest, name: str) -> str:
    """An empty, migrated database on request.param's engine, for one module's live server."""
    if request.param == "sqlite":
        return f"sqlite:///{request.getfixturevalue('tmp_path_factory').mktemp(name) / 'pombo.db'}"
    url: str = request.getfixturevalue("pg_database")  # skips where no PostgreSQL answers
    empty_pg(url)
    return url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(request: pytest.FixtureRequest) -> Iterator[Live]:
    url = module_database(request, "hardening-api")
    with fake_upstream() as upstream:
        provision(url, api_doc(upstream.url))
        with serve(url) as (host, port, errors):
            yield Live(host, port, url, upstream, errors, request.param)


@pytest.fixture(autouse=True)
def no_server_errors(live: Live) -> Iterator[None]:
    live.errors.take()
    yield
    assert live.errors.take() == [], "the server logged an error"


@pytest.fixture
async def client(live: Live) -> AsyncIterator[aiohttp.ClientSession]:
    """A session from a source address of its own."""
    connector = aiohttp.TCPConnector(local_addr=(fresh_ip(), 0), force_close=True)
    async with aiohttp.ClientSession(live.base, connector=connector, skip_auto_headers=("User-Agent",)) as session:
        yield session


# --------------------------------------------------------------------------------------------
# Answers
# --------------------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    content_type: str
    body: bytes

    @property
    def ret(self) -> dict[str, Any]:
        return envelope_of(self)

    def __str__(self) -> str:
        return f"HTTP {self.status} {self.content_type!r} {self.body[:300]!r}"


def envelope_of(answer: Answer) -> dict[str, Any]:
    """The `return` object, after checking everything SPEC §1 says about its shape."""
    assert answer.status < 500, str(answer)
    assert answer.content_type.replace(" ", "").lower() == JSON_CT.replace(" ", ""), str(answer)
    data = json.loads(answer.body)
    assert isinstance(data, dict) and isinstance(data.get("return"), dict), str(answer)
    ret = data["return"]
    assert isinstance(ret.get("status"), str) and ret["status"], str(answer)
    code = ret.get("status_code")
    assert isinstance(code, str) and code.isdigit(), str(answer)
    assert answer.status == http_status(int(code)), str(answer)
    if "cdls_id" in ret:
        assert isinstance(ret["cdls_id"], str) and ret["cdls_id"].isdigit(), str(answer)
        assert (ret["cdls_id"] != "0") is (code in ("0", "1", "300")), str(answer)
    return ret


def expect(answer: Answer, code: int, http: int | None = None) -> dict[str, Any]:
    ret = envelope_of(answer)
    assert ret["status_code"] == str(code), str(answer)
    if http is not None:
        assert answer.status == http, str(answer)
    return ret


async def call(
    session: aiohttp.ClientSession,
    method: str,
    path: str,
    *,
    query: str | bytes | None = None,
    body: bytes | None = None,
    content_type: str | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """One request with the body and query sent exactly as given."""
    target = path
    if query is not None:
        target += "?" + (query.decode("ascii") if isinstance(query, bytes) else query)
    all_headers = dict(headers or {})
    skip = ()
    if content_type is not None:
        all_headers["Content-Type"] = content_type
    elif body is not None:
        skip = ("Content-Type",)
    async with session.request(
        method, URL(target, encoded=True), data=body, headers=all_headers, skip_auto_headers=skip
    ) as resp:
        return Answer(resp.status, resp.headers.get("Content-Type", ""), await resp.read())


async def post_form(session: aiohttp.ClientSession, path: str, params: dict[str, str], **kw: Any) -> Answer:
    return await call(
        session, "POST", path, body=urlencode(params).encode(), content_type="application/x-www-form-urlencoded", **kw
    )


def multipart(fields: dict[str, str], boundary: str = "pombo-boundary-1234") -> tuple[bytes, str]:
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'.encode() + v.encode() + b"\r\n"
        for k, v in fields.items()
    ]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


# --------------------------------------------------------------------------------------------
# Raw HTTP for what aiohttp will not do
# --------------------------------------------------------------------------------------------


async def read_answer(reader: asyncio.StreamReader) -> Answer:
    status_line = await reader.readline()
    assert status_line.startswith(b"HTTP/1.1 "), status_line
    status = int(status_line.split()[1])
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Answer(status, headers.get("content-type", ""), body)


@contextlib.asynccontextmanager
async def raw_connection(live: Live) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection(live.host, live.port, local_addr=(fresh_ip(), 0))
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def exchange_while_sending(live: Live, first: bytes, chunks: Iterator[bytes]) -> Answer:
    """Send `first`, then keep sending chunks while waiting for the answer (the server may
    answer before the body is over and stop reading)."""
    async with raw_connection(live) as (reader, writer):
        writer.write(first)

        async def pump() -> None:
            with contextlib.suppress(OSError):
                for chunk in chunks:
                    writer.write(chunk)
                    await writer.drain()

        sender = asyncio.ensure_future(pump())
        try:
            return await asyncio.wait_for(read_answer(reader), 10)
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender


# --------------------------------------------------------------------------------------------
# Bodies that cannot be parsed: 400
# --------------------------------------------------------------------------------------------

BAD_JSON = [
    b"{",
    b'{"tsid": "x",}',
    b"[1, 2]",
    b'[{"tsid": "x"}]',
    b'"tsid"',
    b"42",
    b"null",
    b'{"dest": {"n": "11987654321"}}',
    b'{"dest": ["11987654321"]}',
    b'{"message": "\\ud800"}',
    b"\xff\xfe{\x00}",
    b'{"a": 1e400}',
    b"[" * 20_000 + b"]" * 20_000,
]


@pytest.mark.parametrize("path", API_PATHS)
@pytest.mark.parametrize("body", BAD_JSON, ids=lambda b: repr(b[:24]))
async def test_unparseable_json_is_400(client: aiohttp.ClientSession, path: str, body: bytes) -> None:
    answer = await call(client, "POST", path, body=body, content_type="application/json", query=f"tsid={TOKEN}")
    ret = expect(answer, 400, http=400)
    assert ret["status"] == "bad request"


@pytest.mark.parametrize("ctype", ["application/json", "application/vnd.api+json", "application/json; charset=latin-1"])
async def test_json_numbers_strings_and_booleans_are_parameters(client: aiohttp.ClientSession, ctype: str) -> None:
    body = json.dumps({"tsid": TOKEN, "dest": int(fresh_dest()), "message": "json", "httpdup": 0, "cuttext": True, "ctid": None})
    expect(await call(client, "POST", MAKESMS, body=body.encode(), content_type=ctype), 0, http=200)


MULTIPART_BROKEN = [
    ("multipart/form-data", b"--x\r\nContent-Disposition: form-data; name=\"tsid\"\r\n\r\nabc\r\n--x--\r\n"),
    ("multipart/form-data; boundary=", b"--\r\n\r\n"),
    ("multipart/form-data; boundary=zz", b"--zz\r\nContent-Disposition: form-data\r\n\r\nno name\r\n--zz--\r\n"),
    ("multipart/form-data; boundary=zz", b"--zz\r\nthis is not a header line at all\r\n\r\nx\r\n--zz--\r\n"),
    ("multipart/form-data; boundary=zz", b"--zz\r\nContent-Disposition: form-data; name=\"tsid\"\r\n\r\nunterminated"),
    ("multipart/form-data; boundary=zz", b"garbage with no boundary at all"),
    ("multipart/form-data; boundary=zz", b"\x00" * 1000),
]


@pytest.mark.parametrize(("ctype", "body"), MULTIPART_BROKEN, ids=[f"mp{i}" for i in range(len(MULTIPART_BROKEN))])
async def test_broken_multipart_is_400_or_carries_nothing(client: aiohttp.ClientSession, ctype: str, body: bytes) -> None:
    answer = await call(client, "POST", MAKESMS, body=body, content_type=ctype)
    ret = envelope_of(answer)
    # either the body is refused, or whatever was read did not authenticate anybody
    assert ret["status_code"] in ("400", "100", "102"), str(answer)


async def test_multipart_with_a_foreign_charset_still_works(client: aiohttp.ClientSession) -> None:
    dest = fresh_dest()
    body, ctype = multipart({"tsid": TOKEN, "dest": dest, "message": "ação"})
    body = body.replace("ação".encode(), "ação".encode("latin-1"))
    answer = await call(client, "POST", MAKESMS, body=body, content_type=ctype + "; charset=x-no-such-charset")
    expect(answer, 0)


@pytest.mark.parametrize(
    "ctype",
    ["application/xml", "text/html; charset=utf-8", "application/octet-stream", "image/png", "*/*", "application/x-www-form-urlencodedX"],
)
async def test_other_content_types_are_400_naming_the_type(client: aiohttp.ClientSession, ctype: str) -> None:
    # SPEC §1: never a misleading 1xx for a body Pombo cannot read, even with the token in the query
    body = urlencode({"tsid": TOKEN, "dest": fresh_dest(), "message": "hi"}).encode()
    for query in (None, f"tsid={TOKEN}"):
        ret = expect(await call(client, "POST", MAKESMS, body=body, content_type=ctype, query=query), 400, http=400)
        assert ret["status"] == "unsupported content type: " + ctype.split(";")[0]


async def test_text_plain_is_read_by_its_look(client: aiohttp.ClientSession) -> None:
    form = urlencode({"tsid": TOKEN, "dest": fresh_dest(), "message": "plain form"}).encode()
    expect(await call(client, "POST", MAKESMS, body=form, content_type="text/plain"), 0)
    as_json = json.dumps({"tsid": TOKEN, "dest": fresh_dest(), "message": "plain json"}).encode()
    expect(await call(client, "POST", MAKESMS, body=b"\r\n " + as_json, content_type="text/plain"), 0)


@pytest.mark.parametrize("ctype", [None, "", ";;;", "; charset=utf-8"])
async def test_no_media_type_is_a_form(client: aiohttp.ClientSession, ctype: str | None) -> None:
    body = urlencode({"tsid": TOKEN, "dest": fresh_dest(), "message": "no content type"}).encode()
    expect(await call(client, "POST", MAKESMS, body=body, content_type=ctype), 0)


# --------------------------------------------------------------------------------------------
# Size limits: 413
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", API_PATHS)
async def test_body_of_64k_plus_one_is_413(client: aiohttp.ClientSession, path: str) -> None:
    body = b"message=" + b"x" * (KIB64 + 1 - len(b"message="))
    ret = expect(await call(client, "POST", path, body=body, query=f"tsid={TOKEN}"), 413, http=413)
    assert ret["status"] == "request too large"


async def test_body_of_exactly_64k_is_read(client: aiohttp.ClientSession) -> None:
    prefix = urlencode({"tsid": TOKEN, "dest": fresh_dest(), "cuttext": "1", "message": ""}).encode()
    body = prefix + b"x" * (KIB64 - len(prefix))
    assert len(body) == KIB64
    expect(await call(client, "POST", MAKESMS, body=body, content_type="application/x-www-form-urlencoded"), 0)


@pytest.mark.parametrize("ctype", ["application/json", "multipart/form-data; boundary=zz", "application/x-www-form-urlencoded", "text/plain"])
async def test_ten_megabytes_is_413(live: Live, ctype: str) -> None:
    size = 10 * 1024 * 1024
    first = head("POST", MAKESMS, {"Content-Type": ctype, "Content-Length": str(size)})
    chunks = (b"a" * 65536 for _ in range(size // 65536))
    expect(await exchange_while_sending(live, first, chunks), 413, http=413)


async def test_lying_content_length_larger_than_the_body_is_413_at_once(live: Live) -> None:
    # 10 MB announced, 20 bytes sent: refused on the header, without waiting for the rest
    async with raw_connection(live) as (reader, writer):
        writer.write(head("POST", MAKESMS, {"Content-Type": "application/x-www-form-urlencoded", "Content-Length": "10485760"}))
        writer.write(b"tsid=x&dest=1&messag")
        await writer.drain()
        expect(await asyncio.wait_for(read_answer(reader), 5), 413, http=413)


async def test_lying_content_length_smaller_than_the_body(live: Live, client: aiohttp.ClientSession) -> None:
    # only the announced bytes are the body; what follows is not a request and is refused by
    # the HTTP layer, but the first answer is the app's and the server keeps serving
    body = urlencode({"tsid": TOKEN, "dest": fresh_dest(), "message": "x" * 100_000}).encode()
    async with raw_connection(live) as (reader, writer):
        writer.write(head("POST", MAKESMS, {"Content-Type": "application/x-www-form-urlencoded", "Content-Length": "30"}))
        writer.write(body)
        with contextlib.suppress(OSError):
            await writer.drain()
        answer = await asyncio.wait_for(read_answer(reader), 5)
    if answer.content_type.startswith("text/plain"):
        # uvicorn may refuse the "next request" and close before the app's answer is out
        assert answer.status == 400, str(answer)
    else:
        assert envelope_of(answer)["status_code"] == "230", str(answer)  # tsid + an empty dest
    expect(await post_form(client, MAKESMS, {"tsid": TOKEN, "dest": fresh_dest(), "message": "after"}), 0)


async def test_chunked_body_without_length_over_64k_is_413(live: Live) -> None:
    first = head("POST", MAKESMS, {"Content-Type": "application/x-www-form-urlencoded", "Transfer-Encoding": "chunked"})
    piece = b"a" * 8192
    chunks = itertools.chain((b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(1280)), [b"0\r\n\r\n"])
    expect(await exchange_while_sending(live, first, chunks), 413, http=413)


async def test_chunked_body_under_64k_is_read(live: Live) -> None:
    body = urlencode({"tsid": TOKEN, "dest": fresh_dest(), "message": "chunked"}).encode()
    first = head("POST", MAKESMS, {"Content-Type": "application/x-www-form-urlencoded", "Transfer-Encoding": "chunked"})
    halves = [body[:10], body[10:]]
    chunks = iter([*(b"%x\r\n%s\r\n" % (len(h), h) for h in halves), b"0\r\n\r\n"])
    expect(await exchange_while_sending(live, first, chunks), 0, http=200)


@pytest.mark.parametrize("param", ["dest", "message", "ctid", "from", "cp_id", "cd_id", "httpdup", "setbrasil", "cuttext", "provider", "tsid", "sid"])
async def test_huge_values_in_the_query_string(live: Live, client: aiohttp.ClientSession, param: str) -> None:
    # 60 000 characters: the HTTP layer (uvicorn/httptools) refuses request lines over 64 KiB
    params = {"tsid": TOKEN, "dest": fresh_dest(), "message": "huge", "httpdup": "0", param: "9" * 60_000}
    answer = await call(client, "GET", MAKESMS, query=urlencode(params))
    ret = envelope_of(answer)
    expected = {"dest": "240", "message": "238", "tsid": "102"}.get(param)
    if expected is not None:
        assert ret["status_code"] == expected, str(answer)
    else:
        assert ret["status_code"] in ("0", "1", "300"), str(answer)


async def test_a_100k_query_string_is_refused_by_the_http_layer(client: aiohttp.ClientSession) -> None:
    query = urlencode({"tsid": TOKEN, "dest": fresh_dest(), "message": "x" * 100_000})
    async with client.get(URL(f"{MAKESMS}?{query}", encoded=True)) as resp:
        assert resp.status == 400  # uvicorn's own plain-text 400, before the app
    expect(await post_form(client, MAKESMS, {"tsid": TOKEN, "dest": fresh_dest(), "message": "after"}), 0)


async def test_huge_ctid_is_cut_to_64(client: aiohttp.ClientSession) -> None:
    ctid = "c" * 60_000
    ret = expect(await call(client, "GET", MAKESMS, query=urlencode({"tsid": TOKEN, "dest": fresh_dest(), "message": "x", "ctid": ctid})), 0)
    status = await call(client, "GET", "/api/v2/GetSMSStatus.php", query=urlencode({"tsid": TOKEN, "cdls_id": ret["cdls_id"]}))
    messages = json.loads(status.body)["messages"]
    assert [m["ctid"] for m in messages] == ["c" * 64]


# --------------------------------------------------------------------------------------------
# Odd parameters
# --------------------------------------------------------------------------------------------


async def test_repeated_keys_last_wins_and_query_beats_body(client: aiohttp.ClientSession) -> None:
    dest = fresh_dest()
    query = f"dest=1&tsid={TOKEN}&dest={dest}"
    ret = expect(await call(client, "POST", MAKESMS, query=query, body=b"message=a&message=second&dest=0", content_type="application/x-www-form-urlencoded"), 0)
    status = await call(client, "GET", "/api/v2/GetSMSStatus.php", query=f"tsid={TOKEN}&cdls_id={ret['cdls_id']}")
    message = json.loads(status.body)["messages"][0]
    assert (message["dest"], message["text"]) == ("55" + dest, "second")


ODD_VALUES = [
    pytest.param(b"%00", id="nul"),
    pytest.param(b"a%00b", id="inner-nul"),
    pytest.param(b"%01%02%1B%7F", id="controls"),
    pytest.param(b"%0D%0AX-Injected:%201", id="crlf"),
    pytest.param(b"%ED%A0%80", id="utf8-surrogate"),
    pytest.param(b"%ED%B0%80x%ED%A0%BD", id="utf8-surrogates"),
    pytest.param(b"%C0%AF", id="overlong"),
    pytest.param(b"%FF%FE", id="not-utf8"),
    pytest.param(b"%F4%90%80%80", id="beyond-unicode"),
    pytest.param(b"%E2%80%AE%E2%80%8B", id="bidi-zero-width"),
    pytest.param(b"%", id="lone-percent"),
    pytest.param(b"%zz%4", id="bad-escapes"),
    pytest.param(b"+++", id="spaces"),
]
PARAMS = ["tsid", "sid", "dest", "message", "text", "msg_text", "ctid", "setbrasil", "cuttext", "httpdup", "from", "cp_id", "cd_id", "provider"]


@pytest.mark.parametrize("value", ODD_VALUES)
@pytest.mark.parametrize("where", ["query", "form", "multipart"])
async def test_odd_bytes_in_every_parameter(live: Live, client: aiohttp.ClientSession, value: bytes, where: str) -> None:
    for param in PARAMS:
        base = {"tsid": TOKEN, "dest": fresh_dest(), "message": "odd bytes", "httpdup": "0"}
        pairs = urlencode({k: v for k, v in base.items() if k != param}).encode() + b"&" + param.encode() + b"=" + value
        if where == "query":
            answer = await call(client, "GET", MAKESMS, query=pairs)
        elif where == "form":
            answer = await call(client, "POST", MAKESMS, body=pairs, content_type="application/x-www-form-urlencoded")
        else:
            raw = unquote_to_bytes(value)
            body, ctype = multipart({k: v for k, v in base.items() if k != param})
            extra = b'--pombo-boundary-1234\r\nContent-Disposition: form-data; name="' + param.encode() + b'"\r\n\r\n' + raw + b"\r\n"
            answer = await call(client, "POST", MAKESMS, body=extra + body, content_type=ctype)
        ret = envelope_of(answer)
        assert ret["status_code"] != "400" or where == "multipart", (param, str(answer))


@pytest.mark.parametrize("value", ["\x00", "a\x00b", "\x07\x1b[31m", "\ud7ff\ue000", "😀" * 40, "\u202e", " \t\r\n "])
async def test_control_characters_in_json_values(live: Live, client: aiohttp.ClientSession, value: str) -> None:
    for param in PARAMS:
        params = {"tsid": TOKEN, "dest": fresh_dest(), "message": "json odd", "httpdup": "0", param: value}
        answer = await call(client, "POST", MAKESMS, body=json.dumps(params).encode(), content_type="application/json")
        envelope_of(answer)


async def test_text_with_nul_is_sent_without_it(live: Live, client: aiohttp.ClientSession) -> None:
    """NUL is dropped from parameter values (no SMS alphabet has it; PostgreSQL cannot store
    it); every other character, control characters included, is stored and sent intact."""
    dest = fresh_dest()
    answer = await post_form(client, MAKESMS, {"tsid": TOKEN, "dest": dest, "message": "a\x00b\x01c ação"})
    ret = expect(answer, 0)
    status = await call(client, "GET", "/api/v2/GetSMSStatus.php", query=f"tsid={TOKEN}&cdls_id={ret['cdls_id']}")
    assert json.loads(status.body)["messages"][0]["text"] == "ab\x01c ação"
    sent = [r for r in live.upstream.received("kannel") if r.query.get("to") == "55" + dest]
    assert [r.query["text"] for r in sent] == ["ab\x01c ação"]


@pytest.mark.parametrize("key", ["tsid[]", "tsid[0]", "tsid%5B%5D", "TSID", "tsid%20", "%20tsid", "tsid%00"])
async def test_tsid_arrays_and_lookalikes_are_not_the_token(client: aiohttp.ClientSession, key: str) -> None:
    answer = await call(client, "GET", MAKESMS, query=f"{key}={TOKEN}&dest={fresh_dest()}&message=x")
    expect(answer, 100, http=401)


@pytest.mark.parametrize("token", ["tökén-0000000000", "токен-0000000000", "😀" * 12, "tok\x00shop-0000000001", TOKEN + "\u200b"])
async def test_unicode_tokens_are_unknown(client: aiohttp.ClientSession, token: str) -> None:
    for send in (
        lambda: call(client, "GET", MAKESMS, query=urlencode({"tsid": token, "dest": fresh_dest(), "message": "x"})),
        lambda: call(client, "POST", MAKESMS, body=json.dumps({"tsid": token}).encode(), content_type="application/json"),
        lambda: post_form(client, "/api/v2/GetBalance.php", {"sid": token}),
    ):
        expect(await send(), 102, http=401)


async def test_unicode_bearer_header_is_unknown(live: Live) -> None:
    async with raw_connection(live) as (reader, writer):
        request = head("GET", f"{MAKESMS}?dest=11987654321&message=x", {}).replace(
            b"\r\n\r\n", b"\r\nAuthorization: Bearer t\xc3\xb6k\xc3\xa9n-0000000000\r\n\r\n"
        )
        writer.write(request)
        expect(await asyncio.wait_for(read_answer(reader), 5), 102, http=401)


BASIC_GARBAGE = [
    "Basic",
    "Basic ",
    "Basic !!!!",
    "Basic dXNlcg",  # bad padding
    "Basic " + base64.b64encode(b"no-colon").decode(),
    "Basic " + base64.b64encode(b"\xff\xfe:\x00").decode(),
    "Basic " + base64.b64encode(b":").decode(),
    "Basic " + base64.b64encode(USER.encode() + b":wrong").decode(),
    "Basic " + "A" * 10_000,
    "Basic =",
    "Basic é",
    "Basic ZW\u00e9Q=",
    "Basic\tdXNlcjpwYXNz",
]


@pytest.mark.parametrize("header", BASIC_GARBAGE)
@pytest.mark.parametrize("path", ["/api/v2/GetUserID.php", MAKESMS])
async def test_garbage_basic_auth_is_a_failed_login(live: Live, header: str, path: str) -> None:
    async with raw_connection(live) as (reader, writer):
        writer.write(head("GET", f"{path}?dest=11987654321&message=x", {"Authorization": header}))
        answer = await asyncio.wait_for(read_answer(reader), 5)
    ret = envelope_of(answer)
    # 132: the unreadable ones all count against the username "" (5 in 10 minutes)
    assert answer.status == 401 and ret["status_code"] in ("100", "140", "132"), str(answer)


async def test_basic_auth_works_and_issues_a_token(client: aiohttp.ClientSession) -> None:
    basic = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    ret = expect(await call(client, "GET", "/api/v2/GetUserID.php", query="tsid=1", headers={"Authorization": basic}), 0)
    assert ret["cdcs_id"] == "11" and isinstance(ret["tsid"], str)
    answer = await post_form(client, MAKESMS, {"dest": fresh_dest(), "message": "basic"}, headers={"Authorization": basic})
    expect(answer, 0)


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (f"Bearer {TOKEN}", 0),
        (f"bearer    {TOKEN}   ", 0),
        (f"BEARER {TOKEN}", 0),
        ("Bearer", 100),
        ("Bearer      ", 100),
        (f"Bearer {TOKEN[:5]} {TOKEN[5:]}", 102),
        (f"Bearer {TOKEN} {TOKEN}", 102),
        (f"Bearer\t{TOKEN}", 100),  # one scheme word "bearer\t..." that is not Bearer
        (f"Token {TOKEN}", 100),
        (TOKEN, 100),
    ],
)
async def test_bearer_header_variants(client: aiohttp.ClientSession, header: str, code: int) -> None:
    answer = await post_form(client, MAKESMS, {"dest": fresh_dest(), "message": "bearer"}, headers={"Authorization": header})
    expect(answer, code)


# --------------------------------------------------------------------------------------------
# The other endpoints, and what the handlers forward to the services
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "date_start=2024-13-45",
        "date_start=yesterday",
        "date_start=%00",
        "date_end=0000-00-00",
        "date_start=2024-01-01&date_end=2023-01-01",
        "maxreg=-5",
        "maxreg=0",
        "maxreg=99999999999999999999999",
        "maxreg=abc",
        "last_id=-1",
        "last_id=99999999999999999999999",
        "cdls_id=-1",
        "cdls_id=1.5",
        "cdls_id=%ED%A0%80",
        "ctid=" + "x" * 5000,
        "cdls_id=&ctid=&date_start=&date_end=",
    ],
)
async def test_get_sms_status_odd_parameters(client: aiohttp.ClientSession, query: str) -> None:
    answer = await call(client, "GET", "/api/v2/GetSMSStatus.php", query=f"tsid={TOKEN}&{query}")
    ret = envelope_of(answer)
    if ret["status_code"] == "0":
        data = json.loads(answer.body)
        assert isinstance(data["messages"], list)
        assert isinstance(data["return"]["pagination"]["has_more"], bool)


ONCE_5XX = [
    pytest.param("/api/v2/GetSMSStatus.php", "cdls_id=%C2%B2", id="status-cdls_id-superscript"),
    pytest.param("/api/v2/GetSMSStatus.php", "maxreg=%C2%B2", id="status-maxreg-superscript"),
    pytest.param("/api/v2/GetSMSStatus.php", "last_id=%C2%B2", id="status-last_id-superscript"),
    pytest.param("/api/v2/GetSMSStatus.php", "cdls_id=99999999999999999999999", id="status-cdls_id-past-int64"),
    pytest.param("/api/v2/GetSMSStatus.php", "date_end=9999-12-31", id="status-date_end-max"),
    pytest.param(MAKESMS, "dest=11987654321&message=x&httpdup=" + "9" * 5000, id="makesms-httpdup-5000-digits"),
]


@pytest.mark.parametrize(("path", "query"), ONCE_5XX)
async def test_numbers_python_cannot_take_are_not_5xx(client: aiohttp.ClientSession, path: str, query: str) -> None:
    """'²'.isdigit() is True but int('²') raises; int64 and int()'s 4300 digits have limits."""
    envelope_of(await call(client, "GET", path, query=f"tsid={TOKEN}&{query}"))


@pytest.mark.parametrize("query", ["id=%C2%B2&type=1", "id=99999999999999999999999&type=1", "id=%D9%A3&type=%C2%B2"])
async def test_odd_ids_in_kannel_reports_are_not_5xx(live: Live, client: aiohttp.ClientSession, query: str) -> None:
    for path in (f"/dlr/velip/{KANNEL_SECRET}?{query}", f"/dlr/velip/wrong?{query}"):
        async with client.get(URL(path, encoded=True)) as resp:
            assert resp.status in (200, 403), (path, resp.status)
            assert resp.headers["Content-Type"] == JSON_CT


@pytest.mark.parametrize("path", API_PATHS)
async def test_every_endpoint_without_credentials_is_100(client: aiohttp.ClientSession, path: str) -> None:
    for method in ("GET", "POST"):
        expect(await call(client, method, path), 100, http=401)


async def test_wavy_report_as_a_json_list_is_applied(live: Live, client: aiohttp.ClientSession) -> None:
    """SPEC §8: Wavy posts an object or a list of them; a list is not a 'bad request'."""
    ret = expect(await post_form(client, MAKESMS, {"tsid": WAVY_TOKEN, "dest": fresh_dest(), "message": "dlr list"}), 0)
    report = [{"correlationId": ret["cdls_id"], "sentStatusCode": 2}, {"correlationId": ret["cdls_id"], "deliveredStatusCode": 4}]
    async with client.post(f"/dlr/wavy/{WAVY_SECRET}", json=report) as resp:
        assert resp.status == 200, await resp.text()
    status = await call(client, "GET", "/api/v2/GetSMSStatus.php", query=f"tsid={WAVY_TOKEN}&cdls_id={ret['cdls_id']}")
    assert json.loads(status.body)["messages"][0]["delivery"] == "delivered"


@pytest.mark.parametrize(
    "body",
    [b"{", b"[1, 2]", b'"x"', b'{"correlationId": {"a": 1}}', b'[{"correlationId": [1]}]', b"\xff", b'{"correlationId": "abc"}'],
)
async def test_garbage_wavy_reports_change_nothing(client: aiohttp.ClientSession, body: bytes) -> None:
    async with client.post(f"/dlr/wavy/{WAVY_SECRET}", data=body, headers={"Content-Type": "application/json"}) as resp:
        assert resp.status < 500 and resp.headers["Content-Type"] == JSON_CT
    async with client.post("/dlr/wavy/wrong-secret", data=body, headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 403


async def test_method_and_path_errors_are_not_5xx(client: aiohttp.ClientSession) -> None:
    for method, path in [("PUT", MAKESMS), ("DELETE", MAKESMS), ("GET", "/api/v2/Nope.php"), ("GET", "/dlr/x"), ("GET", "/%ff%00")]:
        async with client.request(method, URL(path, encoded=True)) as resp:
            assert resp.status < 500, (method, path, resp.status)


# --------------------------------------------------------------------------------------------
# Clients that misbehave on the wire
# --------------------------------------------------------------------------------------------


async def test_a_slow_client_does_not_block_others(live: Live, client: aiohttp.ClientSession) -> None:
    body = urlencode({"tsid": TOKEN, "dest": fresh_dest(), "message": "slow body"}).encode()
    async with raw_connection(live) as (reader, writer):
        writer.write(head("POST", MAKESMS, {"Content-Type": "application/x-www-form-urlencoded", "Content-Length": str(len(body))}))
        await writer.drain()

        async def trickle() -> None:
            for i in range(len(body)):
                writer.write(body[i : i + 1])
                await writer.drain()
                await asyncio.sleep(2.0 / len(body))

        slow = asyncio.ensure_future(trickle())
        timings = []
        for _ in range(5):
            started = time.monotonic()
            expect(await post_form(client, MAKESMS, {"tsid": TOKEN, "dest": fresh_dest(), "message": "fast"}), 0)
            timings.append(time.monotonic() - started)
        assert not slow.done(), "the slow client finished too early to prove anything"
        assert max(timings) < 1.0, timings
        await slow
        expect(await asyncio.wait_for(read_answer(reader), 5), 0, http=200)


async def test_a_client_that_hangs_up_mid_body(live: Live, client: aiohttp.ClientSession) -> None:
    for _ in range(3):
        async with raw_connection(live) as (_reader, writer):
            writer.write(head("POST", MAKESMS, {"Content-Type": "application/x-www-form-urlencoded", "Content-Length": "1000"}))
            writer.write(b"tsid=" + TOKEN.encode())
            await writer.drain()
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    expect(await post_form(client, MAKESMS, {"tsid": TOKEN, "dest": fresh_dest(), "message": "still here"}), 0)


async def test_pipelined_requests_on_one_connection(live: Live) -> None:
    async with raw_connection(live) as (reader, writer):
        requests = b"".join(head("GET", f"{MAKESMS}?tsid={TOKEN}&dest={fresh_dest()}&message=p{i}", {}) for i in range(3))
        writer.write(requests)
        for _ in range(3):
            expect(await asyncio.wait_for(read_answer(reader), 5), 0)


# --------------------------------------------------------------------------------------------
# Every MakeSMS parameter fuzzed
# --------------------------------------------------------------------------------------------

SPECIAL = st.sampled_from(
    ["", " ", "0", "1", "yes", "-1", "600", "601", "99999999999999999999", "1e3", "²", "٣", "%ED%A0%80", "\x00",
     "\r\n", "tww", "matrix", "flash", "+55 (21) 98765-4321", "0 15 21 98765 4321", "itau", "😀", "x" * 300]
)
values = st.one_of(SPECIAL, st.text(max_size=80), st.from_regex(r"\+?[0-9 ()-]{8,20}", fullmatch=True))
MAKESMS_KEYS = ("dest", "message", "text", "msg_text", "ctid", "setbrasil", "cuttext", "httpdup", "from", "cp_id", "cd_id", "provider")
fuzzed = st.fixed_dictionaries(
    {"dest": st.one_of(values, st.builds(fresh_dest)), "message": values},
    optional={k: values for k in (*MAKESMS_KEYS[2:], "tsid", "sid")},
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(params=fuzzed, where=st.sampled_from(["query", "form", "json", "multipart"]))
async def test_makesms_fuzzed(live: Live, client: aiohttp.ClientSession, params: dict[str, str], where: str) -> None:
    params = {"tsid": TOKEN, **params}
    if where == "query":
        answer = await call(client, "GET", MAKESMS, query=urlencode(params))
    elif where == "form":
        answer = await call(client, "POST", MAKESMS, body=urlencode(params).encode(), content_type="application/x-www-form-urlencoded")
    elif where == "json":
        answer = await call(client, "POST", MAKESMS, body=json.dumps(params).encode(), content_type="application/json")
    else:
        if any('"' in k or "\r" in k or "\n" in k for k in params):
            return
        body, ctype = multipart(params)
        answer = await call(client, "POST", MAKESMS, body=body, content_type=ctype)
    ret = envelope_of(answer)
    assert ret["status_code"] != "400", str(answer)  # every body here can be parsed


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    path=st.sampled_from(API_PATHS[1:]),
    params=st.dictionaries(
        st.sampled_from(["cdls_id", "ctid", "date_start", "date_end", "maxreg", "last_id", "tsid", "sid"]),
        st.one_of(st.text(alphabet=st.characters(max_codepoint=127), max_size=30), st.dates().map(str), st.integers(0, 10**6).map(str)),
    ),
)
async def test_other_endpoints_fuzzed(client: aiohttp.ClientSession, path: str, params: dict[str, str]) -> None:
    # ASCII and real dates only: the non-ASCII digits and year 9999 cases are the known bugs above
    params = {"tsid": TOKEN, **params}
    if params.get("date_end", "").startswith("9999"):
        return
    answer = await call(client, "GET", path, query=urlencode(params))
    envelope_of(answer)


@pytest.fixture(scope="module", autouse=True)
def final_checks(live: Live) -> Iterator[None]:
    yield
    async def ledger() -> list[tuple[int, int, int]]:
        store = await open_store(live.database_url)
        try:
            return list(await store.ledger_sums())
        finally:
            await store.close()

    for customer_id, balance, total in asyncio.run(ledger()):
        assert balance == total, customer_id


@pytest.mark.parametrize(
    ("forwarded", "expected"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("198.51.100.1, 203.0.113.7", "203.0.113.7"),
        ("203.0.113.7:4711", "203.0.113.7"),
        ("[2001:db8::1]:4711", "2001:db8::1"),
        ("2001:DB8::1", "2001:db8::1"),
        ("unknown", "10.0.0.1"),
        ("x" * 5000, "10.0.0.1"),  # would not even fit the 45-character ip column
        ("203.0.113.7\x00", "10.0.0.1"),
        ("fe80::1%" + "z" * 100, "10.0.0.1"),
        ("", "10.0.0.1"),
        (" , ,", "10.0.0.1"),
    ],
)
def test_forwarded_for_from_a_trusted_proxy_is_an_address_or_nothing(forwarded: str, expected: str) -> None:
    from starlette.requests import Request

    from pombo.api.net import client_ip

    scope = {
        "type": "http", "method": "GET", "path": "/", "query_string": b"", "client": ("10.0.0.1", 5000),
        "headers": [(b"x-forwarded-for", forwarded.encode("latin-1"))],
    }
    assert client_ip(Request(scope), ("10.0.0.1",)) == expected


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("PUT", MAKESMS, 405), ("DELETE", "/api/v2/GetBalance.php", 405), ("GET", "/api/v2/Nope.php", 404), ("GET", "/nowhere", 404)],
)
async def test_unrouted_requests_get_the_envelope(client: aiohttp.ClientSession, method: str, path: str, status: int) -> None:
    answer = await call(client, method, path)
    assert answer.status == status and answer.content_type == "application/json; charset=utf-8"
    assert json.loads(answer.body)["return"]["status_code"] == str(status)
