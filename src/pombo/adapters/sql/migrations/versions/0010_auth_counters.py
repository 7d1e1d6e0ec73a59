"""Auth counters that stay small, and tokens that change one by one (issue 15).

- auth_failures: an index on created_at (the suspects read and the prune filter on it alone),
  and (username, code, created_at) for the exact per-username check (it replaces
  (username, created_at), which that check could only half use); ip_blocks gets one on
  created_at (the suspects read takes the blocks added since its last look).
- tokens: `minted` (issued by GetUserID tsid=1: capped per user, expiring) and `expires_at`;
  `changed_seq`, the value of meta `token_version` when the token was last issued or revoked,
  so a process reads only the tokens changed since the version it has seen.

Revision ID: 0010_auth_counters
Revises: 0009_upstream_queue
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_auth_counters"
down_revision = "0009_upstream_queue"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_auth_failures_created", "auth_failures", ["created_at"])
    op.drop_index("ix_auth_failures_user", table_name="auth_failures")
    op.create_index("ix_auth_failures_user_code", "auth_failures", ["username", "code", "created_at"])
    op.create_index("ix_ip_blocks_created", "ip_blocks", ["created_at"])
    op.add_column("tokens", sa.Column("minted", sa.Boolean(), nullable=False, server_default="0"))
    op.add_column("tokens", sa.Column("expires_at", sa.Float(), nullable=True))
    op.add_column("tokens", sa.Column("changed_seq", sa.BigInteger(), nullable=False, server_default="0"))
    op.create_index("ix_tokens_changed", "tokens", ["changed_seq"])
    op.create_index("ix_tokens_user_minted", "tokens", ["user_id", "minted"])
    op.execute("INSERT INTO meta (key, value) VALUES ('token_version', '0')")


def downgrade() -> None:
    op.execute("DELETE FROM meta WHERE key = 'token_version'")
    op.drop_index("ix_tokens_user_minted", table_name="tokens")
    op.drop_index("ix_tokens_changed", table_name="tokens")
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("changed_seq")
        batch.drop_column("expires_at")
        batch.drop_column("minted")
    op.drop_index("ix_ip_blocks_created", table_name="ip_blocks")
    op.drop_index("ix_auth_failures_user_code", table_name="auth_failures")
    op.create_index("ix_auth_failures_user", "auth_failures", ["username", "created_at"])
    op.drop_index("ix_auth_failures_created", table_name="auth_failures")
