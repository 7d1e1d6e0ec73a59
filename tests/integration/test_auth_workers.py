"""Brute-force blocks across worker processes sharing one database (SPEC §2).

Each worker keeps a cached set of suspect IPs/usernames so clean requests cost no query. These
tests freeze the clock so that the time-based refresh never fires: whatever a worker learns about
another worker's failures comes from the exact checks and, on PostgreSQL, NOTIFY pombo_auth.
"""

from __future__ import annotations

import asyncio

import pytest

from pombo.adapters.sql.factory import open_store
from pombo.domain import codes
from pombo.domain.codes import Rejection
from pombo.domain.model import Principal
from pombo.services.auth import Authenticator, Credentials
from tests.integration.gateway import TOKEN, provision, provisioning

pytestmark = pytest.mark.asyncio


class FrozenClock:
    def __init__(self, at: float) -> None:
        self.at = at

    def now(self) -> float:
        return self.at


def _code(result: Principal | Rejection) -> int:
    return result.code if isinstance(result, Rejection) else 0


async def _workers(database_url: str):  # type: ignore[no-untyped-def]
    provision(database_url, provisioning("http://127.0.0.1:9"))
    clock = FrozenClock(1_800_000_000.0)
    stores = [await open_store(database_url), await open_store(database_url)]
    return clock, stores, [Authenticator(s, clock=clock) for s in stores]


async def _auth(auth: Authenticator, store, ip: str, *, token: str | None = None, basic=None) -> int:  # type: ignore[no-untyped-def]
    creds = Credentials(token=token, basic=basic, ip=ip)
    return _code(await auth.authenticate(creds, await store.catalog(), need_send=True))


async def test_a_failure_on_another_worker_sees_the_block_at_once(database_url: str) -> None:
    """A's failures block the username; B's very next failed attempt answers 132, not 140."""
    _, stores, (a, b) = await _workers(database_url)
    try:
        # B has just read its (empty) suspects: nothing prompts it to look again
        assert await _auth(b, stores[1], "10.1.0.9", token=TOKEN) == 0
        for _ in range(5):
            assert await _auth(a, stores[0], "10.1.0.1", basic=("ghost", "bad")) == codes.INVALID_USER_PASS
        assert await _auth(b, stores[1], "10.1.0.2", basic=("ghost", "bad")) == codes.USER_TRIALS_EXCEEDED
        for _ in range(20):
            assert await _auth(a, stores[0], "10.1.0.3") == codes.FAIL_AUTHENTICATION
        assert await _auth(b, stores[1], "10.1.0.3", basic=("ghost", "bad")) == codes.IP_TRIALS_EXCEEDED
    finally:
        for store in stores:
            await store.close()


async def test_a_valid_caller_on_another_worker_is_blocked_after_notify(pg_database: str) -> None:
    """PostgreSQL: A's failures reach B by NOTIFY, so even valid credentials from that IP get 131."""
    from tests.conftest import _empty_pg

    _empty_pg(pg_database)
    _, stores, (a, b) = await _workers(pg_database)
    try:
        assert await _auth(b, stores[1], "10.2.0.1", token=TOKEN) == 0
        before = stores[1].auth_version()
        for _ in range(20):
            assert await _auth(a, stores[0], "10.2.0.1") == codes.FAIL_AUTHENTICATION
        for _ in range(200):  # the notification travels asynchronously; it takes milliseconds
            if stores[1].auth_version() != before:
                break
            await asyncio.sleep(0.01)
        assert stores[1].auth_version() != before, "no NOTIFY pombo_auth reached the other worker"
        assert await _auth(b, stores[1], "10.2.0.1", token=TOKEN) == codes.IP_TRIALS_EXCEEDED
        assert await _auth(b, stores[1], "10.2.0.2", token=TOKEN) == 0
    finally:
        for store in stores:
            await store.close()
