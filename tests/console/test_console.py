"""The operator console over real HTTP: login, sessions, CSRF, lockout, and every change it makes.

A live gateway (uvicorn in a thread) per engine; clients are aiohttp sessions, each from a
loopback address of its own so failed-login counters do not leak between tests.
"""

from __future__ import annotations

import asyncio
import html
import json
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
    MO_SECRET,
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


async def test_a_customers_rejections_are_on_its_page_masked_and_searchable(console: Client) -> None:
    answer = await console.send(SHOP_TOKEN_2, dest="5511988887777", message="blocked one", ctid="why-260")
    assert answer["status_code"] == "260"
    page = ""
    for _ in range(50):  # written within POMBO_REJECTIONS_FLUSH_EVERY (0.2 s here)
        _, page, _ = await console.get("/console/customers/11?lang=en&rq=why-260")
        if "data-rejection=" in page:
            break
        await asyncio.sleep(0.1)
    assert "Rejected requests" in page and "<code>260</code>" in page
    assert "ctid=why-260" in page and "number blocked by list" in page
    assert SHOP_TOKEN_2 not in page and f"tsid={SHOP_TOKEN_2[:9]}…" in page
    _, page, _ = await console.get("/console/customers/11?lang=en&rq=nothing-like-this")
    assert "data-rejection=" not in page
    _, page, _ = await console.get("/console/customers/12?lang=en")
    assert "why-260" not in page  # another customer's page


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


async def test_change_a_customers_accents(console: Client, live: Live) -> None:
    """Issue 13 item 2: the customer page shows `accents` and changes it (CSRF, audit log line);
    a fold customer's next send goes folded, and the message page shows both bodies."""
    status, page, _ = await console.get("/console/customers/11?lang=en")
    assert status == 200 and 'data-field="accents">keep' in page and 'name="accents"' in page
    status, _, _ = await console.post("/console/customers/11/accents", {"accents": "fold"})
    assert status == 403  # no CSRF token
    token = await console.csrf("/console/customers/11")
    status, _, _ = await console.post("/console/customers/11/accents", {"csrf": token, "accents": "strip"})
    assert status == 400
    status, _, _ = await console.post("/console/customers/999/accents", {"csrf": token, "accents": "fold"})
    assert status == 404
    assert live.sql("SELECT accents FROM customers WHERE id = 11")[0][0] == "keep"
    try:
        status, _, r = await console.post("/console/customers/11/accents", {"csrf": token, "accents": "fold"})
        assert status == 303 and r.headers["location"] == "/console/customers/11#settings"
        assert live.sql("SELECT accents FROM customers WHERE id = 11")[0][0] == "fold"
        _, page, _ = await console.get("/console/customers/11?lang=en")
        assert "Accents: fold." in page and 'data-field="accents">fold' in page
        deadline = time.monotonic() + 5
        while True:  # on PostgreSQL a change reaches the catalog within ~1 s
            sent = await console.send(SHOP_TOKEN_2, dest="11987650301", message="Atenção, ação!", httpdup="0")
            assert sent["status_code"] == "0"
            text = live.sql(f"SELECT text, text_received FROM messages WHERE id = {int(sent['cdls_id'])}")[0]
            if text[0] == "Atencao, acao!" or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert tuple(text) == ("Atencao, acao!", "Atenção, ação!")
        _, page, _ = await console.get(f"/console/messages/{sent['cdls_id']}?lang=en")
        assert 'data-field="text">Atencao, acao!' in page
        assert "Text as received" in page and 'data-field="text_received">Atenção, ação!' in page
    finally:
        await console.post("/console/customers/11/accents", {"csrf": token, "accents": "keep"})
    assert live.sql("SELECT accents FROM customers WHERE id = 11")[0][0] == "keep"


