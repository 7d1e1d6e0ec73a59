"""Request plumbing of the console: its state, the operator's session, CSRF, pages, headers."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from pombo.console import i18n, security
from pombo.domain import money
from pombo.services.operator import Operator

ROOT = "/console"
HERE = Path(__file__).parent
FLASH_COOKIE = "pombo_console_flash"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
View = Callable[[Request], Awaitable[Response]]


class Refused(Exception):
    """A change without a valid CSRF token or from a foreign origin."""


@dataclass
class ConsoleState:
    """Built on the first console request of a process (no I/O at import or in create_app)."""

    secret: bytes
    templates: jinja2.Environment


def operator_service(request: Request) -> Operator:
    """The operator service of this process (every console read and change goes through it)."""
    return request.app.state.services.operator


async def console_state(request: Request) -> ConsoleState:
    """The console's state, made once per app."""
    app_state = request.app.state
    current: ConsoleState | None = getattr(app_state, "console", None)
    if current is None:
        secret = await operator_service(request).console_secret()
        current = getattr(app_state, "console", None)  # another request may have won meanwhile
        if current is None:
            current = ConsoleState(secret, _templates())
            app_state.console = current
    return current


def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def is_https(request: Request) -> bool:
    """Whether cookies must be Secure."""
    return request.url.scheme == "https"


def set_cookie(response: Response, request: Request, name: str, value: str, *,
               max_age: int | None = None, strict: bool = False) -> None:
    """A console cookie: HttpOnly, SameSite, Secure over https, scoped to the console's path."""
    response.set_cookie(name, value, max_age=max_age, path=ROOT, secure=is_https(request),
                        httponly=True, samesite="strict" if strict else "lax")


def flash(response: Response, request: Request, key: str, *, error: bool = False, **values: Any) -> None:
    """A one-time message for the page the browser is redirected to."""
    secret = request.state.console.secret
    set_cookie(response, request, FLASH_COOKIE, security.sign(secret, {"k": key, "v": values, "e": error}),
               max_age=60)


def see_other(path: str) -> RedirectResponse:
    """303 to a console path (after a change: the browser's reload does not repeat it)."""
    return RedirectResponse(path, status_code=303)


def page(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    """Render a template with the console's helpers; the pending flash message is shown once."""
    cs: ConsoleState = request.state.console
    lang: str = request.state.lang
    session: security.Session | None = getattr(request.state, "session", None)
    tz = request.app.state.services.settings.tz
    flashed = security.unsign(cs.secret, request.cookies.get(FLASH_COOKIE))
    t = i18n.translator(lang)
    html = cs.templates.get_template(template).render(
        t=t,
        lang=lang,
        root=ROOT,
        path=request.url.path,
        operator=session.username if session else None,
        csrf=security.csrf_token(cs.secret, session.nonce) if session else "",
        flash=(t(flashed["k"], **flashed.get("v", {})), bool(flashed.get("e"))) if flashed else None,
        lang_url=lambda code: _with_query(request, lang=code),
        money=lambda units: i18n.decimal_point(money.fmt(int(units)), lang),
        seconds=_seconds,
        when=lambda ts: datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M:%S") if ts is not None else "—",
        **context,
    )
    response = HTMLResponse(html, status_code=status)
    if flashed:
        response.delete_cookie(FLASH_COOKIE, path=ROOT)
    return response


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _with_query(request: Request, **changes: str) -> str:
    params = {**dict(request.query_params), **changes}
    return f"{request.url.path}?{urlencode(params)}"


def harden(response: Response, request: Request) -> Response:
    """Security headers on every console answer, and the language cookie when it changed."""
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers.setdefault("Cache-Control", "no-store")
    if getattr(request.state, "remember_lang", False):
        set_cookie(response, request, i18n.COOKIE, request.state.lang, max_age=365 * 86400)
    return response


async def session_of(request: Request, cs: ConsoleState) -> security.Session | None:
    """The valid session of the request, checked against the operator's row (logout voids it)."""
    session = security.read_session(cs.secret, request.cookies.get(security.SESSION_COOKIE), now=time.time())
    if session is None:
        return None
    operator = await operator_service(request).get_operator(operator_id=session.operator_id)
    if operator is None or session.issued_at < operator.sessions_after:
        return None
    return session


def check_origin(request: Request) -> None:
    """A change must come from the console's own origin when the browser says where from."""
    origin = request.headers.get("origin")
    if origin and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise Refused("foreign origin")


async def checked_form(request: Request, expected: str) -> dict[str, str]:
    """The posted form when its CSRF token is right."""
    check_origin(request)
    form = await request.form(max_files=0, max_fields=50)
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    if not security.same_token(expected, values.get("csrf") or request.headers.get("x-csrf-token")):
        raise Refused("bad csrf token")
    return values


async def prepare(request: Request) -> ConsoleState:
    """State and language for any console request."""
    cs = await console_state(request)
    request.state.console = cs
    lang, remember = i18n.choose(request.query_params, request.cookies, request.headers.get("accept-language", ""))
    request.state.lang, request.state.remember_lang = lang, remember
    return cs


def operator_view(handler: View) -> View:
    """Only for a signed-in operator; POSTs also need the session's CSRF token."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        cs = await prepare(request)
        session = await session_of(request, cs)
        if session is None:
            if request.url.path.startswith(f"{ROOT}/api/"):
                return harden(JSONResponse({"error": "login required"}, status_code=401), request)
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return harden(see_other(f"{ROOT}/login?next={quote(target)}"), request)
        request.state.session = session
        if request.method == "POST":
            try:
                request.state.form = await checked_form(request, security.csrf_token(cs.secret, session.nonce))
            except Refused:
                return harden(page(request, "error.html", status=403, message_key="csrf_failed"), request)
        return harden(await handler(request), request)

    return endpoint


def public_view(handler: View) -> View:
    """Open to anyone (the login page): state, language and headers only."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        await prepare(request)
        return harden(await handler(request), request)

    return endpoint
