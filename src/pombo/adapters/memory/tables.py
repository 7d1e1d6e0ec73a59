"""The in-memory store's state: one table per SQL table, as plain dicts and records.

Rows are dicts keyed like the SQL columns, so what a port returns has the same keys and types on
every store. Nothing here awaits: each store operation runs start to end on the event loop, which
is what makes it atomic (concurrent tasks see each other's operations whole, as transactions).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field, replace
from typing import Any

from pombo.domain.catalog import Catalog, PriceTable, build_chain
from pombo.domain.ids import new_event_id
from pombo.domain.inbound import (
    DEFAULT_OPT_IN_WORDS,
    DEFAULT_OPT_OUT_WORDS,
    numbers_index,
    word_list,
)
from pombo.domain.model import ConnectionConfig, Customer, PriceRow, Token, User
from pombo.domain.textfilter import DEFAULT_PATTERNS, Models, TextFilter

Row = dict[str, Any]

# what the SQL stores' MESSAGE_COLUMNS give, in that order (corr_id is read as ctid)
MESSAGE_KEYS = (
    "id", "customer_id", "user_id", "dest", "text", "ctid", "cp_id", "cd_id", "sender", "connection",
    "status_code", "upstream_id", "value", "cost", "segments", "encoding", "delivery", "return_log",
    "created_at", "updated_at", "sent_at", "final_at", "text_received",
)
CALLBACK_KEYS = (
    "id", "event_id", "url", "status_code", "delivery", "attempts", "occurred_at", "customer_id", "message_id",
)


@dataclass(slots=True)
class Account:
    """A customer's record as stored: the configuration and the money beside it."""

    customer: Customer
    balance: int = 0
    credit_limit: int = 0


@dataclass(slots=True)
class StoredToken:
    """A token row: only the hash of the token is kept."""

    token: Token
    created_at: float
    revoked_at: float | None = None
    minted: bool = False  # by GetUserID tsid=1: capped per user, expiring (token.expires_at)


@dataclass(slots=True)
class Tables:
    """Everything the store holds, and the counters that stand in for SQL sequences."""

    accounts: dict[int, Account] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)  # by username
    tokens: dict[int, StoredToken] = field(default_factory=dict)  # by id
    tariffs: dict[tuple[int, str, str], int] = field(default_factory=dict)  # (customer, prefix, connection or "")
    costs: dict[tuple[str, str], int] = field(default_factory=dict)  # (connection, prefix)
    blocklists: dict[int, set[str]] = field(default_factory=dict)
    models: dict[int, list[str]] = field(default_factory=dict)
    connections: dict[str, ConnectionConfig] = field(default_factory=dict)
    text_filter: list[str] | None = None  # None: the built-in patterns
    opt_out_words: list[str] | None = None  # None: the defaults of SPEC §14
    opt_in_words: list[str] | None = None
    inbound: dict[int, Row] = field(default_factory=dict)  # by id, in id order (SPEC §14)
    opt_outs: dict[tuple[int, str], Row] = field(default_factory=dict)  # (customer, number)
    opt_changes: list[Row] = field(default_factory=list)
    config_version: int = 0
    token_version: int = 0  # bumped by every token issue and revocation (not a config change)
    messages: dict[int, Row] = field(default_factory=dict)  # by id, in id order
    ledger: list[Row] = field(default_factory=list)
    night_counts: dict[tuple[int, float], int] = field(default_factory=dict)  # (customer, night start): OK/WR sent
    reports: list[Row] = field(default_factory=list)
    kannel_parts: dict[int, Row] = field(default_factory=dict)  # message id -> its receipts so far
    part_warnings: dict[str, Row] = field(default_factory=dict)  # connection -> count and latest
    auth_failures: list[Row] = field(default_factory=list)
    ip_blocks: dict[str, Row] = field(default_factory=dict)
    rejection_counts: dict[tuple[int, int, int], int] = field(default_factory=dict)  # (minute, customer, code)
    rejections: list[Row] = field(default_factory=list)  # oldest first
    console_audit: list[Row] = field(default_factory=list)  # oldest first
    callbacks: dict[int, Row] = field(default_factory=dict)  # by id, in id order
    queue: dict[int, Row] = field(default_factory=dict)  # the upstream queue, by message id
    attempts: list[Row] = field(default_factory=list)  # the upstream attempts log
    pace: dict[str, float] = field(default_factory=dict)  # when each connection's next send is due
    smpp_parts: dict[tuple[str, str], Row] = field(default_factory=dict)  # (connection, id key)
    smpp_held: dict[int, Row] = field(default_factory=dict)  # held receipts, by id
    ids: dict[str, itertools.count[int]] = field(default_factory=dict)

    def next_id(self, table: str) -> int:
        """The next id of `table` (1, 2, ...), like an autoincrementing key."""
        return next(self.ids.setdefault(table, itertools.count(1)))

    def bump_version(self) -> None:
        """The configuration changed: the next catalog() builds a new snapshot."""
        self.config_version += 1

    def add_ledger(self, customer_id: int, amount: int, cause: str, *, message_id: int | None = None,
                   note: str | None = None, now: float) -> None:
        """Move a balance and write the ledger row that explains it."""
        self.accounts[customer_id].balance += amount
        self.ledger.append({"id": self.next_id("ledger"), "customer_id": customer_id, "amount": amount,
                            "cause": cause, "message_id": message_id, "note": note, "created_at": now})

    def enqueue(self, message: Row, now: float) -> None:
        """One callback event for the message's new state, when it has somewhere to go."""
        if message["notify_url"] is None:
            return
        event_id = self.next_id("callbacks")
        self.callbacks[event_id] = {
            "id": event_id, "event_id": new_event_id(), "message_id": message["id"],
            "customer_id": message["customer_id"], "url": message["notify_url"],
            "status_code": message["status_code"], "delivery": message["delivery"], "state": "pending",
            "attempts": 0, "next_at": now, "lease_until": None, "last_error": None, "created_at": now,
            "updated_at": now,
        }

    def set_connection(self, name: str, **changes: Any) -> None:
        """Replace one field or more of a stored connection."""
        self.connections[name] = replace(self.connections[name], **changes)