async def test_connections_page_shows_parts_fewer_than_charged(console: Client, live: Live) -> None:
    """Issue 13 item 4: the count of messages Kannel sent in fewer parts than charged, and the
    latest, per connection (written by the DLR path, possibly in another process)."""
    _, page, _ = await console.get("/console/connections?lang=en")
    assert 'data-field="parts_short"' not in page
    live.sql("INSERT INTO part_warnings (connection, count, message_id, segments, parts, at) "
             "VALUES ('backup', 3, 4242, 2, 1, :at)", at=time.time())
    try:
        _, page, _ = await console.get("/console/connections?lang=en")
        card = page.split('data-connection="backup"')[1].split("</section>")[0]
        assert "Fewer parts than charged" in card and 'href="/console/messages/4242"' in card
        assert "3 message(s); latest: 2 segments charged, 1 part(s) reported" in card
        assert 'data-field="parts_short"' not in page.split('data-connection="velip"')[1].split("</section>")[0]
    finally:
        live.sql("DELETE FROM part_warnings")


# ------------------------------------------------------------------------------ tariffs, block list, models


def _load_says(entry_section: str, entry: dict[str, Any]) -> list[str]:
    """What `pombo load` reports for a file holding this one entry."""
    from pombo.services.provisioning import ProvisioningError, parse_document

    with pytest.raises(ProvisioningError) as caught:
        parse_document({entry_section: [entry]})
    return caught.value.errors


def _audit(live: Live, customer: int) -> list[Any]:
    return live.sql("SELECT operator, action, before, after FROM console_audit WHERE customer_id = :c ORDER BY id",
                    c=customer)


async def test_console_edits_need_the_session_csrf_token(console: Client, live: Live) -> None:
    audits = len(_audit(live, 12))
    for action, form in (("tariff_set", {"prefix": "5511", "value": "0.5"}), ("blocklist_add", {"number": "11987650999"}),
                         ("model_add", {"text": "Oi {nome}"}), ("tariff_remove", {"prefix": "55", "connection": ""})):
        status, _, _ = await console.post(f"/console/customers/12/edit/{action}", form)
        assert status == 403, action
    assert len(_audit(live, 12)) == audits
    assert live.sql("SELECT prefix, value FROM tariffs WHERE customer_id = 12") == [("55", 900)]


async def test_a_tariff_change_is_audited_and_charged_on_the_next_send(console: Client, live: Live) -> None:
    """Issue 17: add, change and remove a tariff from the console; `pombo load`'s rules and words
    for a bad value; an audit row naming the operator; the next send pays the new value."""
    token = await console.csrf("/console/customers/12")
    status, page, _ = await console.post("/console/customers/12/edit/tariff_set",
                                         {"csrf": token, "prefix": "55x1", "value": "-1"})
    assert status == 400 and 'role="alert"' in page
    for line in _load_says("tariffs", {"customer": 12, "prefix": "55x1", "value": "-1"}):
        assert line.split(": ", 1)[1] in html.unescape(page)  # "prefix: a prefix is 1-15 digits", "value: ..."
    assert 'value="55x1"' in page  # the form keeps what was typed
    assert live.sql("SELECT count(*) FROM tariffs WHERE customer_id = 12")[0][0] == 1
    audits = len(_audit(live, 12))
    try:
        status, _, r = await console.post("/console/customers/12/edit/tariff_set",
                                          {"csrf": token, "prefix": "5511", "value": "0.1234"})
        assert status == 303 and r.headers["location"] == "/console/customers/12#tariffs"
        assert live.sql("SELECT value, connection FROM tariffs WHERE customer_id = 12 AND prefix = '5511'") \
            == [(1234, "")]
        row = _audit(live, 12)[-1]
        assert (row[0], row[1], json.loads(row[2]), json.loads(row[3])) == (
            OPERATOR, "tariff_set", None, {"prefix": "5511", "connection": "", "value": 1234})
        deadline = time.monotonic() + 5
        while True:  # on PostgreSQL a change reaches the catalog within ~1 s
            sent = await console.send(BACKUP_TOKEN, dest="11987650401", message="tarifa nova", httpdup="0")
            assert sent["status_code"] == "0"
            value = live.sql(f"SELECT value FROM messages WHERE id = {int(sent['cdls_id'])}")[0][0]
            if value == 1234 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert value == 1234
        status, _, _ = await console.post("/console/customers/12/edit/tariff_set",
                                          {"csrf": token, "prefix": "5511", "value": "0.2"})
        assert status == 303
        assert _audit(live, 12)[-1][2:] == (json.dumps({"prefix": "5511", "connection": "", "value": 1234}),
                                            json.dumps({"prefix": "5511", "connection": "", "value": 2000}))
        _, page, _ = await console.get("/console/customers/12?lang=en")
        assert "Tariffs saved." in page and 'data-tariff="5511/"' in page
        assert "Changes made in the console" in page and "tariff set" in page
    finally:
        status, _, _ = await console.post("/console/customers/12/edit/tariff_remove",
                                          {"csrf": token, "prefix": "5511", "connection": ""})
    assert status == 303 and _audit(live, 12)[-1][1] == "tariff_remove"
    assert len(_audit(live, 12)) == audits + 3
    assert live.sql("SELECT prefix FROM tariffs WHERE customer_id = 12") == [("55",)]
    status, _, _ = await console.post("/console/customers/12/edit/tariff_remove",
                                      {"csrf": token, "prefix": "5511", "connection": ""})
    assert status == 404  # nothing to remove: no audit row
    assert len(_audit(live, 12)) == audits + 3


