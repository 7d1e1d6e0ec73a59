"""Password checks (scrypt) run off the event loop, and an unknown username costs as much as a
wrong password (issue 15, item 4): the API's HTTP Basic and the console's login."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from pombo.adapters.memory import MemoryStore
from pombo.domain import codes, credentials
from pombo.ports import OperatorAccount
from pombo.services.operator import Operator
from tests.unit.services.conftest import (
    FakeClock,
    World,
    WorldMaker,
    base_document,
    creds,
    customer,
)


@pytest.fixture(autouse=True)
def real_scrypt(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The production cost (the suite's conftest lowers it), and a dummy hash made at that cost."""
    monkeypatch.setattr(credentials, "_SCRYPT_N", 2**14)
    credentials.dummy_hash.cache_clear()
    yield
    credentials.dummy_hash.cache_clear()


@pytest.fixture
async def users(worlds: WorldMaker) -> World:
    doc = base_document()
    customer(doc, 11)["users"] = [{"username": "alice", "password": "alice-pw", "send": True},
                                  {"username": "bob", "password": "bob-pw", "send": True}]
    world: World = await worlds(doc)
    return world


class Logins(MemoryStore):
    """The memory store with console operators (the part of Operators the login reads)."""

    def __init__(self) -> None:
        super().__init__()
        self.operators: dict[str, OperatorAccount] = {}

    async def save_operator(self, *, username: str, password_hash: str, now: float) -> bool:
        self.operators[username] = OperatorAccount(len(self.operators) + 1, username, now, password_hash)
        return True

    async def find_operator(self, *, username: str) -> OperatorAccount | None:
        return self.operators.get(username)


async def median_seconds(check: Callable[[int], Awaitable[Any]], times: int = 5) -> float:
    took = []
    for i in range(times):
        start = time.perf_counter()
        await check(i)
        took.append(time.perf_counter() - start)
    return statistics.median(took)


async def basic(world: World, username: str, password: str, ip: str) -> int | None:
    catalog = await world.store.catalog()
    found = await world.authenticator.authenticate(creds(None, basic=(username, password), ip=ip), catalog,
                                                   need_send=False)
    return getattr(found, "code", None)


async def test_an_unknown_username_costs_what_a_wrong_password_costs(users: World) -> None:
    await basic(users, "warm-up", "x", "192.0.2.99")  # the dummy hash is made once, on first use

    async def unknown(i: int) -> None:
        assert await basic(users, f"ghost{i}", "x", f"198.51.100.{i}") == codes.INVALID_USER_PASS

    async def wrong(i: int) -> None:
        assert await basic(users, "alice", f"bad{i}", f"192.0.2.{i}") == codes.INVALID_USER_PASS

    wrong_s, unknown_s = await median_seconds(wrong), await median_seconds(unknown)
    assert wrong_s > 0.002  # the KDF really ran (scrypt at N=2**14 takes tens of ms)
    assert 1 / 3 < unknown_s / wrong_s < 3, (unknown_s, wrong_s)
    right = await users.authenticator.authenticate(creds(None, basic=("bob", "bob-pw")),
                                                   await users.store.catalog(), need_send=False)
    assert getattr(right, "user_id", None) is not None  # the right password still works


async def test_the_console_login_costs_the_same_for_unknown_names() -> None:
    operator = Operator(store=Logins(), clock=FakeClock())
    await operator.add_operator(username="admin", password="admin-password")
    await operator.verify_operator(username="warm-up", password="x")

    async def unknown(i: int) -> None:
        assert await operator.verify_operator(username=f"ghost{i}", password="x") is None

    async def wrong(i: int) -> None:
        assert await operator.verify_operator(username="admin", password=f"bad{i}") is None

    wrong_s, unknown_s = await median_seconds(wrong), await median_seconds(unknown)
    assert 1 / 3 < unknown_s / wrong_s < 3, (unknown_s, wrong_s)
    assert await operator.verify_operator(username="admin", password="admin-password") is not None


async def ticking_while(work: Awaitable[Any]) -> tuple[float, int, float]:
    """(longest gap between ticks of a 10 ms ticker, ticks, seconds) while `work` runs."""
    ticks: list[float] = [time.perf_counter()]
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            await asyncio.sleep(0.01)
            ticks.append(time.perf_counter())

    task = asyncio.create_task(ticker())
    start = time.perf_counter()
    await work
    took = time.perf_counter() - start
    done.set()
    await task
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    return max(gaps), len(ticks), took


async def test_the_event_loop_keeps_running_during_password_checks(users: World) -> None:
    one = await median_seconds(lambda i: basic(users, "alice", f"solo{i}", f"203.0.113.{i}"), times=1)
    checks = asyncio.gather(*(basic(users, "alice" if i < 2 else f"ghost{i}", f"bad{i}", f"198.51.100.{i}")
                              for i in range(5)))
    longest, ticks, took = await ticking_while(checks)
    # on the loop, 5 checks would stall it for their whole time (each ~`one`) and no tick would come
    assert took > 2 * one * 0.5
    assert longest < max(0.6 * one, 0.05), (longest, one)
    assert ticks >= took / 0.01 / 4, (ticks, took)


async def test_the_console_login_leaves_the_loop_running() -> None:
    operator = Operator(store=Logins(), clock=FakeClock())
    await operator.add_operator(username="admin", password="admin-password")
    start = time.perf_counter()
    await operator.verify_operator(username="admin", password="nope")
    one = time.perf_counter() - start
    logins = asyncio.gather(*(operator.verify_operator(username="admin", password=f"bad{i}") for i in range(5)))
    longest, _ticks, _took = await ticking_while(logins)
    assert longest < max(0.6 * one, 0.05), (longest, one)


@pytest.mark.parametrize(
    ("username", "password", "code"),
    [("alice", "alice-pw", None), ("alice", "wrong-pw", codes.INVALID_USER_PASS),
     ("ghost", "alice-pw", codes.INVALID_USER_PASS)],
)
async def test_one_password_check_serves_the_same_credentials_asked_at_once(
    users: World, monkeypatch: pytest.MonkeyPatch, username: str, password: str, code: int | None
) -> None:
    # a client opening its connections at once with the same HTTP Basic pays one KDF, not one
    # each, and every one of them gets the answer; a known and an unknown name alike (the time
    # tells nothing). Four: under the brute-force rule's count of failures per name
    await basic(users, "warm-up", "x", "192.0.2.99")  # the dummy hash is made once, on first use
    kdf_runs: list[str] = []
    real = credentials.verify_password

    def counted(given: str, encoded: str) -> bool:
        kdf_runs.append(given)
        return real(given, encoded)

    monkeypatch.setattr(credentials, "verify_password", counted)
    answers = await asyncio.gather(*(basic(users, username, password, f"203.0.113.{i}") for i in range(4)))
    assert len(kdf_runs) == 1
    assert answers == [code] * 4
    if code is None:
        assert await basic(users, username, password, "203.0.113.99") is None
        assert len(kdf_runs) == 1  # a good pair is remembered
