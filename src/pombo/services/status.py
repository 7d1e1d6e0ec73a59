"""GetSMSStatus: the customer's own message log (SPEC §1)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from pombo.domain import codes, money
from pombo.domain.codes import Rejection
from pombo.domain.ints import uint
from pombo.domain.scrub import Scrubber, scrubber_for
from pombo.ports import Catalogs, MessageLog, MessageRow
from pombo.services.auth import Authenticator, Credentials

DEFAULT_MAXREG = 1000
MAX_MAXREG = 10_000
FAR_FUTURE = 253402300799.0  # 9999-12-31

class LogStore(Catalogs, MessageLog, Protocol):
    """What GetSMSStatus needs: the configuration and the message log."""


class BadRequest(ValueError):
    """A parameter that cannot be understood."""


class Status:
    """The status API."""

    def __init__(self, *, store: LogStore, authenticator: Authenticator, tz: ZoneInfo) -> None:
        self._store = store
        self._auth = authenticator
        self._tz = tz

    async def __call__(
        self, *, params: Mapping[str, str], creds: Credentials
    ) -> tuple[dict[str, Any], list[dict[str, Any]]] | Rejection:
        """(pagination, messages) or a rejection."""
        catalog = await self._store.catalog()
        principal = await self._auth.authenticate(creds, catalog, need_send=False)
        if isinstance(principal, Rejection):
            return principal
        customer_id = principal.customer.id
        try:
            rows, has_more = await self._find(customer_id, params)
        except BadRequest:
            return codes.reject(codes.BAD_REQUEST)
        pagination = page_info(rows, has_more)
        scrub = scrubber_for(catalog)
        return pagination, [render(row, self._tz, scrub=scrub) for row in rows]

    async def _find(self, customer_id: int, params: Mapping[str, str]) -> tuple[list[MessageRow], bool]:
        maxreg = int_param(params.get("maxreg"), DEFAULT_MAXREG, low=1, high=MAX_MAXREG)
        cdls_id = (params.get("cdls_id") or "").strip()
        if cdls_id:
            message_id = uint(cdls_id)
            if message_id is None:
                return [], False
            row = await self._store.get_message(customer_id=customer_id, message_id=message_id)
            return ([row] if row else []), False
        ctid = (params.get("ctid") or "").strip()
        if ctid:
            rows = await self._store.messages_by_ctid(customer_id=customer_id, ctid=ctid[:64], limit=maxreg + 1)
            return rows[:maxreg], len(rows) > maxreg
        start = self._day_start(params.get("date_start"), default=0.0)
        end = self._day_start(params.get("date_end"), default=None, next_day=True)
        after = int_param(params.get("last_id"), 0, low=0, high=2**62)
        rows = await self._store.messages_page(
            customer_id=customer_id,
            start=0.0 if start is None else start,
            end=FAR_FUTURE if end is None else end,
            after_id=after,
            limit=maxreg + 1,
        )
        return rows[:maxreg], len(rows) > maxreg

    def _day_start(self, value: str | None, *, default: float | None, next_day: bool = False) -> float | None:
        return day_start(value, self._tz, default=default, next_day=next_day)


def page_info(rows: Sequence[Mapping[str, Any]], has_more: bool) -> dict[str, Any]:
    """The `pagination` of a page of GetSMSStatus or GetSMSReply: where the next one starts."""
    return {"has_more": has_more, "next_id": str(rows[-1]["id"]) if has_more and rows else None}


def day_start(value: str | None, tz: ZoneInfo, *, default: float | None, next_day: bool = False) -> float | None:
    """The start of a `YYYY-MM-DD` day in `tz` (of the next day with `next_day`: an inclusive
    end); `default` when blank; None past the last day. BadRequest when unreadable."""
    if not value or not value.strip():
        return default
    try:
        day = date.fromisoformat(value.strip()[:10])
    except ValueError as exc:
        raise BadRequest(f"bad date: {value!r}") from exc
    if next_day:
        if day == date.max:
            return None
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()


def int_param(value: str | None, default: int, *, low: int, high: int) -> int:
    number = uint(value)
    if number is None:
        return high if value is not None and value.strip().isascii() and value.strip().isdigit() else default
    return max(low, min(high, number))


def iso(ts: float | None, tz: ZoneInfo) -> str | None:
    """Epoch seconds -> ISO 8601 with offset in the gateway's timezone."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz).isoformat(timespec="seconds")


def render(row: MessageRow, tz: ZoneInfo, *, scrub: Scrubber | None) -> dict[str, Any]:
    """One log row as the customer sees it (never the connection's cost); with `scrub`, the
    provider's words carry none of the connections' secrets (None: for the operator only)."""
    code = int(row["status_code"])
    clean = scrub if scrub is not None else _same
    return {
        "cdls_id": str(row["id"]),
        "ctid": row["ctid"],
        "dest": row["dest"],
        "text": row["text"],
        "text_received": row.get("text_received"),
        "status": codes.TEXTS[code],
        "status_code": str(code),
        "connection": row["connection"],
        "upstream_id": clean(row["upstream_id"]),
        "value": money.fmt(row["value"]),
        "segments": row["segments"],
        "encoding": row["encoding"],
        "delivery": row["delivery"],
        "created_at": iso(row["created_at"], tz),
        "sent_at": iso(row["sent_at"], tz),
        "final_at": iso(row["final_at"], tz),
        "cp_id": row["cp_id"],
        "cd_id": row["cd_id"],
        "from": row["sender"],
        "return_log": clean(row["return_log"]),
    }


def _same(text: str | None) -> str | None:
    return text