def message_row(message: Row) -> Row:
    """The row the ports return: the SQL stores' MESSAGE_COLUMNS, nothing internal."""
    return {k: message[k] for k in MESSAGE_KEYS}


def callback_row(event: Row) -> Row:
    """An outbox event as due_callbacks hands it out (without its message)."""
    return {k: event["created_at"] if k == "occurred_at" else event[k] for k in CALLBACK_KEYS}


def json_copy(value: Any) -> Any:
    """What storing `value` as JSON text and reading it back gives (lists for tuples, a copy)."""
    return json.loads(json.dumps(value))


def live_tokens(t: Tables) -> dict[str, Token]:
    """The tokens not revoked, by hash (an expired one stays: the authenticator refuses it)."""
    return {s.token.token_hash: s.token for s in t.tokens.values() if s.revoked_at is None}


def build_catalog(t: Tables) -> Catalog:
    """The configuration snapshot, built from the stored records as the SQL stores build theirs."""
    customers = {cid: a.customer for cid, a in t.accounts.items()}
    users = list(t.users.values())
    tariff_rows: dict[int, list[PriceRow]] = {}
    for (cid, prefix, connection), value in t.tariffs.items():
        tariff_rows.setdefault(cid, []).append(PriceRow(prefix, value, connection or None))
    cost_rows: dict[str, list[PriceRow]] = {}
    for (connection, prefix), cost in t.costs.items():
        cost_rows.setdefault(connection, []).append(PriceRow(prefix, cost, None))
    opted_out: dict[int, set[str]] = {}
    for cid, number in t.opt_outs:
        opted_out.setdefault(cid, set()).add(number)
    return Catalog(
        version=str(t.config_version),
        token_version=t.token_version,
        customers=customers,
        tokens=live_tokens(t),
        users_by_name={u.username: u for u in users},
        users_by_id={u.id: u for u in users},
        tariffs={cid: PriceTable(rows) for cid, rows in tariff_rows.items()},
        costs={name: PriceTable(rows) for name, rows in cost_rows.items()},
        blocklists={cid: frozenset(nums) for cid, nums in t.blocklists.items() if nums},
        opted_out={cid: frozenset(nums) for cid, nums in opted_out.items()},
        models={cid: Models(texts) for cid, texts in t.models.items() if texts},
        connections=dict(t.connections),
        text_filter=TextFilter(t.text_filter if t.text_filter is not None else DEFAULT_PATTERNS),
        chains={cid: build_chain(customers, cid) for cid in customers},
        opt_out_words=word_list(t.opt_out_words if t.opt_out_words is not None else DEFAULT_OPT_OUT_WORDS),
        opt_in_words=word_list(t.opt_in_words if t.opt_in_words is not None else DEFAULT_OPT_IN_WORDS),
        inbound_numbers=numbers_index({cid: c.numbers for cid, c in customers.items()}),
    )
