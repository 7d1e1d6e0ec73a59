"""The operator's side of the store, on SQLAlchemy Core (SQLite and PostgreSQL alike):
loading the catalog, applying provisioning, top-ups, tokens. Not on the hot path."""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, func, insert, select, text, update

from pombo.adapters.sql import schema as t
from pombo.domain import credentials
from pombo.domain.catalog import Catalog, PriceTable, build_chain
from pombo.domain.model import CallbackConfig, ConnectionConfig, Customer, PriceRow, Token, User
from pombo.domain.provisioning import Provisioning
from pombo.domain.textfilter import DEFAULT_PATTERNS, Models, TextFilter

CONFIG_VERSION = "config_version"
TEXT_FILTER = "text_filter"


class NotFound(LookupError):
    """The named customer, user or token does not exist."""


def config_version(conn: Connection) -> str:
    """The current configuration version (bumped by every operator change)."""
    value = conn.execute(select(t.meta.c.value).where(t.meta.c.key == CONFIG_VERSION)).scalar()
    return value or "0"


def bump_version(conn: Connection) -> None:
    """Tell running servers to reload their catalog."""
    current = conn.execute(
        select(t.meta.c.value).where(t.meta.c.key == CONFIG_VERSION)
    ).scalar()
    if current is None:
        conn.execute(insert(t.meta).values(key=CONFIG_VERSION, value="1"))
    else:
        conn.execute(
            update(t.meta)
            .where(t.meta.c.key == CONFIG_VERSION)
            .values(value=str(int(current) + 1))
        )
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_notify('pombo_config', '')"))  # delivered at commit


def load_catalog(conn: Connection) -> Catalog:
    """Read the whole configuration into one immutable snapshot."""
    version = config_version(conn)
    customers = {r.id: _customer(r) for r in conn.execute(select(t.customers))}
    users = [_user(r) for r in conn.execute(select(t.users))]
    tokens = {
        r.token_hash: Token(r.id, r.customer_id, r.user_id, r.token_hash, r.prefix)
        for r in conn.execute(select(t.tokens).where(t.tokens.c.revoked_at.is_(None)))
    }
    tariff_rows: dict[int, list[PriceRow]] = {}
    for r in conn.execute(select(t.tariffs)):
        tariff_rows.setdefault(r.customer_id, []).append(
            PriceRow(r.prefix, r.value, r.connection or None)
        )
    cost_rows: dict[str, list[PriceRow]] = {}
    for r in conn.execute(select(t.connection_costs)):
        cost_rows.setdefault(r.connection, []).append(PriceRow(r.prefix, r.cost, None))
    blocklists: dict[int, set[str]] = {}
    for r in conn.execute(select(t.blocklist)):
        blocklists.setdefault(r.customer_id, set()).add(r.number)
    model_texts: dict[int, list[str]] = {}
    for r in conn.execute(select(t.models).order_by(t.models.c.id)):
        model_texts.setdefault(r.customer_id, []).append(r.text)
    connections = {r.name: _connection(r) for r in conn.execute(select(t.connections))}
    stored_filter = conn.execute(
        select(t.meta.c.value).where(t.meta.c.key == TEXT_FILTER)
    ).scalar()
    patterns = json.loads(stored_filter) if stored_filter else list(DEFAULT_PATTERNS)
    return Catalog(
        version=version,
        customers=customers,
        tokens=tokens,
        users_by_name={u.username: u for u in users},
        users_by_id={u.id: u for u in users},
        tariffs={cid: PriceTable(rows) for cid, rows in tariff_rows.items()},
        costs={name: PriceTable(rows) for name, rows in cost_rows.items()},
        blocklists={cid: frozenset(nums) for cid, nums in blocklists.items()},
        models={cid: Models(texts) for cid, texts in model_texts.items()},
        connections=connections,
        text_filter=TextFilter(patterns),
        chains={cid: build_chain(customers, cid) for cid in customers},
    )


def _customer(r: Any) -> Customer:
    return Customer(
        id=r.id,
        name=r.name,
        parent_id=r.parent_id,
        sms=bool(r.sms),
        sms_provider=r.sms_provider,
        active=bool(r.active),
        tokens_blocked=bool(r.tokens_blocked),
        night_limit=r.night_limit,
        night_window=r.night_window,
        max_length=r.max_length,
        ip_allowlist=tuple(ipaddress.ip_network(n, strict=False) for n in json.loads(r.ip_allowlist)),
        aut_app=bool(r.aut_app),
        aut_send=bool(r.aut_send),
        aut_camp=bool(r.aut_camp),
        callback=_callback(r.callback),
    )


