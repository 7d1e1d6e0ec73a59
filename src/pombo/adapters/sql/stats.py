"""The operator's numbers: sends per minute, delivery per connection, upstream answer time,
spend. Read from the database, so every worker's sends are counted.

The message log and the ledger have no index on `created_at` alone (nothing on the send path
needs one), but their ids grow with time: a binary search on the primary key finds the first
row of a time window, and every query below is bounded by it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Integer, Table, and_, case, cast, func, or_, select

from pombo.adapters.sql import schema as t
from pombo.domain import codes

BUCKET = 60
_JITTER = 5.0  # ids are handed out in batches, a little out of step with created_at


def first_id_since(conn: Connection, table: Table, ts: float) -> int | None:
    """The smallest id whose row was created at or after ts (None: no such row)."""
    top = conn.execute(select(func.max(table.c.id))).scalar()
    if top is None:
        return None
    lo = conn.execute(select(func.min(table.c.id))).scalar_one()
    hi = top + 1  # answer in [lo, hi]; hi means "none"
    while lo < hi:
        mid = (lo + hi) // 2
        row = conn.execute(
            select(table.c.id, table.c.created_at).where(table.c.id >= mid).order_by(table.c.id).limit(1)
        ).first()
        if row is None or row.created_at >= ts:
            hi = mid
        else:
            lo = row.id + 1
    return None if lo > top else int(lo)


def _since(conn: Connection, table: Table, ts: float) -> Any:
    """A WHERE clause for rows created since ts that the primary key can serve."""
    first = first_id_since(conn, table, ts - _JITTER)
    if first is None:
        return table.c.id < 0  # nothing
    return and_(table.c.id >= first, table.c.created_at >= ts)


def _minute(conn: Connection) -> Any:
    m = t.messages.c
    if conn.dialect.name == "postgresql":
        return func.floor(m.created_at / BUCKET)
    return cast(m.created_at / BUCKET, Integer)  # SQLite truncates; times are positive


def sends_per_minute(conn: Connection, *, since: float) -> dict[int, dict[int, int]]:
    """{minute index (epoch // 60): {status_code: count}} of messages created since `since`."""
    m = t.messages.c
    minute = _minute(conn).label("minute")
    rows = conn.execute(
        select(minute, m.status_code, func.count())
        .where(_since(conn, t.messages, since))
        .group_by(minute, m.status_code)
    )
    out: dict[int, dict[int, int]] = {}
    for bucket, code, count in rows:
        out.setdefault(int(bucket), {})[int(code)] = int(count)
    return out


def delivery_by_connection(conn: Connection, *, since: float) -> dict[str, dict[str, int]]:
    """{connection: {delivery state: count}} of messages created since `since`."""
    m = t.messages.c
    rows = conn.execute(
        select(m.connection, m.delivery, func.count())
        .where(_since(conn, t.messages, since))
        .group_by(m.connection, m.delivery)
    )
    out: dict[str, dict[str, int]] = {}
    for name, state, count in rows:
        out.setdefault(name, {})[state] = int(count)
    return out


def _answer_time() -> tuple[Any, Any]:
    """(seconds from accept to the provider's answer, rows where it is known).

    A provider error stamps final_at at the answer; an acceptance stamps updated_at, which
    stays the answer time until a delivery report moves the message on.
    """
    m = t.messages.c
    seconds = case((m.status_code == codes.PROVIDER_ERROR, m.final_at), else_=m.updated_at) - m.created_at
    known = or_(and_(m.status_code == codes.OK, m.delivery == "pending"), m.status_code == codes.PROVIDER_ERROR)
    return seconds, known


def latency_per_minute(conn: Connection, *, since: float) -> dict[str, dict[int, tuple[float, float]]]:
    """{connection: {minute: (average, maximum) seconds}} of messages created since `since`."""
    m = t.messages.c
    seconds, known = _answer_time()
    minute = _minute(conn).label("minute")
    rows = conn.execute(
        select(m.connection, minute, func.avg(seconds), func.max(seconds))
        .where(_since(conn, t.messages, since), known)
        .group_by(m.connection, minute)
    )
    out: dict[str, dict[int, tuple[float, float]]] = {}
    for name, bucket, avg, top in rows:
        out.setdefault(name, {})[int(bucket)] = (float(avg or 0), float(top or 0))
    return out


def connection_health(conn: Connection, *, since: float) -> dict[str, dict[str, Any]]:
    """Per connection since `since`: counts by status, average answer time, last error; and
    how many of its messages wait now."""
    m = t.messages.c
    seconds, known = _answer_time()
    window = _since(conn, t.messages, since)
    out: dict[str, dict[str, Any]] = {}
    for name, code, count in conn.execute(
        select(m.connection, m.status_code, func.count()).where(window).group_by(m.connection, m.status_code)
    ):
        out.setdefault(name, {"codes": {}})["codes"][int(code)] = int(count)
    for name, avg in conn.execute(select(m.connection, func.avg(seconds)).where(window, known).group_by(m.connection)):
        out.setdefault(name, {"codes": {}})["latency"] = float(avg or 0)
    waiting = select(m.connection, func.count()).where(m.status_code == codes.WR, m.delivery == "pending")
    for name, count in conn.execute(waiting.group_by(m.connection)):
        out.setdefault(name, {"codes": {}})["waiting"] = int(count)
    for name, stats in out.items():
        last = conn.execute(
            select(m.id, m.return_log, m.updated_at)
            .where(window, m.connection == name, m.status_code == codes.PROVIDER_ERROR)
            .order_by(m.id.desc())
            .limit(1)
        ).first()
        stats["last_error"] = dict(last._mapping) if last else None
    return out


def waiting_now(conn: Connection) -> int:
    """Messages whose provider has not answered yet."""
    m = t.messages.c
    return int(
        conn.execute(
            select(func.count()).where(m.status_code == codes.WR, m.delivery == "pending")
        ).scalar_one()
    )


def sends_since(conn: Connection, *, since: float) -> int:
    """Messages created since `since`, whatever became of them."""
    return int(conn.execute(select(func.count()).where(_since(conn, t.messages, since))).scalar_one())


def spend_since(conn: Connection, *, since: float) -> dict[int, int]:
    """{customer id: what its sends cost it (net of refunds)} over ledger rows since `since`."""
    led = t.ledger.c
    rows = conn.execute(
        select(led.customer_id, -func.sum(led.amount))
        .where(_since(conn, t.ledger, since), led.cause.in_(("message", "refund")))
        .group_by(led.customer_id)
    ).all()
    return {int(cid): int(spent or 0) for cid, spent in rows}


def recent_attempts(conn: Connection, *, limit: int) -> list[dict[str, Any]]:
    """The newest logged upstream attempts (id, message_id, connection, kind, raw, at), newest
    first (plain first-time sends are not logged: SPEC §11's fast path writes nothing more)."""
    a = t.upstream_attempts.c
    rows = conn.execute(
        select(a.id, a.message_id, a.connection, a.kind, a.raw, a.at).order_by(a.id.desc()).limit(limit)
    )
    return [dict(r._mapping) for r in rows]
