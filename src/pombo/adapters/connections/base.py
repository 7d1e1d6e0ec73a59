"""What every HTTP connection kind shares: the session, the one request, the failure policy.

Failure policy (SPEC §8, STYLE habit 7), the same for every kind:
- nothing accepted (refused, DNS, TLS, reset before an answer, invalid HTTP, connect timeout)
  -> UpstreamRejected("connect error: ...");
- no complete answer within config.final_timeout -> UpstreamTimeout (the outcome is unknown);
- an answer the kind does not accept -> UpstreamRejected(raw answer), decided by the kind.
A send is never retried here, not even on a stale keep-alive connection: an ambiguous send must
not reach the handset twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from urllib.parse import quote, urlsplit

from yarl import URL

from pombo.adapters.connections.httpclient import ConnectError, HttpPool, ProtocolError
from pombo.domain.model import ConnectionConfig
from pombo.ports import UpstreamRejected, UpstreamTimeout

MAX_BODY = 1 << 20  # bytes of an answer we read at most
MAX_RAW = 4000  # characters of an answer we keep in `raw`
CONNECTION_LIMIT = 256  # open sockets per connection (the hot path sends thousands/s)
KEEPALIVE = 30.0  # seconds an idle socket stays open


class Answer:
    """The upstream's HTTP answer: status and body (at most MAX_BODY bytes)."""

    __slots__ = ("_text", "body", "status")

    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.body = body
        self._text: str | None = None

    @property
    def ok(self) -> bool:
        """A 2xx status."""
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        """The whole body (up to MAX_BODY) decoded as UTF-8, bad bytes replaced."""
        if self._text is None:
            self._text = self.body.decode("utf-8", errors="replace")
        return self._text

    @property
    def raw(self) -> str:
        """The body as kept in return_log (capped at MAX_RAW characters; never empty)."""
        return self.text[:MAX_RAW] or f"HTTP {self.status} (empty body)"

    @property
    def raw_with_status(self) -> str:
        """`HTTP 503: <body>`, for a status the kind does not accept."""
        return f"HTTP {self.status}: {self.text}"[:MAX_RAW]


class HttpConnection:
    """Base of the HTTP kinds: a keep-alive pool per origin, made on the first send."""

    def __init__(self, config: ConnectionConfig, *, public_url: str = "") -> None:
        self.config = config
        self.public_url = public_url.rstrip("/")
        self.base_url = config.url.rstrip("/")
        parts = urlsplit(self.base_url)
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._pools: dict[tuple[str, str, int], HttpPool] = {}
        self._connect_timeout = min(config.final_timeout, 10)
        self._timeout_text = f"no answer within {config.final_timeout:g}s"
        self._secrets = _secret_forms(config.password, config.token)

    def __repr__(self) -> str:  # never print credentials
        return f"{type(self).__name__}(name={self.config.name!r})"

    def _route(self, url: str | URL) -> tuple[HttpPool, str]:
        """The pool for the URL's origin and the request target (path and query)."""
        if isinstance(url, str) and url.startswith(self._origin) and url.isascii() and " " not in url:
            target = url[len(self._origin) :]
            if target[:1] in ("/", ""):  # same origin, already a valid target
                parts = urlsplit(self._origin)
                return self._pool(parts.scheme, parts.hostname or "", parts.port), target or "/"
        parsed = url if isinstance(url, URL) else URL(url)
        return self._pool(parsed.scheme, parsed.raw_host or "", parsed.port), parsed.raw_path_qs or "/"

    def _pool(self, scheme: str, host: str, port: int | None) -> HttpPool:
        key = (scheme, host, port or (443 if scheme == "https" else 80))
        pool = self._pools.get(key)
        if pool is None:
            if scheme not in ("http", "https") or not host:
                raise UpstreamRejected(f"connect error: not an http(s) URL: {scheme}://{host}")
            pool = self._pools[key] = HttpPool(
                key[0], key[1], key[2], limit=CONNECTION_LIMIT, keepalive=KEEPALIVE, max_body=MAX_BODY
            )
        return pool

    async def close(self) -> None:
        """Release the sockets."""
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()

    async def request(
        self,
        method: str,
        url: str | URL,
        *,
        headers: Mapping[str, str] | None = None,
        data: bytes | None = None,
    ) -> Answer:
        """One HTTP exchange, never retried, with the failures mapped to the port's errors."""
        try:
            pool, target = self._route(url)
            async with asyncio.timeout(self.config.final_timeout):
                status, body = await pool.request(
                    method, target, headers=headers, body=data, connect_timeout=self._connect_timeout
                )
        except ConnectError as exc:  # nothing was sent
            raise UpstreamRejected(self._scrub(f"connect error: {exc}")) from None
        except ProtocolError as exc:  # sent, then the answer broke: the upstream did not accept it
            raise UpstreamRejected(self._scrub(f"connect error: {exc}")) from None
        except TimeoutError:
            raise UpstreamTimeout(self._timeout_text) from None
        except (OSError, ValueError) as exc:
            raise UpstreamRejected(f"connect error: {type(exc).__name__}") from None
        return Answer(status, body)

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text[:MAX_RAW]


def _secret_forms(*secrets: str) -> tuple[str, ...]:
    """Each secret as written and as it looks inside a URL, longest first."""
    forms = {form for s in secrets if s for form in (s, quote(s, safe=""), quote(s))}
    return tuple(sorted(forms, key=len, reverse=True))
