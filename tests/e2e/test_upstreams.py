"""SPEC §8 (connections: wire formats and outcomes), §4 300/WR/OK, §3 provider override."""

from __future__ import annotations

import time
import urllib.parse
from decimal import Decimal

import pytest

from tests.e2e.conftest import SECRETS, T, expect, expect_reject
from tests.fakes.upstream import tww_body


def _hdr(received, name: str) -> str | None:
    for k, v in received.headers.items():
        if k.lower() == name.lower():
            return v
    return None


def _only(pombo, kind: str, norm: str):
    sent = pombo.wait_sent(kind, norm)
    assert len(sent) == 1, f"expected exactly one {kind} request for {norm}, got {sent}"
    return sent[0]


# ----------------------------------------------------------------------------------------------
# OK: the exact wire format per kind
# ----------------------------------------------------------------------------------------------


def test_wavy_wire_format(pombo):
    """§8 wavy: POST {url}/v1/send-sms, headers UserName/AuthenticationToken, JSON
    destination/messageText/correlationId (= cdls_id)/extraInfo (= ctid); id kept."""
    d = pombo.dest()
    text = "Olá do wavy, código 12"
    r = pombo.send(T["wavy"], d, text, ctid="ctid-wavy-wire")
    cdls = expect(r, 0)["cdls_id"]
    req = _only(pombo, "wavy", "55" + d)
    assert req.method == "POST" and req.path == "/v1/send-sms"
    assert _hdr(req, "UserName") == "wuser"
    assert _hdr(req, "AuthenticationToken") == "wtoken-123"
    body = req.json
    assert isinstance(body, dict), req.body
    assert body["destination"] == "55" + d
    assert body["messageText"] == text
    assert str(body["correlationId"]) == cdls
    assert body["extraInfo"] == "ctid-wavy-wire"
    m = pombo.message(T["wavy"], cdls)
    assert m["connection"] == "wavy"
    assert m["upstream_id"], m
    assert m["delivery"] == "pending"
    assert m["status"] == "OK" and m["status_code"] == "0"


def test_wavy_without_ctid_has_no_extrainfo(pombo):
    """§8 wavy: `extraInfo` only when `ctid` is given."""
    d = pombo.dest()
    expect(pombo.send(T["wavy"], d, "sem ctid"), 0)
    assert "extraInfo" not in _only(pombo, "wavy", "55" + d).json


@pytest.mark.parametrize(
    "answer, want_id",
    [
        ('[{"id": "wavy-list-id-1", "correlationId": "1"}]', "wavy-list-id-1"),
        ('{"id": "wavy-obj-id-2", "other": 1}', "wavy-obj-id-2"),
    ],
)
def test_wavy_ok_answers_keep_id(pombo, answer, want_id):
    """§8 wavy OK: 2xx with `[{"id",...}]` or `{"id",...}` — the id is kept as upstream_id."""
    pombo.upstream.behave("wavy", mode="custom", status=200, body=answer)
    d = pombo.dest()
    cdls = expect(pombo.send(T["wavy"], d, "wavy ok"), 0)["cdls_id"]
    assert pombo.message(T["wavy"], cdls)["upstream_id"] == want_id


def test_tww_wire_format(pombo):
    """§8 tww: POST {url}/EnviaSMS form NumUsu/Senha/SeuNum(= cdls_id)/Celular/Mensagem,
    Mensagem printable ASCII with accents removed."""
    d = pombo.dest()
    r = pombo.send(T["tww"], d, "Ação rápida: você já viu?")
    cdls = expect(r, 0)["cdls_id"]
    req = _only(pombo, "tww", "55" + d)
    assert req.method == "POST"
    assert req.path == "/reluzcap/wsreluzcap.asmx/EnviaSMS"
    f = req.form
    assert f["NumUsu"] == "NUMUSU" and f["Senha"] == "SENHA"
    assert f["SeuNum"] == cdls
    assert f["Celular"] == "55" + d
    assert f["Mensagem"] == "Acao rapida: voce ja viu?"
    assert all(32 <= ord(c) < 127 for c in f["Mensagem"])
    assert pombo.message(T["tww"], cdls)["connection"] == "tww"


