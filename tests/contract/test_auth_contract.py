"""Brute-force counters (SPEC §2): 199 > 131 > 132, their windows and the permanent block."""

from __future__ import annotations

import pytest

from pombo.domain import codes
from pombo.ports import AuthPolicy, Store
from tests.contract.conftest import T0, operate

POLICY = AuthPolicy(ip_limit=3, ip_window=60, user_limit=2, user_window=60, block_limit=6, block_window=3600,
                    sid_limit=4, sid_window=60, pass_limit=4, pass_window=1800)
A, B = "203.0.113.1", "203.0.113.2"


async def fail(store: Store, ip: str, *, username: str | None = None, code: int = codes.INVALID_USER_PASS,
               now: float = T0, times: int = 1) -> None:
    for _ in range(times):
        await store.record_auth_failure(ip=ip, username=username, code=code, policy=POLICY, now=now)


async def block(store: Store, ip: str, username: str | None = None, now: float = T0) -> int | None:
    return await store.auth_block(ip=ip, username=username, policy=POLICY, now=now)


async def test_nothing_blocked_at_first(store: Store) -> None:
    assert await block(store, A, "ana") is None
    assert await store.auth_suspects(since=0) == {}


@pytest.mark.parametrize(("failures", "expected"), [(2, None), (3, codes.IP_TRIALS_EXCEEDED)])
async def test_ip_limit_exactly(store: Store, failures: int, expected: int | None) -> None:
    await fail(store, A, code=codes.FAIL_AUTHENTICATION, times=failures)
    assert await block(store, A) == expected
    assert await block(store, B) is None


async def test_user_limit_counts_only_wrong_passwords_of_that_user(store: Store) -> None:
    await fail(store, A, username="ana", code=codes.FAIL_AUTHENTICATION)  # not a wrong password
    await fail(store, B, username="ana")
    assert await block(store, "198.51.100.9", "ana") is None
    await fail(store, A, username="ana")  # two wrong passwords, from two IPs
    assert await block(store, "198.51.100.9", "ana") == codes.USER_TRIALS_EXCEEDED
    assert await block(store, "198.51.100.9", "bia") is None
    assert await block(store, "198.51.100.9", None) is None


async def test_the_order_199_131_132(store: Store) -> None:
    await fail(store, A, username="ana", times=2)
    assert await block(store, A, "ana") == codes.USER_TRIALS_EXCEEDED
    await fail(store, A)
    assert await block(store, A, "ana") == codes.IP_TRIALS_EXCEEDED
    await fail(store, A, code=codes.SID_NOT_FOUND, times=4)  # 4 unknown tokens in 60 s: blocked for good
    assert await block(store, A, "ana") == codes.IP_BLOCKED


@pytest.mark.parametrize(("age", "counted"), [(59, True), (60, True), (60.5, False)])
async def test_windows_include_their_start(store: Store, age: float, counted: bool) -> None:
    await fail(store, A, username="ana", times=3, now=T0 - age)
    assert await block(store, A, "ana") == (codes.IP_TRIALS_EXCEEDED if counted else None)


async def test_permanent_block_past_the_hourly_threshold(store: Store) -> None:
    for i in range(5):  # spread out: never 3 inside one minute, never 4 wrong passwords in 30 min
        await fail(store, A, code=codes.FAIL_AUTHENTICATION if i % 2 else codes.INVALID_USER_PASS,
                   now=T0 + 100 * i)
    assert await block(store, A, now=T0 + 1000) is None
    await fail(store, A, now=T0 + 600)  # the 6th within an hour
    assert await block(store, A, now=T0 + 10**6) == codes.IP_BLOCKED  # for good
    [row] = [r for r in await operate(store, "ip_report", since=T0 + 300) if r["ip"] == A]
    assert (row["blocked"], row["blocked_at"], row["recent_failures"]) == (True, T0 + 600, 3)
    assert row["reason"] == "6 failures in 3600s, 0 unknown tokens, 4 wrong passwords"


async def test_sid_threshold_and_unblock(store: Store) -> None:
    await fail(store, A, code=codes.SID_NOT_FOUND, times=3, now=T0)
    await fail(store, A, code=codes.SID_NOT_FOUND, now=T0 + 61)  # the first three are out of the window
    assert await block(store, A, now=T0 + 1000) is None
    await fail(store, A, code=codes.SID_NOT_FOUND, times=3, now=T0 + 62)
    assert await block(store, A, now=T0 + 1000) == codes.IP_BLOCKED
    await fail(store, A, code=codes.SID_NOT_FOUND, now=T0 + 63)  # blocked already: one block row
    assert await operate(store, "unblock_ip", ip=A) == 1 + 8
    assert await operate(store, "unblock_ip", ip=A) == 0
    assert await block(store, A, now=T0 + 1000) is None
    assert await operate(store, "ip_report", since=0) == []


