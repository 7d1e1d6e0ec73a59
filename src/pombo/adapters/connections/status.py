"""Asking providers what became of a message (reconciliation after a crash, TWW's polling)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import orjson

from pombo.domain import delivery
from pombo.domain.delivery import StatusReport
from pombo.domain.ints import uint
from pombo.ports import UpstreamRejected

_ROW = re.compile(r"<StatusSMS>(.*?)</StatusSMS>", re.DOTALL | re.IGNORECASE)
_FIELD = {name: re.compile(rf"<{name}>(.*?)</{name}>", re.DOTALL | re.IGNORECASE) for name in ("seunum", "status")}


def tww_reports(xml: str, overrides: dict[str, str] | None = None) -> list[StatusReport]:
    """The rows of a TWW OutDataSet (StatusSMS table) as reports."""
    reports = []
    for row in _ROW.findall(xml):
        fields = {k: (m.group(1).strip() if (m := rx.search(row)) else "") for k, rx in _FIELD.items()}
        state = delivery.tww_state(fields["status"], overrides)
        reports.append(
            StatusReport(
                message_id=uint(fields["seunum"]),
                upstream_id=None,
                states=(state,) if state else (),
                raw=row[:1000],
            )
        )
    return reports


def wavy_reports(body: bytes) -> list[StatusReport]:
    """Wavy's status search answer: a list, or an object holding one (smsStatuses/statuses)."""
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise UpstreamRejected(f"status search answered no JSON: {body[:200]!r}") from exc
    if isinstance(data, dict):
        data = data.get("smsStatuses", data.get("statuses", [data] if "correlationId" in data or "id" in data else []))
    items = [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []
    return [
        StatusReport(
            message_id=uint(str(item.get("correlationId") or "")),
            upstream_id=str(item["id"]) if item.get("id") is not None else None,
            states=delivery.wavy_states(item),
            accepted=delivery.REJECTED not in delivery.wavy_states(item)[:1],
            raw=orjson.dumps(item).decode()[:1000],
        )
        for item in items
    ]


def tww_form(username: str, password: str, **fields: str) -> bytes:
    """TWW's form body: credentials first, then the method's fields."""
    return urlencode({"NumUsu": username, "Senha": password, **fields}).encode("ascii")
