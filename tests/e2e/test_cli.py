"""SPEC §9 provisioning (`pombo load`) and §10 command line, checked through the running API."""

from __future__ import annotations

import json
from decimal import Decimal

from tests.e2e.conftest import T, expect, expect_reject, provisioning


def _out(cp) -> str:
    return (cp.stdout or "") + (cp.stderr or "")


def test_load_bad_file_names_entry_and_applies_nothing(pombo):
    """§9: `pombo load` validates the whole file first and names the offending entry; a bad
    file exits non-zero and changes nothing."""
    doc = {
        "customers": [{"id": 98, "name": "Nao deve existir", "balance": "5.00",
                       "tokens": ["tok-should-not-exist-98"]}],
        "connections": [{"name": "zz-broken-conn", "kind": "nonsense",
                         "url": "http://127.0.0.1:9"}],
        "tariffs": [{"customer": 98, "prefix": "55", "value": "0.1000"}],
    }
    cp = pombo.load(doc)
    assert cp.returncode != 0, _out(cp)
    assert "zz-broken-conn" in _out(cp), _out(cp)
    r = pombo.api("GetBalance", "tok-should-not-exist-98", _kw={"ip": pombo.fresh_ip()})
    expect(r, 102)


def test_load_bad_customer_entry_is_named(pombo):
    """§9: an invalid customer entry (balance not a number) is named on error."""
    doc = {"customers": [{"id": 97, "name": "Cliente Quebrado", "balance": "abc"}]}
    cp = pombo.load(doc)
    assert cp.returncode != 0, _out(cp)
    out = _out(cp)
    assert "97" in out or "Cliente Quebrado" in out, out


def test_reload_same_file_is_idempotent(pombo):
    """§9: loading the same file again succeeds and does not reset balances (the balance is
    applied when the customer is created; later changes go through `pombo credit`)."""
    expect(pombo.send(T["cli"], pombo.dest(), "antes do reload"), 0)
    before = pombo.balance(T["cli"])
    cp = pombo.load(provisioning(pombo.upstream.url))
    assert cp.returncode == 0, _out(cp)
    assert pombo.balance(T["cli"]) == before
    expect(pombo.send(T["cli"], pombo.dest(), "depois do reload"), 0)


def test_load_updates_customer_by_id(pombo):
    """§9: `pombo load` updates an existing customer by id (max_length here); the running
    server applies it; a new balance in the file does not overwrite the current one."""
    before = pombo.balance(T["cli"])
    doc = {"customers": [{"id": 46, "name": "Loja CLI", "balance": "999.00", "max_length": 20,
                          "tokens": [T["cli"]]}]}
    cp = pombo.load(doc)
    assert cp.returncode == 0, _out(cp)
    expect_reject(pombo.send(T["cli"], pombo.dest(), "x" * 21), 238,
                  "Text 21 ch more than 20 ch")
    assert pombo.balance(T["cli"]) == before


def test_load_json_file(pombo):
    """§9: YAML or JSON, one schema."""
    doc = {
        "customers": [{"id": 35, "name": "Via JSON", "balance": "3.00",
                       "tokens": ["tok-json-loaded-0035"]}],
        "tariffs": [{"customer": 35, "prefix": "55", "value": "0.1000"}],
    }
    cp = pombo.load(json.dumps(doc), name="prov-json.json")
    assert cp.returncode == 0, _out(cp)
    ret = expect(pombo.api("GetBalance", "tok-json-loaded-0035"), 0)
    assert ret["balance"] == "3.0000"
    expect(pombo.send("tok-json-loaded-0035", pombo.dest(), "via json"), 0)


def test_route_to_missing_connection_loads_then_220(pombo):
    """§8: a customer routed to a connection that does not exist: loading is allowed (with a
    warning), sending gives 220."""
    doc = {
        "customers": [{"id": 34, "name": "Rota fantasma", "balance": "5.00",
                       "sms_provider": "ghostconn", "tokens": ["tok-ghost-route-0034"]}],
        "tariffs": [{"customer": 34, "prefix": "55", "value": "0.1000"}],
    }
    cp = pombo.load(doc)
    assert cp.returncode == 0, _out(cp)
    assert "ghostconn" in _out(cp), f"expected a warning naming the connection: {_out(cp)}"
    expect_reject(pombo.send("tok-ghost-route-0034", pombo.dest(), "fantasma"), 220)