def test_kannel_wire_format_gsm(pombo):
    """§8 kannel: GET {url}/cgi-bin/sendsms username/password/to/text/charset=UTF-8/coding=0
    (GSM-7)/dlr-mask=31/dlr-url with /dlr/velip/{secret} and a literal type=%d; `from`."""
    d = pombo.dest()
    text = "Oi {kannel} [gsm] é"
    cdls = expect(pombo.send(T["velip"], d, text, **{"from": "LOJA"}), 0)["cdls_id"]
    req = _only(pombo, "kannel", "55" + d)
    q = req.query
    assert req.method == "GET" and req.path == "/cgi-bin/sendsms"
    assert q["username"] == "kuser" and q["password"] == "kpass"
    assert q["to"] == "55" + d
    assert q["text"] == text
    assert q["charset"].upper() == "UTF-8"
    assert q["coding"] == "0"
    assert q["from"] == "LOJA"
    assert q["dlr-mask"] == "31"
    dlr = q["dlr-url"]
    assert dlr.startswith(f"{pombo.base}/dlr/velip/{SECRETS['velip']}"), dlr
    assert "%d" in dlr, dlr
    assert "type=%d" in dlr, dlr
    assert dlr.endswith("&type=%d&answer=%A"), dlr  # §8: the receipt text (%A) comes back too
    m = pombo.message(T["velip"], cdls)
    assert m["encoding"] == "GSM-7" and m["connection"] == "velip"


def test_kannel_coding_ucs2_and_no_from(pombo):
    """§8 kannel: coding=2 for a UCS-2 body; `from` only when given."""
    d = pombo.dest()
    cdls = expect(pombo.send(T["velip"], d, "Promoção ação"), 0)["cdls_id"]
    q = _only(pombo, "kannel", "55" + d).query
    assert q["coding"] == "2"
    assert q["text"] == "Promoção ação"
    assert "from" not in q
    assert pombo.message(T["velip"], cdls)["encoding"] == "UCS-2"


def test_http_template_wire_format(pombo):
    """§8 http: the template's method/path/json with {dest}, {text}, {id} replaced; `id` regex
    gives the upstream id."""
    d = pombo.dest()
    text = "Matrix \"quoted\" ação"
    cdls = expect(pombo.send(T["matrix"], d, text), 0)["cdls_id"]
    req = _only(pombo, "http", "55" + d)
    assert req.method == "POST" and req.path == "/api/send"
    assert req.json == {"to": "55" + d, "body": text, "ref": cdls}
    m = pombo.message(T["matrix"], cdls)
    assert m["connection"] == "matrix"
    assert m["upstream_id"].startswith("m-"), m


@pytest.mark.parametrize("answer", ["0: Accepted for delivery", "3: Queued for later delivery"])
def test_kannel_ok_answers(pombo, answer):
    """§8 kannel OK: 2xx whose body starts `0:` or `3:`."""
    pombo.upstream.behave("kannel", mode="custom", status=202, body=answer)
    expect(pombo.send(T["velip"], pombo.dest(), "kannel ok"), 0)


# ----------------------------------------------------------------------------------------------
# 300: hard errors, refund, raw answer, no duplicate window
# ----------------------------------------------------------------------------------------------

HARD_ERRORS = [
    ("wavy", "wavy", {"mode": "error"}, "Invalid destination"),
    ("wavy", "wavy", {"mode": "custom", "status": 200, "body": "{}"}, "{}"),
    ("wavy", "wavy", {"mode": "custom", "status": 500, "body": "boom-wavy"}, "boom-wavy"),
    ("tww", "tww", {"mode": "error"}, "NOK"),
    ("tww", "tww", {"mode": "custom", "body": tww_body("Erro")}, "Erro"),
    ("tww", "tww", {"mode": "custom", "body": tww_body("NA")}, "NA"),
    ("velip", "kannel", {"mode": "error"}, "Authorization failed"),
    ("velip", "kannel", {"mode": "custom", "status": 200, "body": "Error: no"}, "Error: no"),
    ("velip", "kannel", {"mode": "custom", "status": 500, "body": "0: but 500"}, "0: but 500"),
    ("matrix", "http", {"mode": "error"}, '"status": "error"'),
    ("matrix", "http", {"mode": "custom", "status": 500, "body": '{"status": "ok"}'}, None),
    ("matrix", "http", {"mode": "custom", "status": 200, "body": "raw-fail-xyz"}, "raw-fail-xyz"),
]


