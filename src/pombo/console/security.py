"""Console sessions: HMAC-signed cookies and CSRF tokens bound to the session.

The signing secret is stored (made on first use, services.operator.Operator.console_secret), so
every worker and every restart agrees on it. A session names its operator and when it was
issued; it is void once expired or once the operator logged out (its sessions_after moved past
it). The login lockout is the operator service's (login_block, login_failed); a browser that
signed in before carries a signed "known browser" cookie naming the username and a random id of
its own, so wrong passwords typed elsewhere (even from its address) never lock it out.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

SESSION_COOKIE = "pombo_console"
LOGIN_COOKIE = "pombo_console_login"  # double-submit CSRF token of the login form
KNOWN_COOKIE = "pombo_console_known"  # this browser signed in as this username before
SESSION_TTL = 8 * 3600.0
KNOWN_TTL = 180 * 86400


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(secret: bytes, payload: dict[str, Any]) -> str:
    """payload as base64url JSON, a dot, and its HMAC-SHA256."""
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    mac = hmac.new(secret, body, hashlib.sha256).digest()
    return f"{_b64(body)}.{_b64(mac)}"


def unsign(secret: bytes, value: str | None) -> dict[str, Any] | None:
    """The payload of a value made by sign() with this secret, else None."""
    if not value or value.count(".") != 1:
        return None
    body_text, mac_text = value.split(".")
    try:
        body, mac = _unb64(body_text), _unb64(mac_text)
    except (binascii.Error, ValueError):
        return None
    if not hmac.compare_digest(mac, hmac.new(secret, body, hashlib.sha256).digest()):
        return None
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


@dataclass(frozen=True, slots=True)
class Session:
    """What a valid session cookie says."""

    operator_id: int
    username: str
    issued_at: float
    expires_at: float
    nonce: str


def new_session(secret: bytes, *, operator_id: int, username: str, now: float) -> tuple[str, Session]:
    """A fresh session and its cookie value."""
    session = Session(operator_id, username, now, now + SESSION_TTL, secrets.token_urlsafe(18))
    payload = {"o": operator_id, "u": username, "iat": now, "exp": session.expires_at, "n": session.nonce}
    return sign(secret, payload), session


def read_session(secret: bytes, value: str | None, *, now: float) -> Session | None:
    """The session in a cookie when its signature holds and it has not expired."""
    payload = unsign(secret, value)
    if payload is None:
        return None
    try:
        session = Session(
            int(payload["o"]), str(payload["u"]), float(payload["iat"]), float(payload["exp"]), str(payload["n"])
        )
    except (KeyError, TypeError, ValueError):
        return None
    return session if session.issued_at <= now < session.expires_at else None


def csrf_token(secret: bytes, nonce: str) -> str:
    """The CSRF token of a session (or of a login form's nonce)."""
    return _b64(hmac.new(secret, b"csrf:" + nonce.encode(), hashlib.sha256).digest())


def same_token(expected: str, given: str | None) -> bool:
    """Constant-time comparison; a missing token never matches."""
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


def new_nonce() -> str:
    """A random value for the login form's double-submit cookie."""
    return secrets.token_urlsafe(18)


def known_cookie(secret: bytes, *, username: str, browser: str | None) -> tuple[str, str]:
    """The known-browser cookie for a username (a new browser id when none); (value, id)."""
    browser = browser or secrets.token_urlsafe(18)
    return sign(secret, {"k": username, "b": browser}), browser


def known_browser(secret: bytes, value: str | None, *, username: str) -> str | None:
    """The browser id in a valid known-browser cookie for this username, else None."""
    payload = unsign(secret, value)
    if payload is None or payload.get("k") != username or not isinstance(payload.get("b"), str):
        return None
    return str(payload["b"])[:40]
