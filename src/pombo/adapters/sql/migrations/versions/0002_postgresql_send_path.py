"""PostgreSQL: monthly partitions of the message log and the one-call send path.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from alembic import op

from pombo.adapters.sql.migrations.pg_functions import ACCEPT, ENSURE_PARTITIONS

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE TABLE messages_default PARTITION OF messages DEFAULT")
    op.execute(ENSURE_PARTITIONS)
    op.execute("SELECT pombo_ensure_partitions(3)")
    op.execute(ACCEPT)
    op.execute("CREATE INDEX ix_messages_waiting ON messages (created_at) WHERE status_code = 1")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_messages_waiting")
    op.execute("DROP FUNCTION IF EXISTS pombo_accept(jsonb)")
    op.execute("DROP FUNCTION IF EXISTS pombo_ensure_partitions(int)")
    op.execute("DROP TABLE IF EXISTS messages_default")
