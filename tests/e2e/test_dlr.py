"""SPEC §8 delivery reports at /dlr/{connection}/{dlr_secret}; §1 the `delivery` field."""

from __future__ import annotations

import time
import urllib.parse

import pytest

from tests.e2e.conftest import SECRETS, T, expect, spawn


def _kannel_send(pombo):
    d = pombo.dest()
    cdls = expect(pombo.send(T["velip"], d, "dlr kannel"), 0)["cdls_id"]
    sent = pombo.wait_sent("kannel", "55" + d)
    assert len(sent) == 1
    return cdls, sent[0].query["dlr-url"]


def _hit(pombo, dlr_url: str, typ: int, answer: str = ""):
    """GET the dlr-url Kannel was given, with %d and %A (URL-escaped) replaced as Kannel would."""
    filled = dlr_url.replace("%d", str(typ)).replace("%A", urllib.parse.quote(answer, safe=""))
    parts = urllib.parse.urlsplit(filled)
    target = parts.path + ("?" + parts.query if parts.query else "")
    return pombo.request("GET", target)


def _delivery(pombo, cdls, token=None):
    return pombo.message(token or T["velip"], cdls)["delivery"]


def _ok(r):
    assert 200 <= r.status < 300, f"a valid delivery report must be accepted: {r}"


def test_kannel_dlr_moves_forward_only(pombo):
    """§8 kannel dlr-url: 8 → sent, 1 → delivered; a later 8 or 2 does not move it back."""
    cdls, url = _kannel_send(pombo)
    assert _delivery(pombo, cdls) == "pending"
    _ok(_hit(pombo, url, 8))
    assert _delivery(pombo, cdls) == "sent"
    _ok(_hit(pombo, url, 1))
    assert _delivery(pombo, cdls) == "delivered"
    _hit(pombo, url, 8)
    assert _delivery(pombo, cdls) == "delivered"
    _hit(pombo, url, 2)
    assert _delivery(pombo, cdls) == "delivered"


@pytest.mark.parametrize("typ, want", [(1, "delivered"), (2, "undelivered"), (16, "rejected"),
                                       (4, "pending"), (8, "sent")])
def test_kannel_dlr_types(pombo, typ, want):
    """§8 kannel `%d`: 1 delivered, 2 undelivered, 8 sent, 16 rejected, 4 changes nothing."""
    cdls, url = _kannel_send(pombo)
    _ok(_hit(pombo, url, typ))
    assert _delivery(pombo, cdls) == want


RECEIPT = ("id:0a1b2c sub:001 dlvrd:000 submit date:2401021530 done date:2401021531 stat:{} err:000 "
           "text:dlr kannel")


def _balances(pombo):
    return pombo.balance(T["velip"])[0], pombo.balance(T["rev"])[0]


def test_kannel_expired_receipt_is_type_34(pombo):
    """§8: Kannel 1.4.5 reports an SMPP EXPIRED receipt as type=34 (32|2): expired, not refunded,
    and the status stays OK."""
    cdls, url = _kannel_send(pombo)
    charged = _balances(pombo)
    _ok(_hit(pombo, url, 34, RECEIPT.format("EXPIRED")))
    m = pombo.message(T["velip"], cdls)
    assert (m["delivery"], m["status"], str(m["status_code"])) == ("expired", "OK", "0"), m
    _ok(_hit(pombo, url, 1))  # a final state never changes
    assert _delivery(pombo, cdls) == "expired"
    assert _balances(pombo) == charged


def test_kannel_expired_mask_without_a_receipt(pombo):
    """§8: with no receipt text the bits decide: 34 is expired."""
    cdls, url = _kannel_send(pombo)
    _ok(_hit(pombo, url, 34))
    assert _delivery(pombo, cdls) == "expired"


def test_kannel_rejectd_receipt_refunds_the_chain_once(pombo):
    """§8: Kannel passes REJECTD as type=2; the receipt's stat: decides (rejected), the chain gets
    back exactly what it paid, once, and the caller's OK stays OK."""
    before = _balances(pombo)
    cdls, url = _kannel_send(pombo)
    charged = _balances(pombo)
    assert charged[0] < before[0] and charged[1] < before[1]
    _ok(_hit(pombo, url, 2, RECEIPT.format("REJECTD")))
    m = pombo.message(T["velip"], cdls)
    assert (m["delivery"], m["status"], str(m["status_code"])) == ("rejected", "OK", "0"), m
    assert _balances(pombo) == before
    _ok(_hit(pombo, url, 2, RECEIPT.format("REJECTD")))  # Kannel may repeat a report: nothing more
    _ok(_hit(pombo, url, 16, "NACK/0x0000000b/Invalid Destination Address"))
    assert _balances(pombo) == before
    assert _delivery(pombo, cdls) == "rejected"


