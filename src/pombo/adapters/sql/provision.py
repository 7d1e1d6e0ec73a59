"""Applying a provisioning plan on SQLAlchemy Core (SQLite and PostgreSQL alike): the stored
state its checks need, then every upsert, in the caller's transaction."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update

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


Progress = Callable[[int], None]
CHUNK = 500  # ids in one IN (...) and rows in one executemany


def apply_provisioning(
    conn: Connection, prov: Provisioning, *, now: float | None = None, progress: Progress | None = None
) -> dict[str, int]:
    """Create or update everything in the file, in one transaction (the caller's).

    Customers, their tokens, lists and tariffs are read and written in batches (one IN query
    for what exists, one executemany for the new rows), so a file of 10,000 customers costs a
    few hundred statements, not tens of thousands. `progress(n)` is told as entries are done.
    """
    now = time.time() if now is None else now
    tick = progress or (lambda _: None)
    counts = {"connections": 0, "costs": 0, "customers": 0, "tariffs": 0, "tokens": 0, "users": 0}
    for spec in prov.connections:
        _upsert_connection(conn, spec)
        counts["connections"] += 1
    for cost in prov.costs:
        _upsert(conn, t.connection_costs, {"connection": cost.connection, "prefix": cost.prefix}, {"cost": cost.cost})
        counts["costs"] += 1
    tick(len(prov.connections) + len(prov.costs))
    if prov.text_filter is not None:
        _upsert(conn, t.meta, {"key": TEXT_FILTER}, {"value": json.dumps(list(prov.text_filter))})
    if prov.opt_out_words is not None:  # SPEC §14
        _upsert(conn, t.meta, {"key": OPT_OUT_WORDS}, {"value": json.dumps(list(prov.opt_out_words))})
    if prov.opt_in_words is not None:
        _upsert(conn, t.meta, {"key": OPT_IN_WORDS}, {"value": json.dumps(list(prov.opt_in_words))})
    _apply_customers(conn, parents_first(prov), now=now, counts=counts, tick=tick)
    _apply_tariffs(conn, prov, counts=counts, tick=tick)
    bump_version(conn)
    return counts


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


def _insert_many(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    for chunk in _chunks(rows):
        conn.execute(insert(table), list(chunk))


def _apply_customers(
    conn: Connection, specs: list[Any], *, now: float, counts: dict[str, int], tick: Progress
) -> None:
    existing = stored_customer_ids(conn)
    new_rows: list[dict[str, Any]] = []
    ledger: list[dict[str, Any]] = []
    updates: list[tuple[int, dict[str, Any]]] = []
    for spec in specs:
        values = _customer_values(spec)
        if spec.id in existing:
            updates.append((spec.id, values))
        else:
            # the opening balance is a ledger row like any other change
            new_rows.append({"id": spec.id, **values, "balance": spec.balance or 0})
            if spec.balance:
                ledger.append({"customer_id": spec.id, "amount": spec.balance, "cause": "opening",
                               "note": "provisioning", "created_at": now})
    # new rows first, parents before children, so an existing customer may move under a new one
    for chunk in _chunks(new_rows):
        conn.execute(insert(t.customers), list(chunk))
        tick(len(chunk))
    _insert_many(conn, t.ledger, ledger)
    if updates:
        columns = list(updates[0][1])
        statement = update(t.customers).where(t.customers.c.id == bindparam("_id")).values(
            {c: bindparam(f"_{c}") for c in columns})
        params = [{"_id": cid, **{f"_{c}": v for c, v in values.items()}} for cid, values in updates]
        for chunk in _chunks(params):
            conn.execute(statement, list(chunk))
            tick(len(chunk))
    counts["customers"] += len(specs)
    _apply_tokens(conn, specs, now=now, counts=counts)
    for spec in specs:
        for user in spec.users:
            _upsert_user(conn, spec.id, user)
            counts["users"] += 1
    _replace_lists(conn, specs)


def _customer_values(spec: Any) -> dict[str, Any]:
    return {
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
        "numbers": json.dumps(list(spec.numbers)),  # SPEC §14
        "reply_window": spec.reply_window,
    }


def _apply_tokens(conn: Connection, specs: list[Any], *, now: float, counts: dict[str, int]) -> None:
    wanted: dict[str, dict[str, Any]] = {}
    for spec in specs:
        for token in spec.tokens:
            token_hash = credentials.hash_token(token)
            wanted.setdefault(token_hash, {"token_hash": token_hash, "customer_id": spec.id,
                                           "prefix": credentials.token_prefix(token), "created_at": now})
    hashes = list(wanted)
    known: set[str] = set()
    for chunk in _chunks(hashes):
        known.update(conn.execute(select(t.tokens.c.token_hash).where(t.tokens.c.token_hash.in_(chunk))).scalars())
    rows = [wanted[h] for h in hashes if h not in known]
    _insert_many(conn, t.tokens, rows)
    counts["tokens"] += len(rows)


def _replace_lists(conn: Connection, specs: list[Any]) -> None:
    """blocklist and models, for the customers whose entry gives them (absent: kept as stored)."""
    for field, table, rows_of in (
        ("blocklist", t.blocklist, lambda s: [{"customer_id": s.id, "number": n} for n in sorted(set(s.blocklist))]),
        ("models", t.models, lambda s: [{"customer_id": s.id, "text": m} for m in s.models]),
    ):
        given = [s for s in specs if field in s.model_fields_set]
        for chunk in _chunks([s.id for s in given]):
            conn.execute(table.delete().where(table.c.customer_id.in_(chunk)))
        _insert_many(conn, table, [row for s in given for row in rows_of(s)])


def _apply_tariffs(conn: Connection, prov: Provisioning, *, counts: dict[str, int], tick: Progress) -> None:
    ids = sorted({tariff.customer for tariff in prov.tariffs})
    stored: set[tuple[int, str, str]] = set()
    for chunk in _chunks(ids):
        query = select(t.tariffs.c.customer_id, t.tariffs.c.prefix, t.tariffs.c.connection).where(
            t.tariffs.c.customer_id.in_(chunk))
        stored.update((r.customer_id, r.prefix, r.connection) for r in conn.execute(query))
    new: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    for tariff in prov.tariffs:
        key = (tariff.customer, tariff.prefix, tariff.connection or "")
        if key in stored:
            changed.append({"_c": key[0], "_p": key[1], "_n": key[2], "_v": tariff.value})
        else:
            stored.add(key)
            new.append({"customer_id": key[0], "prefix": key[1], "connection": key[2], "value": tariff.value})
    for chunk in _chunks(new):
        conn.execute(insert(t.tariffs), list(chunk))
        tick(len(chunk))
    statement = update(t.tariffs).where(
        t.tariffs.c.customer_id == bindparam("_c"), t.tariffs.c.prefix == bindparam("_p"),
        t.tariffs.c.connection == bindparam("_n")).values(value=bindparam("_v"))
    for chunk in _chunks(changed):
        conn.execute(statement, list(chunk))
        tick(len(chunk))
    counts["tariffs"] += len(prov.tariffs)


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


def provision(
    conn: Connection, plan: Provisioning, *, now: float, apply: bool = True, progress: Progress | None = None
) -> ProvisionReport:
    """Check the plan's references against what is stored, then apply it whole, or nothing
    (`apply=False`: only check)."""
    errors = reference_errors(plan, stored_customer_ids(conn))
    warnings = [*plan.warnings, *routing_warnings(plan, stored_connections(conn))]
    if errors or not apply:
        return ProvisionReport(errors=errors, warnings=warnings)
    return ProvisionReport(warnings=warnings, counts=apply_provisioning(conn, plan, now=now, progress=progress))
