"""The configuration as the send path reads it: one snapshot of everything the operator set,
and the version that tells running servers to reload it."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from sqlalchemy import Connection, insert, select, text, update

from pombo.adapters.sql import schema as t
from pombo.domain.catalog import Catalog, PriceTable, build_chain
from pombo.domain.inbound import (
    DEFAULT_OPT_IN_WORDS,
    DEFAULT_OPT_OUT_WORDS,
    numbers_index,
    word_list,
)
from pombo.domain.model import CallbackConfig, ConnectionConfig, Customer, PriceRow, Token, User
from pombo.domain.textfilter import DEFAULT_PATTERNS, Models, TextFilter

CONFIG_VERSION = "config_version"
TOKEN_VERSION = "token_version"
# bump_token_version, and the store's mint on its own connection (operator_store.mint_token)
TOKEN_VERSION_BUMP = (
    f"INSERT INTO meta (key, value) VALUES ('{TOKEN_VERSION}', '1') ON CONFLICT (key) "
    "DO UPDATE SET value = CAST(CAST(meta.value AS BIGINT) + 1 AS TEXT) RETURNING value"
)
TOKENS_NOTIFY = "SELECT pg_notify('pombo_tokens', '')"
TEXT_FILTER = "text_filter"
OPT_OUT_WORDS = "opt_out_words"
OPT_IN_WORDS = "opt_in_words"
OPT_VERSION = "opt_version"


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


def token_version(conn: Connection) -> int:
    """The version of the tokens (bumped by every issue and revocation)."""
    value = conn.execute(select(t.meta.c.value).where(t.meta.c.key == TOKEN_VERSION)).scalar()
    return int(value or 0)


def bump_token_version(conn: Connection) -> int:
    """A token is being issued or revoked: the new token version, to stamp its row with.

    The upsert comes first and locks the meta row until commit, so token changes commit one at
    a time in version order: a process that has read version N has seen every change up to N.
    """
    new = conn.execute(text(TOKEN_VERSION_BUMP)).scalar_one()
    if conn.dialect.name == "postgresql":
        conn.execute(text(TOKENS_NOTIFY))  # delivered at commit
    return int(new)


def live_token(r: Any) -> Token:
    """A tokens row as the send path reads it."""
    return Token(r.id, r.customer_id, r.user_id, r.token_hash, r.prefix, r.expires_at)


def load_catalog(conn: Connection) -> Catalog:
    """Read the whole configuration into one immutable snapshot."""
    version = config_version(conn)
    tokens_seen = token_version(conn)  # read first: a change after it is read again, never lost
    opts_seen = int(conn.execute(select(t.meta.c.value).where(t.meta.c.key == OPT_VERSION)).scalar() or 0)
    customers = {r.id: _customer(r) for r in conn.execute(select(t.customers))}
    users = [_user(r) for r in conn.execute(select(t.users))]
    tokens = {
        r.token_hash: live_token(r) for r in conn.execute(select(t.tokens).where(t.tokens.c.revoked_at.is_(None)))
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
    opted_out: dict[int, set[str]] = {}
    for r in conn.execute(select(t.opt_outs)):  # SPEC §14: opted out by an inbound word
        opted_out.setdefault(r.customer_id, set()).add(r.number)
    model_texts: dict[int, list[str]] = {}
    for r in conn.execute(select(t.models).order_by(t.models.c.id)):
        model_texts.setdefault(r.customer_id, []).append(r.text)
    connections = {r.name: _connection(r) for r in conn.execute(select(t.connections))}
    stored_filter = conn.execute(
        select(t.meta.c.value).where(t.meta.c.key == TEXT_FILTER)
    ).scalar()
    patterns = json.loads(stored_filter) if stored_filter else list(DEFAULT_PATTERNS)
    words = dict(conn.execute(select(t.meta.c.key, t.meta.c.value).where(t.meta.c.key.in_((OPT_OUT_WORDS, OPT_IN_WORDS)))).all())
    opt_out = json.loads(words[OPT_OUT_WORDS]) if OPT_OUT_WORDS in words else DEFAULT_OPT_OUT_WORDS
    opt_in = json.loads(words[OPT_IN_WORDS]) if OPT_IN_WORDS in words else DEFAULT_OPT_IN_WORDS
    return Catalog(
        version=version,
        token_version=tokens_seen,
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
        opt_out_words=word_list(opt_out),
        opt_in_words=word_list(opt_in),
        inbound_numbers=numbers_index({cid: c.numbers for cid, c in customers.items()}),
        opted_out={cid: frozenset(nums) for cid, nums in opted_out.items()},
        opt_version=opts_seen,
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
        accents=r.accents,
        priority=r.priority,
        numbers=tuple(json.loads(r.numbers or "[]")),
        reply_window=int(r.reply_window),
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
