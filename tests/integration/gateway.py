"""A gateway wired on a real SQLite file, its connections pointing at a FakeUpstream."""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine

from pombo.adapters.sql import migrate
from pombo.adapters.sql.factory import open_store
from pombo.adapters.sql.provision import apply_provisioning
from pombo.adapters.sql.store import SqlStore
from pombo.bootstrap import Services, build_services
from pombo.config import Settings
from pombo.services.auth import Credentials
from pombo.services.make_sms import SendResult
from pombo.services.provisioning import parse_document

TOKEN = "tok-shop-0000000001"
RESELLER_TOKEN = "tok-resel-000000001"


def provisioning(upstream_url: str, *, shop_balance: str = "20.00", reseller_balance: str = "500.00",
                 ack_timeout: float = 2.0, final_timeout: float = 5.0) -> dict[str, Any]:
    """Connections of every kind at the fake upstream, a reseller and a shop under it."""
    timeouts = {"ack_timeout": ack_timeout, "final_timeout": final_timeout}
    return {
        "connections": [
            {"name": "velip", "kind": "kannel", "url": upstream_url, "username": "u", "password": "p", **timeouts},
            {"name": "wavy", "kind": "wavy", "url": upstream_url, "username": "u", "token": "t", **timeouts},
            {"name": "tww", "kind": "tww", "url": upstream_url + "/reluzcap/wsreluzcap.asmx", "username": "NUMUSU", "password": "SENHA", **timeouts},
            {"name": "matrix", "kind": "http", "url": upstream_url, "method": "POST", "path": "/api/send",
             "json": {"to": "{dest}", "body": "{text}", "ref": "{id}"}, "ok": '"status"\\s*:\\s*"ok"',
             "id": '"id"\\s*:\\s*"([^"]+)"', **timeouts},
        ],
        "costs": [{"connection": "velip", "prefix": "55", "cost": "0.0100"}],
        "customers": [
            {"id": 10, "name": "Revenda", "balance": reseller_balance, "tokens": [RESELLER_TOKEN]},
            {"id": 11, "name": "Loja", "parent": 10, "balance": shop_balance, "tokens": [TOKEN]},
        ],
        "tariffs": [
            {"customer": 10, "prefix": "55", "value": "0.0500"},
            {"customer": 11, "prefix": "55", "value": "0.0800"},
        ],
    }


def provision(database_url: str, doc: dict[str, Any]) -> None:
    """Migrate and apply a provisioning document, as `pombo load` does."""
    migrate.upgrade(database_url)
    engine = create_engine(migrate.sqlalchemy_url(database_url))
    with engine.begin() as conn:
        apply_provisioning(conn, parse_document(doc))
    engine.dispose()


async def open_gateway(database_url: str, doc: dict[str, Any], **settings: Any) -> Services:
    """Services for an empty database (see tests/conftest.py) provisioned with `doc`."""
    provision(database_url, doc)
    store = await open_store(database_url)
    return await build_services(Settings(database_url=database_url, **settings), store=store)


async def send(services: Services, token: str = TOKEN, **params: str) -> SendResult:
    """One MakeSMS as an API call would make it."""
    return await services.make_sms(params=params, creds=Credentials(token=token, basic=None, ip="127.0.0.1"))


async def assert_ledger_balanced(services: Services) -> None:
    """Every balance equals the sum of its ledger rows."""
    store = services.store
    assert isinstance(store, SqlStore)
    for customer_id, balance, ledger in await store.ledger_sums():
        assert balance == ledger, f"customer {customer_id}: balance {balance} != ledger {ledger}"
