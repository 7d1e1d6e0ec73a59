"""SPEC §4 (244/245/255/250 and the log row are atomic) and §6 (conditional debits) under
concurrent requests."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from tests.e2e.conftest import T, http_for, spawn


@pytest.fixture(scope="module")
def multi(pombo):
    """A second `pombo serve --workers 3` on the same database (SPEC §10 --workers N)."""
    with spawn(pombo, workers="3") as (client, _server):
        yield client


@pytest.fixture(params=["one-process", "three-workers"])
def gw(request, pombo):
    """The concurrency rules must hold for a single process and for several workers."""
    if request.param == "one-process":
        return pombo
    return request.getfixturevalue("multi")


def _top_up(pombo, customer: int, token: str, want: str) -> None:
    """Bring a balance back to exactly `want` with `pombo credit add`."""
    diff = Decimal(want) - pombo.balance(token)[0]
    if diff:
        cp = pombo.cli("credit", "add", str(customer), str(diff))
        assert cp.returncode == 0, cp.stderr
    assert pombo.balance(token)[0] == Decimal(want)


def _burst(gw, calls):
    """Run every (token, dest, text) call at the same moment; return the answers."""
    barrier = threading.Barrier(len(calls))

    def one(call):
        tok, dest, text = call
        barrier.wait(10)
        return gw.send(tok, dest, text)

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(one, calls))


def _codes(answers) -> Counter:
    for r in answers:
        assert r.json is not None and r.status == http_for(int(r.code)), str(r)
    return Counter(r.code for r in answers)


def test_concurrent_duplicates_yield_one_acceptance(gw):
    """§4: 20 concurrent identical sends inside the window → exactly one OK, the rest 244;
    the upstream gets it once."""
    d = gw.dest()
    answers = _burst(gw, [(T["velip"], d, "mesma mensagem")] * 20)
    codes = _codes(answers)
    assert codes == Counter({"0": 1, "244": 19}), codes
    time.sleep(0.5)
    assert len(gw.sent_to("kannel", "55" + d)) == 1


def test_concurrent_sends_never_overdraw(gw):
    """§4/§6: 30 concurrent sends for a customer whose balance covers exactly 5 → exactly 5 OK
    and 25 × 250; the balance ends at exactly 0."""
    _top_up(gw, 26, T["conc"], "0.5000")
    dests = [gw.dest() for _ in range(30)]
    answers = _burst(gw, [(T["conc"], d, "corrida") for d in dests])
    codes = _codes(answers)
    assert codes == Counter({"0": 5, "250": 25}), codes
    assert gw.balance(T["conc"])[0] == Decimal("0.0000")
    ok_ids = [r.ret["cdls_id"] for r in answers if r.code == "0"]
    assert len(set(ok_ids)) == 5
    time.sleep(0.5)
    assert sum(len(gw.sent_to("kannel", "55" + d)) for d in dests) == 5


def test_concurrent_sends_share_reseller_credit(gw):
    """§6: the reseller's conditional debit holds across its customers: a reseller whose
    balance covers 4 sends admits exactly 4 of 20 concurrent sends by two customers."""
    _top_up(gw, 43, T["rev43"], "0.2000")
    a0, b0 = gw.balance(T["shared_a"])[0], gw.balance(T["shared_b"])[0]
    calls = [(T["shared_a"], gw.dest(), "a") for _ in range(10)]
    calls += [(T["shared_b"], gw.dest(), "b") for _ in range(10)]
    answers = _burst(gw, calls)
    codes = _codes(answers)
    assert codes == Counter({"0": 4, "250": 16}), codes
    assert gw.balance(T["rev43"])[0] == Decimal("0.0000")
    ok_a = sum(1 for (tok, _, _), r in zip(calls, answers, strict=True)
               if tok == T["shared_a"] and r.code == "0")
    ok_b = 4 - ok_a
    assert gw.balance(T["shared_a"])[0] == a0 - Decimal("0.1000") * ok_a
    assert gw.balance(T["shared_b"])[0] == b0 - Decimal("0.1000") * ok_b


def test_concurrent_distinct_sends_all_accepted(gw):
    """§4: concurrent sends to distinct destinations are all accepted, each logged with its own
    id, each sent upstream once, each charged once."""
    bal0 = gw.balance(T["tww"])[0]
    dests = [gw.dest() for _ in range(25)]
    answers = _burst(gw, [(T["tww"], d, "paralelo") for d in dests])
    codes = _codes(answers)
    assert codes == Counter({"0": 25}), codes
    assert len({r.ret["cdls_id"] for r in answers}) == 25
    time.sleep(0.5)
    for d in dests:
        assert len(gw.sent_to("tww", "55" + d)) == 1
    assert gw.balance(T["tww"])[0] == bal0 - Decimal("0.0800") * 25


def test_concurrent_sends_respect_night_limit(gw, pombo):
    """§4 245 is atomic too: night_limit 3 (window 00:00-23:59), 15 concurrent sends to distinct
    destinations → exactly 3 OK and 12 × 245."""
    tok = T["night3a"] if gw is pombo else T["night3b"]
    answers = _burst(gw, [(tok, gw.dest(), "noite") for _ in range(15)])
    codes = _codes(answers)
    assert codes == Counter({"0": 3, "245": 12}), codes
