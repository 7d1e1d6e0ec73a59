"""SPEC §6 (money): balances, tariffs, segments, the reseller chain, credit limits."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from tests.e2e.conftest import BLOCKED_BY_TOP, T, expect, expect_reject

D = Decimal
FOUR = re.compile(r"-?[0-9]+\.[0-9]{4}")


def _send_priced(pombo, dest: str, text: str, **params):
    """Send as customer 41 (reseller 40); return (customer debit, reseller debit, message)."""
    c0, _ = pombo.balance(T["money"])
    r0, _ = pombo.balance(T["rev40"])
    r = pombo.send(T["money"], dest, text, **params)
    cdls = expect(r, 0)["cdls_id"]
    c1, _ = pombo.balance(T["money"])
    r1, _ = pombo.balance(T["rev40"])
    return c0 - c1, r0 - r1, pombo.message(T["money"], cdls)


def test_getbalance_strings_with_4_decimals(pombo):
    """§1 GetBalance: `balance` and `credit_limit` inside `return`, strings with 4 decimals."""
    for key, want_bal, want_lim in [("nocredit", "0.0000", "0.0000"),
                                    ("postpaid", None, "-0.2000"),
                                    ("rev", None, "0.0000")]:
        r = pombo.api("GetBalance", T[key])
        ret = expect(r, 0)
        for f in ("balance", "credit_limit"):
            assert isinstance(ret[f], str) and FOUR.fullmatch(ret[f]), ret
        if want_bal:
            assert ret["balance"] == want_bal, ret
        assert ret["credit_limit"] == want_lim, ret


def test_getbalance_get_and_json(pombo):
    """§1: GetBalance answers on GET and on a JSON POST alike."""
    a = pombo.api("GetBalance", T["pager"], method="GET")
    b = pombo.api("GetBalance", T["pager"], enc="json")
    assert expect(a, 0)["balance"] == expect(b, 0)["balance"]


def test_debit_customer_and_reseller(pombo):
    """§6: each account in the chain is debited its price × segments; `value` in the log is
    the customer's debit."""
    cust, res, m = _send_priced(pombo, pombo.dest("11"), "preco simples")
    assert cust == D("0.1000")
    assert res == D("0.0400")
    assert D(str(m["value"])) == D("0.1000")
    assert int(m["segments"]) == 1 and m["encoding"] == "GSM-7"


@pytest.mark.parametrize(
    "prefix, want",
    [
        ("2199", "0.0850"),  # 552199 row naming the connection in use (longest)
        ("2198", "0.0900"),  # 5521
        ("3199", "0.0750"),  # 5531: the row naming velip wins on equal length; wavy rows ignored
        ("4199", "0.1000"),  # 55
    ],
)
def test_longest_prefix_tariff(pombo, prefix, want):
    """§6: longest matching prefix wins; rows for another connection are not candidates; on
    equal length the row naming the connection wins."""
    d = prefix + pombo.dest()[4:]
    cust, res, m = _send_priced(pombo, d, "prefixo")
    assert cust == D(want), f"{d}: debited {cust}"
    assert D(str(m["value"])) == D(want)
    assert res == D("0.0400")


@pytest.mark.parametrize(
    "text, segments, encoding",
    [
        ("a" * 160, 1, "GSM-7"),
        ("a" * 161, 2, "GSM-7"),
        ("a" * 200, 2, "GSM-7"),
        ("a" * 306, 2, "GSM-7"),
        ("a" * 307, 3, "GSM-7"),
        ("a" * 158 + "[", 1, "GSM-7"),  # extension char counts two: 160
        ("a" * 159 + "€", 2, "GSM-7"),  # 161
        ("ã" * 70, 1, "UCS-2"),
        ("ã" * 71, 2, "UCS-2"),
        ("ã" * 134, 2, "UCS-2"),
        ("ã" * 135, 3, "UCS-2"),
    ],
)
def test_segments_and_price(pombo, text, segments, encoding):
    """§6: GSM-7 160 in one or 153 per part (extension chars count two); UCS-2 70 or 67 per
    part; each account debited price × segments."""
    cust, res, m = _send_priced(pombo, pombo.dest(), text)
    assert m["encoding"] == encoding, m
    assert int(m["segments"]) == segments, m
    assert cust == D("0.1000") * segments
    assert res == D("0.0400") * segments
    assert D(str(m["value"])) == D("0.1000") * segments


def test_kannel_text_intact_for_multipart(pombo):
    """§8: a multi-segment message goes upstream once, whole."""
    d = pombo.dest()
    text = "x" * 300
    _send_priced(pombo, d, text)
    sent = pombo.wait_sent("kannel", "55" + d)
    assert len(sent) == 1 and sent[0].query["text"] == text


