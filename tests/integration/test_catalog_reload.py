"""The configuration snapshot on the SQL stores (issue 15, item 3): a full reload runs on a thread,
never on the event loop, and callers arriving meanwhile share it; a token change rereads only the
tokens changed since the version a process has seen, also when another process made it."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from pombo.adapters.sql import migrate
from pombo.adapters.sql import snapshot as sql_store
from pombo.adapters.sql.factory import open_store
from pombo.domain import credentials
from pombo.services.provisioning import parse_document

DOC = {
    "connections": [{"name": "sim", "kind": "simulator"}],
    "customers": [{"id": 11, "name": "Loja", "sms_provider": "sim", "tokens": ["tok-shop-0000000001"],
                   "users": [{"username": "ana", "password": "pw-ana"}]}],
    "tariffs": [{"customer": 11, "prefix": "55", "value": "0.0800"}],
}


async def test_a_full_reload_runs_on_a_thread_and_is_shared(database_url: str, monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    migrate.upgrade(database_url)
    store: Any = await open_store(database_url)
    loads: list[str] = []
    real = sql_store.load_catalog

    def counted(engine: Any) -> Any:
        loads.append(threading.current_thread().name)
        return real(engine)

    monkeypatch.setattr(sql_store, "load_catalog", counted)
    try:
        await store.provision(parse_document(DOC), now=1.7e9)  # a configuration change: reload
        catalogs = await asyncio.gather(*(store.catalog() for _ in range(20)))
        assert len(loads) == 1, loads  # twenty callers, one reload
        assert loads[0] != threading.main_thread().name  # not on the event loop's thread
        assert all(c is catalogs[0] for c in catalogs) and 11 in catalogs[0].customers
    finally:
        await store.close()


async def test_another_process_token_changes_arrive_without_a_reload(database_url: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    migrate.upgrade(database_url)
    one: Any = await open_store(database_url)
    two: Any = await open_store(database_url)  # another process, as far as the snapshot goes
    try:
        await one.provision(parse_document(DOC), now=1.7e9)
        before = await two.catalog()
        ana = before.users_by_name["ana"].id
        monkeypatch.setattr(sql_store, "load_catalog", _no_reload)
        minted = await one.mint_token(customer_id=11, user_id=ana, keep=1, ttl=60, now=1.7e9)
        issued = await one.issue_token(customer_id=11, user_id=None, now=1.7e9)
        two.invalidate()  # what NOTIFY pombo_tokens (PostgreSQL) or the 5 ms check (SQLite) does
        after = await _settled(two, lambda c: credentials.hash_token(issued) in c.tokens)
        assert credentials.hash_token(minted) in after.tokens and after.customers is before.customers
        assert after.tokens[credentials.hash_token(minted)].expires_at == 1.7e9 + 60
        again = await one.mint_token(customer_id=11, user_id=ana, keep=1, ttl=60, now=1.7e9 + 1)
        await one.revoke_token(token_or_prefix=issued, now=1.7e9)
        two.invalidate()
        last = await _settled(two, lambda c: credentials.hash_token(issued) not in c.tokens)
        assert credentials.hash_token(minted) not in last.tokens  # the cap revoked it
        assert credentials.hash_token(again) in last.tokens and last.customers is before.customers
    finally:
        await one.close()
        await two.close()


def _no_reload(engine: Any) -> Any:
    raise AssertionError("a token change must not reload the whole catalog")


async def _settled(store: Any, done: Any) -> Any:
    for _ in range(100):
        catalog = await store.catalog()
        if done(catalog):
            return catalog
        await asyncio.sleep(0.02)
        store.invalidate()
    raise AssertionError("the change never arrived")


async def test_another_process_change_is_seen_without_invalidate_and_quiet_costs_no_query(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every 5 ms a process looks whether the configuration changed. On SQLite it first asks
    data_version, which moves only when another connection commits: while nobody else writes,
    the versions query is not run at all; a token issued by another process still arrives."""
    migrate.upgrade(database_url)
    one: Any = await open_store(database_url)
    two: Any = await open_store(database_url)
    try:
        await one.provision(parse_document(DOC), now=1.7e9)
        await _settled(two, lambda c: 11 in c.customers)
        reads: list[str] = []
        real = two.x.fetchall

        async def counted(sql: str, args: Any = ()) -> Any:
            reads.append(sql)
            return await real(sql, args)

        monkeypatch.setattr(two.x, "fetchall", counted)
        for _ in range(5):
            await asyncio.sleep(two.catalog_check_every * 2)
            await two.catalog()
        if database_url.startswith("sqlite"):
            assert reads == []  # quiet: no versions query (PostgreSQL looks by its own rules)
        issued = await one.issue_token(customer_id=11, user_id=None, now=1.7e9)
        for _ in range(50):  # no invalidate(): only the 5 ms look can find it
            await asyncio.sleep(two.catalog_check_every * 2)
            if credentials.hash_token(issued) in (await two.catalog()).tokens:
                break
        else:
            raise AssertionError("another process's token never arrived")
    finally:
        await one.close()
        await two.close()
