"""Initial schema: accounts, connections, tariffs, the message log and the ledger.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # PostgreSQL: the message log is partitioned by month on created_at (see 0002), so its
    # primary key includes created_at and its id comes from a sequence.
    pg = op.get_bind().dialect.name == "postgresql"
    if pg:
        op.execute("CREATE SEQUENCE messages_id_seq")
    op.create_table(
        "auth_failures",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("ip", sa.String(length=45), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=True),
        sa.Column("code", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_auth_failures_ip", "auth_failures", ["ip", "created_at"], unique=False)
    op.create_index(
        "ix_auth_failures_user", "auth_failures", ["username", "created_at"], unique=False
    )
    op.create_table(
        "connection_costs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connection", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=20), nullable=False),
        sa.Column("cost", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("connection", "prefix"),
    )
    op.create_table(
        "connections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("url", sa.Text(), server_default="", nullable=False),
        sa.Column("username", sa.Text(), server_default="", nullable=False),
        sa.Column("password", sa.Text(), server_default="", nullable=False),
        sa.Column("token", sa.Text(), server_default="", nullable=False),
        sa.Column("ack_timeout", sa.Float(), server_default="5", nullable=False),
        sa.Column("final_timeout", sa.Float(), server_default="60", nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default="1", nullable=False),
        sa.Column("dlr_secret", sa.String(length=128), nullable=False),
        sa.Column("options", sa.Text(), server_default="{}", nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "customers",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.Text(), server_default="", nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("sms", sa.Boolean(), server_default="1", nullable=False),
        sa.Column("sms_provider", sa.String(length=64), server_default="velip", nullable=False),
        sa.Column("balance", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("credit_limit", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("night_limit", sa.Integer(), nullable=True),
        sa.Column(
            "night_window", sa.String(length=11), server_default="22:00-06:00", nullable=False
        ),
        sa.Column("max_length", sa.Integer(), server_default="160", nullable=False),
        sa.Column("active", sa.Boolean(), server_default="1", nullable=False),
        sa.Column("tokens_blocked", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("ip_allowlist", sa.Text(), server_default="[]", nullable=False),
        sa.Column("aut_app", sa.Boolean(), server_default="1", nullable=False),
        sa.Column("aut_send", sa.Boolean(), server_default="1", nullable=False),
        sa.Column("aut_camp", sa.Boolean(), server_default="1", nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["customers.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "dlr_reports",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("connection", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=True),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_dlr_reports_message", "dlr_reports", ["message_id"], unique=False)
    op.create_table(
        "ip_blocks",
        sa.Column("ip", sa.String(length=45), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("ip"),
    )
    op.create_table(
        "ledger",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("cause", sa.String(length=16), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_ledger_customer", "ledger", ["customer_id"], unique=False)
    op.create_index("ix_ledger_message", "ledger", ["message_id"], unique=False)
    op.create_table(
        "messages",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            server_default=sa.text("nextval('messages_id_seq')") if pg else None,
            nullable=False,
        ),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("dest", sa.String(length=20), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("corr_id", sa.String(length=64), nullable=True),
        sa.Column("cp_id", sa.String(length=64), nullable=True),
        sa.Column("cd_id", sa.String(length=64), nullable=True),
        sa.Column("sender", sa.String(length=32), nullable=True),
        sa.Column("connection", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("upstream_id", sa.String(length=128), nullable=True),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("cost", sa.BigInteger(), nullable=False),
        sa.Column("segments", sa.Integer(), nullable=False),
        sa.Column("encoding", sa.String(length=8), nullable=False),
        sa.Column("delivery", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("return_log", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("sent_at", sa.Float(), nullable=True),
        sa.Column("final_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", "created_at") if pg else sa.PrimaryKeyConstraint("id"),
        **({"postgresql_partition_by": "RANGE (created_at)"} if pg else {}),  # type: ignore[arg-type]
    )
    op.create_index(
        "ix_messages_customer_created", "messages", ["customer_id", "created_at"], unique=False
    )
    op.create_index("ix_messages_customer_corr", "messages", ["customer_id", "corr_id"], unique=False)
    op.create_index(
        "ix_messages_dedup", "messages", ["customer_id", "dest", "created_at"], unique=False
    )
    op.create_index("ix_messages_status", "messages", ["status_code"], unique=False)
    op.create_index("ix_messages_upstream", "messages", ["connection", "upstream_id"], unique=False)
    op.create_table(
        "meta",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "blocklist",
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
        ),
        sa.PrimaryKeyConstraint("customer_id", "number"),
    )
    op.create_table(
        "models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "tariffs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("prefix", sa.String(length=20), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("connection", sa.String(length=64), server_default="", nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("customer_id", "prefix", "connection"),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("send", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("app", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("camp", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("active", sa.Boolean(), server_default="1", nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("username"),
    )
    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )


def downgrade() -> None:
    op.drop_table("tokens")
    op.drop_table("users")
    op.drop_table("tariffs")
    op.drop_table("models")
    op.drop_table("blocklist")
    op.drop_table("meta")
    op.drop_index("ix_messages_upstream", table_name="messages")
    op.drop_index("ix_messages_status", table_name="messages")
    op.drop_index("ix_messages_dedup", table_name="messages")
    op.drop_index("ix_messages_customer_corr", table_name="messages")
    op.drop_index("ix_messages_customer_created", table_name="messages")
    op.drop_table("messages")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP SEQUENCE IF EXISTS messages_id_seq")
    op.drop_index("ix_ledger_message", table_name="ledger")
    op.drop_index("ix_ledger_customer", table_name="ledger")
    op.drop_table("ledger")
    op.drop_table("ip_blocks")
    op.drop_index("ix_dlr_reports_message", table_name="dlr_reports")
    op.drop_table("dlr_reports")
    op.drop_table("customers")
    op.drop_table("connections")
    op.drop_table("connection_costs")
    op.drop_index("ix_auth_failures_user", table_name="auth_failures")
    op.drop_index("ix_auth_failures_ip", table_name="auth_failures")
    op.drop_table("auth_failures")
