"""Inbound messages (MO), replies and opt-out (SPEC §14): the pure rules.

How each provider's MO push reads (Kannel's sms-service `get-url`, Wavy's MO callbacks, the
`mo` mapping of an `http` connection), which customer and message an inbound message belongs
to, and whether its text is an opt-out or opt-in word. No I/O here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pombo.domain.ints import uint
from pombo.domain.numbers import normalize
from pombo.domain.textfilter import normalize_words

DEFAULT_OPT_OUT_WORDS: tuple[str, ...] = ("sair", "parar", "stop", "cancelar", "descadastrar")
DEFAULT_OPT_IN_WORDS: tuple[str, ...] = ("voltar", "start")
DEFAULT_REPLY_WINDOW = 72  # hours

# how an inbound message found its customer (kept for the operator)
BY_NUMBERS = "numbers"
BY_CORRELATION = "correlation"
BY_WINDOW = "window"

OPT_OUT = "out"
OPT_IN = "in"

MAX_TEXT = 4000
MAX_FIELD = 64


class BadInbound(ValueError):
    """A push whose body cannot be read as the provider's MO format: 400, nothing stored."""


@dataclass(frozen=True, slots=True)
class InboundItem:
    """One inbound message as a provider pushed it, before routing."""

    provider_id: str  # the provider's id, or a stable digest of the message when it gives none
    sender: str  # `from`, normalised (SPEC §5, setbrasil=1) when Brazilian
    dest: str  # `to`: the long number or short code it was sent to ("" when not given)
    text: str
    received_at: float | None  # the provider's time, when it gives one
    correlation: int | None  # the cdls_id it answers, when the provider names it
    raw: str = ""


@dataclass(frozen=True, slots=True)
class Route:
    """Where an inbound message goes: its customer and the message it answers."""

    customer_id: int | None
    reply_to: int | None
    by: str | None


UNROUTED = Route(None, None, None)


def normalize_from(raw: str) -> str:
    """The sender as SPEC §5 normalises a Brazilian mobile; anything else kept as its digits
    (or as given, for an alphanumeric sender)."""
    value = raw.strip()[:MAX_FIELD]
    brazilian = normalize(value, setbrasil=True)
    if brazilian is not None:
        return brazilian
    digits = "".join(c for c in value if c.isascii() and c.isdigit())
    return digits if digits and len(digits) >= len(value.replace("+", "").replace(" ", "")) else value


def keyword(text: str) -> str:
    """The text folded as SPEC §7 and trimmed: `Sair.` and ` PARAR ` are `sair` and `parar`."""
    return " ".join(normalize_words(text))


def word_list(words: Iterable[str]) -> frozenset[str]:
    """Configured words as keyword() sees them."""
    return frozenset(k for k in (keyword(w) for w in words) if k)


def opt_change(text: str, *, opt_out: frozenset[str], opt_in: frozenset[str]) -> tuple[str, str] | None:
    """(OPT_OUT or OPT_IN, the word) when the whole text is one of the words, else None."""
    word = keyword(text)
    if word in opt_out:
        return OPT_OUT, word
    if word in opt_in:
        return OPT_IN, word
    return None


def numbers_index(numbers: Mapping[int, Sequence[str]]) -> dict[str, int]:
    """Provisioned inbound number -> customer id (the lowest id when two claim one)."""
    out: dict[str, int] = {}
    for customer_id in sorted(numbers):
        for number in numbers[customer_id]:
            out.setdefault(number, customer_id)
    return out


def route_key(dest: str) -> str:
    """How a `to` is compared with provisioned numbers: its digits (a short code as given)."""
    digits = "".join(c for c in dest if c.isascii() and c.isdigit())
    return digits or dest.strip()


# ---------------------------------------------------------------- provider formats


def _digest(*parts: str) -> str:
    return "h:" + hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:40]


def _item(
    *, provider_id: str | None, sender: str, dest: str, text: str, received_at: float | None,
    correlation: int | None, raw: str, stamp: str,
) -> InboundItem:
    # a NUL is no character any database stores (PostgreSQL refuses it in text)
    sender, dest, text, raw = (v.replace("\x00", "\ufffd") for v in (sender, dest, text, raw))
    provider_id = provider_id.replace("\x00", "\ufffd") if provider_id else provider_id
    if not sender.strip():
        raise BadInbound("no sender")
    pid = (provider_id or "").strip()[:128]
    if not pid:
        # no id from the provider: a retry of the same push (same fields) is the same message
        pid = _digest(sender.strip(), dest.strip(), text, stamp)
    return InboundItem(
        provider_id=pid,
        sender=normalize_from(sender),
        dest=dest.strip()[:MAX_FIELD],
        text=text[:MAX_TEXT],
        received_at=received_at,
        correlation=correlation,
        raw=raw[:4000],
    )


