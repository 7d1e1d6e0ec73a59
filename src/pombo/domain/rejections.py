"""Rejected requests as support reads them: the parameters kept, every secret masked.

A MakeSMS request answered with a refusal (SPEC §2's 1xx, §4's 2xx, 400, 408, 413) writes no log
row. Pombo keeps per-minute counts of them by customer and code, and the last few of each
customer with their parameters, so "why did my send fail" has an answer. The token is never kept
whole: half of it at most, and never more than the 10 characters SPEC §2 lets logs show (the
console lists tokens by those same first characters). Passwords are never kept at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pombo.domain import codes

# MakeSMS answers that are in the message log (OK, WR, 300): not rejections
LOGGED = frozenset({codes.OK, codes.WR, codes.PROVIDER_ERROR})
UNKNOWN_CUSTOMER = 0  # the credentials named no customer (1xx, or a body that could not be read)
SECRET_KEYS = frozenset({"tsid", "sid", "token", "access_token", "api_key", "apikey", "key", "secret"})
PASSWORD_KEYS = frozenset({"password", "passwd", "pass", "pwd", "senha"})
MAX_KEYS = 20  # parameters kept per rejection
MAX_KEY = 40
MAX_VALUE = 300  # characters per parameter value (a message body is cut here)
PREFIX_MAX = 10


def mask_token(token: str) -> str:
    """The first characters of a token and an ellipsis: at most half of it, at most 10."""
    token = token.strip()
    keep = min(PREFIX_MAX, len(token) // 2)
    return token[:keep] + "…"


def scrub_params(params: Mapping[str, Any]) -> dict[str, str]:
    """The request's parameters as they may be stored: tokens masked, passwords dropped to `***`,
    at most MAX_KEYS keys of MAX_KEY characters and values of MAX_VALUE."""
    out: dict[str, str] = {}
    for key, value in params.items():
        if len(out) >= MAX_KEYS:
            break
        name = str(key)[:MAX_KEY]
        text = str(value)
        lowered = name.lower()
        if lowered in PASSWORD_KEYS:
            text = "***"
        elif lowered in SECRET_KEYS:
            text = mask_token(text) if text.strip() else ""
        out[name] = text[:MAX_VALUE]
    return out


@dataclass(frozen=True, slots=True)
class RejectedRequest:
    """One rejection as it is stored: `credential` is a masked token or a username."""

    at: float
    customer_id: int
    code: int
    status: str
    ip: str
    credential: str
    dest: str
    params: dict[str, str]


def minute_of(at: float) -> int:
    """The minute (epoch seconds // 60) a rejection is counted in."""
    return int(at // 60)
