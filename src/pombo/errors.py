"""Every exception Pombo raises on purpose, in one documented tree (in the manner of httpx's
`_exceptions.py`). Adapters translate driver errors into these at their boundary; services and
the API decide by type, never by message text.

    PomboError
    ├── StoreUnavailable        the database did not answer (connect, timeout, lost socket,
    │                           locked too long): the only error that answers 503 and is retried
    ├── NotFound                an operator named a customer, token or connection that does not exist
    └── UpstreamError           one attempt at an upstream connection failed (SPEC §11's kinds)
        ├── NotSent             provably nothing reached the provider, or it said "not now"
        │                       (refused, reset before writing, DNS/TLS, connect timeout, 429,
        │                       503, SMPP throttled): may go again, here or on a fallback
        ├── UpstreamRejected    a hard error: the provider refused the message (raw answer kept):
        │                       300, refunded, never tried elsewhere
        └── OutcomeUnknown      the request went out and no complete answer came: never sent
            │                   again, on any connection
            └── UpstreamTimeout no answer within the connection's final timeout

Anything else that escapes a service is a bug: the API answers HTTP 500 (`status_code` "500",
`internal error`) with an id that is also in the log, and the dispatcher never retries it as an
outage.
"""

from __future__ import annotations

import secrets


class PomboError(Exception):
    """Base of every error Pombo raises on purpose."""


class StoreUnavailable(PomboError):
    """The database did not answer; the request may be tried again later (HTTP 503)."""


class NotFound(PomboError, LookupError):
    """The named customer, user, token or connection does not exist."""


class UpstreamError(PomboError):
    """Base of every upstream failure; retry decisions look at the subclass, never at str(e)."""

    def __init__(self, raw: str) -> None:
        super().__init__(raw[:200])
        self.raw = raw


class NotSent(UpstreamError):
    """Nothing reached the provider (or it said "not now"): the message may be tried again,
    not before `retry_after` seconds when the provider named them (HTTP Retry-After)."""

    def __init__(self, raw: str, *, retry_after: float | None = None) -> None:
        super().__init__(raw)
        self.retry_after = retry_after


class UpstreamRejected(UpstreamError):
    """A hard error: the upstream refused the message."""


class OutcomeUnknown(UpstreamError):
    """The request went out and no complete answer came: it may have reached the handset."""


class UpstreamTimeout(OutcomeUnknown):
    """No answer within the connection's final timeout: the outcome is unknown."""

    def __init__(self, raw: str = "timeout") -> None:
        super().__init__(raw)


def new_error_id() -> str:
    """A short random id tying a bug's answer (or a background failure) to its log line."""
    return secrets.token_hex(6)