async def test_block_and_unblock_a_number(console: Client, live: Live) -> None:
    token = await console.csrf("/console/customers/12")
    status, page, _ = await console.post("/console/customers/12/edit/blocklist_add", {"csrf": token, "number": "123"})
    assert status == 400
    (said,) = _load_says("customers", {"id": 12, "name": "x", "blocklist": ["123"]})
    assert said.split(": ", 1)[1] in html.unescape(page)  # "blocklist[0]: not a phone number (8 to 15 digits): '123'"
    try:
        status, _, r = await console.post("/console/customers/12/edit/blocklist_add",
                                          {"csrf": token, "number": "(11) 98765-0501"})
        assert status == 303 and r.headers["location"] == "/console/customers/12#blocklist"
        assert live.sql("SELECT number FROM blocklist WHERE customer_id = 12") == [("5511987650501",)]
        row = _audit(live, 12)[-1]
        assert (row[0], row[1], json.loads(row[2]), json.loads(row[3])) == (
            OPERATOR, "blocklist_add", [], ["5511987650501"])
        await console.code_becomes("260", BACKUP_TOKEN, "11987650501")
    finally:
        status, _, _ = await console.post("/console/customers/12/edit/blocklist_remove",
                                          {"csrf": token, "number": "5511987650501"})
    assert status == 303 and live.sql("SELECT number FROM blocklist WHERE customer_id = 12") == []
    assert _audit(live, 12)[-1][1] == "blocklist_remove"
    await console.code_becomes("0", BACKUP_TOKEN, "11987650501")


async def _text_code_becomes(console: Client, code: str, text: str) -> None:
    deadline = time.monotonic() + 5  # on PostgreSQL a change reaches the catalog within ~1 s
    while (got := (await console.send(BACKUP_TOKEN, dest="11987650601", message=text, httpdup="0"))["status_code"]) \
            != code:
        assert time.monotonic() < deadline, f"still {got}, expected {code}"
        await asyncio.sleep(0.2)


