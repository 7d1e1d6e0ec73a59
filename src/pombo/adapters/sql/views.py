"""What the operator reads (the console's pages, `pombo messages`), on SQLAlchemy Core."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, func, or_, select

from pombo.adapters.sql import schema as t
from pombo.adapters.sql.stats import first_id_since
from pombo.ports import InboundFilter, MessageFilter, Row


def customer_summaries(conn: Connection) -> list[Row]:
    """Every customer by id, with its count of live tokens."""
    c = t.customers.c
    tokens: dict[int, int] = dict(
        conn.execute(
            select(t.tokens.c.customer_id, func.count())
            .where(t.tokens.c.revoked_at.is_(None))
            .group_by(t.tokens.c.customer_id)
        ).all()
    )
    rows = _rows(conn, select(c.id, c.name, c.parent_id, c.balance, c.credit_limit, c.sms, c.sms_provider,
                              c.active).order_by(c.id))
    return [{**r, "tokens": int(tokens.get(r["id"], 0))} for r in rows]


def customer_detail(conn: Connection, *, customer_id: int) -> Row | None:
    """One customer's stored columns and everything hanging from it."""
    row = conn.execute(select(t.customers).where(t.customers.c.id == customer_id)).first()
    if row is None:
        return None
    c = dict(row._mapping)
    c["ip_allowlist"] = json.loads(c.get("ip_allowlist") or "[]")
    c["chain"] = _chain(conn, c)
    c["children"] = _rows(conn, select(t.customers.c.id, t.customers.c.name)
                          .where(t.customers.c.parent_id == customer_id).order_by(t.customers.c.id))
    tk, us = t.tokens.c, t.users.c
    c["tokens"] = _rows(conn, select(tk.id, tk.prefix, tk.created_at, tk.revoked_at, us.username)
                        .select_from(t.tokens.outerjoin(t.users, us.id == tk.user_id))
                        .where(tk.customer_id == customer_id)
                        .order_by(tk.revoked_at.is_not(None), tk.id.desc()))
    c["users"] = _rows(conn, select(us.username, us.send, us.app, us.camp, us.active)
                       .where(us.customer_id == customer_id).order_by(us.username))
    c["tariffs"] = _rows(conn, select(t.tariffs.c.prefix, t.tariffs.c.value, t.tariffs.c.connection)
                         .where(t.tariffs.c.customer_id == customer_id)
                         .order_by(t.tariffs.c.prefix, t.tariffs.c.connection))
    c["blocklist"] = list(conn.execute(select(t.blocklist.c.number)
                                       .where(t.blocklist.c.customer_id == customer_id)
                                       .order_by(t.blocklist.c.number)).scalars())
    o = t.opt_outs.c
    c["opt_outs"] = _rows(conn, select(o.number, o.word, o.mo_id, o.created_at)
                          .where(o.customer_id == customer_id).order_by(o.number))
    oc = t.opt_changes.c
    c["opt_changes"] = _rows(conn, select(oc.number, oc.action, oc.word, oc.mo_id, oc.created_at)
                             .where(oc.customer_id == customer_id).order_by(oc.id.desc()).limit(50))
    c["models"] = list(conn.execute(select(t.models.c.text).where(t.models.c.customer_id == customer_id)
                                    .order_by(t.models.c.id)).scalars())
    led = t.ledger.c
    c["ledger"] = _rows(conn, select(led.id, led.amount, led.cause, led.message_id, led.note, led.created_at)
                        .where(led.customer_id == customer_id).order_by(led.id.desc()).limit(20))
    return c


def _chain(conn: Connection, c: dict[str, Any]) -> list[dict[str, Any]]:
    chain, parent, seen = [], c["parent_id"], {c["id"]}
    while parent is not None and parent not in seen:
        seen.add(parent)
        row = conn.execute(select(t.customers.c.id, t.customers.c.name, t.customers.c.parent_id)
                           .where(t.customers.c.id == parent)).first()
        if row is None:
            break
        chain.append({"id": row.id, "name": row.name})
        parent = row.parent_id
    return chain


def _rows(conn: Connection, query: Any) -> list[Row]:
    return [dict(r._mapping) for r in conn.execute(query)]


