"""Authenticator and Accounts over the memory store: credentials, brute-force blocks (SPEC §2),
GetUserID (with token issue) and GetBalance."""

from __future__ import annotations

from typing import Any

import pytest

from pombo.domain import codes
from pombo.domain.codes import Rejection
from pombo.domain.model import Principal
from pombo.ports import AuthPolicy
from tests.unit.services.conftest import (
    IP,
    TOKEN,
    World,
    WorldMaker,
    base_document,
    creds,
    customer,
)

ALICE = ("alice", "alice-pw")
BOB = ("bob", "bob-pw")


def with_users() -> dict[str, Any]:
    doc = base_document()
    customer(doc, 11)["users"] = [{"username": "alice", "password": "alice-pw", "send": True, "app": True},
                                  {"username": "bob", "password": "bob-pw", "send": False},
                                  {"username": "gone", "password": "gone-pw", "send": True, "active": False}]
    doc["customers"] += [{"id": 34, "name": "Blocked", "tokens_blocked": True, "tokens": ["blocked-tok-01"],
                          "users": [{"username": "carol", "password": "carol-pw", "send": True}], "balance": 5},
                         {"id": 33, "name": "Fenced", "ip_allowlist": ["10.0.0.0/8", "2001:db8::/32"],
                          "tokens": ["fenced-token-1"], "balance": 5}]
    return doc


@pytest.fixture
async def users(worlds: WorldMaker) -> World:
    world: World = await worlds(with_users())
    return world


async def auth(world: World, token: str | None = TOKEN, *, basic: tuple[str, str] | None = None, ip: str = IP,
               need_send: bool = True) -> Principal | int:
    catalog = await world.store.catalog()
    found = await world.authenticator.authenticate(creds(token, basic=basic, ip=ip), catalog, need_send=need_send)
    return found.code if isinstance(found, Rejection) else found


# ------------------------------------------------------------------ who is calling


async def test_token_wins_over_basic_and_basic_alone_works(users: World) -> None:
    by_token = await auth(users, TOKEN, basic=("alice", "wrong"))
    assert isinstance(by_token, Principal) and by_token.user_id is None and by_token.customer.id == 11
    assert await auth(users, "unknown-token-9", basic=ALICE) == codes.SID_NOT_FOUND
    by_basic = await auth(users, None, basic=ALICE)
    assert isinstance(by_basic, Principal) and by_basic.user_id is not None and by_basic.aut_app


@pytest.mark.parametrize(
    ("token", "basic", "ip", "need_send", "code"),
    [(None, None, IP, True, 100), (None, ("alice", "nope"), IP, True, 140), (None, ("nobody", "x"), IP, True, 140),
     (None, ("gone", "gone-pw"), IP, True, 140), (None, BOB, IP, True, 123), (None, BOB, IP, False, 0),
     ("fenced-token-1", None, IP, True, 142), ("fenced-token-1", None, "10.9.8.7", True, 0),
     ("fenced-token-1", None, "::ffff:10.0.0.1", True, 0), ("fenced-token-1", None, "2001:db8::1", True, 0),
     ("fenced-token-1", None, "not-an-ip", True, 142),
     ("blocked-tok-01", None, IP, True, 198), (None, ("carol", "carol-pw"), IP, True, 0)],
)
async def test_credentials_table(
    users: World, token: str | None, basic: tuple[str, str] | None, ip: str, need_send: bool, code: int
) -> None:
    found = await auth(users, token, basic=basic, ip=ip, need_send=need_send)
    assert (found if isinstance(found, int) else 0) == code


async def test_tokens_blocked_leaves_basic_working_for_sends(users: World) -> None:
    assert (await users.send(token="blocked-tok-01")).code == codes.TOKENS_BLOCKED
    assert (await users.send(token=None, basic=("carol", "carol-pw"))).code == codes.NO_TARIFF  # got past auth


async def test_a_user_token_follows_its_user(users: World) -> None:
    token = await users.store.issue_token(customer_id=11, user_id=users.store.t.users["gone"].id, now=0)
    assert await auth(users, token) == codes.FAIL_AUTHENTICATION  # its user is inactive


