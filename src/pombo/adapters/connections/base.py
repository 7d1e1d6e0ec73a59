"""What every HTTP connection kind shares: the session, the one request, the outcome kinds.

Every attempt ends in one of SPEC §11's kinds, decided here for what HTTP itself says and by
the kind for what the body says:
- nothing written (refused, DNS, TLS, connect timeout, reset or closed before the first byte),
  or HTTP 429 / 503 -> NotSent (with Retry-After in seconds, when the provider named it);
- written, then no complete valid answer (reset or closed mid-answer, invalid HTTP) ->
  OutcomeUnknown; none within config.final_timeout -> UpstreamTimeout (also unknown);
- an answer the kind does not accept -> UpstreamRejected(raw answer), decided by the kind.
Nothing here sends a request twice: the only retry (in httpclient) is of a request that
provably did not go out, on a pooled socket the peer had already closed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC
from email.utils import parsedate_to_datetime
from urllib.parse import quote, urlsplit

from yarl import URL

from pombo.adapters.connections.httpclient import (
    AnswerTimeout,
    HttpPool,
    NothingSent,
    ProtocolError,
)
from pombo.domain.model import ConnectionConfig
from pombo.ports import NotSent, OutcomeUnknown, UpstreamTimeout

MAX_BODY = 1 << 20  # bytes of an answer we read at most
MAX_RAW = 4000  # characters of an answer we keep in `raw`
CONNECTION_LIMIT = 256  # open sockets per connection (the hot path sends thousands/s)
KEEPALIVE = 30.0  # seconds an idle socket stays open
MAX_RETRY_AFTER = 3600.0  # seconds: a longer Retry-After is taken as this
NOT_NOW = frozenset((429, 503))  # "not now": SPEC §11's not sent


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
        self._origin_key = (parts.scheme, parts.hostname or "", parts.port)
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
                return self._pool(*self._origin_key), target or "/"
        parsed = url if isinstance(url, URL) else URL(url)
        return self._pool(parsed.scheme, parsed.raw_host or "", parsed.port), parsed.raw_path_qs or "/"

    def _pool(self, scheme: str, host: str, port: int | None) -> HttpPool:
        key = (scheme, host, port or (443 if scheme == "https" else 80))
        pool = self._pools.get(key)
        if pool is None:
            if scheme not in ("http", "https") or not host:
                raise NotSent(f"not sent: not an http(s) URL: {scheme}://{host}")
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
        """One HTTP exchange, its failures mapped to SPEC §11's outcome kinds."""
        try:
            pool, target = self._route(url)
            answer = await pool.request(
                method,
                target,
                headers=headers,
                body=data,
                connect_timeout=self._connect_timeout,
                timeout=self.config.final_timeout,
            )
        except NothingSent as exc:
            raise NotSent(self._scrub(f"not sent: {exc}")) from None
        except AnswerTimeout:
            raise UpstreamTimeout(self._timeout_text) from None
        except ProtocolError as exc:
            raise OutcomeUnknown(self._scrub(f"no valid answer: {exc}")) from None
        except (OSError, ValueError) as exc:  # the request could not even be built
            raise NotSent(f"not sent: {type(exc).__name__}") from None
        result = Answer(answer.status, answer.body)
        if answer.status in NOT_NOW:
            raise NotSent(self._scrub(result.raw_with_status), retry_after=retry_after_seconds(answer.retry_after))
        return result

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text[:MAX_RAW]


def _secret_forms(*secrets: str) -> tuple[str, ...]:
    """Each secret as written and as it looks inside a URL, longest first."""
    forms = {form for s in secrets if s for form in (s, quote(s, safe=""), quote(s))}
    return tuple(sorted(forms, key=len, reverse=True))


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """HTTP Retry-After (delta-seconds or an HTTP-date) as seconds from now, capped at
    MAX_RETRY_AFTER; None when absent or unreadable."""
    if value is None or not (value := value.strip()):
        return None
    if value.isascii() and value.isdigit():
        seconds = float(value) if len(value) < 9 else MAX_RETRY_AFTER
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # "-0000": HTTP dates are GMT
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)
