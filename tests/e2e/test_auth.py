"""SPEC §2 (authentication, codes 1xx / HTTP 401) and §1 GetUserID.

Every test that provokes a failed attempt (100, 102, 140) calls from an IP of its own.
"""

from __future__ import annotations

import re

from tests.e2e.conftest import USERS, T, expect, expect_reject

BAD_TOKEN = "tok-does-not-exist-000"


def _send(pombo, ip=None, headers=None, basic=None, **params):
    kw = {"ip": ip} if ip else {}
    if headers:
        kw["headers"] = headers
    if basic:
        kw["basic"] = basic
    params.setdefault("dest", pombo.dest())
    params.setdefault("message", "auth test")
    return pombo.api("MakeSMS", None, _kw=kw, **params)


def test_no_credentials_is_100(pombo):
    """§2: no credentials at all → 100 `fail authentication`, HTTP 401."""
    expect_reject(_send(pombo, ip=pombo.fresh_ip()), 100)


def test_blank_tsid_counts_as_none(pombo):
    """§2: a blank `tsid` counts as no credentials → 100."""
    expect_reject(_send(pombo, ip=pombo.fresh_ip(), tsid=""), 100)
    expect_reject(_send(pombo, ip=pombo.fresh_ip(), tsid="   "), 100)


def test_blank_tsid_falls_back_to_bearer(pombo):
    """§2: tsid, else Bearer: a blank tsid is no tsid, so the Bearer token is used."""
    r = _send(pombo, tsid="", headers={"Authorization": f"Bearer {T['velip']}"})
    expect(r, 0)


def test_bearer_token(pombo):
    """§2: `Authorization: Bearer <token>` authenticates."""
    expect(_send(pombo, headers={"Authorization": f"Bearer {T['velip']}"}), 0)


def test_sid_parameter(pombo):
    """§2: the token may come as `sid`."""
    expect(_send(pombo, sid=T["velip"]), 0)


def test_tsid_wins_over_bearer_and_sid(pombo):
    """§2: `tsid` wins over Bearer and sid."""
    ip = pombo.fresh_ip()
    r = _send(pombo, ip=ip, tsid=T["velip"], sid=BAD_TOKEN,
              headers={"Authorization": f"Bearer {BAD_TOKEN}"})
    expect(r, 0)
    r = _send(pombo, ip=ip, tsid=BAD_TOKEN, sid=T["velip"],
              headers={"Authorization": f"Bearer {T['velip']}"})
    expect_reject(r, 102)


def test_bearer_wins_over_sid(pombo):
    """§2: Bearer comes before `sid`."""
    ip = pombo.fresh_ip()
    expect_reject(_send(pombo, ip=ip, sid=T["velip"],
                        headers={"Authorization": f"Bearer {BAD_TOKEN}"}), 102)
    expect(_send(pombo, ip=ip, sid=BAD_TOKEN,
                 headers={"Authorization": f"Bearer {T['velip']}"}), 0)


def test_unknown_token_is_102(pombo):
    """§2: unknown token → 102 `SID not found`, on every /api/v2 endpoint."""
    ip = pombo.fresh_ip()
    expect_reject(_send(pombo, ip=ip, tsid=BAD_TOKEN), 102)
    for name in ("GetBalance", "GetSMSStatus", "GetUserID"):
        expect(pombo.api(name, BAD_TOKEN, _kw={"ip": ip}), 102)


def test_inactive_customer_is_110(pombo):
    """§2: customer disabled → 110 `account inactive`."""
    expect_reject(_send(pombo, ip=pombo.fresh_ip(), tsid=T["inactive"]), 110)


def test_user_without_send_is_123(pombo):
    """§2: a user without the send flag → 123 `permission denied`; nothing goes upstream."""
    d = pombo.dest()
    r = _send(pombo, ip=pombo.fresh_ip(), basic=USERS["viewer"], dest=d)
    expect_reject(r, 123)
    assert pombo.sent_to("wavy", "55" + d) == []


def test_basic_auth_sends(pombo):
    """§2: HTTP Basic of a customer user with send is accepted."""
    d = pombo.dest()
    expect(_send(pombo, basic=USERS["loja"], dest=d), 0)
    assert len(pombo.wait_sent("wavy", "55" + d)) == 1


