"""The tables, in SQLAlchemy Core. Alembic migrations create them on SQLite and PostgreSQL.

Money columns are BIGINT ten-thousandths (0.0001); times are epoch seconds (float).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# 64-bit ids for the tables that grow forever; SQLite needs INTEGER for its rowid alias.
BigId = BigInteger().with_variant(Integer(), "sqlite")

# Key/value settings owned by the operator: the config version (bumped by every
# provisioning change so running servers reload their caches) and the text filter.
meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

connections = Table(
    "connections",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("url", Text, nullable=False, server_default=""),
    Column("username", Text, nullable=False, server_default=""),
    Column("password", Text, nullable=False, server_default=""),
    Column("token", Text, nullable=False, server_default=""),
    Column("ack_timeout", Float, nullable=False, server_default="5"),
    Column("final_timeout", Float, nullable=False, server_default="60"),
    Column("enabled", Boolean, nullable=False, server_default="1"),
    Column("dlr_secret", String(128), nullable=False),
    Column("options", Text, nullable=False, server_default="{}"),  # JSON
)

connection_costs = Table(
    "connection_costs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("connection", String(64), nullable=False),
    Column("prefix", String(20), nullable=False),
    Column("cost", BigInteger, nullable=False),
    UniqueConstraint("connection", "prefix"),
)

customers = Table(
    "customers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("name", Text, nullable=False, server_default=""),
    Column("parent_id", Integer, ForeignKey("customers.id"), nullable=True),
    Column("sms", Boolean, nullable=False, server_default="1"),
    Column("sms_provider", String(64), nullable=False, server_default="velip"),
    Column("balance", BigInteger, nullable=False, server_default="0"),
    Column("credit_limit", BigInteger, nullable=False, server_default="0"),
    Column("night_limit", Integer, nullable=True),
    Column("night_window", String(11), nullable=False, server_default="22:00-06:00"),
    Column("max_length", Integer, nullable=False, server_default="160"),
    Column("active", Boolean, nullable=False, server_default="1"),
    Column("tokens_blocked", Boolean, nullable=False, server_default="0"),
    Column("ip_allowlist", Text, nullable=False, server_default="[]"),  # JSON list
    Column("aut_app", Boolean, nullable=False, server_default="1"),
    Column("aut_send", Boolean, nullable=False, server_default="1"),
    Column("aut_camp", Boolean, nullable=False, server_default="1"),
    # where state changes of this customer's messages are pushed (JSON: url, method, format,
    # username, password, headers); NULL = no callbacks
    Column("callback", Text, nullable=True),
    Column("accents", String(8), nullable=False, server_default="keep"),  # keep | fold (SPEC §13)
    Column("priority", String(8), nullable=False, server_default="normal"),  # normal | high (SPEC §11)
    Column("numbers", Text, nullable=False, server_default="[]"),  # JSON list: inbound numbers (SPEC §14)
    Column("reply_window", Integer, nullable=False, server_default="72"),  # hours (SPEC §14)
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("customer_id", Integer, ForeignKey("customers.id"), nullable=False),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("send", Boolean, nullable=False, server_default="0"),
    Column("app", Boolean, nullable=False, server_default="0"),
    Column("camp", Boolean, nullable=False, server_default="0"),
    Column("active", Boolean, nullable=False, server_default="1"),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("customer_id", Integer, ForeignKey("customers.id"), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(10), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
    Column("minted", Boolean, nullable=False, server_default="0"),  # GetUserID tsid=1: capped, expiring
    Column("expires_at", Float, nullable=True),
    Column("changed_seq", BigInteger, nullable=False, server_default="0"),  # meta token_version at its last change
)
Index("ix_tokens_changed", tokens.c.changed_seq)
Index("ix_tokens_user_minted", tokens.c.user_id, tokens.c.minted)

tariffs = Table(
    "tariffs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("customer_id", Integer, ForeignKey("customers.id"), nullable=False),
    Column("prefix", String(20), nullable=False),
    Column("value", BigInteger, nullable=False),
    Column("connection", String(64), nullable=False, server_default=""),  # "" = any
    UniqueConstraint("customer_id", "prefix", "connection"),
)

blocklist = Table(
    "blocklist",
    metadata,
    Column("customer_id", Integer, ForeignKey("customers.id"), primary_key=True),
    Column("number", String(20), primary_key=True),
)

models = Table(
    "models",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("customer_id", Integer, ForeignKey("customers.id"), nullable=False),
    Column("text", Text, nullable=False),
)

messages = Table(
    "messages",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("customer_id", Integer, nullable=False),
    Column("user_id", Integer, nullable=True),
    Column("dest", String(20), nullable=False),
    Column("text", Text, nullable=False),
    Column("corr_id", String(64), nullable=True),  # the API's ctid (a system column name in PostgreSQL)
    Column("cp_id", String(64), nullable=True),
    Column("cd_id", String(64), nullable=True),
    Column("sender", String(32), nullable=True),
    Column("connection", String(64), nullable=False),
    Column("status_code", Integer, nullable=False),  # 1 while waiting, then 0 or 300
    Column("upstream_id", String(128), nullable=True),
    Column("value", BigInteger, nullable=False),  # the customer's debit
    Column("cost", BigInteger, nullable=False),  # the connection's cost
    Column("segments", Integer, nullable=False),
    Column("encoding", String(8), nullable=False),
    Column("delivery", String(16), nullable=False, server_default="pending"),
    Column("return_log", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("sent_at", Float, nullable=True),
    Column("final_at", Float, nullable=True),
    Column("notify_url", Text, nullable=True),  # the callback URL for this message (rurl or the customer's)
    Column("reconcile_at", Float, nullable=True),  # when a process last claimed it for reconciliation
    Column("text_received", Text, nullable=True),  # the body as received, when `text` (as sent) differs
    Column("night_since", Float, nullable=True),  # the night it counts toward (night_counts), if any
)
# the duplicate check (customer_id, dest, created_at) and routing an answer by dest (SPEC §14)
Index("ix_messages_dest_customer", messages.c.dest, messages.c.customer_id, messages.c.created_at)
Index("ix_messages_customer_created", messages.c.customer_id, messages.c.created_at)
# partial (migration 0006): only the rows these lookups can find, so a send adds no entry to them
Index(
    "ix_messages_customer_corr",
    messages.c.customer_id,
    messages.c.corr_id,
    sqlite_where=messages.c.corr_id.isnot(None),
    postgresql_where=messages.c.corr_id.isnot(None),
)
Index("ix_messages_upstream", messages.c.connection, messages.c.upstream_id)
Index(
    "ix_messages_waiting",
    messages.c.created_at,
    sqlite_where=messages.c.status_code == 1,
    postgresql_where=messages.c.status_code == 1,
)

# The night cap (245): per customer and night (its start, epoch), how many of the messages
# accepted that night are still OK or WR; kept by the accept transaction and whatever moves a
# message to 300 (migration 0012).
night_counts = Table(
    "night_counts",
    metadata,
    Column("customer_id", Integer, primary_key=True),
    Column("night_since", Float, primary_key=True),
    Column("sent", Integer, nullable=False, server_default="0"),
)

# Append-only: every balance change has a row naming its cause.
ledger = Table(
    "ledger",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("customer_id", Integer, nullable=False),
    Column("amount", BigInteger, nullable=False),  # signed: debits are negative
    Column("cause", String(16), nullable=False),  # opening | topup | message | refund
    Column("message_id", BigInteger, nullable=True),
    Column("note", Text, nullable=True),
    Column("created_at", Float, nullable=False),
)
Index("ix_ledger_customer", ledger.c.customer_id)
Index("ix_ledger_message", ledger.c.message_id)

# Delivery reports as received, raw (kept for the operator).
dlr_reports = Table(
    "dlr_reports",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("connection", String(64), nullable=False),
    Column("message_id", BigInteger, nullable=True),
    Column("state", String(16), nullable=True),
    Column("raw", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)
Index("ix_dlr_reports_message", dlr_reports.c.message_id)

# A multi-part message sent through Kannel, with the final receipts (one a part) reported so far;
# judged once its parts settle, then deleted (migration 0011).
kannel_parts = Table(
    "kannel_parts",
    metadata,
    Column("message_id", BigInteger, primary_key=True, autoincrement=False),
    Column("connection", String(64), nullable=False),
    Column("segments", Integer, nullable=False),
    Column("parts", Integer, nullable=False),
    Column("first_at", Float, nullable=False),
)
Index("ix_kannel_parts_first", kannel_parts.c.first_at)

# Per connection: messages reported with fewer parts than were charged, and the latest one.
part_warnings = Table(
    "part_warnings",
    metadata,
    Column("connection", String(64), primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("message_id", BigInteger, nullable=False),
    Column("segments", Integer, nullable=False),
    Column("parts", Integer, nullable=False),
    Column("at", Float, nullable=False),
)

auth_failures = Table(
    "auth_failures",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("ip", String(45), nullable=False),
    Column("username", String(64), nullable=True),
    Column("code", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
)
Index("ix_auth_failures_ip", auth_failures.c.ip, auth_failures.c.created_at)
Index("ix_auth_failures_user_code", auth_failures.c.username, auth_failures.c.code, auth_failures.c.created_at)
Index("ix_auth_failures_created", auth_failures.c.created_at)

ip_blocks = Table(
    "ip_blocks",
    metadata,
    Column("ip", String(45), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)
Index("ix_ip_blocks_created", ip_blocks.c.created_at)

# Transactional outbox of callback events: written in the same transaction as the state change
# it reports, delivered at least once, in order per message, with retries whose state lives here.
callbacks = Table(
    "callbacks",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("message_id", BigInteger, nullable=False),
    Column("customer_id", Integer, nullable=False),
    Column("url", Text, nullable=False),
    Column("status_code", Integer, nullable=False),  # the message's status at the change
    Column("delivery", String(16), nullable=False),  # the message's delivery state at the change
    Column("state", String(16), nullable=False, server_default="pending"),  # pending | done | failed
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_at", Float, nullable=False),
    Column("lease_until", Float, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    # an `mo` event (SPEC §14): the inbound message it announces; its message_id is then minus
    # the inbound id, so each inbound event is ordered on its own
    Column("inbound_id", BigInteger, nullable=True),
)
Index("ix_callbacks_due", callbacks.c.state, callbacks.c.next_at)
Index("ix_callbacks_message", callbacks.c.message_id, callbacks.c.id)

# Every console change of a customer's tariffs, block list or models (migration 0015): who made
# it, what it was, and the record before and after it as JSON.
console_audit = Table(
    "console_audit",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("created_at", Float, nullable=False),
    Column("operator", String(64), nullable=False),
    Column("action", String(32), nullable=False),
    Column("customer_id", Integer, nullable=False),
    Column("before", Text, nullable=True),
    Column("after", Text, nullable=True),
)
Index("ix_console_audit_customer", console_audit.c.customer_id, console_audit.c.id)

# Operators of the web console (`pombo operator add`). A session cookie issued before
# `sessions_after` is void: logging out, or a new password, ends the operator's sessions.
operators = Table(
    "operators",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("active", Boolean, nullable=False, server_default="1"),
    Column("sessions_after", Float, nullable=False, server_default="0"),
    Column("created_at", Float, nullable=False),
)

# The upstream engine (SPEC §11, migration 0009): messages waiting for their turn at a
# connection (a message sent at once never has a row), and every attempt that was not a plain
# first-try send, for the operator to see.
upstream_queue = Table(
    "upstream_queue",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("message_id", BigInteger, nullable=False, unique=True),
    Column("customer_id", Integer, nullable=False),
    Column("connection", String(64), nullable=False),  # the one to try next
    Column("priority", Integer, nullable=False, server_default="0"),  # 1: high
    Column("not_before", Float, nullable=False),
    Column("enqueued_at", Float, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text, nullable=True),
)
Index("ix_upstream_queue_due", upstream_queue.c.connection, upstream_queue.c.not_before)
Index("ix_upstream_queue_age", upstream_queue.c.connection, upstream_queue.c.enqueued_at)
# the claim's fair order (migration 0019): the customers waiting, each one's messages by age
Index("ix_upstream_queue_customer", upstream_queue.c.connection, upstream_queue.c.customer_id, upstream_queue.c.id)
upstream_attempts = Table(
    "upstream_attempts",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("message_id", BigInteger, nullable=False),
    Column("connection", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # claimed | not_sent | unknown | expired
    Column("raw", Text, nullable=True),
    Column("at", Float, nullable=False),
)
Index("ix_upstream_attempts_message", upstream_attempts.c.message_id, upstream_attempts.c.at)
# `throughput` across workers (migration 0020): one row per connection, locked while a grant is
# decided; `at` is when the connection's next send is due on the even schedule (engine.pace)
upstream_pace = Table(
    "upstream_pace",
    metadata,
    Column("connection", String(64), primary_key=True),
    Column("at", Float, nullable=False, server_default="0"),
)

# Inbound messages (SPEC §14, migration 0013): each stored once per (connection, provider_id),
# routed to a customer and the message it answers, or kept unrouted (customer_id NULL) for the
# operator. Not partitioned on PostgreSQL: the unique key of a partitioned table must hold the
# partition key, and a provider's retry may arrive in another month than the first push;
# `pombo log prune` deletes old rows instead.
inbound = Table(
    "inbound",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("connection", String(64), nullable=False),
    Column("provider_id", String(128), nullable=False),
    Column("customer_id", Integer, nullable=True),
    Column("reply_to", BigInteger, nullable=True),  # the cdls_id it answers
    Column("routed_by", String(16), nullable=True),  # numbers | correlation | window
    Column("source", String(64), nullable=False),  # `from`
    Column("dest", String(64), nullable=False),  # `to`
    Column("text", Text, nullable=False),
    Column("received_at", Float, nullable=False),  # the provider's time, else Pombo's
    Column("created_at", Float, nullable=False),  # when Pombo stored it
    Column("raw", Text, nullable=True),
    UniqueConstraint("connection", "provider_id", name="uq_inbound_provider"),
)
Index("ix_inbound_customer", inbound.c.customer_id, inbound.c.id)
Index("ix_inbound_customer_created", inbound.c.customer_id, inbound.c.created_at)
Index("ix_inbound_reply_to", inbound.c.reply_to)
Index("ix_inbound_created", inbound.c.created_at)

# Numbers put on a customer's block list by an opt-out word (SPEC §14), apart from the
# provisioned block list (which an opt-in word never lifts), and every change with its cause.
opt_outs = Table(
    "opt_outs",
    metadata,
    Column("customer_id", Integer, primary_key=True),
    Column("number", String(64), primary_key=True),
    Column("word", String(64), nullable=False),
    Column("mo_id", BigInteger, nullable=False),
    Column("created_at", Float, nullable=False),
)
opt_changes = Table(
    "opt_changes",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("customer_id", Integer, nullable=False),
    Column("number", String(64), nullable=False),
    Column("action", String(8), nullable=False),  # out | in
    Column("word", String(64), nullable=False),
    Column("mo_id", BigInteger, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("seq", BigInteger, nullable=False),  # meta opt_version when it was made
)
Index("ix_opt_changes_customer", opt_changes.c.customer_id, opt_changes.c.number, opt_changes.c.id)
Index("ix_opt_changes_seq", opt_changes.c.seq)