def test_credit_add(pombo):
    """§10 `pombo credit add CUSTOMER AMOUNT` changes the balance GetBalance shows."""
    bal, _ = pombo.balance(T["cli"])
    cp = pombo.cli("credit", "add", "46", "5.25")
    assert cp.returncode == 0, _out(cp)
    assert pombo.balance(T["cli"])[0] == bal + Decimal("5.25")
    r = expect(pombo.api("GetBalance", T["cli"]), 0)
    assert r["balance"] == f"{bal + Decimal('5.25'):.4f}"


def test_credit_add_lets_exhausted_customer_send(pombo):
    """§10/§6: a top-up makes a 250 customer able to send."""
    tok = "tok-topup-customer-36"
    doc = {"customers": [{"id": 36, "name": "Recarga", "balance": "0", "tokens": [tok]}],
           "tariffs": [{"customer": 36, "prefix": "55", "value": "0.1000"}]}
    assert pombo.load(doc).returncode == 0
    expect_reject(pombo.send(tok, pombo.dest(), "sem saldo"), 250)
    assert pombo.cli("credit", "add", "36", "1").returncode == 0
    expect(pombo.send(tok, pombo.dest(), "com saldo"), 0)
    assert pombo.balance(tok)[0] == Decimal("0.9000")


def _token_from(pombo, out: str) -> str:
    words = [w.strip("'\"`:,;()[]{}") for w in out.split()]
    cands = [w for w in words if 10 <= len(w) <= 64]
    for w in reversed(cands):
        r = pombo.api("GetUserID", w, _kw={"ip": pombo.fresh_ip()})
        if r.code == "0":
            return w
    raise AssertionError(f"no working token in the output of `pombo token issue`: {out!r}")


def test_token_issue(pombo):
    """§10 `pombo token issue CUSTOMER` prints a new working token (10–64 chars) carrying the
    customer's rights."""
    cp = pombo.cli("token", "issue", "46")
    assert cp.returncode == 0, _out(cp)
    tok = _token_from(pombo, cp.stdout)
    ret = expect(pombo.api("GetUserID", tok), 0)
    assert ret["cdcs_id"] == "46" and ret["aut_send"] == "1"
    expect(pombo.send(tok, pombo.dest(), "token cli"), 0)


def test_messages_lists_sent_message(pombo):
    """§10 `pombo messages` lists the log, including a message just sent; §2 its output never
    shows a whole token."""
    cdls = expect(pombo.send(T["cli"], pombo.dest(), "para o log"), 0)["cdls_id"]
    cp = pombo.cli("messages")
    assert cp.returncode == 0, _out(cp)
    assert cdls in cp.stdout, cp.stdout[-2000:]
    for tok in T.values():
        assert tok not in _out(cp)


def test_load_rejects_bad_connection_name(pombo):
    """§8/§9: connection names are lowercase letters, digits, `-` and `_`; a bad one is named."""
    doc = {"connections": [{"name": "Bad Name!", "kind": "kannel", "url": "http://127.0.0.1:9",
                            "username": "u", "password": "p"}]}
    cp = pombo.load(doc)
    assert cp.returncode != 0, _out(cp)
    assert "Bad Name!" in _out(cp), _out(cp)


def test_ip_prune_forgets_only_what_no_rule_looks_at(pombo):
    """`pombo ip prune`: failures past the longest window go; recent ones (and blocks) stay."""
    ip = pombo.fresh_ip()
    expect(pombo.api("GetBalance", "tok-no-such-token-for-prune", _kw={"ip": ip}), 102)
    cp = pombo.cli("ip", "prune", "--minutes", "1")  # never fewer than 60 minutes
    assert cp.returncode == 0, _out(cp)
    assert "failed attempt(s) forgotten" in cp.stdout, _out(cp)
    listed = pombo.cli("ip", "list")
    assert ip in listed.stdout, _out(listed)  # a failure of a moment ago is still counted
