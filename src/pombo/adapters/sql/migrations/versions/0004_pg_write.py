"""PostgreSQL: one call per flush for new sends and the outcomes of earlier ones.

Revision ID: 0004_pg_write
Revises: 0003_console
Create Date: 2026-11-24
"""

from alembic import op

revision = "0004_pg_write"
down_revision = "0003_console"
branch_labels = None
depends_on = None

# Frozen SQL: what this revision installs, whatever later revisions do. The git history keeps no
# older body than this one (the three-argument form 0005 installs again); the DROP clears a
# two-argument form that databases migrated before it may have.

# One call per flush: the upstream outcomes (OK) that arrived since the last flush, then the new
# sends. The outcomes need no lock; pombo_accept takes its own. Callback events for the settled
# messages are queued in the same statement (the outbox). `durable` false commits without waiting
# for the WAL flush (POMBO_PG_SYNCHRONOUS_COMMIT=false, the operator's choice; see the README).
WRITE = r"""
DROP FUNCTION IF EXISTS pombo_write(jsonb, jsonb);
CREATE OR REPLACE FUNCTION pombo_write(accepts jsonb, settles jsonb, durable boolean DEFAULT true,
                                       OUT accepted bigint[], OUT settled bigint[])
LANGUAGE plpgsql AS $$
BEGIN
  IF NOT durable THEN
    PERFORM set_config('synchronous_commit', 'off', true);
  END IF;
  WITH s AS (
    SELECT * FROM jsonb_to_recordset(settles) AS x(id bigint, uid text, raw text, at float8)
  ), done AS (
    UPDATE messages m SET status_code = 0, upstream_id = s.uid, return_log = s.raw, updated_at = s.at
      FROM s WHERE m.id = s.id AND m.status_code = 1
    RETURNING m.id, m.customer_id, m.notify_url, m.delivery, m.updated_at
  ), queued AS (
    INSERT INTO callbacks (event_id, message_id, customer_id, url, status_code, delivery, state,
                           attempts, next_at, created_at, updated_at)
    SELECT gen_random_uuid()::text, id, customer_id, notify_url, 0, delivery, 'pending', 0,
           updated_at, updated_at, updated_at
      FROM done WHERE notify_url IS NOT NULL
  )
  SELECT coalesce(array_agg(id), '{}') INTO settled FROM done;
  IF jsonb_array_length(accepts) > 0 THEN
    accepted := pombo_accept(accepts);
  ELSE
    accepted := '{}';
  END IF;
END $$;
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(WRITE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS pombo_write(jsonb, jsonb, boolean)")
        op.execute("DROP FUNCTION IF EXISTS pombo_write(jsonb, jsonb)")
