"""Issue 17 (item 8 and item 6's rejections) against the real app under uvicorn on loopback:
rejected MakeSMS requests kept (counts and the newest, tokens masked) on SQLite and PostgreSQL and
read back by `pombo messages --rejected`; `/metrics` behind an optional bearer token; the access
log with credentials masked."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from click.testing import CliRunner

from pombo.adapters.sql.factory import open_store
from pombo.cli import main
from tests.conftest import _empty_pg as empty_pg
from tests.fakes.upstream import FakeUpstream
from tests.integration.gateway import TOKEN, provision, provisioning
from tests.live_server import serve

BAD_TOKEN = "tok-nobody-00000000000042"
METRICS_TOKEN = "metrics-bearer-s3cret-0001"


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    fake = FakeUpstream()
    fake.start_in_thread()
    try:
        yield fake
    finally:
        fake.stop_thread()


def call(base: str, path: str, params: dict[str, str] | None = None, *, headers: dict[str, str] | None = None,
         method: str = "GET", body: bytes | None = None) -> tuple[int, bytes]:
    url = base + path + ("?" + urlencode(params) if params else "")
    request = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def code_of(body: bytes) -> int:
    return int(json.loads(body)["return"]["status_code"])


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'pombo.db'}"
    url: str = request.getfixturevalue("pg_database")
    empty_pg(url)
    return url


def test_rejections_are_kept_masked_and_read_back_by_the_cli(db: str, upstream: FakeUpstream) -> None:
    provision(db, provisioning(upstream.url, shop_balance="100.00"))
    with serve(db, rejections_flush_every=0.1) as (host, port, errors):
        base = f"http://{host}:{port}"
        answers = [
            call(base, "/api/v2/MakeSMS.php", {"tsid": TOKEN, "dest": "123", "message": "oi", "ctid": "pedido-77"}),
            call(base, "/api/v2/MakeSMS.php", {"tsid": TOKEN, "dest": "5511987650001", "message": "x" * 200}),
            call(base, "/api/v2/MakeSMS.php", {"dest": "5511987650001", "message": "oi"},
                 headers={"Authorization": f"Bearer {BAD_TOKEN}"}),
            call(base, "/api/v2/MakeSMS.php", method="POST", body=b"\x00{not json",
                 headers={"Content-Type": "application/json"}),
            call(base, "/api/v2/MakeSMS.php", {"tsid": TOKEN, "dest": "5511987650002", "message": "oi"}),
        ]
        assert [code_of(b) for _, b in answers] == [240, 238, 102, 400, 0]
        deadline = time.monotonic() + 10
        rows: list[dict[str, Any]] = []
        while time.monotonic() < deadline and len(rows) < 4:
            time.sleep(0.1)
            rows = stored(db)
        assert errors.take() == []
    assert [r["code"] for r in rows] == [400, 102, 238, 240]  # newest first; the accepted send is not one
    by_code = {r["code"]: r for r in rows}
    assert by_code[240]["customer_id"] == 11 and by_code[240]["dest"] == "123"
    assert by_code[240]["params"]["ctid"] == "pedido-77" and by_code[240]["params"]["tsid"] == TOKEN[:9] + "…"
    assert by_code[240]["credential"] == TOKEN[:9] + "…" and by_code[240]["ip"] == "127.0.0.1"
    assert by_code[238]["status"] == "Text 200 ch more than 160 ch"
    assert by_code[102]["customer_id"] == 0 and by_code[102]["credential"] == BAD_TOKEN[:10] + "…"
    assert by_code[400]["customer_id"] == 0 and by_code[400]["params"] == {}
    assert TOKEN not in json.dumps(rows) and BAD_TOKEN not in json.dumps(rows)
    if db.startswith("sqlite"):  # nowhere in the file either
        data = Path(db.removeprefix("sqlite:///")).read_bytes()
        assert TOKEN.encode() not in data and BAD_TOKEN.encode() not in data

    env = {"POMBO_DATABASE_URL": db}
    runner = CliRunner()
    out = runner.invoke(main, ["messages", "--rejected"], env=env)
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0] == "rejections in the last 60 min by code: 102: 1, 238: 1, 240: 1, 400: 1"
    assert len(lines) == 2 + 4 and TOKEN not in out.output
    out = runner.invoke(main, ["messages", "--rejected", "--customer", "11", "--search", "PEDIDO-7", "--json"], env=env)
    assert out.exit_code == 0, out.output
    found = [json.loads(line) for line in out.output.splitlines()]
    assert [(r["code"], r["params"]["ctid"]) for r in found] == [(240, "pedido-77")]
    out = runner.invoke(main, ["messages", "--rejected", "--status", "102", "--json"], env=env)
    assert [json.loads(line)["code"] for line in out.output.splitlines()] == [102]
    out = runner.invoke(main, ["messages", "--search", "x"], env=env)
    assert out.exit_code != 0 and "--rejected" in out.output


def stored(db: str) -> list[dict[str, Any]]:
    import asyncio

    async def read() -> list[dict[str, Any]]:
        store = await open_store(db)
        try:
            return await store.recent_rejections(customer_id=None, code=None, search=None, limit=50)
        finally:
            await store.close()

    return asyncio.run(read())


def test_metrics_answer_only_the_bearer_of_the_token_when_one_is_set(tmp_path: Path, upstream: FakeUpstream) -> None:
    db = f"sqlite:///{tmp_path / 'pombo.db'}"
    provision(db, provisioning(upstream.url, shop_balance="12.50"))
    with serve(db, metrics_token=METRICS_TOKEN) as (host, port, _):
        base = f"http://{host}:{port}"
        assert call(base, "/metrics")[0] == 401
        assert call(base, "/metrics", headers={"Authorization": "Bearer wrong"})[0] == 401
        basic = base64.b64encode(f"x:{METRICS_TOKEN}".encode()).decode()
        assert call(base, "/metrics", headers={"Authorization": f"Basic {basic}"})[0] == 401
        assert call(base, "/metrics", {"token": METRICS_TOKEN})[0] == 401
        status, body = call(base, "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert status == 200
        text = body.decode()
        assert 'pombo_customer_available_credit{customer="11"} 12.5' in text
        assert call(base, "/healthz")[0] == 200  # only /metrics is closed
    with serve(db) as (host, port, _):  # no token set: open, as before
        assert call(f"http://{host}:{port}", "/metrics")[0] == 200


def test_the_access_log_masks_credentials_and_is_off_by_default(
    tmp_path: Path, upstream: FakeUpstream, capfd: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite:///{tmp_path / 'pombo.db'}"
    provision(db, provisioning(upstream.url))
    with serve(db, log_level="INFO") as (host, port, _):
        call(f"http://{host}:{port}", "/api/v2/MakeSMS.php", {"tsid": TOKEN, "dest": "123", "message": "a"})
    assert '"access"' not in capfd.readouterr().err
    with serve(db, log_level="INFO", access_log=True) as (host, port, _):
        base = f"http://{host}:{port}"
        call(base, "/api/v2/MakeSMS.php", {"tsid": TOKEN, "dest": "123", "message": "a"})
        call(base, "/api/v2/GetBalance.php", {"sid": TOKEN, "password": "hunter22"})
        call(base, "/dlr/velip/the-dlr-secret", {"id": "1"})
        call(base, "/healthz")
    err = capfd.readouterr().err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{") and '"access"' in line]
    assert TOKEN not in err and "hunter22" not in err and "the-dlr-secret" not in err
    seen = {(r["method"], r["path"], r["status"]) for r in lines}
    assert ("GET", "/api/v2/MakeSMS.php", 400) in seen
    assert ("GET", "/api/v2/GetBalance.php", 200) in seen
    assert ("GET", "/dlr/velip/***", 403) in seen
    assert ("GET", "/healthz", 200) in seen
    make = next(r for r in lines if r["path"] == "/api/v2/MakeSMS.php")
    assert make["ip"] == "127.0.0.1" and make["duration_ms"] >= 0
    assert "tsid=tok-shop-%E2%80%A6" in make["query"] and "dest=123" in make["query"]
    balance = next(r for r in lines if r["path"] == "/api/v2/GetBalance.php")
    assert "password=%2A%2A%2A" in balance["query"]
