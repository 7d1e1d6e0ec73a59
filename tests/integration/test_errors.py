"""One error tree at the edge: only StoreUnavailable answers 503 (and is retried); a bug answers
HTTP 500 in the envelope with an id that is also in the log line with the traceback, and the
dispatcher never retries a bug as an outage.

The app runs in-process (the ASGI callable, driven by hand) over a real SQLite file; a bug is a
service method replaced by one that raises, the database away is a second connection holding the
write lock.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import LogCapture

from pombo.adapters.connections.simulator import SimulatorConnection
from pombo.adapters.sql.factory import open_store
from pombo.adapters.sql.store import SqlStore
from pombo.api import app as app_module
from pombo.api.app import Gateway, create_app
from pombo.bootstrap import Services, SystemClock
from pombo.config import Settings
from pombo.domain import codes
from pombo.domain.model import ConnectionConfig, OutboundSms
from pombo.errors import StoreUnavailable
from pombo.services import reconcile as reconcile_module
from pombo.services.dispatch import Dispatcher
from pombo.services.engine import dispatcher as dispatch_module
from pombo.services.engine import pump as pump_module
from pombo.services.engine import settle as settle_module
from tests.fakes.upstream import FakeUpstream
from tests.integration.gateway import TOKEN, open_gateway, provisioning

ERROR_ID = re.compile(r"^[0-9a-f]{12}$")


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What the API, the dispatcher and the background loops log, captured (every level)."""
    capture = LogCapture()
    logger = structlog.wrap_logger(
        structlog.PrintLogger(), processors=[capture], wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG)
    )
    for module in (app_module, dispatch_module, settle_module, pump_module, reconcile_module):
        monkeypatch.setattr(module, "log", logger)
    return capture.entries


@pytest.fixture
async def gateway(tmp_path: Path, upstream: FakeUpstream) -> AsyncIterator[tuple[Gateway, Services]]:
    url = f"sqlite:///{tmp_path / 'pombo.db'}"
    services = await open_gateway(url, provisioning(upstream.url), background_jobs=False)
    app = create_app(Settings(database_url=url, background_jobs=False))
    app.state.services = services  # what the lifespan would do
    try:
        yield app, services
    finally:
        await services.aclose()


