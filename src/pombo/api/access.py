"""The access log (POMBO_ACCESS_LOG=1): one structured line per HTTP request.

Method, path, query (credentials masked), status, duration and the client's address (behind
trusted proxies as the API sees it). Tokens and passwords may come in the query string
(`tsid`, `sid`, `password`...): their values are masked as stored rejections mask them, and the
`/dlr/{connection}/{secret}` path loses its secret. Off by default: it costs a log line per send.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any
from urllib.parse import parse_qsl, urlencode

import structlog
from starlette.requests import Request

from pombo.api.net import client_ip
from pombo.domain.rejections import PASSWORD_KEYS, SECRET_KEYS, mask_token

log = structlog.get_logger("pombo.access")
App = Callable[[Any, Any, Any], Awaitable[None]]
MAX_QUERY = 1000


def masked_query(query: bytes | str) -> str:
    """The query string with every token and password value masked."""
    text = query.decode("latin-1") if isinstance(query, bytes) else query
    if not text:
        return ""
    pairs = []
    for key, value in parse_qsl(text, keep_blank_values=True):
        lowered = key.lower()
        if lowered in PASSWORD_KEYS:
            value = "***"
        elif lowered in SECRET_KEYS:
            value = mask_token(value) if value.strip() else ""
        pairs.append((key, value))
    return urlencode(pairs)[:MAX_QUERY]


def masked_path(path: str) -> str:
    """The path, with a delivery-report URL's secret replaced by `***`."""
    if path.startswith("/dlr/"):
        parts = path.split("/", 3)  # '', 'dlr', connection, secret...
        if len(parts) == 4:
            return f"/dlr/{parts[2]}/***"
    return path


class AccessLog:
    """Wraps the app: times each HTTP request and logs it once its response has started."""

    def __init__(self, trusted_proxies: Collection[str]) -> None:
        self._trusted = trusted_proxies

    async def around(self, app: App, scope: Any, receive: Any, send: Any) -> None:
        """Run `app` for this request and log it (also when it fails)."""
        start = time.perf_counter()
        status = 0

        async def send_status(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, send_status)
        finally:
            log.info(
                "access",
                method=scope.get("method", ""),
                path=masked_path(scope.get("path", "")),
                query=masked_query(scope.get("query_string", b"")),
                status=status or 500,
                duration_ms=round((time.perf_counter() - start) * 1000, 2),
                ip=client_ip(Request(scope), self._trusted),
            )