def test_wrong_basic_password_is_140(pombo):
    """§2: HTTP Basic with a wrong password, or an unknown username → 140 `invalid user/pass`."""
    ip = pombo.fresh_ip()
    expect_reject(_send(pombo, ip=ip, basic=(USERS["loja"][0], "wrong-password")), 140)
    expect_reject(_send(pombo, ip=ip, basic=("no-such-user-e2e", "whatever")), 140)


def test_ip_not_allowed_is_142(pombo):
    """§2: the customer has an IP allow-list and the caller is not on it → 142."""
    expect_reject(_send(pombo, ip=pombo.fresh_ip(), tsid=T["ipdeny"]), 142)


def test_x_forwarded_for_is_believed_only_from_trusted_proxies(pombo):
    """§2: the caller is the socket's peer unless that peer is in POMBO_TRUSTED_PROXIES (none
    here). A header from 127.0.0.1 naming an allowed address does not pass the allow-list (uvicorn
    believed it from 127.0.0.1 by default; its proxy handling is off, Pombo's rule is the one)."""
    expect_reject(_send(pombo, ip="127.0.0.1", headers={"X-Forwarded-For": "10.1.2.3"}, tsid=T["ipdeny"]), 142)


def test_ip_allowlist_addresses_and_ranges(pombo):
    """§2/§9: an allow-list of addresses and CIDR ranges admits exactly those callers."""
    expect(_send(pombo, ip="127.0.0.77", tsid=T["ipallow"]), 0)
    expect(_send(pombo, ip="127.0.8.9", tsid=T["ipallow"]), 0)
    expect_reject(_send(pombo, ip="127.0.0.1", tsid=T["ipallow"]), 142)


def test_tokens_blocked_is_198_but_basic_works(pombo):
    """§2: tokens_blocked → 198 `tokens blockeds` for tokens; its users' HTTP Basic still works."""
    expect_reject(_send(pombo, ip=pombo.fresh_ip(), tsid=T["blocked"]), 198)
    d = pombo.dest()
    expect(_send(pombo, basic=USERS["bloq"], dest=d), 0)
    assert len(pombo.wait_sent("kannel", "55" + d)) == 1


def test_ip_trials_exceeded_131(pombo):
    """§2: after 20 failed attempts from an IP in 10 min, even good credentials get 131;
    other IPs are unaffected."""
    ip = pombo.fresh_ip()
    for _ in range(20):
        expect_reject(_send(pombo, ip=ip), 100)
    expect_reject(_send(pombo, ip=ip, tsid=T["velip"]), 131)
    expect_reject(_send(pombo, ip=ip, tsid=T["velip"]), 131)
    expect(_send(pombo, ip=pombo.fresh_ip(), tsid=T["velip"]), 0)


def test_user_trials_exceeded_132(pombo):
    """§2: after 5 failed password attempts for a username (from any IPs), even the right
    password gets 132 — per username as typed, known or not."""
    user, pw = USERS["trial"]
    for _ in range(5):
        expect_reject(_send(pombo, ip=pombo.fresh_ip(), basic=(user, "bad")), 140)
    expect_reject(_send(pombo, ip=pombo.fresh_ip(), basic=(user, pw)), 132)
    for _ in range(5):
        expect_reject(_send(pombo, ip=pombo.fresh_ip(), basic=("ghost-e2e-user", "bad")), 140)
    expect_reject(_send(pombo, ip=pombo.fresh_ip(), basic=("ghost-e2e-user", "bad")), 132)
    # a token of the same customer is not affected
    expect(_send(pombo, ip=pombo.fresh_ip(), tsid=T["wavy"]), 0)


def test_ip_blocked_199_after_15_sid_not_found(pombo):
    """§2: 15 code-102 answers in 10 min put the IP on the permanent block list → 199."""
    ip = pombo.fresh_ip()
    for _ in range(15):
        expect_reject(_send(pombo, ip=ip, tsid=BAD_TOKEN), 102)
    expect_reject(_send(pombo, ip=ip, tsid=T["velip"]), 199)
    expect(pombo.api("GetBalance", T["velip"], _kw={"ip": ip}), 199)


def test_block_precedence_199_over_131(pombo):
    """§2: when several apply, 199 wins over 131."""
    ip = pombo.fresh_ip()
    for _ in range(5):
        expect_reject(_send(pombo, ip=ip), 100)
    for _ in range(15):
        expect_reject(_send(pombo, ip=ip, tsid=BAD_TOKEN), 102)
    expect_reject(_send(pombo, ip=ip, tsid=T["velip"]), 199)