async def test_suspects_and_the_report(store: Store) -> None:
    await fail(store, A, username="ana", now=T0 - 100)
    await fail(store, B, username=None, now=T0)
    await fail(store, "192.0.2.7", code=codes.SID_NOT_FOUND, times=4, now=T0 - 500)
    inf = float("inf")
    assert await store.auth_suspects(since=T0 - 10) == {B: T0, "192.0.2.7": inf}  # recent, and blocked
    assert await store.auth_suspects(since=T0 - 1000) == {A: T0 - 100, "ana": T0 - 100, B: T0, "192.0.2.7": inf}
    # only the blocks added since a moment (the suspects' incremental read)
    assert await store.auth_suspects(since=T0 - 10, blocked_since=T0 - 499) == {B: T0}
    assert await store.auth_suspects(since=T0 - 10, blocked_since=T0 - 500) == {B: T0, "192.0.2.7": inf}
    report = await operate(store, "ip_report", since=T0 - 200)
    assert [(r["ip"], r["blocked"], r["recent_failures"]) for r in report] == [
        ("192.0.2.7", True, 0), (A, False, 1), (B, False, 1)]
    assert isinstance(store.auth_version(), int)


async def test_wrong_passwords_block_for_good_past_their_own_threshold(store: Store) -> None:
    """SPEC §2: 50 code-140 answers in 60 min (here 4 in 30 min), whatever else the IP did."""
    for i in range(3):  # 3 wrong passwords, 500 s apart: never 3 failures inside one minute
        await fail(store, A, username="ana", now=T0 + 500 * i)
    await fail(store, A, code=codes.FAIL_AUTHENTICATION, now=T0 + 1600)  # not a wrong password
    await fail(store, B, username="ana", now=T0 + 1700)  # another IP's
    assert await block(store, A, now=T0 + 1800) is None
    await fail(store, A, username="bia", now=T0 + 1799)  # the 4th within 30 min (the first at T0)
    assert await block(store, A, now=T0 + 10**6) == codes.IP_BLOCKED
    assert await block(store, B, now=T0 + 1800) is None
    [row] = [r for r in await operate(store, "ip_report", since=0) if r["ip"] == A]
    assert row["reason"] == "5 failures in 3600s, 0 unknown tokens, 4 wrong passwords"


async def test_wrong_passwords_outside_their_window_do_not_block(store: Store) -> None:
    await fail(store, A, username="ana", now=T0)
    for i in range(3):
        await fail(store, A, username="ana", now=T0 + 1801 + 200 * i)  # the first is out of the window
    assert await block(store, A, now=T0 + 10**6) is None


async def test_suspects_carry_the_latest_failure_of_each(store: Store) -> None:
    await fail(store, A, username="ana", now=T0 - 50)
    await fail(store, A, username="bia", now=T0 - 20)
    await fail(store, B, username="ana", now=T0 - 30)
    assert await store.auth_suspects(since=T0 - 60) == {A: T0 - 20, B: T0 - 30, "ana": T0 - 30, "bia": T0 - 20}
    assert await store.auth_suspects(since=T0 - 25) == {A: T0 - 20, "bia": T0 - 20}


async def test_prune_forgets_old_failures_and_keeps_blocks(store: Store) -> None:
    await fail(store, "192.0.2.7", code=codes.SID_NOT_FOUND, times=4, now=T0 - 7200)  # blocked for good
    await fail(store, A, username="ana", times=2, now=T0 - 3601)
    await fail(store, A, username="ana", now=T0 - 3600)
    await fail(store, B, now=T0)
    assert await operate(store, "prune_auth_failures", before=T0 - 3600) == 6
    assert await operate(store, "prune_auth_failures", before=T0 - 3600) == 0
    assert await store.auth_suspects(since=0) == {A: T0 - 3600, "ana": T0 - 3600, B: T0, "192.0.2.7": float("inf")}
    assert await block(store, "192.0.2.7", now=T0) == codes.IP_BLOCKED
    report = await operate(store, "ip_report", since=0)
    assert [(r["ip"], r["blocked"], r["recent_failures"]) for r in report] == [
        ("192.0.2.7", True, 0), (A, False, 1), (B, False, 1)]
