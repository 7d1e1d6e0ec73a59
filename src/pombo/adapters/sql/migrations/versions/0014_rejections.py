"""Rejected requests kept (issue 17): per-minute counts by customer and code, and the newest
rejections of each customer with their parameters (tokens masked by the application).

- rejection_counts: one row per (minute, customer, code), minute = epoch seconds // 60;
  customer 0 stands for callers whose credentials named no customer. Each process adds its own
  counts (ON CONFLICT ... count + excluded.count).
- rejections: the newest few per customer (the application trims the older ones).

Revision ID: 0014_rejections
Revises: 0011_body_as_received
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_rejections"
down_revision = "0011_body_as_received"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "rejection_counts",
        sa.Column("minute", sa.BigInteger(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.Integer(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("minute", "customer_id", "code"),
    )
    op.create_index("ix_rejection_counts_customer", "rejection_counts", ["customer_id", "minute"])
    op.create_table(
        "rejections",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("code", sa.Integer(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("ip", sa.String(64), nullable=False),
        sa.Column("credential", sa.String(80), nullable=False),
        sa.Column("dest", sa.String(64), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),  # JSON object
    )
    op.create_index("ix_rejections_customer", "rejections", ["customer_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_rejections_customer", table_name="rejections")
    op.drop_table("rejections")
    op.drop_index("ix_rejection_counts_customer", table_name="rejection_counts")
    op.drop_table("rejection_counts")
