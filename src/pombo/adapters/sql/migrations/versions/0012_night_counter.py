"""The night cap from a counter, not a count of the log (issue 15).

`night_counts` holds, per customer and per night (keyed by the night's start, the epoch the send
path computes from the customer's window), how many of its messages accepted that night are still
OK or WR. The accept transaction reads it for 245 and adds one with the message; a message that
leaves OK/WR (a hard error, a WR that finally fails: 300) takes one off in the transaction that
moves it. So the answer is the one `count(*)` of the night's OK/WR messages gave, at the cost of
one primary-key probe. Every send inside its customer's night window counts, capped or not (so a
cap set during the night sees the night's earlier sends, as the count did). `messages.night_since`
names the night a message counted toward (NULL when it was sent outside the window).

Counters start empty: a night in progress at the upgrade counts from the upgrade.

PostgreSQL: pombo_accept again, as 0003 left it but for the night check and the counter.

Revision ID: 0012_night_counter
Revises: 0011_body_as_received
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_night_counter"
down_revision = "0011_body_as_received"
branch_labels = None
depends_on = None

# Frozen SQL. One call per batch of sends (see 0003; 0011 added text_received): under the
# advisory lock the night check reads the customer's counter for this night instead of counting
# the log, and an accepted send adds one to it in the same transaction.
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
  night float8;
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
    night := CASE WHEN jsonb_typeof(s->'night_since') = 'number' THEN (s->>'night_since')::float8 END;
    IF night IS NOT NULL AND jsonb_typeof(s->'night_limit') = 'number'
       AND coalesce((SELECT sent FROM night_counts WHERE customer_id = cid AND night_since = night), 0)
           >= (s->>'night_limit')::int THEN
      results := results || (-245)::bigint;
      CONTINUE;
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
                          notify_url, text_received, night_since)
    VALUES (cid, (s->>'user_id')::int, s->>'dest', s->>'text', s->>'ctid', s->>'cp_id', s->>'cd_id',
            s->>'sender', s->>'connection', 1, (s->'debits'->0->>1)::bigint, (s->>'cost')::bigint,
            (s->>'segments')::int, s->>'encoding', 'pending', at, at, s->>'notify_url', s->>'text_received', night)
    RETURNING id INTO mid;
    IF night IS NOT NULL THEN
      INSERT INTO night_counts AS n (customer_id, night_since, sent) VALUES (cid, night, 1)
      ON CONFLICT (customer_id, night_since) DO UPDATE SET sent = n.sent + 1;
    END IF;
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

# What 0011 installed, for the downgrade.
ACCEPT_0011 = r"""
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


def upgrade() -> None:
    op.create_table(
        "night_counts",
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("night_since", sa.Float(), nullable=False),  # the night's start (epoch)
        sa.Column("sent", sa.Integer(), nullable=False, server_default="0"),  # its OK/WR messages
        sa.PrimaryKeyConstraint("customer_id", "night_since"),
    )
    op.add_column("messages", sa.Column("night_since", sa.Float(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(ACCEPT)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(ACCEPT_0011)
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("night_since")
    op.drop_table("night_counts")