# ------------------------------------------------------------------ brute force (SPEC §2)


async def test_20_failures_from_an_ip_block_it_for_10_minutes_even_with_good_credentials(world: World) -> None:
    for _ in range(20):
        assert await auth(world, None) == codes.FAIL_AUTHENTICATION
    assert await auth(world) == codes.IP_TRIALS_EXCEEDED
    assert await auth(world, None) == codes.IP_TRIALS_EXCEEDED
    assert len(world.store.t.auth_failures) == 20  # answers while blocked are not new failures
    assert isinstance(await auth(world, ip="198.51.100.1"), Principal)  # another IP is fine
    world.clock.advance(601)
    assert isinstance(await auth(world), Principal)


async def test_15_unknown_tokens_block_the_ip_for_good(world: World) -> None:
    for i in range(15):
        assert await auth(world, f"unknown-token-{i:02d}") == codes.SID_NOT_FOUND
    assert await auth(world) == codes.IP_BLOCKED
    world.clock.advance(7 * 86400)
    assert await auth(world) == codes.IP_BLOCKED
    assert (await world.send()).code == codes.IP_BLOCKED
    assert isinstance(await auth(world, ip="198.51.100.1"), Principal)


async def test_100_failures_in_an_hour_block_the_ip_for_good(worlds: WorldMaker) -> None:
    world = await worlds()
    for _ in range(5):
        for _ in range(19):  # under the 10-minute limit each time
            assert await auth(world, None) == codes.FAIL_AUTHENTICATION
        world.clock.advance(601)
    for _ in range(5):
        assert await auth(world, None) == codes.FAIL_AUTHENTICATION
    assert await auth(world) == codes.IP_BLOCKED


async def test_50_wrong_passwords_in_an_hour_block_the_ip_for_good(worlds: WorldMaker) -> None:
    doc = base_document()
    world = await worlds(doc, policy=AuthPolicy(user_limit=1000))
    for _ in range(5):
        for _ in range(10):
            assert await auth(world, None, basic=("nobody", "x")) == codes.INVALID_USER_PASS
        world.clock.advance(601)
    assert await auth(world) == codes.IP_BLOCKED


async def test_5_wrong_passwords_block_the_username_from_any_ip(users: World) -> None:
    for i in range(5):
        assert await auth(users, None, basic=("alice", "bad"), ip=f"198.51.100.{i}") == codes.INVALID_USER_PASS
    assert await auth(users, None, basic=ALICE, ip="192.0.2.50") == codes.USER_TRIALS_EXCEEDED
    assert isinstance(await auth(users, None, basic=("carol", "carol-pw"), ip="192.0.2.50"), Principal)
    assert isinstance(await auth(users, TOKEN, ip="192.0.2.50"), Principal)  # a token is not that username
    users.clock.advance(601)
    assert isinstance(await auth(users, None, basic=ALICE), Principal)


async def test_unknown_usernames_are_counted_as_typed(users: World) -> None:
    for _ in range(5):
        await auth(users, None, basic=("ghost", "x"), ip="198.51.100.9")
    assert await auth(users, None, basic=("ghost", "x"), ip="192.0.2.1") == codes.USER_TRIALS_EXCEEDED


async def test_block_precedence_199_over_131_over_132(users: World) -> None:
    for i in range(5):
        await auth(users, None, basic=("alice", "bad"), ip=f"198.51.100.{i}")
    for _ in range(20):
        await auth(users, None, ip="192.0.2.9")
    assert await auth(users, None, basic=ALICE, ip="192.0.2.9") == codes.IP_TRIALS_EXCEEDED
    for i in range(15):
        await auth(users, f"unknown-token-{i:02d}", ip="192.0.2.10")
    assert await auth(users, None, basic=ALICE, ip="192.0.2.10") == codes.IP_BLOCKED


async def test_smaller_policies_are_honoured(worlds: WorldMaker) -> None:
    world = await worlds(policy=AuthPolicy(ip_limit=2, ip_window=60))
    await auth(world, None)
    await auth(world, None)
    assert await auth(world) == codes.IP_TRIALS_EXCEEDED
    world.clock.advance(61)
    assert isinstance(await auth(world), Principal)


