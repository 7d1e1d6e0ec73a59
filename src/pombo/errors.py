"""Every exception Pombo raises on purpose, in one documented tree (in the manner of httpx's
`_exceptions.py`). Adapters translate driver errors into these at their boundary; services and
the API decide by type, never by message text.

    PomboError
    ├── StoreUnavailable        the database did not answer (connect, timeout, lost socket,
    │                           locked too long): the only error that answers 503 and is retried
    ├── NotFound                an operator named a customer, token or connection that does not exist
    └── UpstreamError           one attempt at an upstream connection failed
        ├── UpstreamRejected    a hard error: the provider refused the message (raw answer kept)
        └── UpstreamTimeout     no answer within the connection's final timeout

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


class UpstreamRejected(UpstreamError):
    """A hard error: the upstream refused the message (or could not be reached at all)."""


class UpstreamTimeout(UpstreamError):
    """No answer within the connection's final timeout: the outcome is unknown."""

    def __init__(self, raw: str = "timeout") -> None:
        super().__init__(raw)


def new_error_id() -> str:
    """A short random id tying a bug's answer (or a background failure) to its log line."""
    return secrets.token_hex(6)
