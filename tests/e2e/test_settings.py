"""SPEC §10 settings (POMBO_ADM_CUSTOMER_ID, POMBO_TIMEZONE) and §4 245 night windows
computed around the current time, so the results do not depend on when the suite runs."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from tests.e2e.conftest import T, expect, expect_reject, spawn

SP = ZoneInfo("America/Sao_Paulo")
KIRI = "Pacific/Kiritimati"  # UTC+14: 17 hours ahead of São Paulo


def _hhmm(t: dt.datetime) -> str:
    return t.strftime("%H:%M")


def _night_customer(pombo, cid: int, window: str, limit: int = 1) -> str:
    tok = f"tok-night-window-{cid:04d}"
    doc = {
        "customers": [{"id": cid, "name": f"Janela {cid}", "balance": "10.00", "tokens": [tok],
                       "night_window": window, "night_limit": limit}],
        "tariffs": [{"customer": cid, "prefix": "55", "value": "0.1000"}],
    }
    cp = pombo.load(doc)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    return tok


def test_adm_customer_id_setting(pombo):
    """§3/§10: POMBO_ADM_CUSTOMER_ID names the ADM account whose `provider` is honoured."""
    with spawn(pombo, POMBO_ADM_CUSTOMER_ID="13") as (other, _):
        d = other.dest()
        cdls = expect(other.send(T["velip"], d, "adm por env", provider="matrix"), 0)["cdls_id"]
        assert len(other.wait_sent("http", "55" + d)) == 1
        assert other.message(T["velip"], cdls)["connection"] == "matrix"
        d2 = other.dest()
        expect(other.send(T["adm"], d2, "ex-adm", provider="matrix"), 0)
        assert len(other.wait_sent("kannel", "55" + d2)) == 1
        assert other.sent_to("http", "55" + d2) == []


def test_crossing_window_around_now_applies(pombo):
    """§4 245: a window whose start is after its end crosses midnight; now lies inside a window
    that started an hour ago and ends an hour before that (tomorrow)."""
    now = dt.datetime.now(SP)
    window = f"{_hhmm(now - dt.timedelta(hours=1))}-{_hhmm(now - dt.timedelta(hours=2))}"
    tok = _night_customer(pombo, 164, window)
    expect(pombo.send(tok, pombo.dest(), "dentro 1"), 0)
    expect_reject(pombo.send(tok, pombo.dest(), "dentro 2"), 245)


def test_window_not_containing_now_does_not_apply(pombo):
    """§4 245: outside the night window there is no night cap."""
    now = dt.datetime.now(SP)
    window = f"{_hhmm(now + dt.timedelta(hours=1))}-{_hhmm(now + dt.timedelta(hours=2))}"
    tok = _night_customer(pombo, 165, window)
    for i in range(3):
        expect(pombo.send(tok, pombo.dest(), f"fora {i}"), 0)


def test_night_window_uses_pombo_timezone(pombo):
    """§4/§10: the night window is read in POMBO_TIMEZONE: a window around the current hour in
    UTC+14 applies on a server set to that zone (its night_limit of 1 holds) and not on the São
    Paulo one. (A send counts toward the night its server sees it in: servers of one database
    share one POMBO_TIMEZONE.)"""
    now = dt.datetime.now(ZoneInfo(KIRI))
    window = f"{_hhmm(now - dt.timedelta(minutes=40))}-{_hhmm(now + dt.timedelta(minutes=40))}"
    tok = _night_customer(pombo, 166, window)
    with spawn(pombo, POMBO_TIMEZONE=KIRI) as (other, _):
        expect(other.send(tok, other.dest(), "kiritimati 1"), 0)
        expect_reject(other.send(tok, other.dest(), "kiritimati 2"), 245)
    for i in range(2):
        expect(pombo.send(tok, pombo.dest(), f"sp {i}"), 0)


def test_date_range_uses_pombo_timezone(pombo):
    """§1: date_start/date_end are days in POMBO_TIMEZONE."""
    with spawn(pombo, POMBO_TIMEZONE=KIRI) as (other, _):
        cdls = int(expect(other.send(T["pager"], other.dest(), "fuso"), 0)["cdls_id"])
        now = dt.datetime.now(ZoneInfo(KIRI))
        if now.time() < dt.time(0, 1) or now.time() > dt.time(23, 59):
            return  # too close to midnight there to say which day it is
        day = now.date()
        prev = day - dt.timedelta(days=1)

        def ids(date):
            return [int(m["cdls_id"]) for m in other.messages(
                T["pager"], date_start=date.isoformat(), date_end=date.isoformat())]

        assert cdls in ids(day)
        assert cdls not in ids(prev)
