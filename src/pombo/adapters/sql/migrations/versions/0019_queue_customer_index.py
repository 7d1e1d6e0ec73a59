"""The claim's fair order without ranking the whole queue: an index on (connection,
customer_id, id) finds the customers with waiting messages one probe each and each one's
messages by age (adapters/sql/queue.py DUE).

Revision ID: 0019_queue_customer_index
Revises: 0018_one_dest_index
Create Date: 2026-12-01
"""

from alembic import op

revision = "0019_queue_customer_index"
down_revision = "0018_one_dest_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_upstream_queue_customer", "upstream_queue", ["connection", "customer_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_upstream_queue_customer", table_name="upstream_queue")
