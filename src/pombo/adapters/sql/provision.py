"""Applying a provisioning plan on SQLAlchemy Core (SQLite and PostgreSQL alike): the stored
state its checks need, then every upsert, in the caller's transaction."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from pombo.adapters.sql import schema as t
from pombo.adapters.sql.catalog import OPT_IN_WORDS, OPT_OUT_WORDS, TEXT_FILTER, bump_version
from pombo.domain import credentials
from pombo.domain.model import CallbackConfig
from pombo.domain.plan_checks import parents_first, reference_errors, routing_warnings
from pombo.domain.provisioning import Provisioning
from pombo.ports import ProvisionReport


def stored_customer_ids(conn: Connection) -> set[int]:
    """Every stored customer id."""
    return set(conn.execute(select(t.customers.c.id)).scalars())


def stored_connections(conn: Connection) -> dict[str, bool]:
    """Every stored connection's name and whether it is enabled."""
    return {r.name: bool(r.enabled) for r in conn.execute(select(t.connections))}


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
    if prov.opt_out_words is not None:
        _upsert(conn, t.meta, {"key": OPT_OUT_WORDS}, {"value": json.dumps(list(prov.opt_out_words))})
    if prov.opt_in_words is not None:
        _upsert(conn, t.meta, {"key": OPT_IN_WORDS}, {"value": json.dumps(list(prov.opt_in_words))})
    # parents first, so foreign keys hold whatever order the file lists them in
    for customer in parents_first(prov):
        _upsert_customer(conn, customer, now=now, counts=counts)
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
        "accents": spec.accents,
        "priority": spec.priority,
        "numbers": json.dumps(list(spec.numbers)),
        "reply_window": spec.reply_window,
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


def provision(conn: Connection, plan: Provisioning, *, now: float) -> ProvisionReport:
    """Check the plan's references against what is stored, then apply it whole, or nothing."""
    errors = reference_errors(plan, stored_customer_ids(conn))
    if errors:
        return ProvisionReport(errors=errors)
    warnings = [*plan.warnings, *routing_warnings(plan, stored_connections(conn))]
    return ProvisionReport(warnings=warnings, counts=apply_provisioning(conn, plan, now=now))
