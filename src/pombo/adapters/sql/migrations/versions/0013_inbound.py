"""Inbound messages (MO), replies and opt-out (SPEC §14, issue 14).

- inbound: each inbound message once per (connection, provider_id), with the customer and the
  message (`reply_to`) it was routed to, or none (unrouted, kept for the operator). Not
  partitioned on PostgreSQL: a partitioned table's unique key must hold the partition key, and
  a provider's retry may come in another month than its first push; `pombo log prune` deletes
  old rows.
- opt_outs / opt_changes: numbers an opt-out word put on a customer's block list (apart from
  the provisioned list, which an opt-in word never lifts) and every change with its word,
  mo_id and time, stamped with meta `opt_version` (bumped by each change, serialising them) so a
  process reads only the changes since the version it has seen, not the whole configuration.
- customers.numbers (JSON list) and customers.reply_window (hours, default 72).
- callbacks.inbound_id: an `mo` event's inbound message.
- messages (dest, created_at): the latest message sent to a handset, for routing an answer.

Revision ID: 0013_inbound
Revises: 0017_smpp_receipts
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_inbound"
down_revision = "0017_smpp_receipts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("customers", sa.Column("numbers", sa.Text(), nullable=False, server_default="[]"))
    op.add_column("customers", sa.Column("reply_window", sa.Integer(), nullable=False, server_default="72"))
    op.add_column("callbacks", sa.Column("inbound_id", sa.BigInteger(), nullable=True))
    op.create_index("ix_messages_dest_created", "messages", ["dest", "created_at"])
    op.create_table(
        "inbound",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("connection", sa.String(64), nullable=False),
        sa.Column("provider_id", sa.String(128), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("reply_to", sa.BigInteger(), nullable=True),
        sa.Column("routed_by", sa.String(16), nullable=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("dest", sa.String(64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=True),
        sa.UniqueConstraint("connection", "provider_id", name="uq_inbound_provider"),
    )
    op.create_index("ix_inbound_customer", "inbound", ["customer_id", "id"])
    op.create_index("ix_inbound_customer_created", "inbound", ["customer_id", "created_at"])
    op.create_index("ix_inbound_reply_to", "inbound", ["reply_to"])
    op.create_index("ix_inbound_created", "inbound", ["created_at"])
    op.create_table(
        "opt_outs",
        sa.Column("customer_id", sa.Integer(), primary_key=True),
        sa.Column("number", sa.String(64), primary_key=True),
        sa.Column("word", sa.String(64), nullable=False),
        sa.Column("mo_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "opt_changes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(64), nullable=False),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("word", sa.String(64), nullable=False),
        sa.Column("mo_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),  # meta opt_version when it was made
    )
    op.create_index("ix_opt_changes_customer", "opt_changes", ["customer_id", "number", "id"])
    op.create_index("ix_opt_changes_seq", "opt_changes", ["seq"])
    op.execute("INSERT INTO meta (key, value) VALUES ('opt_version', '0')")


def downgrade() -> None:
    op.execute("DELETE FROM meta WHERE key = 'opt_version'")
    op.drop_index("ix_opt_changes_seq", table_name="opt_changes")
    op.drop_index("ix_opt_changes_customer", table_name="opt_changes")
    op.drop_table("opt_changes")
    op.drop_table("opt_outs")
    for name in ("ix_inbound_created", "ix_inbound_reply_to", "ix_inbound_customer_created", "ix_inbound_customer"):
        op.drop_index(name, table_name="inbound")
    op.drop_table("inbound")
    op.drop_index("ix_messages_dest_created", table_name="messages")
    with op.batch_alter_table("callbacks") as batch:
        batch.drop_column("inbound_id")
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("reply_window")
        batch.drop_column("numbers")
