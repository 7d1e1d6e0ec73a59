"""Partial indexes for the two lookups that only ever look at a few rows.

`ix_messages_status` served only `status_code = 1` (messages waiting for their upstream: WR
recovery, the console's and `pombo messages prune`'s counts); `ix_messages_customer_corr` only
`corr_id = ?` lookups. As full indexes every send added an entry to each, and every outcome moved
its status entry: on a large log that is two more B-tree pages written per send. Partial, they
hold only the rows those lookups can find: SQLite gets the `status_code = 1` index PostgreSQL has
had since 0002 (`ix_messages_waiting`, as small as the sends in flight).

Revision ID: 0006_partial_indexes
Revises: 0005_pg_write_durable
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_partial_indexes"
down_revision = "0005_pg_write_durable"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_messages_status", table_name="messages")
    op.drop_index("ix_messages_customer_corr", table_name="messages")
    op.create_index(
        "ix_messages_customer_corr",
        "messages",
        ["customer_id", "corr_id"],
        postgresql_where=sa.text("corr_id IS NOT NULL"),
        sqlite_where=sa.text("corr_id IS NOT NULL"),
    )
    if op.get_bind().dialect.name != "postgresql":  # PostgreSQL has had it since 0002
        op.create_index("ix_messages_waiting", "messages", ["created_at"], sqlite_where=sa.text("status_code = 1"))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.drop_index("ix_messages_waiting", table_name="messages")
    op.drop_index("ix_messages_customer_corr", table_name="messages")
    op.create_index("ix_messages_customer_corr", "messages", ["customer_id", "corr_id"])
    op.create_index("ix_messages_status", "messages", ["status_code"])
