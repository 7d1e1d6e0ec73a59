"""What the console's pages show, read with SQLAlchemy Core (SQLite and PostgreSQL alike)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import Connection, func, or_, select

from pombo.adapters.sql import schema as t
from pombo.console.stats import LOW_FLOOR, first_id_since
from pombo.domain import numbers

PAGE = 50
MAX_TREE = 1000
DEFAULT_NIGHT_LIMIT = 300


def customer_tree(conn: Connection, *, query: str = "") -> list[dict[str, Any]]:
    """Customers depth-first under their resellers, each with its depth and token count."""
    c = t.customers.c
    tokens = dict(
        conn.execute(
            select(t.tokens.c.customer_id, func.count())
            .where(t.tokens.c.revoked_at.is_(None))
            .group_by(t.tokens.c.customer_id)
        ).all()
    )
    rows = [dict(r._mapping) for r in conn.execute(
        select(c.id, c.name, c.parent_id, c.balance, c.credit_limit, c.sms, c.sms_provider, c.active)
        .order_by(c.id)
    )]
    by_id = {r["id"]: r for r in rows}
    children: dict[int | None, list[dict[str, Any]]] = {}
    for r in rows:
        parent = r["parent_id"] if r["parent_id"] in by_id else None
        children.setdefault(parent, []).append(r)
    out: list[dict[str, Any]] = []
    seen: set[int] = set()

    def walk(parent: int | None, depth: int) -> None:
        for r in children.get(parent, []):
            if r["id"] in seen or len(out) >= MAX_TREE:
                continue
            seen.add(r["id"])
            available = int(r["balance"]) - int(r["credit_limit"])
            out.append({**r, "depth": depth, "tokens": int(tokens.get(r["id"], 0)), "available": available,
                        "low": available <= LOW_FLOOR})
            walk(r["id"], depth + 1)

    walk(None, 0)
    for r in rows:  # customers in a loop of parent links have no root: list them at the top
        if r["id"] not in seen:
            children[None] = [r]
            walk(None, 0)

    needle = query.strip().casefold()
    if needle:
        out = [r for r in out if needle in str(r["name"]).casefold() or needle == str(r["id"])]
        for r in out:
            r["depth"] = 0
    return out


def customer(conn: Connection, *, customer_id: int) -> dict[str, Any] | None:
    """Everything the operator manages about one customer."""
    row = conn.execute(select(t.customers).where(t.customers.c.id == customer_id)).first()
    if row is None:
        return None
    c = dict(row._mapping)
    c["available"] = int(c["balance"]) - int(c["credit_limit"])
    c["low"] = c["available"] <= LOW_FLOOR
    c["ip_allowlist"] = json.loads(c.get("ip_allowlist") or "[]")
    c["night_cap"] = c["night_limit"] if c["night_limit"] is not None else DEFAULT_NIGHT_LIMIT
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


def _rows(conn: Connection, query: Any) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(query)]


@dataclass(frozen=True)
class MessageFilter:
    """The message search form, parsed."""

    customer_id: int | None = None
    dest: str | None = None
    ctid: str | None = None
    message_id: int | None = None
    start: float | None = None
    end: float | None = None
    status_code: int | None = None
    delivery: str | None = None
    connection: str | None = None
    before_id: int | None = None


def number_forms(raw: str) -> list[str]:
    """The ways a number typed by the operator may be stored (normalised or as given)."""
    forms = [n for n in (numbers.normalize(raw, setbrasil=True), numbers.normalize(raw, setbrasil=False)) if n]
    digits = "".join(ch for ch in raw if ch.isdigit())
    return list(dict.fromkeys([*forms, digits]))


def search_messages(conn: Connection, f: MessageFilter, *, limit: int = PAGE) -> list[dict[str, Any]]:
    """Messages matching every given filter, newest first, `limit` of them after before_id."""
    m = t.messages.c
    where: list[Any] = []
    equal = {m.customer_id: f.customer_id, m.corr_id: f.ctid, m.id: f.message_id,
             m.status_code: f.status_code, m.delivery: f.delivery, m.connection: f.connection}
    where += [col == value for col, value in equal.items() if value is not None]
    if f.dest:
        where.append(or_(*[m.dest == form for form in number_forms(f.dest)]))
    if f.before_id is not None:
        where.append(m.id < f.before_id)
    if f.start is not None:
        first = first_id_since(conn, t.messages, f.start - 5)
        where += [m.created_at >= f.start, m.id >= (first if first is not None else 2**62)]
    if f.end is not None:
        where.append(m.created_at < f.end)
        after = first_id_since(conn, t.messages, f.end + 5)
        if after is not None:
            where.append(m.id < after)
    columns = (m.id, m.customer_id, t.customers.c.name.label("customer_name"), m.dest, m.text, m.corr_id,
               m.connection, m.status_code, m.delivery, m.value, m.segments, m.created_at)
    query = (select(*columns).select_from(t.messages.outerjoin(t.customers, t.customers.c.id == m.customer_id))
             .where(*where).order_by(m.id.desc()).limit(limit))
    return _rows(conn, query)


def message_story(conn: Connection, *, message_id: int) -> dict[str, Any] | None:
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
    return msg


def safe_url(url: str) -> str:
    """A connection URL without credentials, query or fragment (they may carry secrets)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def connections(conn: Connection) -> list[dict[str, Any]]:
    """Every connection (never its credentials) with how many customers route to it."""
    c = t.connections.c
    routed = dict(conn.execute(
        select(t.customers.c.sms_provider, func.count())
        .where(t.customers.c.sms.is_(True), t.customers.c.active.is_(True))
        .group_by(t.customers.c.sms_provider)
    ).all())
    out = []
    for r in conn.execute(select(c.id, c.name, c.kind, c.url, c.enabled, c.ack_timeout, c.final_timeout)
                          .order_by(c.name)):
        row = dict(r._mapping)
        row["url"] = safe_url(row["url"])
        row["routed"] = int(routed.get(row["name"], 0))
        out.append(row)
    return out