def _callback(stored: str | None) -> CallbackConfig | None:
    if not stored:
        return None
    data = json.loads(stored)
    data["headers"] = tuple(tuple(h) for h in data.get("headers", ()))
    return CallbackConfig(**data)


def _user(r: Any) -> User:
    return User(
        id=r.id,
        customer_id=r.customer_id,
        username=r.username,
        password_hash=r.password_hash,
        send=bool(r.send),
        app=bool(r.app),
        camp=bool(r.camp),
        active=bool(r.active),
    )


def _connection(r: Any) -> ConnectionConfig:
    return ConnectionConfig(
        name=r.name,
        kind=r.kind,
        url=r.url,
        username=r.username,
        password=r.password,
        token=r.token,
        ack_timeout=r.ack_timeout,
        final_timeout=r.final_timeout,
        enabled=bool(r.enabled),
        dlr_secret=r.dlr_secret,
        options=json.loads(r.options or "{}"),
    )


# ---------------------------------------------------------------- provisioning


def check_references(conn: Connection, prov: Provisioning) -> list[str]:
    """Entries that name customers or connections neither in the file nor in the database."""
    errors: list[str] = []
    missing_customers = prov.referenced_customer_ids() - set(
        conn.execute(select(t.customers.c.id)).scalars()
    )
    for entry, cid in _customer_refs(prov):
        if cid in missing_customers:
            errors.append(f"{entry}: customer {cid} does not exist")
    return errors


def _customer_refs(prov: Provisioning) -> Iterable[tuple[str, int]]:
    for i, c in enumerate(prov.customers):
        if c.parent is not None:
            yield f"customers[{i}] (id {c.id}): parent", c.parent
    for i, tariff in enumerate(prov.tariffs):
        yield f"tariffs[{i}] (customer {tariff.customer}, prefix {tariff.prefix})", tariff.customer


def connection_warnings(conn: Connection, prov: Provisioning) -> list[str]:
    """Customers routed to a connection that will not exist or is disabled (allowed, SPEC §8)."""
    known = {r.name: bool(r.enabled) for r in conn.execute(select(t.connections))}
    known.update({c.name: c.enabled for c in prov.connections})
    out = []
    for i, c in enumerate(prov.customers):
        if not c.sms:
            continue
        state = known.get(c.sms_provider)
        if state is None:
            out.append(f"customers[{i}] (id {c.id}): routes to connection {c.sms_provider!r}, which does not exist (sends will answer 220)")
        elif not state:
            out.append(f"customers[{i}] (id {c.id}): routes to connection {c.sms_provider!r}, which is disabled (sends will answer 220)")
    return out


def apply_provisioning(conn: Connection, prov: Provisioning, *, now: float | None = None) -> dict[str, int]:
    """Create or update everything in the file, in one transaction (the caller's)."""
    now = time.time() if now is None else now
    counts = {"connections": 0, "costs": 0, "customers": 0, "tariffs": 0, "tokens": 0, "users": 0}
    for spec in prov.connections:
        _upsert_connection(conn, spec)
        counts["connections"] += 1
    for cost in prov.costs:
        _upsert(conn, t.connection_costs, {"connection": cost.connection, "prefix": cost.prefix}, {"cost": cost.cost})
        counts["costs"] += 1
    if prov.text_filter is not None:
        _upsert(conn, t.meta, {"key": TEXT_FILTER}, {"value": json.dumps(list(prov.text_filter))})
    # parents first, so foreign keys hold whatever order the file lists them in
    for spec in _parents_first(prov):
        _upsert_customer(conn, spec, now=now, counts=counts)
    for tariff in prov.tariffs:
        _upsert(
            conn,
            t.tariffs,
            {"customer_id": tariff.customer, "prefix": tariff.prefix, "connection": tariff.connection or ""},
            {"value": tariff.value},
        )
        counts["tariffs"] += 1
    bump_version(conn)
    return counts


def _parents_first(prov: Provisioning) -> list[Any]:
    by_id = {c.id: c for c in prov.customers}
    done: set[int] = set()
    out: list[Any] = []

    def visit(spec: Any, depth: int = 0) -> None:
        if spec.id in done or depth > len(by_id):
            return
        if spec.parent in by_id:
            visit(by_id[spec.parent], depth + 1)
        done.add(spec.id)
        out.append(spec)

    for spec in prov.customers:
        visit(spec)
    return out


def _upsert(conn: Connection, table: Any, key: dict[str, Any], values: dict[str, Any]) -> bool:
    """Update the row with `key`, or insert it; True when inserted."""
    cond = [table.c[k] == v for k, v in key.items()]
    if conn.execute(select(func.count()).select_from(table).where(*cond)).scalar():
        if values:
            conn.execute(update(table).where(*cond).values(**values))
        return False
    conn.execute(insert(table).values(**key, **values))
    return True


