"""`throughput` across workers on an even schedule: upstream_pace.at is now when the
connection's next send is due (domain/engine.py pace()), and the sliding second of grants
(upstream_grants) is gone. Its one-second bursts reached the provider bunched when a worker
began a grant late (CI saw 335 in a second at 300/s).

Revision ID: 0020_even_pace
Revises: 0019_queue_customer_index
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0020_even_pace"
down_revision = "0019_queue_customer_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_upstream_grants_at", table_name="upstream_grants")
    op.drop_table("upstream_grants")
    op.execute("UPDATE upstream_pace SET at = 0")


def downgrade() -> None:
    op.create_table(
        "upstream_grants",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("connection", sa.String(64), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
    )
    op.create_index("ix_upstream_grants_at", "upstream_grants", ["connection", "at"])
