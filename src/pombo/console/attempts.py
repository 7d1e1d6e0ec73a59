"""What the console shows of the upstream engine (SPEC §11): each connection's engine state and
its recent logged attempts, and a message's attempts in order.

Plain first-time sends are not logged (the fast path writes nothing more than the message), so a
message's last attempt, the one the provider answered, is read from the message itself.
"""

from __future__ import annotations

import re
from typing import Any

from pombo.domain import codes, delivery
from pombo.ports import Row

RECENT = 10  # logged attempts shown per connection
_HTTP_STATUS = re.compile(r"^HTTP (\d{3})\b")


def http_status(raw: str | None) -> int | None:
    """The HTTP status an attempt's raw answer names (`HTTP 503: busy`), if any."""
    found = _HTTP_STATUS.match(raw or "")
    return int(found.group(1)) if found else None


def by_connection(rows: list[Row], *, per_connection: int = RECENT) -> dict[str, list[Row]]:
    """The newest logged attempts of each connection (rows newest first, as read)."""
    out: dict[str, list[Row]] = {}
    for row in rows:
        kept = out.setdefault(row["connection"], [])
        if len(kept) < per_connection:
            kept.append({**row, "http_status": http_status(row["raw"])})
    return out


IDLE: dict[str, Any] = {"state": "idle", "queue": 0, "oldest_age": 0.0, "in_flight": 0, "outcomes": {},
                        "throughput": 0.0, "window": 0, "fallback": [], "skipped_for": 0.0}


def of_message(m: Row) -> list[Row]:
    """A message's attempts, oldest first: the logged ones (not sent, claimed, unknown, expired)
    with their HTTP status, then the answer that settled it (ok or rejected) with its duration
    from the start of that attempt (the accept, or the last claim) when its time is known."""
    logged = [{**a, "http_status": http_status(a["raw"]), "duration": None} for a in m.get("attempts", [])]
    kinds = {a["kind"] for a in logged}
    if m["status_code"] == codes.OK:
        kind, at = "ok", m["updated_at"] if m["delivery"] == delivery.PENDING else None
    elif m["status_code"] == codes.PROVIDER_ERROR and "expired" not in kinds:
        kind, at = "rejected", m["final_at"] or m["updated_at"]
    else:
        return logged  # still waiting, unknown, or expired in the queue: the log says it all
    claims = [a["at"] for a in logged if a["kind"] == "claimed"]
    start = claims[-1] if claims else m["created_at"]
    answer = {"id": None, "connection": m["connection"], "kind": kind, "raw": m["return_log"], "at": at,
              "http_status": http_status(m["return_log"]) if kind == "rejected" else None,
              "duration": max(0.0, at - start) if at is not None else None}
    return [*logged, answer]