def from_smpp(source: str, dest: str, text: str, raw: str, *, now: float) -> InboundItem:
    """A `deliver_sm` that is not a receipt (SPEC §12): SMPP gives it no id, so the same
    source, destination, text and PDU fields (`raw`) within the same minute (an SMSC's
    redelivery) is one message."""
    return _item(
        provider_id=None, sender=source, dest=dest, text=text, received_at=None, correlation=None,
        raw=raw, stamp=f"{raw}\x1f{int(now // 60)}",
    )


def parse_time(value: Any, tz: ZoneInfo) -> float | None:
    """A provider's time: epoch seconds or milliseconds, ISO 8601 (naive means `tz`), or
    Kannel's `YYYY-MM-DD HH:MM[:SS]` (in `tz`). None when absent or unreadable."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
        return number / 1000.0 if number > 1e11 else number
    text = str(value).strip()
    if not text:
        return None
    if text.isdigit():
        return parse_time(int(text), tz)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.timestamp()


def parse_kannel(params: Mapping[str, str], tz: ZoneInfo, *, now: float) -> list[InboundItem]:
    """Kannel's sms-service get-url `from=%p&to=%P&text=%a&time=%t` (an optional `id`, e.g.
    Kannel's `%I`, is taken as the provider's id)."""
    if "from" not in params or "text" not in params:
        raise BadInbound("kannel MO needs from and text")
    time_text = params.get("time") or ""
    received = parse_time(time_text, tz)
    raw = "&".join(f"{k}={v}" for k, v in params.items())
    # without an id or a time, a retry within the same minute is the same message
    stamp = time_text or str(int(now // 60))
    return [
        _item(
            provider_id=params.get("id"),
            sender=params["from"],
            dest=params.get("to") or "",
            text=params["text"],
            received_at=received,
            correlation=None,
            raw=raw,
            stamp=stamp,
        )
    ]


def _load_json(body: bytes) -> Any:
    if not body.strip():
        raise BadInbound("empty body")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = body.decode("latin-1")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise BadInbound("body is not JSON") from exc


def _str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def parse_wavy(body: bytes, tz: ZoneInfo, *, now: float) -> list[InboundItem]:
    """Wavy's MO callback: a JSON object or a list of them, each with `id`, `source`,
    `messageText`, `receivedDate` and, answering a send, `correlationId` (our cdls_id). The
    number it was sent to is read from `shortCode`, `destination` or `to`, when present."""
    data = _load_json(body)
    items = data if isinstance(data, list) else [data]
    out = []
    for item in items:
        if not isinstance(item, dict):
            raise BadInbound("each MO is a JSON object")
        if not _str(item.get("id")).strip() or "messageText" not in item or not _str(item.get("source")).strip():
            raise BadInbound("a Wavy MO needs id, source and messageText")
        dest = item.get("shortCode") or item.get("destination") or item.get("to") or ""
        out.append(
            _item(
                provider_id=_str(item["id"]),
                sender=_str(item["source"]),
                dest=_str(dest),
                text=_str(item["messageText"]),
                received_at=parse_time(item.get("receivedDate"), tz),
                correlation=uint(_str(item.get("correlationId"))),
                raw=json.dumps(item, ensure_ascii=False),
                stamp=str(now),
            )
        )
    return out


MO_FIELDS = ("from", "to", "text", "id", "correlation", "time")


def parse_mapped(
    mapping: Mapping[str, str], params: Mapping[str, str], body: bytes, tz: ZoneInfo, *, now: float
) -> list[InboundItem]:
    """An `http` connection's `mo` mapping: which fields carry from, to, text, id, correlation
    (the cdls_id answered) and time, read from the query, a form or a JSON object (or list)."""
    names = {f: str(mapping.get(f) or f) for f in MO_FIELDS}
    records: list[Mapping[str, Any]]
    if body.strip()[:1] in (b"{", b"["):
        data = _load_json(body)
        listed = data if isinstance(data, list) else [data]
        if not all(isinstance(r, dict) for r in listed):
            raise BadInbound("each MO is a JSON object")
        records = [{**params, **r} for r in listed]
    else:
        records = [params]
    out = []
    for record in records:
        if names["from"] not in record or names["text"] not in record:
            raise BadInbound(f"an MO needs {names['from']} and {names['text']}")
        time_text = _str(record.get(names["time"]))
        out.append(
            _item(
                provider_id=_str(record.get(names["id"])),
                sender=_str(record[names["from"]]),
                dest=_str(record.get(names["to"])),
                text=_str(record[names["text"]]),
                received_at=parse_time(record.get(names["time"]), tz),
                correlation=uint(_str(record.get(names["correlation"]))),
                raw=json.dumps(dict(record), ensure_ascii=False, default=str),
                stamp=time_text or str(int(now // 60)),
            )
        )
    return out
