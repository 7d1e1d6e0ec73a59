"""Delivery truth: customer callbacks (an outbox), per-message notify URL, reconciliation claims.

Revision ID: 0003_delivery
Revises: 0002
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_delivery"
down_revision = "0002"
branch_labels = None
depends_on = None

# Frozen SQL: pombo_accept again, now that messages.notify_url exists (same body as 0002's).

# One call per batch of sends. Locks: one transaction-level advisory lock (batches run one at a
# time), then the chain's balance rows in id order (the order refunds use: no deadlocks). Each send is checked in turn against balances kept in the function,
# and each balance row is written once per batch: a hot reseller is touched once, not N times.
# Returns one bigint per send: the new message id, or minus the rejection code.
ACCEPT = r"""
CREATE OR REPLACE FUNCTION pombo_accept(batch jsonb) RETURNS bigint[]
LANGUAGE plpgsql AS $$
DECLARE
  s jsonb;
  d jsonb;
  ids bigint[];
  bal bigint[];
  lim bigint[];
  orig bigint[];
  results bigint[] := '{}';
  idx int;
  ok boolean;
  mid bigint;
  cid int;
  at float8;
BEGIN
  -- One batch at a time, whole: ids then commit in the order they were drawn (so a client
  -- paging by last_id never skips a late commit), and the dedup and night checks below are
  -- exact without per-key locks. Other statements (settle, refund) do not take this lock.
  PERFORM pg_advisory_xact_lock(7310);

  SELECT coalesce(array_agg(c.id ORDER BY c.id), '{}'), coalesce(array_agg(c.balance ORDER BY c.id), '{}'),
         coalesce(array_agg(c.credit_limit ORDER BY c.id), '{}')
    INTO ids, bal, lim
    FROM (SELECT id, balance, credit_limit FROM customers
           WHERE id IN (SELECT DISTINCT (x->>0)::int
                          FROM jsonb_array_elements(batch) e,
                               jsonb_array_elements(CASE jsonb_typeof(e->'debits') WHEN 'array' THEN e->'debits' ELSE '[]' END) x)
           ORDER BY id FOR UPDATE) c;
  orig := bal;

  FOR s IN SELECT value FROM jsonb_array_elements(batch) LOOP
    cid := (s->>'customer_id')::int;
    at := (s->>'now')::float8;
    IF (s->>'httpdup')::int > 0 AND EXISTS (
        SELECT 1 FROM messages
         WHERE customer_id = cid AND dest = s->>'dest'
           AND created_at >= at - (s->>'httpdup')::int AND status_code IN (0, 1)) THEN
      results := results || (-244)::bigint;
      CONTINUE;
    END IF;
    IF jsonb_typeof(s->'night_since') = 'number' AND jsonb_typeof(s->'night_limit') = 'number' THEN
      IF (SELECT count(*) FROM messages
           WHERE customer_id = cid AND created_at >= (s->>'night_since')::float8
             AND status_code IN (0, 1)) >= (s->>'night_limit')::int THEN
        results := results || (-245)::bigint;
        CONTINUE;
      END IF;
    END IF;
    IF jsonb_typeof(s->'debits') <> 'array' THEN
      results := results || (-255)::bigint;
      CONTINUE;
    END IF;
    ok := true;
    FOR d IN SELECT value FROM jsonb_array_elements(s->'debits') LOOP
      idx := array_position(ids, (d->>0)::bigint);
      IF idx IS NULL OR NOT (bal[idx] > lim[idx]) THEN
        ok := false;
        EXIT;
      END IF;
    END LOOP;
    IF NOT ok THEN
      results := results || (-250)::bigint;
      CONTINUE;
    END IF;
    INSERT INTO messages (customer_id, user_id, dest, text, corr_id, cp_id, cd_id, sender, connection,
                          status_code, value, cost, segments, encoding, delivery, created_at, updated_at,
                          notify_url)
    VALUES (cid, (s->>'user_id')::int, s->>'dest', s->>'text', s->>'ctid', s->>'cp_id', s->>'cd_id',
            s->>'sender', s->>'connection', 1, (s->'debits'->0->>1)::bigint, (s->>'cost')::bigint,
            (s->>'segments')::int, s->>'encoding', 'pending', at, at, s->>'notify_url')
    RETURNING id INTO mid;
    FOR d IN SELECT value FROM jsonb_array_elements(s->'debits') LOOP
      idx := array_position(ids, (d->>0)::bigint);
      bal[idx] := bal[idx] - (d->>1)::bigint;
      INSERT INTO ledger (customer_id, amount, cause, message_id, created_at)
      VALUES ((d->>0)::int, -((d->>1)::bigint), 'message', mid, at);
    END LOOP;
    results := results || mid;
  END LOOP;

  UPDATE customers c SET balance = u.b
    FROM unnest(ids, bal, orig) AS u(id, b, o)
   WHERE c.id = u.id AND u.b <> u.o;
  RETURN results;
END $$;
"""


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("callback", sa.Text(), nullable=True))
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("notify_url", sa.Text(), nullable=True))
        batch.add_column(sa.Column("reconcile_at", sa.Float(), nullable=True))
    op.create_table(
        "callbacks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("delivery", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_at", sa.Float(), nullable=False),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    op.create_index("ix_callbacks_due", "callbacks", ["state", "next_at"])
    op.create_index("ix_callbacks_message", "callbacks", ["message_id", "id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(ACCEPT)


def downgrade() -> None:
    op.drop_index("ix_callbacks_message", table_name="callbacks")
    op.drop_index("ix_callbacks_due", table_name="callbacks")
    op.drop_table("callbacks")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("reconcile_at")
        batch.drop_column("notify_url")
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("callback")