def test_block_precedence_131_over_132(pombo):
    """§2: when both the IP (131) and the username (132) are blocked, 131 wins."""
    ip = pombo.fresh_ip()
    name = "ghost-e2e-precedence"
    for _ in range(5):
        expect_reject(_send(pombo, ip=ip, basic=(name, "bad")), 140)
    for _ in range(15):
        expect_reject(_send(pombo, ip=ip), 100)
    expect_reject(_send(pombo, ip=ip, basic=(name, "bad")), 131)
    expect_reject(_send(pombo, ip=pombo.fresh_ip(), basic=(name, "bad")), 132)


# ----------------------------------------------------------------------------------------------
# GetUserID
# ----------------------------------------------------------------------------------------------


def test_getuserid_with_token(pombo):
    """§1 GetUserID: a token introspects to its customer, cdcsu_id "0", rights as strings,
    tsid null."""
    r = pombo.api("GetUserID", T["velip"])
    ret = expect(r, 0)
    assert ret["cdcs_id"] == "13"
    assert ret["cdcsu_id"] == "0"
    for k in ("aut_app", "aut_send", "aut_camp"):
        assert ret[k] in ("0", "1"), ret
    assert ret["aut_send"] == "1"
    assert "tsid" in ret and ret["tsid"] is None, ret


def test_getuserid_with_basic(pombo):
    """§1 GetUserID: HTTP Basic introspects the user (its id, its customer), tsid null."""
    r = pombo.api("GetUserID", None, _kw={"basic": USERS["loja"]})
    ret = expect(r, 0)
    assert ret["cdcs_id"] == "11"
    assert re.fullmatch(r"[1-9][0-9]*", ret["cdcsu_id"]), ret
    assert ret["aut_send"] == "1"
    assert ret["tsid"] is None


def test_getuserid_issues_working_token(pombo):
    """§1 GetUserID: HTTP Basic + tsid=1 issues a new token (10–64 chars) that works."""
    r = pombo.api("GetUserID", None, tsid="1", _kw={"basic": USERS["loja"]})
    ret = expect(r, 0)
    tok = ret["tsid"]
    assert isinstance(tok, str) and 10 <= len(tok) <= 64, ret
    assert ret["cdcs_id"] == "11"
    d = pombo.dest()
    expect(pombo.send(tok, d, "issued token"), 0)
    assert len(pombo.wait_sent("wavy", "55" + d)) == 1
    again = expect(pombo.api("GetUserID", tok), 0)
    assert again["cdcs_id"] == "11" and again["aut_send"] == "1" and again["tsid"] is None
    # a second issue gives a different token
    r2 = pombo.api("GetUserID", None, tsid="1", _kw={"basic": USERS["loja"]})
    assert expect(r2, 0)["tsid"] != tok


def test_issued_token_carries_user_rights(pombo):
    """§1 GetUserID: a token issued for a user without send carries that user's rights → 123."""
    r = pombo.api("GetUserID", None, tsid="1", _kw={"basic": USERS["viewer"]})
    tok = expect(r, 0)["tsid"]
    assert isinstance(tok, str) and 10 <= len(tok) <= 64
    assert expect(pombo.api("GetUserID", tok), 0)["aut_send"] == "0"
    expect_reject(pombo.send(tok, pombo.dest(), "no rights"), 123)


def test_getuserid_wrong_password_140(pombo):
    """§2: GetUserID with a wrong Basic password → 140, no token."""
    r = pombo.api("GetUserID", None, tsid="1",
                  _kw={"basic": (USERS["loja"][0], "nope"), "ip": pombo.fresh_ip()})
    ret = expect(r, 140)
    assert not ret.get("tsid")


def test_token_issued_for_tokens_blocked_customer_is_blocked(pombo):
    """§2: tokens_blocked disables *all* the customer's tokens, including one issued through
    GetUserID (if one is issued at all)."""
    r = pombo.api("GetUserID", None, tsid="1", _kw={"basic": USERS["bloq"]})
    tok = r.ret.get("tsid") if r.json else None
    if tok:
        expect_reject(pombo.send(tok, pombo.dest(), "bloqueado", _kw={"ip": pombo.fresh_ip()}),
                      198)
