"""The console's small parts: signatures, sessions, labels, amounts, the time-window search."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, insert, select

from pombo import bootstrap
from pombo.adapters.sql import migrate, stats
from pombo.adapters.sql import schema as t
from pombo.cli import main
from pombo.config import Settings
from pombo.console import i18n, security
from pombo.console.actions import _next, parse_amount
from pombo.domain import money
from pombo.domain.customer_edits import ACTIONS
from pombo.domain.numbers import number_forms
from pombo.services.operator import lock_name
from pombo.services.operator_reads import safe_url

SECRET = b"s" * 32
TEMPLATES = Path(__file__).parents[2] / "src/pombo/console/templates"


def test_signed_values_reject_any_tampering() -> None:
    value = security.sign(SECRET, {"o": 1})
    assert security.unsign(SECRET, value) == {"o": 1}
    body, mac = value.split(".")
    for forged in (f"{body}x.{mac}", f"{body}.{mac[:-2]}", value + ".", "", "a.b", None):
        assert security.unsign(SECRET, forged) is None
    assert security.unsign(b"other", value) is None


def test_sessions_expire_and_bind_their_csrf_token() -> None:
    cookie, session = security.new_session(SECRET, operator_id=7, username="ana", now=1000.0)
    assert security.read_session(SECRET, cookie, now=1000.0 + 60) == session
    assert security.read_session(SECRET, cookie, now=1000.0 + security.SESSION_TTL) is None
    assert security.read_session(SECRET, cookie, now=999.0) is None  # issued in the future
    _, other = security.new_session(SECRET, operator_id=7, username="ana", now=1000.0)
    assert security.csrf_token(SECRET, session.nonce) != security.csrf_token(SECRET, other.nonce)
    assert security.same_token(security.csrf_token(SECRET, session.nonce), security.csrf_token(SECRET, session.nonce))
    assert not security.same_token("x", None) and not security.same_token("x", "")


def test_lock_names_fit_the_column_and_name_the_place() -> None:
    assert lock_name("ana", "ip:10.0.0.1").startswith("console:")
    assert len(lock_name("x" * 64, "ip:" + "f" * 45)) <= 64
    assert lock_name("ana", "ip:10.0.0.1") != lock_name("ana", "ip:10.0.0.2") != lock_name("bob", "ip:10.0.0.2")


def test_known_browser_cookie_names_its_username() -> None:
    value, browser = security.known_cookie(SECRET, username="ana", browser=None)
    assert security.known_browser(SECRET, value, username="ana") == browser
    assert security.known_browser(SECRET, value, username="bob") is None
    assert security.known_browser(b"another-secret", value, username="ana") is None
    assert security.known_browser(SECRET, value + "x", username="ana") is None
    assert security.known_cookie(SECRET, username="ana", browser=browser)[1] == browser


def test_every_label_used_by_a_template_exists_in_both_languages() -> None:
    used = set()
    for path in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"\bt\('([a-z0-9_]+)'\s*[,)]", path.read_text()))  # not the 'st_' ~ x ones
    used |= {f"check_{code}" for code in (220, 230, 235, 238, 240, 260, 270, 244, 245, 255, 250)}
    used |= {f"st_{s}" for s in ("pending", "sent", "delivered", "undelivered", "expired", "rejected", "unknown")}
    for path in TEMPLATES.parent.glob("*.py"):  # keys handed to pages and flashes by the views
        used |= set(re.findall(r'(?:_key=|error = |flash\(response, request, )"([a-z0-9_]+)"', path.read_text()))
    used |= {"connection_on", "connection_off"}
    pages = {p.name: p.read_text() for p in TEMPLATES.glob("*.html")}
    used |= set(re.findall(r"\('/[a-z]*', '([a-z_]+)'\)", pages["base.html"]))  # the menu
    used |= set(re.findall(r"\('[a-z_]+', '([a-z_]+)', '[a-z]+'\)", pages["messages.html"]))  # the filters
    kpis = re.search(r"for key in \[([^\]]+)\]", pages["overview.html"])
    assert kpis is not None
    used |= set(re.findall(r"'([a-z_]+)'", kpis.group(1)))
    used |= {f"cause_{c}" for c in ("topup", "opening", "message", "refund")}
    used |= {f"eng_{s}" for s in ("ok", "failing", "skipped", "idle")}
    used |= {f"kind_{k}" for k in ("ok", "rejected", "not_sent", "unknown", "claimed", "expired")}
    used |= {f"audit_{a}" for a in ACTIONS} | {f"edit_done_{s}" for s in ("tariffs", "blocklist", "models")}
    used |= {f"login_{c}" for c in (131, 132, 199)} | {f"health_{h}" for h in ("ok", "degraded", "down", "idle", "off")}
    missing = sorted(used - set(i18n.LABELS))
    assert missing == []
    for key, (en, pt) in i18n.LABELS.items():
        assert en and pt, key
        assert set(re.findall(r"{(\w+)}", en)) == set(re.findall(r"{(\w+)}", pt)), key


@pytest.mark.parametrize(
    ("query", "cookie", "header", "expected"),
    [
        ({"lang": "en"}, {}, "pt-BR", ("en", True)),
        ({"lang": "xx"}, {i18n.COOKIE: "en"}, "pt-BR", ("en", False)),
        ({}, {}, "en-US,en;q=0.9", ("en", False)),
        ({}, {}, "fr-FR,pt-BR;q=0.8,en;q=0.5", ("pt", False)),
        ({}, {}, "", ("pt", False)),
        ({}, {}, "de", ("pt", False)),
    ],
)
def test_language_choice(query: dict[str, str], cookie: dict[str, str], header: str,
                         expected: tuple[str, bool]) -> None:
    assert i18n.choose(query, cookie, header) == expected


def test_decimal_notation() -> None:
    assert i18n.decimal_point("1234567.5000", "pt") == "1.234.567,5000"
    assert i18n.decimal_point("-1234.0100", "en") == "-1,234.0100"


@pytest.mark.parametrize(
    ("raw", "units"),
    [("50", 500_000), ("-12.5", -125_000), ("1.234,56", 12_345_600), ("0,0001", 1), (" 7 ", 70_000)],
)
def test_amounts(raw: str, units: int) -> None:
    assert parse_amount(raw) == units


@pytest.mark.parametrize("raw", ["0", "", "abc", "1.00001", "1e400", "NaN"])
def test_bad_amounts(raw: str) -> None:
    with pytest.raises(money.MoneyError):
        parse_amount(raw)


def test_number_forms_and_urls_and_redirects() -> None:
    assert number_forms("(11) 98765-4321")[0] == "5511987654321"
    assert "4412345678" in number_forms("+44 1234 5678")
    assert safe_url("https://user:pw@sms.example.net:8443/api?key=secret#x") == "https://sms.example.net:8443/api"
    assert _next("/console/messages?x=1") == "/console/messages?x=1"
    for target in ("//evil.example", "https://evil.example/console/", "/consolex", "/console/\\evil", None):
        assert _next(target) == "/console/"


def test_first_id_since_finds_the_window_despite_gaps(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    migrate.upgrade(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        assert stats.first_id_since(conn, t.ledger, 0) is None
        for i in list(range(1, 40)) + list(range(100, 140, 3)):  # ids with a hole
            conn.execute(insert(t.ledger).values(id=i, customer_id=1, amount=1, cause="topup", created_at=1000.0 + i))
        ids = list(conn.execute(select(t.ledger.c.id).order_by(t.ledger.c.id)).scalars())
        for ts in (0, 1001, 1020.5, 1039, 1040, 1100, 1110, 1137, 1138, 5000):
            expected = next((i for i in ids if 1000 + i >= ts), None)
            found = stats.first_id_since(conn, t.ledger, ts)
            if expected is None:
                assert found is None, ts
            else:  # the bound selects exactly the rows from `expected` on
                assert [i for i in ids if i >= found] == [i for i in ids if i >= expected], ts
    engine.dispose()


def test_operator_add_command(tmp_path: Path) -> None:
    env = {"POMBO_DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}"}
    runner = CliRunner()
    result = runner.invoke(main, ["operator", "add", "ana", "--password", "long-enough"], env=env)
    assert result.exit_code == 0 and "operator ana added" in result.output
    result = runner.invoke(main, ["operator", "add", "ana"], input="another-one\nanother-one\n", env=env)
    assert result.exit_code == 0 and "new password" in result.output
    result = runner.invoke(main, ["operator", "add", "bob", "--password", "short"], env=env)
    assert result.exit_code != 0 and "at least 8" in result.output
    result = runner.invoke(main, ["operator", "add", "has space", "--password", "long-enough"], env=env)
    assert result.exit_code != 0

    async def verify(username: str, password: str) -> bool:
        operator, close = await bootstrap.open_operator(Settings(database_url=env["POMBO_DATABASE_URL"]))
        try:
            return await operator.verify_operator(username=username, password=password) is not None
        finally:
            await close()

    assert asyncio.run(verify("ana", "another-one"))
    assert not asyncio.run(verify("ana", "long-enough"))
    assert not asyncio.run(verify("nobody", "another-one"))


def test_every_console_edit_has_a_form_and_an_audit_label() -> None:
    from pombo.console.actions import EDITS

    assert set(EDITS) == set(ACTIONS)
    page = (TEMPLATES / "customer.html").read_text()
    for action in ACTIONS:
        assert f"/edit/{action}" in page, action
