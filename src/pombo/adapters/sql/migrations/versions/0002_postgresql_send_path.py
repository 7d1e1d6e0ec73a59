"""PostgreSQL: monthly partitions of the message log and the one-call send path.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Frozen SQL: what this revision installs, whatever later revisions do. The git history keeps no
# older bodies than these, so pombo_accept is the one 0003_delivery installs again: it names
# messages.notify_url, which 0003_delivery adds (plpgsql resolves columns when it runs, so the
# CREATE succeeds here; a database held at 0002 could not call it).

# Monthly partitions named messages_YYYYMM over [month start, next month start) in epoch
# seconds (UTC); a default partition catches anything outside them so an insert never fails.
ENSURE_PARTITIONS = r"""
CREATE OR REPLACE FUNCTION pombo_ensure_partitions(months_ahead int DEFAULT 3) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
  first date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
  m date;
  made int := 0;
  name text;
BEGIN
  FOR i IN 0..months_ahead LOOP
    m := (first + make_interval(months => i))::date;
    name := 'messages_' || to_char(m, 'YYYYMM');
    IF to_regclass(name) IS NULL THEN
      EXECUTE format(
        'CREATE TABLE %I PARTITION OF messages FOR VALUES FROM (%s) TO (%s)',
        name,
        extract(epoch FROM m::timestamp AT TIME ZONE 'UTC'),
        extract(epoch FROM (m + interval '1 month')::timestamp AT TIME ZONE 'UTC'));
      made := made + 1;
    END IF;
  END LOOP;
  RETURN made;
END $$;
"""

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
