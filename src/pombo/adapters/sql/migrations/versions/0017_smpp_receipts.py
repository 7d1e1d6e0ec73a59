"""Durable SMPP receipt matching (SPEC §12): the id of every part of a multi-part message, and
receipts whose message is not known yet (held, matched later by a background job).

- smpp_parts: one row per key form of each part's message_id (domain.receipt_ids.id_keys), so
  a receipt for any part, in hex or decimal, finds its message after a restart or on another
  worker's bind; `delivered` counts the parts delivered so far.
- smpp_held: receipts that matched nothing (the submit_sm_resp not recorded yet, another
  worker's message, a restart): kept, retried, dropped once applied or after 72 h.

No foreign key to messages: it is partitioned on PostgreSQL.

Revision ID: 0017_smpp_receipts
Revises: 0015_console_edits
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_smpp_receipts"
down_revision = "0015_console_edits"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "smpp_parts",
        sa.Column("connection", sa.String(64), primary_key=True),
        sa.Column("id_key", sa.String(160), primary_key=True),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("parts", sa.Integer(), nullable=False),
        sa.Column("delivered", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_smpp_parts_message", "smpp_parts", ["message_id", "part"])
    op.create_index("ix_smpp_parts_created", "smpp_parts", ["created_at"])
    op.create_table(
        "smpp_held",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("connection", sa.String(64), nullable=False),
        sa.Column("upstream_id", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=True),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("smpp_held")
    op.drop_index("ix_smpp_parts_created", table_name="smpp_parts")
    op.drop_index("ix_smpp_parts_message", table_name="smpp_parts")
    op.drop_table("smpp_parts")
