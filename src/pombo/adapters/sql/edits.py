"""Console edits of a customer's tariffs, block list and models on SQLAlchemy Core (SQLite and
PostgreSQL alike), each with its console_audit row, in the caller's transaction."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from pombo.adapters.sql import schema as t
from pombo.adapters.sql.catalog import bump_version
from pombo.domain.customer_edits import CustomerChange, changed_list
from pombo.ports import Row


def edit_customer(conn: Connection, *, customer_id: int, change: CustomerChange, operator: str,
                  now: float) -> Row | None:
    """Apply the change and write its audit row; None (nothing written) when the customer or the
    item to remove or edit is not there."""
    exists = conn.execute(select(t.customers.c.id).where(t.customers.c.id == customer_id).with_for_update()).first()
    if exists is None:
        return None
    if change.target == "tariff":
        done = _tariff(conn, customer_id, change)
    else:
        done = _list(conn, customer_id, change)
    if done is None:
        return None
    before, after = done
    values = {"created_at": now, "operator": operator, "action": change.action, "customer_id": customer_id,
              "before": json.dumps(before), "after": json.dumps(after)}
    key = conn.execute(insert(t.console_audit).values(**values)).inserted_primary_key
    assert key is not None
    audit_id = int(key[0])
    bump_version(conn)
    return {"id": audit_id, **values, "before": before, "after": after}


def _tariff(conn: Connection, customer_id: int, change: CustomerChange) -> tuple[Any, Any] | None:
    c = t.tariffs.c
    where = (c.customer_id == customer_id, c.prefix == change.prefix, c.connection == change.connection)
    current = conn.execute(select(c.value).where(*where)).scalar()
    before = None if current is None else _tariff_json(change, int(current))
    if change.action == "tariff_remove":
        if current is None:
            return None
        conn.execute(delete(t.tariffs).where(*where))
        return before, None
    assert change.value is not None
    if current is None:
        conn.execute(insert(t.tariffs).values(customer_id=customer_id, prefix=change.prefix,
                                              connection=change.connection, value=change.value))
    else:
        conn.execute(update(t.tariffs).where(*where).values(value=change.value))
    return before, _tariff_json(change, change.value)


def _tariff_json(change: CustomerChange, value: int) -> dict[str, Any]:
    return {"prefix": change.prefix, "connection": change.connection, "value": value}


def _list(conn: Connection, customer_id: int, change: CustomerChange) -> tuple[Any, Any] | None:
    if change.target == "blocklist":
        table, column, order = t.blocklist, t.blocklist.c.number, t.blocklist.c.number
    else:
        table, column, order = t.models, t.models.c.text, t.models.c.id
    current = list(conn.execute(select(column).where(table.c.customer_id == customer_id).order_by(order)).scalars())
    after = changed_list(change, current)
    if after is None:
        return None
    conn.execute(delete(table).where(table.c.customer_id == customer_id))
    for item in after:
        conn.execute(insert(table).values({"customer_id": customer_id, column.name: item}))
    return current, after


def console_audit(conn: Connection, *, customer_id: int, limit: int) -> list[Row]:
    """The customer's newest audit rows, newest first, before/after decoded."""
    a = t.console_audit.c
    rows = conn.execute(select(t.console_audit).where(a.customer_id == customer_id)
                        .order_by(a.id.desc()).limit(limit))
    return [{**r._mapping, "before": json.loads(r.before or "null"), "after": json.loads(r.after or "null")}
            for r in rows]
