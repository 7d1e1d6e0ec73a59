"""The operator console over real HTTP: login, sessions, CSRF, lockout, and every change it makes.

A live gateway (uvicorn in a thread) per engine; clients are aiohttp sessions, each from a
loopback address of its own so failed-login counters do not leak between tests.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from yarl import URL

from tests.console.conftest import (
    BACKUP_TOKEN,
    LOCKED_OPERATOR,
    OPERATOR,
    PASSWORD,
    SHOP_TOKEN,
    SHOP_TOKEN_2,
    Live,
    csrf_of,
    database_for,
    fresh_ip,
    prepare_database,
    serve,
)

MAKESMS = "/api/v2/MakeSMS.php"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(request: pytest.FixtureRequest) -> Iterator[Live]:
    url = database_for(request, request.param, "console")
    prepare_database(url)
    with serve(url) as gateway:
        yield gateway


@pytest.fixture(autouse=True)
def no_server_errors(live: Live) -> Iterator[None]:
    live.errors.records.clear()
    yield
    assert live.errors.records == [], "the server logged an error"


class Client:
    """A browser-like client: a cookie jar, its own source address, no automatic redirects."""

    def __init__(self, live: Live, session: aiohttp.ClientSession) -> None:
        self.live, self.http = live, session

    async def get(self, path: str, **kw: Any) -> tuple[int, str, Any]:
        async with self.http.get(self.live.base + path, allow_redirects=False, **kw) as r:
            return r.status, await r.text(), r

    async def post(self, path: str, data: dict[str, str], **kw: Any) -> tuple[int, str, Any]:
        async with self.http.post(self.live.base + path, data=data, allow_redirects=False, **kw) as r:
            return r.status, await r.text(), r

    async def login(self, username: str = OPERATOR, password: str = PASSWORD) -> tuple[int, str, Any]:
        _, page, _ = await self.get("/console/login")
        return await self.post("/console/login", {"csrf": csrf_of(page), "username": username,
                                                  "password": password, "next": "/console/"})

    async def csrf(self, path: str) -> str:
        status, page, _ = await self.get(path)
        assert status == 200, (path, status)
        return csrf_of(page)

    async def send(self, token: str = SHOP_TOKEN, **params: str) -> dict[str, Any]:
        async with self.http.post(self.live.base + MAKESMS, data={"tsid": token, **params}) as r:
            body: dict[str, Any] = (await r.json())["return"]
            return body

    async def code_becomes(self, code: str, token: str, dest: str) -> None:
        """Send until the answer is `code`: on PostgreSQL a change reaches the catalog within ~1 s."""
        deadline = time.monotonic() + 5
        while (got := (await self.send(token, dest=dest, message="x", httpdup="0"))["status_code"]) != code:
            assert time.monotonic() < deadline, f"still {got}, expected {code}"
            await asyncio.sleep(0.2)


async def _client(live: Live) -> AsyncIterator[Client]:
    connector = aiohttp.TCPConnector(local_addr=(fresh_ip(), 0), force_close=True)
    jar = aiohttp.CookieJar(unsafe=True)  # cookies from an IP address host
    async with aiohttp.ClientSession(connector=connector, cookie_jar=jar) as session:
        yield Client(live, session)


@pytest.fixture
async def anon(live: Live) -> AsyncIterator[Client]:
    async for client in _client(live):
        yield client


@pytest.fixture
async def console(live: Live) -> AsyncIterator[Client]:
    async for client in _client(live):
        status, _, _ = await client.login()
        assert status == 303
        yield client


# ------------------------------------------------------------------------------ login, sessions


async def test_pages_need_login(anon: Client) -> None:
    status, _, r = await anon.get("/console/messages?ctid=x")
    assert status == 303 and r.headers["location"] == "/console/login?next=/console/messages%3Fctid%3Dx"
    status, body, _ = await anon.get("/console/api/overview")
    assert status == 401 and "login required" in body


async def test_login_sets_a_protected_session_cookie(anon: Client) -> None:
    status, page, r = await anon.get("/console/login")
    assert status == 200 and 'type="password"' in page
    login_cookie = r.headers["set-cookie"]
    assert "HttpOnly" in login_cookie and "SameSite=strict" in login_cookie and "Path=/console" in login_cookie
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    status, _, r = await anon.post("/console/login", {"csrf": csrf_of(page), "username": OPERATOR,
                                                      "password": PASSWORD, "next": "/console/customers"})
    assert status == 303 and r.headers["location"] == "/console/customers"
    session_cookie = next(c for c in r.headers.getall("set-cookie") if c.startswith("pombo_console="))
    assert "HttpOnly" in session_cookie and "SameSite=lax" in session_cookie and "Secure" not in session_cookie
    status, page, _ = await anon.get("/console/customers")
    assert status == 200 and f"<strong>{OPERATOR}</strong>" in page


async def test_wrong_password_and_open_redirect(anon: Client) -> None:
    status, page, _ = await anon.login(password="not-the-password")
    assert status == 401 and 'id="login-error"' in page
    _, page, _ = await anon.get("/console/login")
    status, _, r = await anon.post("/console/login", {"csrf": csrf_of(page), "username": OPERATOR,
                                                      "password": PASSWORD, "next": "//evil.example/"})
    assert status == 303 and r.headers["location"] == "/console/"


async def test_login_needs_its_csrf_token(anon: Client) -> None:
    status, _, _ = await anon.post("/console/login", {"username": OPERATOR, "password": PASSWORD})
    assert status == 403
    _, page, _ = await anon.get("/console/login")
    status, _, _ = await anon.post("/console/login", {"csrf": csrf_of(page) + "x", "username": OPERATOR,
                                                      "password": PASSWORD})
    assert status == 403


async def test_logout_ends_the_session(console: Client) -> None:
    cookie = console.http.cookie_jar.filter_cookies(URL(console.live.base + "/console/"))["pombo_console"].value
    token = await console.csrf("/console/")
    status, _, _ = await console.post("/console/logout", {})  # no CSRF token: refused
    assert status == 403
    status, _, r = await console.post("/console/logout", {"csrf": token})
    assert status == 303 and r.headers["location"] == "/console/login"
    status, page, _ = await console.get("/console/login")
    assert status == 200 and "flash ok" in page  # "you have logged out", shown once
    # the old cookie, replayed, no longer opens anything
    console.http.cookie_jar.update_cookies({"pombo_console": cookie})
    status, _, _ = await console.get("/console/")
    assert status == 303


async def test_lockout_after_five_failures_per_username_and_address(live: Live) -> None:
    async for known in _client(live):  # the operator signed in from this browser before
        assert (await known.login(LOCKED_OPERATOR, PASSWORD))[0] == 303
        known_cookie = next(c for c in known.http.cookie_jar if c.key == "pombo_console_known")
        async for attacker in _client(live):
            for _ in range(5):
                status, _, _ = await attacker.login(LOCKED_OPERATOR, "wrong-password")
                assert status == 401
            status, page, _ = await attacker.login(LOCKED_OPERATOR, PASSWORD)  # right, but locked here
            assert status == 429 and ("10 minut" in page)
            status, _, _ = await attacker.login()  # other operators are not
            assert status == 303
            # the real operator's browser, even from the attacker's address, still gets in
            attacker.http.cookie_jar.clear()
            attacker.http.cookie_jar.update_cookies({"pombo_console_known": known_cookie.value})
            assert (await attacker.login(LOCKED_OPERATOR, PASSWORD))[0] == 303
    async for other in _client(live):  # and so does the operator from any other address
        status, _, _ = await other.login(LOCKED_OPERATOR, PASSWORD)
        assert status == 303


async def test_lockout_after_twenty_failures_per_address(anon: Client) -> None:
    for i in range(20):
        status, _, _ = await anon.login(f"nobody-{i}", "wrong-password")
        assert status == 401
    status, _, _ = await anon.login()
    assert status == 429


async def test_changes_need_the_session_csrf_token(console: Client, live: Live) -> None:
    before = live.sql("SELECT balance FROM customers WHERE id = 11")[0][0]
    status, _, _ = await console.post("/console/customers/11/topup", {"amount": "5", "note": "x"})
    assert status == 403
    token = await console.csrf("/console/customers/11")
    status, _, _ = await console.post("/console/customers/11/topup", {"csrf": token, "amount": "5", "note": "x"},
                                      headers={"Origin": "http://evil.example"})
    assert status == 403
    assert live.sql("SELECT balance FROM customers WHERE id = 11")[0][0] == before


# ------------------------------------------------------------------------------ what operators do


async def test_top_up_writes_a_ledger_row(console: Client, live: Live) -> None:
    before = live.sql("SELECT balance FROM customers WHERE id = 10")[0][0]
    token = await console.csrf("/console/customers/10")
    status, page, _ = await console.post("/console/customers/10/topup", {"csrf": token, "amount": "abc", "note": "n"})
    assert status == 400 and 'role="alert"' in page
    status, _, _ = await console.post("/console/customers/10/topup", {"csrf": token, "amount": "5", "note": " "})
    assert status == 400
    status, _, r = await console.post("/console/customers/10/topup",
                                      {"csrf": token, "amount": "1.234,5", "note": "pix 42"})
    assert status == 303 and r.headers["location"] == "/console/customers/10#money"
    assert live.sql("SELECT balance FROM customers WHERE id = 10")[0][0] == before + 12_345_000
    row = live.sql("SELECT amount, cause, note FROM ledger WHERE customer_id = 10 ORDER BY id DESC LIMIT 1")[0]
    assert tuple(row) == (12_345_000, "topup", f"pix 42 [console: {OPERATOR}]")
    status, page, _ = await console.get("/console/customers/10?lang=en")
    assert "Balance is now" in page and "pix 42 [console: admin]" in page


async def test_issue_and_revoke_tokens(console: Client) -> None:
    token = await console.csrf("/console/customers/11")
    status, page, _ = await console.post("/console/customers/11/tokens", {"csrf": token})
    assert status == 200
    issued = re.search(r'<output id="new-token" class="secret">([^<]+)</output>', page).group(1)  # type: ignore[union-attr]
    assert (await console.send(issued, dest="11987650001", message="new token"))["status_code"] == "0"
    _, page, _ = await console.get("/console/customers/11")
    assert issued not in page and f"{issued[:10]}…" in page  # masked
    ids = re.findall(r'/console/customers/11/tokens/(\d+)/revoke', page)
    assert len(ids) == 3
    # the two provisioned tokens share a prefix: revoking one leaves the other working
    first_id = min(int(i) for i in ids)
    status, _, _ = await console.post(f"/console/customers/11/tokens/{first_id}/revoke", {"csrf": token})
    assert status == 303
    await console.code_becomes("102", SHOP_TOKEN, "11987650002")
    assert (await console.send(SHOP_TOKEN_2, dest="11987650003", message="x"))["status_code"] == "0"
    status, _, _ = await console.post(f"/console/customers/11/tokens/{first_id}/revoke", {"csrf": token})
    assert status == 404  # already revoked
    status, _, _ = await console.post(f"/console/customers/12/tokens/{max(int(i) for i in ids)}/revoke",
                                      {"csrf": token})
    assert status == 404  # not that customer's token


async def test_search_messages_and_read_one_story(console: Client, live: Live) -> None:
    ok = await console.send(SHOP_TOKEN_2, dest="(11) 98765-0101", message="hello search", ctid="order-77")
    failed = await console.send(BACKUP_TOKEN, dest="21987650102", message="will fail", ctid="order-78")
    assert ok["status_code"] == "0" and failed["status_code"] == "300"
    for query, expect, reject in [
        ("ctid=order-77", ok, failed),
        ("dest=011+98765-0101", ok, failed),
        (f"cdls_id={failed['cdls_id']}", failed, ok),
        ("customer=12&status=300", failed, ok),
        ("delivery=rejected&connection=backup", failed, ok),
        (f"date_from={_today(live)}&date_to={_today(live)}&ctid=order-78", failed, ok),
    ]:
        status, page, _ = await console.get(f"/console/messages?{query}")
        assert status == 200, query
        assert f'data-message="{expect["cdls_id"]}"' in page, query
        assert f'data-message="{reject["cdls_id"]}"' not in page, query
    status, page, _ = await console.get("/console/messages?date_from=yesterday")
    assert status == 200 and "aria-invalid" in page
    status, page, _ = await console.get(f"/console/messages/{failed['cdls_id']}?lang=en")
    assert status == 200
    assert "simulated failure" in page and "Provider refused it; charge refunded" in page
    assert page.count('class="num neg"') == 2 and page.count('class="num pos"') == 2  # debits, refunds
    assert "&lt;b&gt;Loja &amp; Backup&lt;/b&gt;" in page  # names are escaped
    status, _, _ = await console.get("/console/messages/999999")
    assert status == 404


async def test_disable_and_enable_a_connection(console: Client) -> None:
    token = await console.csrf("/console/connections")
    status, _, r = await console.post("/console/connections/velip/enabled", {"csrf": token, "enabled": "0"})
    assert status == 303 and r.headers["location"] == "/console/connections"
    await console.code_becomes("220", SHOP_TOKEN_2, "11987650201")
    _, page, _ = await console.get("/console/connections?lang=en")
    assert "Connection velip disabled." in page and 'class="card conn health-off"' in page
    await console.post("/console/connections/velip/enabled", {"csrf": token, "enabled": "1"})
    await console.code_becomes("0", SHOP_TOKEN_2, "11987650202")
    status, _, _ = await console.post("/console/connections/nope/enabled", {"csrf": token, "enabled": "1"})
    assert status == 404


async def test_connections_show_the_engine_and_a_message_its_attempts(console: Client, live: Live) -> None:
    """SPEC §11 in the console: each connection's state, queue, pacing and recent logged
    attempts; a message's attempts in order (logged ones, then the answer that settled it)."""
    sent = await console.send(SHOP_TOKEN_2, dest="11987650401", message="attempts")
    assert sent["status_code"] == "0"
    mid = int(sent["cdls_id"])
    created = live.sql("SELECT created_at FROM messages WHERE id = :id", id=mid)[0][0]
    for kind, raw, at in (("not_sent", "HTTP 429: slow down", created + 0.1), ("claimed", None, created + 0.6)):
        live.sql("INSERT INTO upstream_attempts (message_id, connection, kind, raw, at) "
                 "VALUES (:id, 'velip', :kind, :raw, :at)", id=mid, kind=kind, raw=raw, at=at)
    status, page, _ = await console.get(f"/console/messages/{mid}?lang=en")
    assert status == 200
    table = page.split('id="h-attempts"')[1].split("</table>")[0]
    kinds = re.findall(r'data-attempt="([a-z_]+)"', table)
    # on PostgreSQL a first send may wait for its throughput grant: a claim of its own comes first
    assert kinds[-3:] == ["not_sent", "claimed", "ok"] and set(kinds[:-3]) <= {"claimed"}, kinds
    assert "<td>429</td>" in table and "slow down" in table and "taken from the queue" in table
    status, page, _ = await console.get("/console/connections?lang=en")
    assert status == 200
    velip = page.split('data-connection="velip"')[1].split("</section>\n</section>")[0]
    assert 'data-section="engine"' in velip and 'data-engine-state="ok"' in velip
    assert 'data-queue="0"' in velip and "500/s" in velip and "backup" in velip
    assert f'href="/console/messages/{mid}"' in velip and 'data-attempt="not_sent"' in velip
    backup = page.split('data-connection="backup"')[1]
    assert 'data-engine-state=' in backup and "no cap" in backup


