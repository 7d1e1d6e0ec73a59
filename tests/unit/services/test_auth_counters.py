"""The brute-force counters stay small and cheap (issue 15, item 2): old failures are pruned, and
the suspects refresh reads only what changed since its last look."""

from __future__ import annotations

import pytest

from pombo.adapters.memory import MemoryStore
from pombo.domain import codes
from pombo.domain.codes import Rejection
from pombo.ports import AuthPolicy
from pombo.services import auth as auth_service
from pombo.services.auth import Authenticator
from pombo.services.operator import Operator
from tests.unit.services.conftest import NOON, FakeClock, creds

OTHER_WORKER_IP = "198.51.100.66"


class Recording(MemoryStore):
    """The memory store, remembering each suspects read it was asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[tuple[float, float | None]] = []

    async def auth_suspects(self, *, since: float, blocked_since: float | None = None) -> dict[str, float]:
        self.reads.append((since, blocked_since))
        return await super().auth_suspects(since=since, blocked_since=blocked_since)


async def attempt(authenticator: Authenticator, store: MemoryStore, ip: str) -> int | None:
    found = await authenticator.authenticate(creds("no-such-token", ip=ip), await store.catalog(), need_send=True)
    return found.code if isinstance(found, Rejection) else None


async def test_the_refresh_reads_only_since_its_last_look() -> None:
    store, clock = Recording(), FakeClock()
    authenticator = Authenticator(store, clock=clock)
    await attempt(authenticator, store, "192.0.2.1")
    assert store.reads == [(NOON - 600, None)]  # the first look reads the whole window
    clock.advance(2)
    await attempt(authenticator, store, "192.0.2.1")
    overlap = auth_service.SUSPECTS_OVERLAP
    assert store.reads[-1] == (NOON - overlap, NOON - overlap)  # since the last look, less the overlap
    clock.advance(auth_service.SUSPECTS_FULL_EVERY)
    await attempt(authenticator, store, "192.0.2.1")
    assert store.reads[-1] == (clock.now() - 600, None)  # and the whole window now and then


async def test_another_workers_failures_and_blocks_are_seen_by_the_incremental_read() -> None:
    store, clock = Recording(), FakeClock()
    authenticator = Authenticator(store, clock=clock, policy=AuthPolicy(sid_limit=3))
    await attempt(authenticator, store, "192.0.2.1")
    for _ in range(3):  # another worker blocks this IP for good meanwhile
        await store.record_auth_failure(ip=OTHER_WORKER_IP, username=None, code=codes.SID_NOT_FOUND,
                                        policy=AuthPolicy(sid_limit=3), now=clock.now())
    clock.advance(2)
    await attempt(authenticator, store, "192.0.2.1")
    assert store.reads[-1][1] is not None  # an incremental read
    assert authenticator._suspects[OTHER_WORKER_IP] == float("inf")
    clock.advance(700)  # past every window: failures drop out, the block stays
    for _ in range(int(auth_service.SUSPECTS_FULL_EVERY) // 10):
        await attempt(authenticator, store, "192.0.2.2")
        clock.advance(2)
    assert OTHER_WORKER_IP in authenticator._suspects and "192.0.2.1" not in authenticator._suspects


async def test_operator_prunes_only_past_the_longest_window() -> None:
    store, clock = MemoryStore(), FakeClock()
    operator = Operator(store=store, clock=clock)
    policy = AuthPolicy()
    for age in (3601, 3599, 10):
        await store.record_auth_failure(ip="192.0.2.1", username="ana", code=codes.INVALID_USER_PASS,
                                        policy=policy, now=clock.now() - age)
    assert await operator.prune_auth_failures(older_than=60) == 1  # never inside the 60-minute window
    assert [f["created_at"] for f in store.t.auth_failures] == [NOON - 3599, NOON - 10]
    clock.advance(3000)
    assert await operator.prune_auth_failures() == 1


async def test_a_running_server_prunes_old_failures_in_the_background() -> None:
    import asyncio

    from pombo.bootstrap import build_services
    from pombo.config import Settings

    store, clock = MemoryStore(), FakeClock()
    await store.record_auth_failure(ip="192.0.2.1", username=None, code=codes.SID_NOT_FOUND,
                                    policy=AuthPolicy(), now=clock.now() - 7200)
    await store.record_auth_failure(ip="192.0.2.2", username=None, code=codes.SID_NOT_FOUND,
                                    policy=AuthPolicy(), now=clock.now())
    services = await build_services(Settings(log_json=False), clock=clock, store=store)
    try:
        for _ in range(100):  # the pass runs at start, then every AUTH_PRUNE_EVERY seconds
            if len(store.t.auth_failures) == 1:
                break
            await asyncio.sleep(0.01)
        assert [f["ip"] for f in store.t.auth_failures] == ["192.0.2.2"]
    finally:
        await services.aclose()


async def test_a_failed_read_does_not_move_the_next_one_forward() -> None:
    from pombo.errors import StoreUnavailable

    class Flaky(Recording):
        fail_next = False

        async def auth_suspects(self, *, since: float, blocked_since: float | None = None) -> dict[str, float]:
            if self.fail_next:
                self.fail_next = False
                raise StoreUnavailable("database unavailable: test")
            return await super().auth_suspects(since=since, blocked_since=blocked_since)

    store, clock = Flaky(), FakeClock()
    authenticator = Authenticator(store, clock=clock)
    await attempt(authenticator, store, "192.0.2.1")
    clock.advance(20)
    store.fail_next = True
    with pytest.raises(StoreUnavailable):
        await attempt(authenticator, store, "192.0.2.1")
    clock.advance(20)
    await attempt(authenticator, store, "192.0.2.1")
    overlap = auth_service.SUSPECTS_OVERLAP
    assert store.reads[-1] == (NOON - overlap, NOON - overlap)  # from the last read that happened