def test_kannel_undeliv_receipt_is_not_refunded(pombo):
    """§8: UNDELIV (type=2): the network took it, undelivered, still charged."""
    cdls, url = _kannel_send(pombo)
    charged = _balances(pombo)
    _ok(_hit(pombo, url, 2, RECEIPT.format("UNDELIV")))
    assert _delivery(pombo, cdls) == "undelivered"
    assert _balances(pombo) == charged


def test_kannel_final_state_never_changes(pombo):
    """§8: a final state never changes (undelivered then delivered stays undelivered)."""
    cdls, url = _kannel_send(pombo)
    _ok(_hit(pombo, url, 2))
    _hit(pombo, url, 1)
    _hit(pombo, url, 16)
    assert _delivery(pombo, cdls) == "undelivered"


def test_wrong_secret_is_403_and_changes_nothing(pombo):
    """§8: a wrong or missing secret, or an unknown connection → HTTP 403, nothing changes."""
    cdls, url = _kannel_send(pombo)
    parts = urllib.parse.urlsplit(url.replace("%d", "1"))
    query = "?" + parts.query if parts.query else ""
    for path in (f"/dlr/velip/not-the-secret{query}",
                 f"/dlr/velip/{SECRETS['wavy']}{query}",
                 f"/dlr/nosuchconn/{SECRETS['velip']}{query}"):
        for method in ("GET", "POST"):
            r = pombo.request(method, path)
            assert r.status == 403, f"{method} {path}: {r}"
    assert _delivery(pombo, cdls) == "pending"


def test_missing_secret_is_403(pombo):
    """§8: a *missing* secret answers 403 like a wrong one, and nothing changes."""
    cdls, url = _kannel_send(pombo)
    parts = urllib.parse.urlsplit(url.replace("%d", "1"))
    query = "?" + parts.query if parts.query else ""
    for path in (f"/dlr/velip/{query}", f"/dlr/velip{query}"):
        for method in ("GET", "POST"):
            r = pombo.request(method, path)
            assert r.status == 403, f"{method} {path}: {r}"
    assert _delivery(pombo, cdls) == "pending"


def _wavy_send(pombo):
    d = pombo.dest()
    cdls = expect(pombo.send(T["wavy"], d, "dlr wavy"), 0)["cdls_id"]
    sent = pombo.wait_sent("wavy", "55" + d)
    assert len(sent) == 1
    return cdls, sent[0].json["correlationId"]


def _wavy_cb(pombo, payload):
    return pombo.request("POST", f"/dlr/wavy/{SECRETS['wavy']}", json=payload)


def test_wavy_callback_delivered(pombo):
    """§8 wavy callback: JSON with correlationId and deliveredStatusCode 4 → delivered."""
    cdls, corr = _wavy_send(pombo)
    _ok(_wavy_cb(pombo, {"correlationId": corr, "deliveredStatusCode": 4}))
    assert _delivery(pombo, cdls, T["wavy"]) == "delivered"
    _wavy_cb(pombo, {"correlationId": corr, "sentStatusCode": 2})
    assert _delivery(pombo, cdls, T["wavy"]) == "delivered"


def test_wavy_callback_by_id(pombo):
    """§8 wavy callback with `id` (the upstream id): sentStatusCode 2 → sent, then
    deliveredStatusCode 104 → undelivered."""
    cdls, _ = _wavy_send(pombo)
    up_id = pombo.message(T["wavy"], cdls)["upstream_id"]
    assert up_id
    _ok(_wavy_cb(pombo, {"id": up_id, "sentStatusCode": 2}))
    assert _delivery(pombo, cdls, T["wavy"]) == "sent"
    _ok(_wavy_cb(pombo, {"id": up_id, "deliveredStatusCode": 104}))
    assert _delivery(pombo, cdls, T["wavy"]) == "undelivered"


@pytest.mark.parametrize("code, want", [(101, "expired"), (150, "rejected"), (301, "rejected")])
def test_wavy_sent_status_codes(pombo, code, want):
    """§8 wavy: sentStatusCode 101 → expired, other 1xx–3xx → rejected."""
    cdls, corr = _wavy_send(pombo)
    _ok(_wavy_cb(pombo, {"correlationId": corr, "sentStatusCode": code}))
    assert _delivery(pombo, cdls, T["wavy"]) == want


