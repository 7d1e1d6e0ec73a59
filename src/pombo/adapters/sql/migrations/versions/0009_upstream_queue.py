"""The upstream engine (SPEC §11): the durable queue of messages waiting for their turn, the log
of attempts, and customers' `priority`.

Revision ID: 0009_upstream_queue
Revises: 0008_customer_accents
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_upstream_queue"
down_revision = "0008_customer_accents"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("customers", sa.Column("priority", sa.String(8), nullable=False, server_default="normal"))
    # One row per message that must wait (over capacity, a "not sent" retry, a skipped
    # connection). A message sent at once never has a row. No foreign key: messages is
    # partitioned on PostgreSQL.
    op.create_table(
        "upstream_queue",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("message_id", sa.BigInteger(), nullable=False, unique=True),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("connection", sa.String(64), nullable=False),  # the one to try next
        sa.Column("priority", sa.Integer(), nullable=False, server_default="0"),  # 1: high
        sa.Column("not_before", sa.Float(), nullable=False),
        sa.Column("enqueued_at", sa.Float(), nullable=False),  # first time it waited
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text(), nullable=True),
    )
    op.create_index("ix_upstream_queue_due", "upstream_queue", ["connection", "not_before"])
    op.create_index("ix_upstream_queue_age", "upstream_queue", ["connection", "enqueued_at"])
    op.create_table(
        "upstream_attempts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("connection", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),  # claimed | not_sent | unknown | expired
        sa.Column("raw", sa.Text(), nullable=True),
        sa.Column("at", sa.Float(), nullable=False),
    )
    op.create_index("ix_upstream_attempts_message", "upstream_attempts", ["message_id", "at"])
    # `throughput` across workers: one row per connection, locked while a grant is decided, and
    # the grants of the last seconds (a sliding window shared by every worker and host)
    op.create_table(
        "upstream_pace",
        sa.Column("connection", sa.String(64), primary_key=True),
        sa.Column("at", sa.Float(), nullable=False, server_default="0"),
    )
    op.create_table(
        "upstream_grants",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("connection", sa.String(64), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
    )
    op.create_index("ix_upstream_grants_at", "upstream_grants", ["connection", "at"])


def downgrade() -> None:
    op.drop_table("upstream_grants")
    op.drop_table("upstream_pace")
    op.drop_table("upstream_attempts")
    op.drop_table("upstream_queue")
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("priority")