def test_credit_check_is_balance_above_limit(pombo):
    """§6: the check is `balance > credit_limit` before the debit: 0.05 > 0 passes and goes
    negative; then 250."""
    expect(pombo.send(T["small"], pombo.dest(), "saldo curto"), 0)
    assert pombo.balance(T["small"])[0] == D("-0.0500")
    expect_reject(pombo.send(T["small"], pombo.dest(), "sem saldo agora"), 250)
    assert pombo.balance(T["small"])[0] == D("-0.0500")


def test_negative_credit_limit(pombo):
    """§6: a credit limit below zero lets the balance go down to it, then 250."""
    expect(pombo.send(T["postpaid"], pombo.dest(), "pos 1"), 0)
    expect(pombo.send(T["postpaid"], pombo.dest(), "pos 2"), 0)
    expect_reject(pombo.send(T["postpaid"], pombo.dest(), "pos 3"), 250)
    bal, lim = pombo.balance(T["postpaid"])
    assert (bal, lim) == (D("-0.2000"), D("-0.2000"))


def test_refusal_debits_nothing(pombo):
    """§6: a refused send (here 240 and 244) changes no balance."""
    c0, r0 = pombo.balance(T["money"])[0], pombo.balance(T["rev40"])[0]
    expect_reject(pombo.send(T["money"], "1133334444", "fixo"), 240)
    d = pombo.dest()
    expect(pombo.send(T["money"], d, "um"), 0)
    expect_reject(pombo.send(T["money"], d, "dup"), 244)
    assert pombo.balance(T["money"])[0] == c0 - D("0.1000")
    assert pombo.balance(T["rev40"])[0] == r0 - D("0.0400")


def test_three_level_chain_debits_every_account(pombo):
    """§6: the chain is the customer, its parent, the parent's parent…; each is debited."""
    before = [pombo.balance(T[k])[0] for k in ("chain", "rev51", "rev52")]
    expect(pombo.send(T["chain"], pombo.dest(), "cadeia"), 0)
    after = [pombo.balance(T[k])[0] for k in ("chain", "rev51", "rev52")]
    deltas = [b - a for b, a in zip(before, after, strict=True)]
    assert deltas == [D("0.1000"), D("0.0200"), D("0.0100")]


def test_block_list_of_any_reseller_above(pombo):
    """§4 260: the block list of *any* reseller above the customer applies."""
    expect_reject(pombo.send(T["chain"], BLOCKED_BY_TOP, "bloqueado no topo", httpdup=0), 260)


def test_255_when_top_reseller_has_no_tariff(pombo):
    """§4 255: no tariff for a reseller two levels up."""
    expect_reject(pombo.send(T["deepnotariff"], pombo.dest(), "sem tarifa no topo"), 255)


def test_250_when_top_reseller_has_no_credit(pombo):
    """§4 250: a reseller two levels up fails `balance > credit_limit`; nobody is debited."""
    before = pombo.balance(T["deepnocredit"])
    expect_reject(pombo.send(T["deepnocredit"], pombo.dest(), "sem saldo no topo"), 250)
    assert pombo.balance(T["deepnocredit"]) == before


def test_fold_customer_sends_and_pays_one_gsm7_segment(pombo):
    """§13 accents: fold: a 100-character accented body goes as one GSM-7 segment (what Kannel
    receives is the folded text with coding 0) and the customer pays one segment; characters
    already in GSM 03.38 (é, à) stay."""
    d = pombo.dest()
    body = ("Atenção: é possível à tarde " * 4)[:100]
    before, _ = pombo.balance(T["fold"])
    cdls = expect(pombo.send(T["fold"], d, body), 0)["cdls_id"]
    after, _ = pombo.balance(T["fold"])
    sent = pombo.wait_sent("kannel", "55" + d)[0].query
    assert sent["text"] == ("Atencao: é possível à tarde " * 4)[:100].replace("í", "i")
    assert sent["coding"] == "0"
    m = pombo.message(T["fold"], cdls)
    assert m["text"] == sent["text"] and m["encoding"] == "GSM-7" and int(m["segments"]) == 1
    assert before - after == D("0.0800") == D(str(m["value"]))


def test_fold_customer_with_an_emoji_sends_unfolded_ucs2(pombo):
    """§13: a body that still has a character outside GSM 03.38 after folding goes unfolded."""
    d = pombo.dest()
    body = "Promoção 😀"
    cdls = expect(pombo.send(T["fold"], d, body), 0)["cdls_id"]
    assert pombo.wait_sent("kannel", "55" + d)[0].query["text"] == body
    assert pombo.message(T["fold"], cdls)["encoding"] == "UCS-2"