@pytest.mark.parametrize("tok, kind, behaviour, raw", HARD_ERRORS)
def test_300_hard_error_refunds(pombo, tok, kind, behaviour, raw):
    """§4 300 `error sms provider`: logged (cdls_id real), charge refunded, raw answer stored,
    delivery `rejected`, the duplicate window not taken."""
    pombo.upstream.behave(kind, **behaviour)
    before = pombo.balance(T[tok])
    reseller_before = pombo.balance(T["rev"])  # customers 11–14 sit under reseller 10
    d = pombo.dest()
    r = pombo.send(T[tok], d, "vai falhar")
    ret = expect(r, 300)
    assert ret["cdls_id"] not in ("", "0"), f"300 writes a log row: {r}"
    assert pombo.balance(T[tok]) == before, "a 300 must be refunded"
    assert pombo.balance(T["rev"]) == reseller_before, "the reseller must be refunded too"
    m = pombo.message(T[tok], ret["cdls_id"])
    assert m["status"] == "error sms provider" and m["status_code"] == "300", m
    assert m["delivery"] == "rejected", m
    if raw is not None and "return_log" in m:
        assert raw in str(m["return_log"]), m
    assert len(pombo.sent_to(kind, "55" + d)) == 1
    # a 300 does not take the duplicate window
    pombo.upstream.behave(kind, mode="ok")
    expect(pombo.send(T[tok], d, "de novo"), 0)


# ----------------------------------------------------------------------------------------------
# WR
# ----------------------------------------------------------------------------------------------


def test_wr_then_ok(pombo):
    """§4 WR: no ack within ack_timeout → code 1 `WR` (HTTP 200), logged and charged; the send
    finishes in the background, the log moves to OK; sent upstream exactly once; a WR takes
    the duplicate window."""
    pombo.upstream.behave("kannel", mode="ok", delay=2.5)
    before, _ = pombo.balance(T["wr"])
    d = pombo.dest()
    t0 = time.monotonic()
    r = pombo.send(T["wr"], d, "espera")
    elapsed = time.monotonic() - t0
    ret = expect(r, 1, "WR")
    assert elapsed < 2.4, f"WR must answer after ack_timeout (1 s), took {elapsed:.1f}s"
    cdls = ret["cdls_id"]
    assert cdls not in ("", "0")
    assert pombo.balance(T["wr"])[0] == before - Decimal("0.1000")
    m = pombo.message(T["wr"], cdls)
    assert (m["status"], m["status_code"]) == ("WR", "1"), m
    expect_reject(pombo.send(T["wr"], d, "dup of WR"), 244)
    m = pombo.wait_message(T["wr"], cdls, lambda m: m["status_code"] != "1", timeout=10,
                           what="a final outcome")
    assert (m["status"], m["status_code"]) == ("OK", "0"), m
    assert m["delivery"] == "pending", m
    assert pombo.balance(T["wr"])[0] == before - Decimal("0.1000")
    time.sleep(0.5)
    assert len(pombo.sent_to("kannel", "55" + d)) == 1


def test_wr_then_hard_error_refunds(pombo):
    """§4/§6: a WR that finally fails lands as 300 in the log, `rejected`, and is refunded."""
    pombo.upstream.behave("kannel", mode="error", delay=2.0)
    before, _ = pombo.balance(T["wr"])
    d = pombo.dest()
    cdls = expect(pombo.send(T["wr"], d, "espera e falha"), 1, "WR")["cdls_id"]
    assert pombo.balance(T["wr"])[0] == before - Decimal("0.1000")
    m = pombo.wait_message(T["wr"], cdls, lambda m: m["status_code"] != "1", timeout=10,
                           what="a final outcome")
    assert (m["status"], m["status_code"]) == ("error sms provider", "300"), m
    assert m["delivery"] == "rejected"
    deadline = time.monotonic() + 3
    while pombo.balance(T["wr"])[0] != before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert pombo.balance(T["wr"])[0] == before
    assert len(pombo.sent_to("kannel", "55" + d)) == 1


# ----------------------------------------------------------------------------------------------
# provider override (§3)
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider, kind, conn", [("matrix", "http", "matrix"),
                                                  ("tww", "tww", "tww")])
def test_adm_provider_override(pombo, provider, kind, conn):
    """§3 provider: honoured for the ADM account (customer 2)."""
    d = pombo.dest()
    cdls = expect(pombo.send(T["adm"], d, "adm override", provider=provider), 0)["cdls_id"]
    assert len(pombo.wait_sent(kind, "55" + d)) == 1
    assert pombo.sent_to("kannel", "55" + d) == []
    assert pombo.message(T["adm"], cdls)["connection"] == conn


def test_adm_provider_disabled_is_220(pombo):
    """§4 220: the ADM override names a disabled connection (flash)."""
    expect_reject(pombo.send(T["adm"], pombo.dest(), "flash", provider="flash"), 220)


