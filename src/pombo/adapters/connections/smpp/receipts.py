"""Delivery receipts of an SMPP connection (SPEC §12): read one, match it to the message and
part it reports on, and settle multi-part messages.

Matching is in memory, per process (durable matching is a later step): each accepted part's
message_id is kept with the cdls_id it belongs to, so a receipt settles its message by cdls_id
even before the dispatcher has recorded the upstream id. A receipt whose id is not known yet
while submits are still waiting for their submit_sm_resp is held (bounded, with a TTL) and
applied once the id arrives; otherwise it is handed over by upstream id alone (the store may
know it from before a restart).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field

from pombo.domain import delivery
from pombo.domain.receipt_ids import id_keys

# stat: words are read by domain/delivery.state_from_receipt (shared with Kannel's %A);
# the message_state TLV (SMPP 3.4 §5.3.2.35), for receipts whose text has no stat:
MESSAGE_STATES = {
    1: delivery.SENT, 2: delivery.DELIVERED, 3: delivery.EXPIRED, 4: delivery.UNDELIVERED,
    5: delivery.UNDELIVERED, 6: delivery.SENT, 7: delivery.UNKNOWN, 8: delivery.REJECTED,
}
_ID = re.compile(r"(?:^|\s)id:\s*([0-9A-Za-z_-]+)", re.IGNORECASE)
FAILED = frozenset({delivery.UNDELIVERED, delivery.EXPIRED, delivery.REJECTED})


def read_receipt(text: str, receipted_id: str | None, message_state: int | None) -> tuple[str | None, str | None]:
    """(upstream id, state) of a receipt: the receipted_message_id TLV wins over the text's
    `id:`; the text's `stat:` wins over the message_state TLV."""
    found_id = _ID.search(text)
    rid = receipted_id or (found_id.group(1) if found_id else None)
    state = delivery.state_from_receipt(text)
    if state is None and message_state is not None:
        state = MESSAGE_STATES.get(message_state)
    return rid, state


@dataclass(frozen=True, slots=True)
class Settle:
    """A state to hand to the services: the message by cdls_id when known, else by upstream id."""

    message_id: int | None
    upstream_id: str
    state: str | None
    raw: str
    part: int | None = None  # a delivered part of a multi-part message not yet whole (0-based)


@dataclass
class _Message:
    message_id: int
    ids: list[str | None]  # the parts' upstream ids, None until their submit_sm_resp
    delivered: set[int] = field(default_factory=set)
    expires: float = 0.0


class Tracker:
    """Accepted parts by upstream id, and receipts waiting for their id (both bounded)."""

    def __init__(self, *, keep: float = 72 * 3600, max_parts: int = 200_000,
                 early_ttl: float = 120.0, max_early: int = 10_000) -> None:
        self._keep, self._max_parts = keep, max_parts
        self._early_ttl, self._max_early = early_ttl, max_early
        self._parts: OrderedDict[str, tuple[_Message, int]] = OrderedDict()
        self._early: OrderedDict[str, list[tuple[float, str, str | None, str]]] = OrderedDict()
        self.in_flight = 0  # submits written and not answered yet, on every bind

    def start(self, message_id: int, parts: int, now: float) -> _Message:
        """A message about to be submitted in `parts` parts."""
        return _Message(message_id, [None] * parts, expires=now + self._keep)

    def accepted(self, message: _Message, index: int, upstream_id: str, now: float) -> list[Settle]:
        """A part's submit_sm_resp: index it, and apply any receipt that came before it."""
        message.ids[index] = upstream_id
        keys = id_keys(upstream_id)
        for key in keys:
            self._parts[key] = (message, index)
            self._parts.move_to_end(key)
        self._trim(now)
        settles: list[Settle] = []
        if not self._early:
            return settles
        for key in keys:
            held = self._early.pop(key, [])
            for _arrived, rid, state, raw in held:
                settles += self._apply(message, index, rid, state, raw)
            held.clear()  # the same list sits under the id's other forms too
        return settles

    def forget(self, message: _Message) -> None:
        """The message failed before every part was accepted: no receipt may settle it here."""
        for uid in message.ids:
            for key in id_keys(uid) if uid else ():
                if self._parts.get(key, (None, 0))[0] is message:
                    del self._parts[key]

    def receipt(self, rid: str, state: str | None, raw: str, now: float) -> list[Settle] | None:
        """Settles for a receipt; [] when held for a submit still waiting for its answer;
        None when nothing here knows the id (handed over by upstream id)."""
        keys = id_keys(rid)
        for key in keys:
            found = self._parts.get(key)
            if found is not None:
                return self._apply(found[0], found[1], rid, state, raw)
        if self.in_flight > 0:
            held = next((self._early[k] for k in keys if self._early.get(k)), [])
            held.append((now, rid, state, raw))
            for key in keys:  # every form of the id finds the same list
                self._early[key] = held
            self._trim(now)
            return []
        return None

    def expired_early(self, now: float, *, everything: bool = False) -> list[Settle]:
        """Held receipts whose TTL passed (or all, when nothing is in flight any more)."""
        out: list[Settle] = []
        seen: set[int] = set()
        while self._early:
            key, items = next(iter(self._early.items()))
            if not everything and items and items[0][0] > now - self._early_ttl:
                break
            del self._early[key]
            if id(items) in seen:
                continue
            seen.add(id(items))
            out += [Settle(None, rid, state, raw) for _t, rid, state, raw in items]
            items.clear()
        return out

    def _apply(self, message: _Message, index: int, rid: str, state: str | None, raw: str) -> list[Settle]:
        primary = message.ids[0] or rid
        if len(message.ids) == 1 or state not in (delivery.DELIVERED, *FAILED):
            if len(message.ids) == 1 and state in delivery.FINAL:
                self.forget(message)
            return [Settle(message.message_id, primary, state, raw)]
        if state in FAILED:  # any failed part makes the whole message that part's state
            self.forget(message)
            return [Settle(message.message_id, primary, state, raw)]
        message.delivered.add(index)
        if len(message.delivered) < len(message.ids):
            return [Settle(message.message_id, primary, None, raw, part=index)]  # kept, moves nothing
        self.forget(message)
        return [Settle(message.message_id, primary, delivery.DELIVERED, raw)]

    def _trim(self, now: float) -> None:
        while self._parts:
            _key, (message, _i) = next(iter(self._parts.items()))
            if len(self._parts) <= self._max_parts and message.expires > now:
                break
            self._parts.popitem(last=False)
        while len(self._early) > self._max_early:
            self._early.popitem(last=False)