async def test_add_edit_and_remove_models(console: Client, live: Live) -> None:
    bank = "Bradesco: seu pedido 42 saiu"  # the bank-impersonation filter blocks it (270) unless a model fits
    await _text_code_becomes(console, "270", bank)
    token = await console.csrf("/console/customers/12?lang=pt")
    status, page, _ = await console.post("/console/customers/12/edit/model_add", {"csrf": token, "text": "   "})
    assert status == 400 and "Não salvo: models[0]: must not be blank" in page
    (said,) = _load_says("customers", {"id": 12, "name": "x", "models": ["   "]})
    assert said.endswith(": models[0]: must not be blank")
    try:
        status, _, r = await console.post("/console/customers/12/edit/model_add",
                                          {"csrf": token, "text": "Bradesco: seu pedido {n} saiu"})
        assert status == 303 and r.headers["location"] == "/console/customers/12#models"
        await _text_code_becomes(console, "0", bank)
        status, _, _ = await console.post("/console/customers/12/edit/model_edit",
                                          {"csrf": token, "old": "Bradesco: seu pedido {n} saiu",
                                           "text": " Bradesco avisa {x} "})
        assert status == 303
        assert live.sql("SELECT text FROM models WHERE customer_id = 12") == [("Bradesco avisa {x}",)]
        await _text_code_becomes(console, "270", bank)
        row = _audit(live, 12)[-1]
        assert (row[0], row[1], json.loads(row[2]), json.loads(row[3])) == (
            OPERATOR, "model_edit", ["Bradesco: seu pedido {n} saiu"], ["Bradesco avisa {x}"])
        _, page, _ = await console.get("/console/customers/12?lang=pt")
        assert "Modelos salvos." in page and "modelo alterado" in page
        status, _, _ = await console.post("/console/customers/12/edit/model_edit",
                                          {"csrf": token, "old": "gone", "text": "y"})
        assert status == 404
    finally:
        status, _, _ = await console.post("/console/customers/12/edit/model_remove",
                                          {"csrf": token, "text": "Bradesco avisa {x}"})
    assert status == 303 and live.sql("SELECT text FROM models WHERE customer_id = 12") == []
    assert _audit(live, 12)[-1][1] == "model_remove"
    status, _, _ = await console.post("/console/customers/12/edit/nonsense", {"csrf": token})
    assert status == 404


# ------------------------------------------------------------------------------ inbound (SPEC §14)


async def test_inbound_page_replies_and_opt_outs(console: Client) -> None:
    dest = "11987650991"
    sent = await console.send(SHOP_TOKEN_2, dest=dest, message="Confirma a consulta?", httpdup="0")
    assert sent["status_code"] == "0"
    base = f"/mo/velip/{MO_SECRET}"
    for params in ({"from": dest, "to": "9999", "text": "Sim <b>confirmo</b>"},
                   {"from": "11987650992", "to": "9999", "text": "quem fala?"},
                   {"from": dest, "to": "9999", "text": "SAIR"}):
        async with console.http.get(console.live.base + base, params=params) as r:
            assert r.status == 200
    status, page, _ = await console.get("/console/inbound")
    assert status == 200 and "Sim &lt;b&gt;confirmo&lt;/b&gt;" in page and "quem fala?" in page
    assert 'class="unrouted"' in page
    _, page, _ = await console.get("/console/inbound?unrouted=1")
    assert "quem fala?" in page and "confirmo" not in page
    _, page, _ = await console.get("/console/inbound?text=CONFIRMO&customer=11")
    assert "confirmo" in page and "quem fala" not in page
    _, page, _ = await console.get(f"/console/inbound?number=({dest[:2]}) {dest[2:]}")
    assert "confirmo" in page and "quem fala" not in page
    _, page, _ = await console.get("/console/inbound?customer=12")
    assert "confirmo" not in page
    _, page, _ = await console.get("/console/inbound?date_from=not-a-day")
    assert 'aria-invalid="true"' in page
    _, page, _ = await console.get(f"/console/messages/{sent['cdls_id']}")
    assert "Sim &lt;b&gt;confirmo&lt;/b&gt;" in page and "data-reply=" in page
    _, page, _ = await console.get("/console/customers/11")
    assert f'data-opt-out="55{dest}"' in page
    assert (await console.send(SHOP_TOKEN_2, dest=dest, message="x", httpdup="0"))["status_code"] == "260"