def _upsert_connection(conn: Connection, spec: Any) -> None:
    existing = conn.execute(
        select(t.connections.c.dlr_secret).where(t.connections.c.name == spec.name)
    ).scalar()
    secret = spec.dlr_secret or existing or credentials.new_secret()
    cfg = spec.to_config(dlr_secret=secret)
    _upsert(
        conn,
        t.connections,
        {"name": cfg.name},
        {
            "kind": cfg.kind,
            "url": cfg.url,
            "username": cfg.username,
            "password": cfg.password,
            "token": cfg.token,
            "ack_timeout": cfg.ack_timeout,
            "final_timeout": cfg.final_timeout,
            "enabled": cfg.enabled,
            "dlr_secret": cfg.dlr_secret,
            "options": json.dumps(cfg.options),
        },
    )


def _upsert_customer(conn: Connection, spec: Any, *, now: float, counts: dict[str, int]) -> None:
    fields = spec.model_fields_set
    values: dict[str, Any] = {
        "name": spec.name or "",
        "parent_id": spec.parent,
        "sms": spec.sms,
        "sms_provider": spec.sms_provider,
        "credit_limit": spec.credit_limit,
        "night_limit": spec.night_limit,
        "night_window": spec.night_window,
        "max_length": spec.max_length,
        "active": spec.active,
        "tokens_blocked": spec.tokens_blocked,
        "ip_allowlist": json.dumps(list(spec.ip_allowlist)),
        "aut_app": spec.aut_app,
        "aut_send": spec.aut_send,
        "aut_camp": spec.aut_camp,
        "callback": _callback_json(spec.callback.to_config()) if spec.callback else None,
    }
    created = _upsert(conn, t.customers, {"id": spec.id}, values)
    counts["customers"] += 1
    if created and spec.balance:
        # the opening balance is a ledger row like any other change
        conn.execute(update(t.customers).where(t.customers.c.id == spec.id).values(balance=spec.balance))
        conn.execute(
            insert(t.ledger).values(
                customer_id=spec.id, amount=spec.balance, cause="opening", note="provisioning", created_at=now
            )
        )
    for token in spec.tokens:
        token_hash = credentials.hash_token(token)
        exists = conn.execute(select(t.tokens.c.id).where(t.tokens.c.token_hash == token_hash)).first()
        if exists is None:
            conn.execute(
                insert(t.tokens).values(
                    token_hash=token_hash,
                    customer_id=spec.id,
                    prefix=credentials.token_prefix(token),
                    created_at=now,
                )
            )
            counts["tokens"] += 1
    for user in spec.users:
        _upsert_user(conn, spec.id, user)
        counts["users"] += 1
    if "blocklist" in fields:
        conn.execute(t.blocklist.delete().where(t.blocklist.c.customer_id == spec.id))
        for number in sorted(set(spec.blocklist)):
            conn.execute(insert(t.blocklist).values(customer_id=spec.id, number=number))
    if "models" in fields:
        conn.execute(t.models.delete().where(t.models.c.customer_id == spec.id))
        for text in spec.models:
            conn.execute(insert(t.models).values(customer_id=spec.id, text=text))


def _callback_json(config: CallbackConfig) -> str:
    return json.dumps(
        {
            "url": config.url,
            "method": config.method,
            "format": config.format,
            "username": config.username,
            "password": config.password,
            "headers": [list(h) for h in config.headers],
        }
    )


def _upsert_user(conn: Connection, customer_id: int, user: Any) -> None:
    row = conn.execute(select(t.users).where(t.users.c.username == user.username)).first()
    values = {
        "customer_id": customer_id,
        "send": user.send,
        "app": user.app,
        "camp": user.camp,
        "active": user.active,
    }
    if row is None or not credentials.verify_password(user.password, row.password_hash):
        values["password_hash"] = credentials.hash_password(user.password)
    _upsert(conn, t.users, {"username": user.username}, values)


# ---------------------------------------------------------------- operator commands


def credit_add(conn: Connection, *, customer_id: int, amount: int, note: str | None = None) -> int:
    """Top up (or, with a negative amount, debit) a customer; returns the new balance."""
    result = conn.execute(
        update(t.customers).where(t.customers.c.id == customer_id).values(balance=t.customers.c.balance + amount)
    )
    if result.rowcount != 1:
        raise NotFound(f"customer {customer_id} does not exist")
    conn.execute(
        insert(t.ledger).values(
            customer_id=customer_id, amount=amount, cause="topup", note=note, created_at=time.time()
        )
    )
    return int(conn.execute(select(t.customers.c.balance).where(t.customers.c.id == customer_id)).scalar_one())


