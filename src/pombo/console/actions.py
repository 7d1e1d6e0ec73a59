"""Signing in and out, and the console's changes (POST, each behind the session's CSRF token)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import structlog
from starlette.requests import Request
from starlette.responses import Response

from pombo.api.net import client_ip
from pombo.console import security
from pombo.console.views import render_customer
from pombo.console.web import (
    ROOT,
    Refused,
    checked_form,
    flash,
    operator_service,
    operator_view,
    page,
    public_view,
    see_other,
    session_of,
    set_cookie,
)
from pombo.domain import money
from pombo.domain.accents import ACCENT_MODES
from pombo.errors import NotFound
from pombo.ports import Row
from pombo.services.operator import MAX_USERNAME, Operator, ProvisioningError

log = structlog.get_logger("pombo.console")
NOTE_MAX = 500


def _client_ip(request: Request) -> str:
    # the API's rule for trusted proxies
    return client_ip(request, request.app.state.services.settings.trusted_proxies)


def _next(target: str | None) -> str:
    """Only a path inside the console (no open redirect)."""
    if target and target.startswith(ROOT + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return ROOT + "/"


def _login_page(request: Request, *, status: int = 200, error_key: str | None = None,
                username: str = "", target: str | None = None) -> Response:
    secret = request.state.console.secret
    nonce = security.new_nonce()
    response = page(request, "login.html", status=status, error_key=error_key, username=username,
                    next=_next(target), login_csrf=security.csrf_token(secret, "login:" + nonce))
    set_cookie(response, request, security.LOGIN_COOKIE, nonce, max_age=3600, strict=True)
    return response


@public_view
async def login_form(request: Request) -> Response:
    if await session_of(request, request.state.console) is not None:
        return see_other(_next(request.query_params.get("next")))
    return _login_page(request, target=request.query_params.get("next"))


@public_view
async def login(request: Request) -> Response:
    cs = request.state.console
    nonce = request.cookies.get(security.LOGIN_COOKIE, "")
    try:
        if not nonce:
            raise Refused("no login cookie")
        form = await checked_form(request, security.csrf_token(cs.secret, "login:" + nonce))
    except Refused:
        return _login_page(request, status=403, error_key="csrf_failed")
    username = form.get("username", "").strip()[:MAX_USERNAME]
    password = form.get("password", "")[:1024]
    target = form.get("next")
    operator_svc, ip = operator_service(request), _client_ip(request)
    browser = security.known_browser(cs.secret, request.cookies.get(security.KNOWN_COOKIE), username=username)
    blocked = await operator_svc.login_block(ip=ip, username=username, browser=browser)
    if blocked is not None:
        log.warning("console_login_blocked", ip=ip, username=username[:32], code=blocked, known=browser is not None)
        return _login_page(request, status=429, error_key=f"login_{blocked}", username=username, target=target)
    operator = await operator_svc.verify_operator(username=username, password=password)
    if operator is None:
        await operator_svc.login_failed(ip=ip, username=username, browser=browser)
        log.warning("console_login_failed", ip=ip, username=username[:32])
        return _login_page(request, status=401, error_key="login_failed", username=username, target=target)
    cookie, _ = security.new_session(cs.secret, operator_id=operator.id, username=operator.username,
                                     now=time.time())
    response = see_other(_next(target))
    set_cookie(response, request, security.SESSION_COOKIE, cookie, max_age=int(security.SESSION_TTL))
    known, _ = security.known_cookie(cs.secret, username=operator.username, browser=browser)
    set_cookie(response, request, security.KNOWN_COOKIE, known, max_age=security.KNOWN_TTL, strict=True)
    response.delete_cookie(security.LOGIN_COOKIE, path=ROOT)
    log.info("console_login", operator=operator.username, ip=ip)
    return response


@operator_view
async def logout(request: Request) -> Response:
    session: security.Session = request.state.session
    await operator_service(request).end_sessions(operator_id=session.operator_id)
    response = see_other(f"{ROOT}/login")
    response.delete_cookie(security.SESSION_COOKIE, path=ROOT)
    flash(response, request, "logged_out")
    log.info("console_logout", operator=session.username)
    return response


def parse_amount(raw: str) -> int:
    """'50', '-12.5', '1.234,56' (Portuguese notation) -> units; zero is refused."""
    text = raw.strip().replace(" ", "")
    if "," in text:
        text = text.replace(".", "").replace(",", ".")
    units = money.parse(text)
    if units == 0:
        raise money.MoneyError("zero")
    return units


@operator_view
async def top_up(request: Request) -> Response:
    customer_id: int = request.path_params["customer_id"]
    form: dict[str, str] = request.state.form
    amount, note = form.get("amount", "")[:40], form.get("note", "").strip()[:NOTE_MAX]
    error = None
    try:
        units = parse_amount(amount)
    except money.MoneyError:
        error = "amount_invalid"
    if error is None and not note:
        error = "note_required"
    customer = await operator_service(request).customer(customer_id=customer_id)
    if customer is None:
        return page(request, "error.html", status=404, message_key="not_found")
    if error is not None:
        return await render_customer(request, status=400, form_error=error, amount=amount, note=note)
    operator = request.state.session.username
    try:
        balance = await operator_service(request).top_up(customer_id=customer_id, amount=units, note=note,
                                                         operator=operator)
    except NotFound:
        return page(request, "error.html", status=404, message_key="not_found")
    log.info("console_top_up", operator=operator, customer=customer_id, amount=money.fmt(units))
    response = see_other(f"{ROOT}/customers/{customer_id}#money")
    flash(response, request, "top_up_done", balance=money.fmt(balance))
    return response


@operator_view
async def issue_token(request: Request) -> Response:
    customer_id: int = request.path_params["customer_id"]
    customer = await operator_service(request).customer(customer_id=customer_id)
    if customer is None:
        return page(request, "error.html", status=404, message_key="not_found")
    token = await operator_service(request).issue_token(customer_id=customer_id)
    log.info("console_token_issued", operator=request.state.session.username, customer=customer_id,
             prefix=token[:10])
    return page(request, "token_issued.html", c=customer, token=token)


@operator_view
async def revoke_token(request: Request) -> Response:
    customer_id: int = request.path_params["customer_id"]
    prefix = await operator_service(request).revoke_customer_token(customer_id=customer_id,
                                                                   token_id=request.path_params["token_id"])
    if prefix is None:
        return page(request, "error.html", status=404, message_key="not_found")
    log.info("console_token_revoked", operator=request.state.session.username, customer=customer_id,
             prefix=prefix)
    response = see_other(f"{ROOT}/customers/{customer_id}#tokens")
    flash(response, request, "revoke_done", prefix=prefix)
    return response


@operator_view
async def set_accents(request: Request) -> Response:
    customer_id: int = request.path_params["customer_id"]
    accents = request.state.form.get("accents", "")
    if accents not in ACCENT_MODES:
        return page(request, "error.html", status=400, message_key="accents_invalid")
    if not await operator_service(request).set_customer_accents(customer_id=customer_id, accents=accents):
        return page(request, "error.html", status=404, message_key="not_found")
    log.info("console_accents", operator=request.state.session.username, customer=customer_id, accents=accents)
    response = see_other(f"{ROOT}/customers/{customer_id}#settings")
    flash(response, request, "accents_done", accents=accents)
    return response


@operator_view
async def set_connection(request: Request) -> Response:
    name: str = request.path_params["name"]
    enabled = request.state.form.get("enabled") == "1"
    if not await operator_service(request).set_connection_enabled(name=name, enabled=enabled):
        return page(request, "error.html", status=404, message_key="not_found")
    log.info("console_connection", operator=request.state.session.username, connection=name, enabled=enabled)
    response = see_other(f"{ROOT}/connections")
    flash(response, request, "connection_on" if enabled else "connection_off", name=name)
    return response


# ---------------------------------------------------------------- tariffs, block list, models

Edit = Callable[[Operator, int, dict[str, str], str], Awaitable[Row | None]]
EDITS: dict[str, tuple[str, Edit]] = {  # form name: (the page's section, the change)
    "tariff_set": ("tariffs", lambda op, cid, f, who: op.set_tariff(
        customer_id=cid, prefix=f.get("prefix", "").strip(), value=f.get("value", "").strip(),
        connection=f.get("connection", "").strip(), operator=who)),
    "tariff_remove": ("tariffs", lambda op, cid, f, who: op.remove_tariff(
        customer_id=cid, prefix=f.get("prefix", ""), connection=f.get("connection", ""), operator=who)),
    "blocklist_add": ("blocklist", lambda op, cid, f, who: op.add_blocked(
        customer_id=cid, number=f.get("number", ""), operator=who)),
    "blocklist_remove": ("blocklist", lambda op, cid, f, who: op.remove_blocked(
        customer_id=cid, number=f.get("number", ""), operator=who)),
    "model_add": ("models", lambda op, cid, f, who: op.add_model(
        customer_id=cid, text=f.get("text", ""), operator=who)),
    "model_edit": ("models", lambda op, cid, f, who: op.edit_model(
        customer_id=cid, old=f.get("old", ""), text=f.get("text", ""), operator=who)),
    "model_remove": ("models", lambda op, cid, f, who: op.remove_model(
        customer_id=cid, text=f.get("text", ""), operator=who)),
}


@operator_view
async def edit_customer(request: Request) -> Response:
    """One change of the customer's tariffs, block list or models: validated as `pombo load`
    validates a file (400 with its message, nothing changed), with an audit row naming the
    operator; every server reloads its catalog."""
    customer_id: int = request.path_params["customer_id"]
    action: str = request.path_params["action"]
    if action not in EDITS:
        return page(request, "error.html", status=404, message_key="not_found")
    section, edit = EDITS[action]
    form = {k: v for k, v in request.state.form.items() if k != "csrf"}
    operator = request.state.session.username
    try:
        row = await edit(operator_service(request), customer_id, form, operator)
    except ProvisioningError as exc:
        return await render_customer(request, status=400, edit_error="; ".join(exc.errors), edit_form=action,
                                     edit_values=form)
    if row is None:
        return page(request, "error.html", status=404, message_key="not_found")
    log.info("console_edit", operator=operator, customer=customer_id, action=action, audit=row["id"])
    response = see_other(f"{ROOT}/customers/{customer_id}#{section}")
    flash(response, request, f"edit_done_{section}")
    return response
