"""The body as received beside the body as sent, and Kannel's parts counted (SPEC §13, issue 13).

- messages.text_received: the body as the customer sent it, NULL when `text` (the body as it
  left Pombo: folded, cut, or made ASCII for TWW) is the same. GetSMSStatus answers it as
  `text_received`.
- PostgreSQL: pombo_accept redefined whole (as 0003 left it) to write text_received.
  pombo_write (0007) is unchanged: it calls pombo_accept.
- kannel_parts: a multi-part message sent through a `kannel` connection, with how many final
  receipts (one a part) Kannel has reported; a row lives until its parts settle.
- part_warnings: per connection, how many messages Kannel reported with fewer parts than were
  charged, and the latest one (the console's Connections page).

Revision ID: 0011_body_as_received
Revises: 0010_auth_counters
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_body_as_received"
down_revision = "0010_auth_counters"
branch_labels = None
depends_on = None

# Frozen SQL: pombo_accept as 0003 left it, and text_received written with the log row.
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
                          notify_url, text_received)
    VALUES (cid, (s->>'user_id')::int, s->>'dest', s->>'text', s->>'ctid', s->>'cp_id', s->>'cd_id',
            s->>'sender', s->>'connection', 1, (s->'debits'->0->>1)::bigint, (s->>'cost')::bigint,
            (s->>'segments')::int, s->>'encoding', 'pending', at, at, s->>'notify_url', s->>'text_received')
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

# What 0003 installed, for the downgrade.
ACCEPT_0003 = r"""
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
    op.add_column("messages", sa.Column("text_received", sa.Text(), nullable=True))
    op.create_table(
        "kannel_parts",
        sa.Column("message_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("connection", sa.String(64), nullable=False),
        sa.Column("segments", sa.Integer(), nullable=False),  # what was charged
        sa.Column("parts", sa.Integer(), nullable=False),  # final receipts Kannel reported
        sa.Column("first_at", sa.Float(), nullable=False),  # the first of them
    )
    op.create_index("ix_kannel_parts_first", "kannel_parts", ["first_at"])
    op.create_table(
        "part_warnings",
        sa.Column("connection", sa.String(64), primary_key=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),  # the latest one
        sa.Column("segments", sa.Integer(), nullable=False),
        sa.Column("parts", sa.Integer(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(ACCEPT)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(ACCEPT_0003)
    op.drop_table("part_warnings")
    op.drop_index("ix_kannel_parts_first", table_name="kannel_parts")
    op.drop_table("kannel_parts")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("text_received")
