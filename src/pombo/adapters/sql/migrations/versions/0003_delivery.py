"""Delivery truth: customer callbacks (an outbox), per-message notify URL, reconciliation claims.

Revision ID: 0003_delivery
Revises: 0002
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

from pombo.adapters.sql.migrations.pg_functions import ACCEPT

revision = "0003_delivery"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("callback", sa.Text(), nullable=True))
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("notify_url", sa.Text(), nullable=True))
        batch.add_column(sa.Column("reconcile_at", sa.Float(), nullable=True))
    op.create_table(
        "callbacks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("delivery", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_at", sa.Float(), nullable=False),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    op.create_index("ix_callbacks_due", "callbacks", ["state", "next_at"])
    op.create_index("ix_callbacks_message", "callbacks", ["message_id", "id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(ACCEPT)


def downgrade() -> None:
    op.drop_index("ix_callbacks_message", table_name="callbacks")
    op.drop_index("ix_callbacks_due", table_name="callbacks")
    op.drop_table("callbacks")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("reconcile_at")
        batch.drop_column("notify_url")
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("callback")
