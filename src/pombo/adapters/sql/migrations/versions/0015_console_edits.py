"""Console edits of tariffs, block lists and models (issue 17): an audit row per change, naming
the operator, with the record before and after the change as JSON.

Revision ID: 0015_console_edits
Revises: 0014_rejections
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_console_edits"
down_revision = "0014_rejections"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "console_audit",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("operator", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("before", sa.Text(), nullable=True),  # JSON
        sa.Column("after", sa.Text(), nullable=True),  # JSON
    )
    op.create_index("ix_console_audit_customer", "console_audit", ["customer_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_console_audit_customer", table_name="console_audit")
    op.drop_table("console_audit")