@pytest.mark.parametrize("provider", ["wavy", "velip", "bogus", ""])
def test_adm_provider_not_allowed_is_ignored(pombo, provider):
    """§3: values other than tww/flash/matrix are silently ignored (ADM goes to velip)."""
    d = pombo.dest()
    expect(pombo.send(T["adm"], d, "adm ignore", provider=provider), 0)
    assert len(pombo.wait_sent("kannel", "55" + d)) == 1


@pytest.mark.parametrize("provider", ["matrix", "tww", "flash"])
def test_provider_ignored_for_other_customers(pombo, provider):
    """§3: provider from anyone but the ADM account is silently ignored."""
    d = pombo.dest()
    cdls = expect(pombo.send(T["velip"], d, "not adm", provider=provider), 0)["cdls_id"]
    assert len(pombo.wait_sent("kannel", "55" + d)) == 1
    assert pombo.sent_to("http", "55" + d) == [] and pombo.sent_to("tww", "55" + d) == []
    assert pombo.message(T["velip"], cdls)["connection"] == "velip"


def test_upstream_gets_each_message_once(pombo):
    """§4: each accepted message is sent upstream exactly once."""
    dests = [pombo.dest() for _ in range(5)]
    for d in dests:
        expect(pombo.send(T["tww"], d, "uma vez"), 0)
    time.sleep(0.5)
    for d in dests:
        assert len(pombo.sent_to("tww", "55" + d)) == 1


def test_dlr_url_is_absolute_and_parseable(pombo):
    """§8 kannel: dlr-url = {POMBO_PUBLIC_URL}/dlr/{name}/{dlr_secret}?…&type=%d&answer=%A."""
    d = pombo.dest()
    expect(pombo.send(T["velip"], d, "dlr url"), 0)
    dlr = _only(pombo, "kannel", "55" + d).query["dlr-url"]
    parts = urllib.parse.urlsplit(dlr.replace("%d", "8").replace("%A", "ACK%2F"))
    assert f"{parts.scheme}://{parts.netloc}" == pombo.base
    assert parts.path == f"/dlr/velip/{SECRETS['velip']}"


def test_http_query_template(pombo):
    """§8 http: a `query` template (GET) with {dest}, {text}, {id}, {from} replaced."""
    d = pombo.dest()
    text = "consulta ação & mais"
    cdls = expect(pombo.send(T["httpq"], d, text, **{"from": "LOJAQ"}), 0)["cdls_id"]
    req = _only(pombo, "http", "55" + d)
    assert req.method == "GET" and req.path == "/q/send"
    assert req.query == {"to": "55" + d, "msg": text, "ref": cdls, "sender": "LOJAQ"}
    m = pombo.message(T["httpq"], cdls)
    assert m["connection"] == "httpq" and m["upstream_id"].startswith("m-"), m


def test_http_form_template(pombo):
    """§8 http: a `form` template (POST urlencoded)."""
    d = pombo.dest()
    text = "formulário = ok?"
    cdls = expect(pombo.send(T["httpf"], d, text, **{"from": "LOJAF"}), 0)["cdls_id"]
    req = _only(pombo, "http", "55" + d)
    assert req.method == "POST" and req.path == "/f/send"
    assert req.form == {"to": "55" + d, "msg": text, "ref": cdls, "sender": "LOJAF"}


def test_adm_override_prices_with_connection_rows(pombo):
    """§6/§3: with the override the connection in use is the overridden one, so its
    connection-specific tariff row applies (ADM: 55 → 0.0100, 55@matrix → 0.0200)."""
    b0 = pombo.balance(T["adm"])[0]
    c1 = expect(pombo.send(T["adm"], pombo.dest(), "adm preco", provider="matrix"),
                0)["cdls_id"]
    b1 = pombo.balance(T["adm"])[0]
    c2 = expect(pombo.send(T["adm"], pombo.dest(), "adm preco velip"), 0)["cdls_id"]
    b2 = pombo.balance(T["adm"])[0]
    assert b0 - b1 == Decimal("0.0200")
    assert b1 - b2 == Decimal("0.0100")
    assert Decimal(str(pombo.message(T["adm"], c1)["value"])) == Decimal("0.0200")
    assert Decimal(str(pombo.message(T["adm"], c2)["value"])) == Decimal("0.0100")