def issue_token(conn: Connection, *, customer_id: int, user_id: int | None = None) -> str:
    """A new random token for the customer (and user); only its hash is kept."""
    if conn.execute(select(t.customers.c.id).where(t.customers.c.id == customer_id)).first() is None:
        raise NotFound(f"customer {customer_id} does not exist")
    token = credentials.new_token()
    conn.execute(
        insert(t.tokens).values(
            customer_id=customer_id,
            user_id=user_id,
            token_hash=credentials.hash_token(token),
            prefix=credentials.token_prefix(token),
            created_at=time.time(),
        )
    )
    bump_version(conn)
    return token


def revoke_token(conn: Connection, *, token_or_prefix: str) -> int:
    """Revoke a token given whole or by its 10-character prefix; returns how many."""
    cond = (
        t.tokens.c.token_hash == credentials.hash_token(token_or_prefix)
        if len(token_or_prefix) > credentials.TOKEN_PREFIX_LEN
        else t.tokens.c.prefix == token_or_prefix
    )
    result = conn.execute(
        update(t.tokens).where(cond, t.tokens.c.revoked_at.is_(None)).values(revoked_at=time.time())
    )
    bump_version(conn)
    return int(result.rowcount)


# ---------------------------------------------------------------- the log grows forever


def prune_log(conn: Connection, *, before: float) -> dict[str, int]:
    """Delete settled messages created before `before` (epoch) and their raw reports.

    A message still waiting for its upstream outcome (status 1) is never touched. On
    PostgreSQL a whole monthly partition that ends before `before` and holds no waiting
    message is dropped at once. Ledger rows stay: the ledger is append-only.
    """
    dropped = 0
    if conn.dialect.name == "postgresql":
        # never the current month or later: the send path inserts there
        limit = min(before, time.time())
        for name, upper in _partitions(conn):
            if upper is None or upper > limit:
                continue
            waiting = conn.execute(text(f'SELECT count(*) FROM "{name}" WHERE status_code = 1')).scalar()
            if not waiting:
                conn.execute(text(f'DELETE FROM dlr_reports WHERE message_id IN (SELECT id FROM "{name}")'))
                conn.execute(text(f'DROP TABLE "{name}"'))
                dropped += 1
    settled = select(t.messages.c.id).where(t.messages.c.created_at < before, t.messages.c.status_code != 1)
    reports = conn.execute(t.dlr_reports.delete().where(t.dlr_reports.c.message_id.in_(settled))).rowcount
    deleted = conn.execute(
        t.messages.delete().where(t.messages.c.created_at < before, t.messages.c.status_code != 1)
    ).rowcount
    kept = conn.execute(
        select(func.count()).select_from(t.messages).where(t.messages.c.created_at < before, t.messages.c.status_code == 1)
    ).scalar()
    return {"partitions_dropped": dropped, "messages_deleted": deleted, "reports_deleted": reports, "waiting_kept": int(kept or 0)}


def _partitions(conn: Connection) -> list[tuple[str, float | None]]:
    """Monthly partitions of messages with their upper bound (None for the default one)."""
    rows = conn.execute(
        text(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'messages'::regclass"
        )
    ).all()
    out: list[tuple[str, float | None]] = []
    for name, bound in rows:
        upper = None
        if "TO (" in bound:
            upper = float(bound.split("TO (", 1)[1].split(")", 1)[0].strip("'"))
        out.append((name, upper))
    return out


# ---------------------------------------------------------------- brute-force state


def ip_report(conn: Connection, *, since: float) -> list[dict[str, object]]:
    """Blocked IPs, and IPs with failures since `since`, with their counts."""
    blocked = {r.ip: r for r in conn.execute(select(t.ip_blocks))}
    counts = dict(
        conn.execute(
            select(t.auth_failures.c.ip, func.count())
            .where(t.auth_failures.c.created_at >= since)
            .group_by(t.auth_failures.c.ip)
        ).all()
    )
    out = []
    for ip in sorted(set(blocked) | set(counts)):
        row = blocked.get(ip)
        out.append(
            {
                "ip": ip,
                "blocked": row is not None,
                "reason": row.reason if row is not None else "",
                "blocked_at": row.created_at if row is not None else None,
                "recent_failures": int(counts.get(ip, 0)),
            }
        )
    return out


def unblock_ip(conn: Connection, *, ip: str) -> int:
    """Lift the permanent block of an IP and forget its failures; how many rows went."""
    removed = conn.execute(t.ip_blocks.delete().where(t.ip_blocks.c.ip == ip)).rowcount
    removed += conn.execute(t.auth_failures.delete().where(t.auth_failures.c.ip == ip)).rowcount
    return int(removed)