async def test_overview_numbers_follow_the_sends(console: Client) -> None:
    before = await _overview(console)
    for i in range(3):
        assert (await console.send(SHOP_TOKEN_2, dest=f"1198765030{i}", message="chart"))["status_code"] == "0"
    assert (await console.send(SHOP_TOKEN_2, dest="123", message="bad number"))["status_code"] == "240"
    after = await _overview(console)
    sums = {s["key"]: sum(s["values"]) for s in after["sends"]}
    old = {s["key"]: sum(s["values"]) for s in before["sends"]}
    assert sums["ok"] == old["ok"] + 3
    assert sums.get("r240", 0) >= old.get("r240", 0) + 1
    assert after["kpi"]["last_minute"] >= before["kpi"]["last_minute"] + 3
    assert len(after["labels"]) == 60
    assert {d["connection"] for d in after["delivery"]} >= {"velip", "backup"}
    assert any(c["connection"] == "velip" and any(v is not None for v in c["avg"]) for c in after["latency"])
    assert [row["id"] for row in after["low"]][:1] == [12]  # 3.00 left


async def test_pages_render_in_both_languages(console: Client) -> None:
    for path in ("/console/", "/console/customers", "/console/customers/11", "/console/messages",
                 "/console/connections"):
        status, page, r = await console.get(path, headers={"Accept-Language": "pt-BR,pt;q=0.9,en;q=0.5"})
        assert status == 200 and '<html lang="pt-BR">' in page, path
        assert r.headers["cache-control"] == "no-store"
    status, page, r = await console.get("/console/customers?lang=en")
    assert "Customers and resellers" in page and "pombo_console_lang=en" in r.headers["set-cookie"]
    _, page, _ = await console.get("/console/customers", headers={"Accept-Language": "pt-BR"})
    assert "Customers and resellers" in page  # the cookie wins over the header
    _, page, _ = await console.get("/console/customers?lang=pt")
    assert "Clientes e revendas" in page and "&lt;b&gt;Loja &amp; Backup&lt;/b&gt;" in page


async def _overview(client: Client) -> dict[str, Any]:
    async with client.http.get(client.live.base + "/console/api/overview") as r:
        assert r.status == 200
        body: dict[str, Any] = await r.json()
        return body


def _today(live: Live) -> str:
    from datetime import datetime

    from pombo.config import Settings

    return datetime.now(Settings().tz).date().isoformat()
