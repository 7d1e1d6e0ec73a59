"""PostgreSQL: one call per flush for new sends and the outcomes of earlier ones.

Revision ID: 0004_pg_write
Revises: 0003_console
Create Date: 2026-11-24
"""

from alembic import op

from pombo.adapters.sql.migrations.pg_functions import WRITE

revision = "0004_pg_write"
down_revision = "0003_console"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(WRITE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS pombo_write(jsonb, jsonb)")
