"""Delivery states only move forward: pending -> sent -> one final state (SPEC §8)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pombo.domain import codes

PENDING = "pending"
SENT = "sent"
DELIVERED = "delivered"
UNDELIVERED = "undelivered"
EXPIRED = "expired"
REJECTED = "rejected"
UNKNOWN = "unknown"  # the outcome was lost (a crash, no answer): not final, a report still moves it

FINAL = frozenset({DELIVERED, UNDELIVERED, EXPIRED, REJECTED})
STATES = frozenset({PENDING, SENT, UNKNOWN}) | FINAL
# A report of one of these shows the provider took the message: a waiting (WR) one becomes OK
# (SPEC §11). `rejected` never reached a handset: it is refunded instead (SPEC §8).
TAKEN = frozenset({SENT, DELIVERED, UNDELIVERED, EXPIRED})


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
class ReportMove:
    """What a report does to a message: its new delivery and status, and whether to refund."""

    delivery: str
    status_code: int
    refund: bool


def report_move(current: str, status_code: int, new: str | None, *, refunded: bool) -> ReportMove | None:
    """The move a report of `new` makes on a message in `current` with `status_code`; None when
    it may not move. A report that shows the provider took a waiting (WR) message settles it OK
    (SPEC §11); `rejected` never reached a handset: refunded once, unless already `refunded`
    (SPEC §8), and a waiting message finally fails (300) while an OK one stays what the caller
    was told."""
    if new is None or not may_move(current, new):
        return None
    if new == REJECTED:
        status = codes.PROVIDER_ERROR if status_code == codes.WR else status_code
        return ReportMove(new, status, refund=not refunded)
    return ReportMove(new, codes.OK if status_code == codes.WR and new in TAKEN else status_code, refund=False)


@dataclass(frozen=True, slots=True)
class StatusReport:
    """What a provider says about one message (a push, a poll or a status query)."""

    message_id: int | None
    upstream_id: str | None
    states: tuple[str, ...] = ()  # in the order they happened, e.g. ("sent", "delivered")
    accepted: bool = True  # False: the provider refused the message itself
    raw: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


# SMPP receipt `stat:` words (SPEC §12), also what Kannel passes on as %A.
RECEIPT_STATS = {
    "ENROUTE": SENT, "ACCEPTD": SENT, "DELIVRD": DELIVERED, "UNDELIV": UNDELIVERED,
    "DELETED": UNDELIVERED, "EXPIRED": EXPIRED, "REJECTD": REJECTED, "UNKNOWN": UNKNOWN,
}
_STAT = re.compile(r"\bstat:\s*([A-Za-z]+)", re.IGNORECASE)

# Kannel's %d is a bit mask (gw/dlr.h): DLR_SUCCESS 0x01, DLR_FAIL 0x02, DLR_BUFFERED 0x04,
# DLR_SMSC_SUCCESS 0x08, DLR_SMSC_FAIL 0x10, DLR_EXPIRED 0x20|DLR_FAIL (so an SMPP EXPIRED
# receipt arrives as 34) and, in later Kannels, DLR_UNKNOWN 0x40|DLR_FAIL (66). The most specific
# and most final bit wins: a handset's confirmation first; expired and unknown before the plain
# "fail" bit Kannel sets along with them; an SMSC rejection (the message never left it) before a
# network failure; the SMSC's acceptance last; 4 (buffered) alone changes nothing.
KANNEL_BITS = (
    (0x01, DELIVERED), (0x20, EXPIRED), (0x40, UNKNOWN), (0x10, REJECTED), (0x02, UNDELIVERED), (0x08, SENT),
)


def state_from_receipt(text: str) -> str | None:
    """The state an SMPP receipt text names by its `stat:` word (any case); None without one."""
    found = _STAT.search(text or "")
    return RECEIPT_STATS.get(found.group(1).upper()) if found else None


def kannel_mask_state(mask: int) -> str | None:
    """The state a Kannel %d bit mask stands for; None when it changes nothing."""
    if mask <= 0:
        return None
    return next((state for bit, state in KANNEL_BITS if mask & bit), None)


def kannel_state(type_mask: str, answer: str = "") -> str | None:
    """A Kannel dlr-url report: the receipt's `stat:` word when it has a known one, else %d."""
    stated = state_from_receipt(answer)
    if stated is not None:
        return stated
    mask = type_mask.strip()
    return kannel_mask_state(int(mask)) if mask.isascii() and mask.isdigit() and len(mask) <= 6 else None

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
