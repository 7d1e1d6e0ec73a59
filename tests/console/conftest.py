"""A live gateway for the console tests: create_app under uvicorn in a thread, on loopback.

Connections are the built-in simulator (no network); `backup` fails destinations in DDD 21.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from pombo import bootstrap
from pombo.adapters.sql import migrate
from pombo.config import Settings
from tests import live_server
from tests.conftest import _empty_pg as empty_pg
from tests.integration.gateway import provision
from tests.live_server import ErrorLog

OPERATOR, PASSWORD = "admin", "console-pass-1"
LOCKED_OPERATOR = "night-shift"  # the lockout test spends its attempts on this one
SHOP_TOKEN = "tok-shop-0000000001"
SHOP_TOKEN_2 = "tok-shop-0000000002"  # same 10-character prefix as SHOP_TOKEN
BACKUP_TOKEN = "tok-back-0000000001"
MO_SECRET = "velip-mo-secret"  # /mo/velip/{secret}: inbound messages (SPEC §14)


def console_doc() -> dict[str, Any]:
    """A reseller with two shops; one shop routed to a connection that fails DDD 21."""
    return {
        "connections": [
            {"name": "velip", "kind": "simulator", "ack_timeout": 2, "final_timeout": 5, "throughput": 500,
             "fallback": ["backup"], "dlr_secret": MO_SECRET},
            {"name": "backup", "kind": "simulator", "fail_prefix": "5521", "ack_timeout": 2, "final_timeout": 5},
        ],
        "customers": [
            {"id": 10, "name": "Revenda Sul", "balance": "500.00", "night_limit": None},
            {"id": 11, "name": "Loja Exemplo", "parent": 10, "balance": "20.00", "night_limit": None,
             "tokens": [SHOP_TOKEN, SHOP_TOKEN_2], "blocklist": ["5511988887777"],
             "models": ["Seu codigo {code} do Banco Exemplo"],
             "users": [{"username": "loja", "password": "s3cret!!", "send": True}]},
            {"id": 12, "name": "<b>Loja & Backup</b>", "parent": 10, "balance": "3.00", "night_limit": None,
             "sms_provider": "backup", "tokens": [BACKUP_TOKEN]},
        ],
        "tariffs": [
            {"customer": 10, "prefix": "55", "value": "0.0500"},
            {"customer": 11, "prefix": "55", "value": "0.0800"},
            {"customer": 12, "prefix": "55", "value": "0.0900"},
        ],
    }


def prepare_database(database_url: str) -> None:
    """Migrate, provision, and add the operators."""
    provision(database_url, console_doc())
    engine = create_engine(migrate.sqlalchemy_url(database_url))
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM operators"))
    engine.dispose()
    asyncio.run(_add_operators(database_url))


async def _add_operators(database_url: str) -> None:
    operator, close = await bootstrap.open_operator(Settings(database_url=database_url))
    try:
        for name in (OPERATOR, LOCKED_OPERATOR):
            await operator.add_operator(username=name, password=PASSWORD)
    finally:
        await close()


@dataclass
class Live:
    """A running gateway."""

    base: str
    database_url: str
    errors: ErrorLog

    def sql(self, query: str, **params: Any) -> list[Any]:
        """Rows of a query against the gateway's database (for assertions)."""
        engine = create_engine(migrate.sqlalchemy_url(self.database_url))
        try:
            with engine.begin() as conn:
                result = conn.execute(text(query), params)
                return list(result) if result.returns_rows else []
        finally:
            engine.dispose()


@contextlib.contextmanager
def serve(database_url: str) -> Iterator[Live]:
    """The gateway under uvicorn in a thread (tests/live_server.py), as a Live."""
    with live_server.serve(database_url, rejections_flush_every=0.2) as (host, port, errors):
        yield Live(f"http://{host}:{port}", database_url, errors)


def database_for(request: pytest.FixtureRequest, engine_name: str, folder: str) -> str:
    """An empty database on the engine (PostgreSQL: skipped with the reason where none answers)."""
    if engine_name == "sqlite":
        return f"sqlite:///{request.getfixturevalue('tmp_path_factory').mktemp(folder) / 'pombo.db'}"
    url: str = request.getfixturevalue("pg_database")
    empty_pg(url)
    return url


_ips = itertools.count(1)


def fresh_ip() -> str:
    """A loopback source address of its own (failed logins are counted per IP)."""
    n = next(_ips)
    return f"127.3.{n // 250}.{1 + n % 250}"


CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The first CSRF token in a page."""
    found = CSRF.search(html)
    assert found, "no CSRF token in the page"
    return found.group(1)