def test_wavy_wrong_secret(pombo):
    """§8: a wavy callback with the wrong secret → 403, nothing changes."""
    cdls, corr = _wavy_send(pombo)
    r = pombo.request("POST", "/dlr/wavy/wrong-secret",
                      json={"correlationId": corr, "deliveredStatusCode": 4})
    assert r.status == 403
    assert _delivery(pombo, cdls, T["wavy"]) == "pending"


def test_generated_dlr_secret(pombo):
    """§8: a connection without `dlr_secret` gets a generated one; Kannel's dlr-url carries it
    and it works, while a wrong one is refused."""
    up = pombo.upstream.url
    tok = "tok-kannel-two-cust-67"
    doc = {
        "connections": [{"name": "kan2", "kind": "kannel", "url": up, "username": "k2",
                         "password": "p2", "ack_timeout": 1, "final_timeout": 4}],
        "customers": [{"id": 67, "name": "Kannel 2", "balance": "10.00", "sms_provider": "kan2",
                       "tokens": [tok]}],
        "tariffs": [{"customer": 67, "prefix": "55", "value": "0.1000"}],
    }
    cp = pombo.load(doc)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    d = pombo.dest()
    cdls = expect(pombo.send(tok, d, "segredo gerado"), 0)["cdls_id"]
    sent = pombo.wait_sent("kannel", "55" + d)
    assert len(sent) == 1 and sent[0].query["username"] == "k2"
    url = sent[0].query["dlr-url"]
    path = urllib.parse.urlsplit(url).path
    assert path.startswith("/dlr/kan2/"), url
    secret = path.removeprefix("/dlr/kan2/")
    assert len(secret) >= 8, f"generated secret too short: {secret!r}"
    assert pombo.request("GET", url.replace(secret, "wrong" + secret).replace("%d", "1")
                         .removeprefix(pombo.base)).status == 403
    assert _delivery(pombo, cdls, tok) == "pending"
    _ok(_hit(pombo, url, 1))
    assert _delivery(pombo, cdls, tok) == "delivered"


def test_kannel_sending_fewer_parts_than_charged_is_warned(pombo):
    """Issue 13: a Kannel at its sendsms-user defaults (max-messages 1, no concatenation) sends a
    300-character body as one part and reports that one part; Pombo charged 2 segments. Once
    the receipts settle (POMBO_KANNEL_PARTS_SETTLE), the next Kannel report warns in the log,
    naming the message and the numbers, never the text or a secret. A body Kannel sent in all
    its parts (a receipt for each) is not warned about."""
    with spawn(pombo, POMBO_KANNEL_PARTS_SETTLE="0.5") as (other, _server):
        cut_dest, whole_dest, short_dest = other.dest(), other.dest(), other.dest()
        cut = expect(other.send(T["money"], cut_dest, "k" * 300), 0)["cdls_id"]
        whole = expect(other.send(T["money"], whole_dest, "w" * 300), 0)["cdls_id"]
        short = expect(other.send(T["money"], short_dest, "oi"), 0)["cdls_id"]
        assert [int(other.message(T["money"], c)["segments"]) for c in (cut, whole, short)] == [2, 2, 1]
        urls = {c: other.wait_sent("kannel", "55" + d)[0].query["dlr-url"]
                for c, d in ((cut, cut_dest), (whole, whole_dest), (short, short_dest))}
        for cdls, parts in ((cut, 1), (whole, 2)):
            _ok(_hit(other, urls[cdls], 8, "ACK/"))
            for _ in range(parts):
                _ok(_hit(other, urls[cdls], 1, RECEIPT.format("DELIVRD")))
        time.sleep(0.8)
        _ok(_hit(other, urls[short], 1, RECEIPT.format("DELIVRD")))  # a later report judges the others
        deadline = time.monotonic() + 5
        while "kannel_parts_short" not in other.server_log() and time.monotonic() < deadline:
            time.sleep(0.1)
        lines = [line for line in other.server_log().splitlines() if "kannel_parts_short" in line]
        assert len(lines) == 1, lines
        assert f'"cdls_id": {cut}' in lines[0] or f"cdls_id={cut}" in lines[0], lines[0]
        assert "charged_segments" in lines[0] and "reported_parts" in lines[0]
        for leak in ("k" * 20, "kpass", SECRETS["velip"]):
            assert leak not in lines[0]
