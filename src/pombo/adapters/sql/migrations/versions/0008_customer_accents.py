"""Customers' `accents` setting (SPEC §13): `keep` (default) or `fold`.

Revision ID: 0008_customer_accents
Revises: 0007_event_ids_hex
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_customer_accents"
down_revision = "0007_event_ids_hex"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("customers", sa.Column("accents", sa.String(8), nullable=False, server_default="keep"))


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("accents")
