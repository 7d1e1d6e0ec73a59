"""PostgreSQL: pombo_write may commit without waiting for the WAL flush, when the operator says so.

Revision ID: 0005_pg_write_durable
Revises: 0004_pg_write
Create Date: 2026-11-25
"""

from alembic import op

from pombo.adapters.sql.migrations.pg_functions import WRITE

revision = "0005_pg_write_durable"
down_revision = "0004_pg_write"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(WRITE)


def downgrade() -> None:
    """The two-argument form is gone; the three-argument one defaults to durable."""
