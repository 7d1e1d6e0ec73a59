"""What leaves Pombo toward a customer never carries an upstream connection's secrets.

A provider's raw answer (kept as `return_log`) may echo the request Pombo made: Kannel's error
page quotes the whole sendsms URL, with the username, the password and the dlr-url whose path
carries the connection's `dlr_secret`. Before such text reaches a customer (GetSMSStatus, a
callback) every secret is replaced by `***` in each form it may take there: as written,
URL-encoded (either case of hex, `+` or `%20` for a space), HTML-escaped, JSON-escaped, and the
base64 of `username:password` an Authorization header carries. Credential-looking `key=value`
pairs and any dlr-url are masked whatever their value, so a short username is caught too.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

from pombo.domain.catalog import Catalog

MASK = "***"
MIN_SECRET = 4  # shorter values would mask ordinary words; the key=value rules still catch them

_KEYS = r"(?:username|user|login|password|passwd|pass|pwd|senha|numusu|token|api[_-]?key|secret|auth)"
_PATTERNS = (
    # key=value in a query or form, raw or inside an encoded URL (%26key%3Dvalue)
    (re.compile(rf"(?i)((?:^|[?&;\s\"'(]|&amp;){_KEYS}=)[^&\s\"'<>]*"), rf"\1{MASK}"),
    (re.compile(rf"(?i)((?:%26|%3F){_KEYS}%3D)(?:(?!%26)[^&\s\"'<>])*"), rf"\1{MASK}"),
    # "key": "value" in JSON
    (re.compile(rf"(?i)(\"{_KEYS}\"\s*:\s*\")(?:[^\"\\]|\\.)*\""), rf'\1{MASK}"'),
    (re.compile(r"(?i)(authorization\s*[:=]\s*\"?(?:basic|bearer)\s+)[A-Za-z0-9+/=._~-]+"), rf"\1{MASK}"),
    # the dlr-url: raw, URL-encoded, JSON-escaped (its path carries the dlr secret)
    (re.compile(r"(?i)(?:https?://[^\s/\"'<>&]+)?/dlr/[^\s\"'<>&]*"), MASK),
    (re.compile(r"(?i)(?:https?%3A%2F%2F(?:(?!%2F)[^\s\"'<>&])+)?%2Fdlr%2F(?:(?!%26)[^\s\"'<>&])*"), MASK),
    (re.compile(r"(?i)(?:https?:\\/\\/[^\s\"'<>&\\]+)?\\/dlr\\/[^\s\"'<>&]*"), MASK),
)


def forms(secret: str) -> set[str]:
    """The ways a secret may be written in text that reached a customer."""
    out = {secret, html.escape(secret), html.escape(secret, quote=False), json.dumps(secret)[1:-1],
           json.dumps(secret, ensure_ascii=False)[1:-1], json.dumps(secret)[1:-1].replace("/", "\\/")}
    for encoded in (quote(secret, safe=""), quote(secret), quote_plus(secret), quote_plus(secret, safe="/")):
        out |= {encoded, re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), encoded)}
    return out


def basic_forms(username: str, password: str) -> set[str]:
    """The base64 of `username:password` as an Authorization header or a URL carries it."""
    raw = f"{username}:{password}".encode()
    std, url = base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()
    return {std, std.rstrip("="), url, url.rstrip("=")}


class Scrubber:
    """Masks a fixed set of secrets (and every credential-looking pair) in text."""

    def __init__(self, secrets: Iterable[str], pairs: Iterable[tuple[str, str]] = ()) -> None:
        found = {f for s in secrets if len(s) >= MIN_SECRET for f in forms(s)}
        found |= {f for user, pw in pairs if user or pw for f in basic_forms(user, pw)}
        ordered = sorted((f for f in found if len(f) >= MIN_SECRET), key=len, reverse=True)
        self._exact = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __call__(self, text: str | None) -> str | None:
        """The text with every secret masked (None stays None)."""
        if not text:
            return text
        if self._exact is not None:
            text = self._exact.sub(MASK, text)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text


def connection_secrets(catalog: Catalog) -> tuple[list[str], list[tuple[str, str]]]:
    """Every connection's credentials, dlr secret and header values; its user:password pairs."""
    secrets: list[str] = []
    pairs: list[tuple[str, str]] = []
    for config in catalog.connections.values():
        secrets += [config.username, config.password, config.token, config.dlr_secret]
        headers = config.options.get("headers")
        if isinstance(headers, dict):
            secrets += [str(v) for v in headers.values()]
        pairs.append((config.username, config.password))
    return secrets, pairs


_last: tuple[Catalog, Scrubber] | None = None


def scrubber_for(catalog: Catalog) -> Scrubber:
    """The scrubber for a catalog's connections (kept while the catalog is the same object)."""
    global _last
    if _last is None or _last[0] is not catalog:
        secrets, pairs = connection_secrets(catalog)
        _last = (catalog, Scrubber(secrets, pairs))
    return _last[1]
