"""The overview as JSON for the page's charts: numbers and the labels they are shown with."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pombo.domain import codes, delivery

MINUTES = 60
TOP_CODES = 5
STATES = (delivery.DELIVERED, delivery.SENT, delivery.PENDING, delivery.UNDELIVERED, delivery.EXPIRED,
          delivery.REJECTED, delivery.UNKNOWN)


def build(data: dict[str, Any], *, rejections: dict[int, dict[int, int]], now: float, tz: ZoneInfo,
          t: Callable[..., str], fmt_money: Callable[[int], str]) -> dict[str, Any]:
    """The JSON the overview page draws."""
    current = int(now // 60)
    minutes = list(range(current - MINUTES + 1, current + 1))
    labels = [datetime.fromtimestamp(mi * 60, tz).strftime("%H:%M") for mi in minutes]
    sends: dict[int, dict[int, int]] = data["sends"]
    series = [
        _series("ok", t("accepted"), [sends.get(mi, {}).get(codes.OK, 0) for mi in minutes]),
        _series("wr", t("waiting"), [sends.get(mi, {}).get(codes.WR, 0) for mi in minutes]),
        _series("300", t("provider_error"), [sends.get(mi, {}).get(codes.PROVIDER_ERROR, 0) for mi in minutes]),
    ]
    per_code: dict[int, int] = {}
    for mi in minutes:
        for code, n in rejections.get(mi, {}).items():
            per_code[code] = per_code.get(code, 0) + n
    top = sorted(per_code, key=lambda c: (-per_code[c], c))[:TOP_CODES]
    for code in top:
        name = f"{code} {codes.TEXTS.get(code, '')}".strip()
        values = [rejections.get(mi, {}).get(code, 0) for mi in minutes]
        series.append(_series(f"r{code}", t("rejected_code", code=name), values))
    rest = [c for c in per_code if c not in top]
    if rest:
        values = [sum(rejections.get(mi, {}).get(c, 0) for c in rest) for mi in minutes]
        series.append(_series("rother", t("rejected"), values))
    shown = set(minutes)
    accepted_hour = sum(sum(by_code.values()) for mi, by_code in sends.items() if mi in shown)
    return {
        "updated": datetime.fromtimestamp(now, tz).strftime("%H:%M:%S"),
        "labels": labels,
        "sends": series,
        "kpi": {
            "last_minute": data["last_minute"],
            "last_hour": accepted_hour,
            "waiting": data["waiting"],
            "rejected_hour": sum(per_code.values()),
        },
        "delivery": _delivery(data["delivery"], t),
        "latency": _latency(data["latency"], minutes),
        "low": [
            {**row, "available_text": fmt_money(row["available"]), "spend_text": fmt_money(row["spend_24h"]),
             "hours_text": "—" if row["hours_left"] is None else f"{max(row['hours_left'], 0):.1f} h"}
            for row in data["low"]
        ],
        "text": {k: t(k) for k in ("total", "minute", "connection", "average", "maximum", "available",
                                   "spend_24h", "hours_left", "no_data", "customer", "delivered_rate")},
    }


def _series(key: str, label: str, values: list[int]) -> dict[str, Any]:
    return {"key": key, "label": label, "values": values}


def _delivery(by_connection: dict[str, dict[str, int]], t: Callable[..., str]) -> list[dict[str, Any]]:
    out = []
    for name in sorted(by_connection):
        states = by_connection[name]
        finished = sum(states.get(s, 0) for s in delivery.FINAL)
        rate = states.get(delivery.DELIVERED, 0) / finished if finished else None
        out.append({
            "connection": name,
            "total": sum(states.values()),
            "rate": rate,
            "states": [{"key": s, "label": t(f"st_{s}"), "count": states.get(s, 0)} for s in STATES],
        })
    return out


def _latency(per_connection: dict[str, dict[int, tuple[float, float]]], minutes: list[int]) -> list[dict[str, Any]]:
    out = []
    for name in sorted(per_connection):
        points = per_connection[name]
        avg = [round(points[mi][0], 3) if mi in points else None for mi in minutes]
        top = [round(points[mi][1], 3) if mi in points else None for mi in minutes]
        out.append({"connection": name, "avg": avg, "max": top})
    return out

