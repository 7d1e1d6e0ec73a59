"""Properties of the pure rules that the example tables do not pin down (issue: hardening).

test_numbers, test_text and test_textfilter already hold properties of their own rules; this
file covers the rest: request decoding at the edge, MakeSMS parameter parsing, money, tariff
lookup and the night window.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from starlette.requests import Request

from pombo.api.params import BadBody, credentials, decode_form, decode_json
from pombo.domain import money
from pombo.domain.catalog import PriceTable
from pombo.domain.model import PriceRow
from pombo.domain.night import _night_start, night_start
from pombo.domain.send import CTID_MAX, DEFAULT_HTTPDUP, MAX_HTTPDUP, parse_httpdup, parse_request

# --- api.params: form and JSON bodies ---------------------------------------------------------


@given(st.binary(max_size=2000))
@example(b"message=%ED%A0%80")  # a UTF-8-encoded lone surrogate: not valid UTF-8
@example(b"%=%%zz&=&&+=+")
@example(b"\xff\xfe=\x00")
def test_decode_form_never_raises(raw: bytes) -> None:
    params = decode_form(raw)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in params.items())
    # whatever came in, the values can be stored and rendered as UTF-8
    for key, value in params.items():
        key.encode("utf-8")
        value.encode("utf-8")


form_dicts = st.dictionaries(st.text(max_size=20), st.text(max_size=60), max_size=8)


@given(form_dicts)
@example({"message": "olá mundo ✓ 😀", "a b": "c&d=e+f%"})
def test_decode_form_round_trips_urlencoded_utf8(params: dict[str, str]) -> None:
    assert decode_form(urlencode(params).encode("ascii")) == params
    # %20 instead of + is the same thing
    assert decode_form(urlencode(params, quote_via=quote).encode("ascii")) == params


latin1_text = st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=255), max_size=40)


@given(st.dictionaries(latin1_text, latin1_text, max_size=6))
def test_decode_form_falls_back_to_latin1(params: dict[str, str]) -> None:
    raw = urlencode(params, encoding="latin-1").encode("ascii")
    decoded = decode_form(raw)
    try:
        for key, value in params.items():
            key.encode("latin-1").decode("utf-8")
            value.encode("latin-1").decode("utf-8")
    except UnicodeDecodeError:
        assert decoded == params  # not UTF-8 as a whole: every byte is its ISO-8859-1 character
    else:
        assert len(decoded) == len(params)


@given(st.dictionaries(st.text(max_size=10), st.text(max_size=10), min_size=1, max_size=4))
def test_decode_form_last_repeated_key_wins(params: dict[str, str]) -> None:
    key = next(iter(params))
    raw = urlencode(params) + "&" + urlencode({key: "first"}) + "&" + urlencode({key: "last"})
    assert decode_form(raw.encode("ascii"))[key] == "last"


@given(st.binary(max_size=2000))
@example(b'{"a": "\\ud800"}')
@example(b'{"a": 1e400}')
@example(b"123456789012345678901234567890")
@example(b"\xef\xbb\xbf{}")
def test_decode_json_raises_only_bad_body_on_bytes(raw: bytes) -> None:
    try:
        params = decode_json(raw)
    except BadBody:
        return
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in params.items())


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=8,
)


@given(st.one_of(json_values, st.dictionaries(st.text(max_size=10), json_values, max_size=6)))
def test_decode_json_any_document(data: object) -> None:
    raw = orjson.dumps(data)
    flat = isinstance(data, dict) and all(not isinstance(v, dict | list) for v in data.values())
    if not flat:
        with pytest.raises(BadBody):
            decode_json(raw)
        return
    assert isinstance(data, dict)
    params = decode_json(raw)
    assert set(params) == {k for k, v in data.items() if v is not None}
    for key, value in params.items():
        original = data[key]
        if isinstance(original, bool):
            assert value == ("1" if original else "0")
        elif isinstance(original, str):
            assert value == original
        elif isinstance(original, int) or (isinstance(original, float) and original.is_integer()):
            assert value == str(int(original))  # "httpdup": 60 and 60.0 are "60"
        else:
            assert float(value) == original


header_values = st.one_of(
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),  # what a server decodes a header to
    st.builds(lambda s, v: f"{s} {v}", st.sampled_from(["Basic", "basic", "Bearer", "bearer", "Digest"]), st.text(max_size=80)),
    st.builds(lambda b: "Basic " + base64.b64encode(b).decode(), st.binary(max_size=60)),
)


@given(header_values, st.dictionaries(st.sampled_from(["tsid", "sid", "x"]), st.text(max_size=20), max_size=3))
@example("Basic é", {})
@example("Basic ZW\u00e9Q=", {})
@example("Basic " + base64.b64encode(b"\xff\xfe:\x00").decode(), {})
def test_credentials_never_raise(header: str, params: dict[str, str]) -> None:
    """Whatever the Authorization header holds, it is credentials or none, never an exception."""
    scope = {"type": "http", "method": "GET", "path": "/", "query_string": b"",
             "headers": [(b"authorization", header.encode("latin-1", "replace"))]}
    creds = credentials(Request(scope), params, "127.0.0.1")
    assert creds.token is None or (creds.token and creds.token == creds.token.strip())
    if creds.basic is not None:
        assert all(isinstance(part, str) for part in creds.basic)
    if (params.get("tsid") or "").strip():
        assert creds.token == params["tsid"].strip()  # tsid wins


# --- domain.send: MakeSMS parameters ----------------------------------------------------------

MAKESMS_KEYS = (
    "dest", "message", "text", "msg_text", "ctid", "setbrasil", "cuttext", "httpdup", "from",
    "cp_id", "cd_id", "provider", "tsid",
)
param_dicts = st.dictionaries(
    st.one_of(st.sampled_from(MAKESMS_KEYS), st.text(max_size=8)), st.text(max_size=100), max_size=12
)


@given(param_dicts)
def test_parse_request_never_raises(params: dict[str, str]) -> None:
    request = parse_request(params)
    assert 0 <= request.httpdup <= MAX_HTTPDUP
    assert request.ctid is None or 0 < len(request.ctid) <= CTID_MAX
    assert request.setbrasil is ((params.get("setbrasil") or "1").strip() != "0")
    assert request.provider is None or request.provider == request.provider.strip().lower() != ""
    body = next((params[k] for k in ("message", "text", "msg_text") if k in params), None)
    assert request.text == body  # message > text > msg_text, the first present wins
    assert request.dest == params.get("dest")


@given(st.one_of(st.none(), st.text(max_size=30)))
@example("٣٠")  # Arabic-Indic digits: str.isdigit() says yes
@example("²")
@example(" 42 ")
@example("-1")
def test_parse_httpdup_always_in_range(value: str | None) -> None:
    result = parse_httpdup(value)
    assert 0 <= result <= MAX_HTTPDUP
    stripped = (value or "").strip()
    if value is not None and stripped.isascii() and stripped.isdigit():
        assert result == min(int(stripped), MAX_HTTPDUP)
    else:
        assert result == DEFAULT_HTTPDUP


def test_parse_httpdup_with_thousands_of_digits() -> None:
    # int() of more than 4300 digits raises ValueError: this once made MakeSMS answer 503
    assert parse_httpdup("9" * 5000) == MAX_HTTPDUP


# --- domain.money ------------------------------------------------------------------------------


# balances live in a 64-bit integer column
@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_money_parse_fmt_round_trip(units: int) -> None:
    text = money.fmt(units)
    assert money.parse(text) == units
    whole, _, decimals = text.lstrip("-").partition(".")
    assert whole.isdigit() and len(decimals) == 4


@given(st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=-(10**12), max_value=10**12))
def test_money_parse_is_exact(value: Decimal) -> None:
    assert money.parse(str(value)) == int(value * money.SCALE)
    assert Decimal(money.fmt(money.parse(str(value)))) == value


@given(st.one_of(st.text(max_size=30), st.from_regex(r"-?[0-9]{1,6}(\.[0-9]{0,8})?[eE][-+]?[0-9]{1,10}", fullmatch=True)))
@example("NaN")
@example("-Infinity")
@example("0.00001")
def test_money_parse_raises_only_money_error(value: str) -> None:
    try:
        units = money.parse(value)
    except money.MoneyError:
        return
    assert isinstance(units, int)


# these once escaped as decimal.Overflow / ValueError: `pombo load` crashed with a traceback
@pytest.mark.parametrize("value", ["1e999999999", "1e5000", "-1e5000", "9" * 5000])
def test_money_parse_rejects_absurd_exponents(value: str) -> None:
    with pytest.raises(money.MoneyError):
        money.parse(value)


# --- domain.catalog.PriceTable: SPEC §6 longest prefix ------------------------------------------


def reference_best(rows: list[PriceRow], dest: str, connection: str) -> int | None:
    """SPEC §6 read literally: candidates start the destination and are generic or name the
    connection; the longest prefix wins; on equal length the row naming the connection wins."""
    candidates = [r for r in rows if dest.startswith(r.prefix) and (not r.connection or r.connection == connection)]
    if not candidates:
        return None
    best = max(candidates, key=lambda r: (len(r.prefix), r.connection == connection))
    return best.value


CONNECTIONS = ("velip", "wavy", "tww")
price_rows = st.lists(
    st.builds(
        PriceRow,
        prefix=st.text(alphabet="5519", max_size=5),
        value=st.integers(min_value=0, max_value=10**6),
        connection=st.sampled_from((None, "", *CONNECTIONS)),
    ),
    max_size=12,
    # provisioning refuses two rows with the same prefix and connection
    unique_by=lambda r: (r.prefix, r.connection or ""),
)


@given(price_rows, st.text(alphabet="5519", max_size=8), st.sampled_from(CONNECTIONS))
@example([PriceRow("55", 500, None), PriceRow("55", 700, "wavy"), PriceRow("5511", 300, "tww")], "5511987654321", "wavy")
@example([PriceRow("5511", 1, None)], "551", "velip")  # a prefix longer than the number
def test_price_table_best_is_the_longest_prefix_rule(rows: list[PriceRow], dest: str, connection: str) -> None:
    assert PriceTable(rows).best(dest, connection) == reference_best(rows, dest, connection)


# --- domain.night ------------------------------------------------------------------------------

ZONES = ("America/Sao_Paulo", "UTC", "America/Manaus", "Asia/Kolkata")
clock_times = st.tuples(st.integers(0, 23), st.integers(0, 59)).map(lambda hm: f"{hm[0]:02d}:{hm[1]:02d}")
windows = st.tuples(clock_times, clock_times).map("-".join)
instants = st.floats(
    min_value=datetime(2000, 1, 1, tzinfo=UTC).timestamp(),
    max_value=datetime(2040, 1, 1, tzinfo=UTC).timestamp(),
    allow_nan=False,
)


def _in_dst_gap(now: float, hm: str, tz: ZoneInfo) -> bool:
    """The wall time `hm` does not exist today or yesterday (clocks jumped over it)."""
    today = datetime.fromtimestamp(now, tz).date()
    for day in (today, today - timedelta(days=1)):
        wall = datetime.combine(day, time.fromisoformat(hm), tz)
        if datetime.fromtimestamp(wall.timestamp(), tz).replace(tzinfo=None) != wall.replace(tzinfo=None):
            return True
    return False


@settings(max_examples=300)
@given(instants, windows, st.sampled_from(ZONES))
@example(datetime(2024, 1, 1, 23, 59, 30, tzinfo=ZoneInfo("America/Sao_Paulo")).timestamp(), "00:00-23:59", "America/Sao_Paulo")
@example(datetime(2024, 1, 2, 5, 59, tzinfo=ZoneInfo("America/Sao_Paulo")).timestamp(), "22:00-06:00", "America/Sao_Paulo")
@example(datetime(2024, 1, 2, 6, 0, 30, tzinfo=ZoneInfo("America/Sao_Paulo")).timestamp(), "22:00-06:00", "America/Sao_Paulo")
# Sao Paulo still had daylight saving time in 2018 (midnight transitions)
@example(datetime(2018, 2, 17, 23, 30, tzinfo=ZoneInfo("America/Sao_Paulo")).timestamp(), "22:00-06:00", "America/Sao_Paulo")
def test_night_start_is_in_the_last_24_hours(now: float, window: str, zone: str) -> None:
    tz = ZoneInfo(zone)
    assume(not _in_dst_gap(now, window.split("-")[0], tz))  # see the DST tests below
    start = night_start(now, window, tz)
    if start is None:
        return
    assert start <= now
    local_now = datetime.fromtimestamp(now, tz).replace(tzinfo=None)
    local_start = datetime.fromtimestamp(start, tz).replace(tzinfo=None)
    # wall-clock: "this night began at the last start", never more than a day ago
    assert local_now - local_start < timedelta(days=1)
    assert local_start.strftime("%H:%M") == window.split("-")[0]


@given(instants, windows, st.sampled_from(ZONES))
def test_night_start_agrees_with_a_minute_scan(now: float, window: str, zone: str) -> None:
    """Inside the window iff a start at most a day back reaches now without passing an end."""
    tz = ZoneInfo(zone)
    start_text, end_text = window.split("-")
    local = datetime.fromtimestamp(now, tz).replace(tzinfo=None)
    minute = local.replace(second=0, microsecond=0)
    inside = False
    if start_text < end_text:
        inside = start_text <= minute.strftime("%H:%M") <= end_text
    else:
        hm = minute.strftime("%H:%M")
        inside = hm >= start_text or hm < end_text
    assert (night_start(now, window, tz) is not None) is inside


@given(instants, st.floats(0, 59.999), windows, st.sampled_from((*ZONES, "America/New_York")))
def test_night_start_kept_for_a_minute_is_what_it_computes(now: float, other: float, window: str, zone: str) -> None:
    """The answer is kept per minute: after another instant of the same minute primed it, it is
    still exactly what computing it for `now` gives."""
    tz = ZoneInfo(zone)
    primer = (now // 60) * 60 + other
    assert night_start(primer, window, tz) == _night_start(primer, window, tz)
    assert night_start(now, window, tz) == _night_start(now, window, tz)


@pytest.mark.parametrize("zone", ["America/New_York", "America/Sao_Paulo"])
@given(instants, windows)
def test_night_start_is_never_in_the_future(zone: str, now: float, window: str) -> None:
    start = night_start(now, window, ZoneInfo(zone))
    assert start is None or start <= now


def test_night_start_in_a_dst_gap_is_not_in_the_future() -> None:
    # a start inside the gap once gave a night that began after now: the count started late
    tz = ZoneInfo("America/New_York")  # 2024-03-10 02:00 -> 03:00
    now = datetime(2024, 3, 10, 3, 10, tzinfo=tz).timestamp()
    start = night_start(now, "02:30-06:00", tz)
    assert start is not None and start <= now