def search_messages(conn: Connection, *, where: MessageFilter, limit: int) -> list[Row]:
    """Messages matching every given filter, newest first, with their customer's name."""
    m = t.messages.c
    cond: list[Any] = []
    equal = {m.customer_id: where.customer_id, m.corr_id: where.ctid, m.id: where.message_id,
             m.status_code: where.status_code, m.delivery: where.delivery, m.connection: where.connection}
    cond += [col == value for col, value in equal.items() if value is not None]
    if where.dest:
        cond.append(or_(*[m.dest == form for form in where.dest]))
    if where.before_id is not None:
        cond.append(m.id < where.before_id)
    # the log has no index on created_at alone: bound the window by id as well (ids grow with time)
    if where.start is not None:
        first = first_id_since(conn, t.messages, where.start - 5)
        cond += [m.created_at >= where.start, m.id >= (first if first is not None else 2**62)]
    if where.end is not None:
        cond.append(m.created_at < where.end)
        after = first_id_since(conn, t.messages, where.end + 5)
        if after is not None:
            cond.append(m.id < after)
    columns = [col.label("ctid") if col.name == "corr_id" else col for col in t.messages.c]
    query = (select(*columns, t.customers.c.name.label("customer_name"))
             .select_from(t.messages.outerjoin(t.customers, t.customers.c.id == m.customer_id))
             .where(*cond).order_by(m.id.desc()).limit(limit))
    return _rows(conn, query)


def message_story(conn: Connection, *, message_id: int) -> Row | None:
    """One message with its ledger rows and delivery reports."""
    m = t.messages
    row = conn.execute(select(m).where(m.c.id == message_id)).first()
    if row is None:
        return None
    msg = dict(row._mapping)
    msg["ctid"] = msg.pop("corr_id")
    names = dict(conn.execute(select(t.customers.c.id, t.customers.c.name)
                              .where(t.customers.c.id == msg["customer_id"])).all())
    msg["customer_name"] = names.get(msg["customer_id"], "")
    msg["username"] = None
    if msg["user_id"] is not None:
        msg["username"] = conn.execute(select(t.users.c.username).where(t.users.c.id == msg["user_id"])).scalar()
    led = t.ledger.c
    msg["ledger"] = _rows(conn, select(led.id, led.customer_id, t.customers.c.name, led.amount, led.cause,
                                       led.created_at)
                          .select_from(t.ledger.outerjoin(t.customers, t.customers.c.id == led.customer_id))
                          .where(led.message_id == message_id).order_by(led.id))
    d = t.dlr_reports.c
    msg["reports"] = _rows(conn, select(d.id, d.connection, d.state, d.raw, d.created_at)
                           .where(d.message_id == message_id).order_by(d.id))
    i = t.inbound.c
    msg["replies"] = _rows(conn, select(i.id, i.source, i.dest, i.text, i.received_at, i.connection)
                           .where(i.reply_to == message_id).order_by(i.id))
    a = t.upstream_attempts.c
    msg["attempts"] = _rows(conn, select(a.id, a.connection, a.kind, a.raw, a.at)
                            .where(a.message_id == message_id).order_by(a.at, a.id))
    return msg


def search_inbound(conn: Connection, *, where: InboundFilter, limit: int) -> list[Row]:
    """Inbound messages matching every given filter, newest first, with their customer's name."""
    i = t.inbound.c
    cond: list[Any] = []
    if where.customer_id is not None:
        cond.append(i.customer_id == where.customer_id)
    if where.unrouted:
        cond.append(i.customer_id.is_(None))
    if where.number:
        cond.append(or_(*[i.source == n for n in where.number], *[i.dest == n for n in where.number]))
    if where.text:
        cond.append(func.lower(i.text).contains(where.text.lower(), autoescape=True))
    if where.start is not None:
        cond.append(i.created_at >= where.start)
    if where.end is not None:
        cond.append(i.created_at < where.end)
    if where.before_id is not None:
        cond.append(i.id < where.before_id)
    query = (select(i.id, i.connection, i.provider_id, i.customer_id, i.reply_to, i.routed_by, i.source, i.dest,
                    i.text, i.received_at, i.created_at, t.customers.c.name.label("customer_name"))
             .select_from(t.inbound.outerjoin(t.customers, t.customers.c.id == i.customer_id))
             .where(*cond).order_by(i.id.desc()).limit(limit))
    return _rows(conn, query)


def part_warnings(conn: Connection) -> dict[str, Row]:
    """{connection: count, and the latest message sent in fewer parts than charged}."""
    return {r["connection"]: r for r in _rows(conn, select(t.part_warnings))}


def connections(conn: Connection) -> list[Row]:
    """Every connection by name (no credentials but its URL) with how many customers route to it."""
    c = t.connections.c
    routed: dict[str, int] = dict(conn.execute(
        select(t.customers.c.sms_provider, func.count())
        .where(t.customers.c.sms.is_(True), t.customers.c.active.is_(True))
        .group_by(t.customers.c.sms_provider)
    ).all())
    rows = _rows(conn, select(c.id, c.name, c.kind, c.url, c.enabled, c.ack_timeout, c.final_timeout)
                 .order_by(c.name))
    return [{**r, "routed": int(routed.get(r["name"], 0))} for r in rows]
