"""Delivery states only move forward: pending -> sent -> one final state (SPEC §8)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PENDING = "pending"
SENT = "sent"
DELIVERED = "delivered"
UNDELIVERED = "undelivered"
EXPIRED = "expired"
REJECTED = "rejected"
UNKNOWN = "unknown"  # the outcome was lost in a crash

FINAL = frozenset({DELIVERED, UNDELIVERED, EXPIRED, REJECTED})
STATES = frozenset({PENDING, SENT, UNKNOWN}) | FINAL


def may_move(current: str, new: str) -> bool:
    """True when a report may move a message from `current` to `new`."""
    if current in FINAL or new == current:
        return False
    if new == SENT:
        return current in (PENDING, UNKNOWN)
    return new in FINAL


def sources_for(new: str) -> tuple[str, ...]:
    """The states from which `new` may be reached (for a conditional UPDATE)."""
    return tuple(s for s in (PENDING, SENT, UNKNOWN) if may_move(s, new))


@dataclass(frozen=True, slots=True)
class StatusReport:
    """What a provider says about one message (a push, a poll or a status query)."""

    message_id: int | None
    upstream_id: str | None
    states: tuple[str, ...] = ()  # in the order they happened, e.g. ("sent", "delivered")
    accepted: bool = True  # False: the provider refused the message itself
    raw: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


# Kannel dlr-url %d: 1 delivered, 2 undelivered, 4 queued (changes nothing), 8 sent, 16 rejected
KANNEL_TYPES = {"1": DELIVERED, "2": UNDELIVERED, "8": SENT, "16": REJECTED}

# TWW status codes (StatusSMS / StatusSMSNaoLido). TWW documents CL as confirmed on the handset
# and OK as handed to the carrier; E-codes and the rest are failures after acceptance. An
# operator can override or extend this per connection with options.status_map.
TWW_STATUS = {"CL": DELIVERED, "OK": SENT, "EN": SENT, "EX": EXPIRED, "E6": EXPIRED}


def tww_state(status: str, overrides: Mapping[str, str] | None = None) -> str | None:
    """A TWW status code as a delivery state (unknown E-codes: undelivered)."""
    code = status.strip().upper()
    if overrides and code in overrides:
        return overrides[code]
    if code in TWW_STATUS:
        return TWW_STATUS[code]
    return UNDELIVERED if code else None


def wavy_states(item: Mapping[str, Any]) -> tuple[str, ...]:
    """Wavy: sentStatusCode (carrier) 2 sent, 101 expired, other 1xx-3xx rejected; then
    deliveredStatusCode (handset) 4 delivered, 104 undelivered."""
    states: list[str] = []
    sent = _as_int(item.get("sentStatusCode"))
    if sent == 2:
        states.append(SENT)
    elif sent == 101:
        states.append(EXPIRED)
    elif sent is not None and 100 <= sent <= 399:
        states.append(REJECTED)
    handset = _as_int(item.get("deliveredStatusCode"))
    if handset == 4:
        states.append(DELIVERED)
    elif handset == 104:
        states.append(UNDELIVERED)
    return tuple(states)


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return None