async def call(app: Gateway, method: str, path: str, query: str = "", body: bytes = b"") -> tuple[int, bytes]:
    """One HTTP request through the ASGI callable; (status, body)."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
        "headers": [(b"host", b"pombo.test"), (b"content-type", b"application/x-www-form-urlencoded")],
        "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 80),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # the client never goes away
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def assert_internal_error(status: int, body: bytes, logs: list[dict[str, Any]], event: str) -> None:
    """HTTP 500, the envelope with an error id, never the traceback; the id in the log line."""
    assert status == 500, body
    assert b"Traceback" not in body and b"kaboom" not in body, body
    ret = json.loads(body)["return"]
    assert {k: ret[k] for k in ("status", "status_code", "cdls_id")} == {
        "status": "internal error", "status_code": "500", "cdls_id": "0"
    }
    assert ERROR_ID.match(ret["error_id"]), ret
    logged = [e for e in logs if e.get("error_id") == ret["error_id"]]
    assert len(logged) == 1, logs
    assert logged[0]["event"] == event and logged[0]["log_level"] == "error" and logged[0]["exc_info"] is True


async def boom(*_: Any, **__: Any) -> Any:
    raise RuntimeError("kaboom: a bug")


# --------------------------------------------------------------------------------------------
# The API
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ("/api/v2/MakeSMS.php", "make_sms"),  # the hot path, straight from the Gateway
        ("/api/v2/GetBalance.php", "accounts.get_balance"),
        ("/api/v2/GetUserID", "accounts.get_user_id"),
        ("/api/v2/GetSMSStatus.php", "status"),
        ("/dlr/velip/secret", "dlr.receive"),
    ],
)
async def test_a_bug_in_a_handler_answers_500_with_an_id_in_the_log(
    gateway: tuple[Gateway, Services], logs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch,
    path: str, target: str,
) -> None:
    app, services = gateway
    owner: Any = services
    *parents, name = target.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    monkeypatch.setattr(owner, name, boom)
    status, body = await call(app, "POST", path, body=f"tsid={TOKEN}&dest=11987654321&message=oi".encode())
    assert_internal_error(status, body, logs, "request_failed")


async def test_the_database_away_answers_503(
    gateway: tuple[Gateway, Services], logs: list[dict[str, Any]], tmp_path: Path
) -> None:
    app, services = gateway
    store = services.store
    assert isinstance(store, SqlStore)
    store.db.execute("PRAGMA busy_timeout=20")  # type: ignore[attr-defined]
    writer = sqlite3.connect(tmp_path / "pombo.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process holds the write lock for too long
    try:
        status, body = await call(app, "POST", "/api/v2/MakeSMS.php", body=f"tsid={TOKEN}&dest=11987654321&message=oi".encode())
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert status == 503, body
    assert json.loads(body) == {"return": {"status": "service unavailable", "status_code": "503", "cdls_id": "0"}}
    assert [e["event"] for e in logs if e["log_level"] in ("warning", "error")] == ["store_unavailable"]
    status, body = await call(app, "POST", "/api/v2/MakeSMS.php", body=f"tsid={TOKEN}&dest=11987654321&message=oi".encode())
    assert status == 200 and json.loads(body)["return"]["status_code"] == "0", body


async def test_healthz_tells_the_database_away_from_a_bug(
    gateway: tuple[Gateway, Services], logs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, services = gateway
    assert (await call(app, "GET", "/healthz"))[0] == 200

    async def away() -> None:
        raise StoreUnavailable("database unavailable: test")

    monkeypatch.setattr(services.store, "ping", away)
    status, body = await call(app, "GET", "/healthz")
    assert (status, json.loads(body)) == (503, {"status": "unavailable", "database": "down"})
    monkeypatch.setattr(services.store, "ping", boom)
    status, body = await call(app, "GET", "/healthz")
    assert_internal_error(status, body, logs, "healthz_failed")


# --------------------------------------------------------------------------------------------
# The dispatcher and the background loops
# --------------------------------------------------------------------------------------------


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    store = await open_store(f"sqlite:///{tmp_path / 'pombo.db'}")
    try:
        yield store
    finally:
        await store.close()


CONFIG = ConnectionConfig(name="sim", kind="simulator", ack_timeout=2.0, final_timeout=5.0)
SMS = OutboundSms(id=1, dest="5511987654321", text="oi", encoding="GSM-7")


def failing_settle(store: SqlStore, monkeypatch: pytest.MonkeyPatch, errors: list[BaseException]) -> list[int]:
    """settle_ok raises the given errors one per call, then records for real; the calls made."""
    calls: list[int] = []
    real = store.settle_ok

    async def settle_ok(**kwargs: Any) -> bool:
        calls.append(kwargs["message_id"])
        if errors:
            raise errors.pop(0)
        return await real(**kwargs)

    monkeypatch.setattr(store, "settle_ok", settle_ok)
    return calls


async def test_the_dispatcher_retries_the_database_away(
    store: SqlStore, logs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = failing_settle(store, monkeypatch, [StoreUnavailable("away"), StoreUnavailable("away")])
    dispatcher = Dispatcher(store, factory=SimulatorConnection, clock=SystemClock())
    assert await dispatcher.dispatch(CONFIG, SMS) == codes.WR  # the caller hears WR at once
    assert dispatcher.in_flight == 1
    await dispatcher.drain(timeout=5)
    assert calls == [1, 1, 1]  # the first try and two retries, the last one taken
    assert dispatcher.health["sim"].sent == 1
    events = [e["event"] for e in logs]
    assert "settle_deferred" in events and "settle_recorded_late" in events and "settle_failed" not in events


async def test_the_dispatcher_never_retries_a_bug(
    store: SqlStore, logs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = failing_settle(store, monkeypatch, [RuntimeError("kaboom"), RuntimeError("kaboom")])
    dispatcher = Dispatcher(store, factory=SimulatorConnection, clock=SystemClock())
    assert await dispatcher.dispatch(CONFIG, SMS) == codes.WR  # stays WR: reconciliation owns it
    assert dispatcher.in_flight == 0  # nothing left retrying
    await asyncio.sleep(0.7)  # past the first two retries an outage would have had
    assert calls == [1]
    failed = [e for e in logs if e["event"] == "settle_failed"]
    assert len(failed) == 1 and failed[0]["log_level"] == "error" and ERROR_ID.match(failed[0]["error_id"])
    assert "settle_deferred" not in [e["event"] for e in logs]
    await dispatcher.drain(timeout=1)


async def test_a_bug_while_recording_late_ends_the_retries(
    store: SqlStore, logs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = failing_settle(store, monkeypatch, [StoreUnavailable("away"), RuntimeError("kaboom"), StoreUnavailable("x")])
    dispatcher = Dispatcher(store, factory=SimulatorConnection, clock=SystemClock())
    assert await dispatcher.dispatch(CONFIG, SMS) == codes.WR
    await dispatcher.drain(timeout=5)
    await asyncio.sleep(0.7)
    assert calls == [1, 1]
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["settle_failed"]


async def test_a_background_loop_tells_an_outage_from_a_bug(logs: list[dict[str, Any]]) -> None:
    errors: list[BaseException] = [StoreUnavailable("database unavailable: x"), RuntimeError("kaboom")]

    async def job() -> None:
        if errors:
            raise errors.pop(0)

    task = asyncio.ensure_future(reconcile_module.every(0.01, job, "reconcile"))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [(e["event"], e["log_level"]) for e in logs] == [
        ("background_job_deferred", "warning"),
        ("background_job_failed", "error"),
    ]
    assert logs[1]["exc_info"] is True and ERROR_ID.match(logs[1]["error_id"])