def test_tww_is_charged_for_the_ascii_it_sends(pombo):
    """§13: TWW sends printable ASCII, so a 100-character accented body goes as one GSM-7
    segment: the log's text, encoding and segments, and the charge, describe that."""
    d = pombo.dest()
    body = ("Ação já é possível " * 6)[:100]
    before, _ = pombo.balance(T["tww"])
    cdls = expect(pombo.send(T["tww"], d, body), 0)["cdls_id"]
    sent = _only(pombo, "tww", "55" + d).form["Mensagem"]
    assert sent == ("Acao ja e possivel " * 6)[:100]
    m = pombo.message(T["tww"], cdls)
    assert m["text"] == sent and m["encoding"] == "GSM-7" and int(m["segments"]) == 1
    after, _ = pombo.balance(T["tww"])
    assert before - after == Decimal(str(m["value"])) > 0


# ----------------------------------------------------------------------------------------------
# §13 / issue 13: what wavy and http connections receive is what the customer is charged for
# ----------------------------------------------------------------------------------------------

PRICE = Decimal("0.0800")  # customers 81-84, one tariff row, no reseller above them
ACCENTED_100 = ("Promoção: ação válida até amanhã, não perca! " * 3)[:100]
FOLDED_100 = ("Promocao: acao valida até amanha, nao perca! " * 3)[:100]  # é is GSM 03.38: it stays


def _received_text(pombo, kind: str, norm: str) -> str:
    req = _only(pombo, kind, norm)
    return req.json["messageText"] if kind == "wavy" else req.json["body"]


def _charged(pombo, token: str, dest: str, body: str, **params) -> tuple[dict, Decimal]:
    before, _ = pombo.balance(token)
    cdls = expect(pombo.send(token, dest, body, **params), 0)["cdls_id"]
    after, _ = pombo.balance(token)
    return pombo.message(token, cdls), before - after


@pytest.mark.parametrize(("kind", "token"), [("wavy", "wavykeep"), ("http", "httpkeep")])
def test_an_accented_100_character_body_is_two_ucs2_segments_as_sent(pombo, kind, token):
    """accents: keep: the body goes as written, UCS-2: two segments received, two charged."""
    d = pombo.dest()
    m, paid = _charged(pombo, T[token], d, ACCENTED_100)
    assert _received_text(pombo, kind, "55" + d) == ACCENTED_100 == m["text"]
    assert (m["encoding"], int(m["segments"]), m["text_received"]) == ("UCS-2", 2, None)
    assert paid == Decimal(str(m["value"])) == 2 * PRICE


@pytest.mark.parametrize(("kind", "token"), [("wavy", "wavyfold"), ("http", "httpfold")])
def test_a_fold_customers_accented_body_goes_and_is_charged_as_one_gsm7_segment(pombo, kind, token):
    """accents: fold: the provider receives the folded body; one GSM-7 segment is charged, and
    GetSMSStatus shows the body as sent and, beside it, the body as received."""
    d = pombo.dest()
    m, paid = _charged(pombo, T[token], d, ACCENTED_100)
    assert _received_text(pombo, kind, "55" + d) == FOLDED_100 == m["text"]
    assert (m["encoding"], int(m["segments"]), m["text_received"]) == ("GSM-7", 1, ACCENTED_100)
    assert paid == Decimal(str(m["value"])) == PRICE


CUTS = [
    ("x" * 161, "x" * 160, "GSM-7"),
    ("x" * 159 + "€" + "x", "x" * 159, "GSM-7"),  # the escape pair would straddle the end
    ("€" * 81, "€" * 80, "GSM-7"),
    ("ã" * 71, "ã" * 70, "UCS-2"),
    ("ã" * 69 + "😀" + "ã", "ã" * 69, "UCS-2"),  # the surrogate pair would straddle the end
    ("😀" * 36, "😀" * 35, "UCS-2"),
    ("ação " * 20, ("ação " * 20)[:70], "UCS-2"),  # 100 accented characters: their first 70
]


@pytest.mark.parametrize(("kind", "token"), [("wavy", "wavykeep"), ("http", "httpkeep")])
@pytest.mark.parametrize(("body", "cut", "encoding"), CUTS, ids=[f"{len(c[0])}-{c[2]}" for c in CUTS])
def test_cuttext_sends_and_charges_one_segment_at_the_boundaries(pombo, kind, token, body, cut, encoding):
    """§13 cuttext with the default limit: whole characters, one segment, what is received is
    what is charged; GetSMSStatus keeps the body as received."""
    d = pombo.dest()
    m, paid = _charged(pombo, T[token], d, body, cuttext="1")
    assert _received_text(pombo, kind, "55" + d) == cut == m["text"]
    assert (m["encoding"], int(m["segments"]), m["text_received"]) == (encoding, 1, body)
    assert paid == Decimal(str(m["value"])) == PRICE