# ------------------------------------------------------------------ GetUserID and GetBalance


async def test_get_user_id_for_a_customer_token(world: World) -> None:
    answer = await world.accounts.get_user_id(params={}, creds=creds())
    assert answer == {"status": "OK", "status_code": "0", "cdcs_id": "11", "cdcsu_id": "0", "aut_app": "1",
                      "aut_send": "1", "aut_camp": "1", "tsid": None}


async def test_tsid_1_issues_a_token_with_the_users_rights_that_then_authenticates(users: World) -> None:
    answer = await users.accounts.get_user_id(params={"tsid": " 1 "}, creds=creds(None, basic=ALICE))
    assert isinstance(answer, dict) and answer["tsid"]
    alice_id = str(users.store.t.users["alice"].id)
    assert (answer["cdcs_id"], answer["cdcsu_id"], answer["aut_app"], answer["aut_send"], answer["aut_camp"]) == (
        "11", alice_id, "1", "1", "0")
    again = await users.accounts.get_user_id(params={}, creds=creds(answer["tsid"]))
    assert isinstance(again, dict) and again["cdcsu_id"] == alice_id and again["tsid"] is None
    assert again["aut_camp"] == "0"
    assert (await users.send(token=answer["tsid"])).code == codes.OK


async def test_tsid_1_needs_basic_and_ignores_a_token(users: World) -> None:
    assert await users.accounts.get_user_id(params={"tsid": "1"}, creds=creds()) == codes.reject(100)
    answer = await users.accounts.get_user_id(params={"tsid": "1"}, creds=creds("unknown-token-1", basic=BOB))
    assert isinstance(answer, dict) and answer["aut_send"] == "0" and answer["tsid"]
    bad = await users.accounts.get_user_id(params={"tsid": "1"}, creds=creds(None, basic=("bob", "nope")))
    assert bad == codes.reject(codes.INVALID_USER_PASS)
    assert len(users.store.t.tokens) == 6  # 5 provisioned + the one issued to bob


async def test_get_user_id_passes_rejections(world: World) -> None:
    assert await world.accounts.get_user_id(params={}, creds=creds("unknown-token-1")) == codes.reject(102)


async def test_get_balance(worlds: WorldMaker) -> None:
    doc = base_document()
    customer(doc, 20).update(balance="12.3456", credit_limit=-5)
    world = await worlds(doc)
    assert await world.accounts.get_balance(creds=creds()) == {
        "status": "OK", "status_code": "0", "balance": "50.0000", "credit_limit": "0.0000"}
    await world.send()
    answer = await world.accounts.get_balance(creds=creds())
    assert isinstance(answer, dict) and answer["balance"] == "49.9500"
    other = await world.accounts.get_balance(creds=creds("other-token-001"))
    assert isinstance(other, dict) and (other["balance"], other["credit_limit"]) == ("12.3456", "-5.0000")
    assert await world.accounts.get_balance(creds=creds(None)) == codes.reject(100)


async def test_minted_tokens_expire_and_a_user_keeps_only_the_newest(users: World) -> None:
    from tests.unit.services.conftest import MINTED_KEEP, MINTED_TTL

    async def mint() -> str:
        answer = await users.accounts.get_user_id(params={"tsid": "1"}, creds=creds(None, basic=ALICE))
        assert isinstance(answer, dict)
        token: str = answer["tsid"]
        return token

    first = await mint()
    assert isinstance(await auth(users, first), Principal)
    users.clock.advance(MINTED_TTL - 1)
    assert isinstance(await auth(users, first), Principal)
    users.clock.advance(1)
    assert await auth(users, first) == codes.SID_NOT_FOUND  # expired
    minted = [await mint() for _ in range(MINTED_KEEP)]
    assert isinstance(await auth(users, minted[0]), Principal)
    newest = await mint()  # one more than the user may keep: its oldest goes
    assert await auth(users, minted[0]) == codes.SID_NOT_FOUND
    assert isinstance(await auth(users, minted[1]), Principal) and isinstance(await auth(users, newest), Principal)
    assert isinstance(await auth(users, TOKEN), Principal)  # tokens from provisioning are not minted ones
