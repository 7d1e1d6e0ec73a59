"""PostgreSQL: pombo_write's callback event ids are 32 lowercase hex digits, as on SQLite.

The events pombo_write queues for settled messages took gen_random_uuid()::text (36 characters,
with dashes) while every other event, on both engines, takes store.new_event_id() (32 hex digits):
receivers saw two shapes of `event_id` from one gateway. The same uuid without its dashes is 32
lowercase hex digits and as unique. Events already queued keep their ids.

Revision ID: 0007_event_ids_hex
Revises: 0006_partial_indexes
Create Date: 2026-12-01
"""

from alembic import op

revision = "0007_event_ids_hex"
down_revision = "0006_partial_indexes"
branch_labels = None
depends_on = None

# Frozen SQL: pombo_write as 0005 left it, but for the event id. One call per flush: the upstream
# outcomes (OK) that arrived since the last flush, then the new sends; callback events for the
# settled messages are queued in the same statement (the outbox). `durable` false commits without
# waiting for the WAL flush (POMBO_PG_SYNCHRONOUS_COMMIT=false, the operator's choice).
WRITE = r"""
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
    SELECT replace(gen_random_uuid()::text, '-', ''), id, customer_id, notify_url, 0, delivery, 'pending', 0,
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

# What 0005 installed, for the downgrade.
WRITE_0005 = r"""
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
        op.execute(WRITE_0005)
