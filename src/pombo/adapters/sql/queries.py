"""SQL shared by both engines (`?` placeholders; see executor.dollar_params)."""

MESSAGE_COLUMNS = (
    "id, customer_id, user_id, dest, text, corr_id AS ctid, cp_id, cd_id, sender, connection, status_code, "
    "upstream_id, value, cost, segments, encoding, delivery, return_log, created_at, updated_at, "
    "sent_at, final_at, text_received"
)
CONFIG_VERSION = "SELECT value FROM meta WHERE key='config_version'"
VERSIONS = "SELECT key, value FROM meta WHERE key IN ('config_version', 'token_version')"
TOKENS_CHANGED = (
    "SELECT id, customer_id, user_id, token_hash, prefix, revoked_at, expires_at, changed_seq FROM tokens "
    "WHERE changed_seq>? ORDER BY changed_seq"
)
DEDUP = (
    "SELECT 1 FROM messages WHERE customer_id=? AND dest=? AND created_at>=? "
    "AND status_code IN (0, 1) LIMIT 1"
)
NIGHT_COUNT = (
    "SELECT COUNT(*) FROM messages WHERE customer_id=? AND created_at>=? AND status_code IN (0, 1)"
)
CREDIT_OK = "SELECT balance>credit_limit FROM customers WHERE id=?"
DEBIT = "UPDATE customers SET balance=balance-? WHERE id=?"
INSERT_MESSAGE = (
    "INSERT INTO messages (customer_id, user_id, dest, text, corr_id, cp_id, cd_id, sender, connection, "
    "status_code, value, cost, segments, encoding, delivery, created_at, updated_at, notify_url, text_received) "
    "VALUES (?,?,?,?,?,?,?,?,?,1,?,?,?,?,'pending',?,?,?,?)"
)
INSERT_LEDGER = (
    "INSERT INTO ledger (customer_id, amount, cause, message_id, created_at) VALUES (?,?,?,?,?)"
)
SETTLE_OK = (
    "UPDATE messages SET status_code=0, upstream_id=?, return_log=?, updated_at=? "
    "WHERE id=? AND status_code=1"
)
SETTLE_FAILED = (
    "UPDATE messages SET status_code=300, delivery='rejected', return_log=?, updated_at=?, "
    "final_at=? WHERE id=? AND status_code=1"
)
# Kannel's parts (issue 13): one row per multi-part message while its receipts come in
COUNT_PART = (
    "INSERT INTO kannel_parts (message_id, connection, segments, parts, first_at) "
    "SELECT id, connection, segments, 1, CAST(? AS DOUBLE PRECISION) FROM messages "
    "WHERE id=? AND connection=? AND segments>1 "
    "ON CONFLICT (message_id) DO UPDATE SET parts=kannel_parts.parts+1"
)
SETTLE_PARTS = (
    "DELETE FROM kannel_parts WHERE first_at<? RETURNING message_id, connection, segments, parts"
)
PART_WARNING = (
    "INSERT INTO part_warnings (connection, count, message_id, segments, parts, at) VALUES (?,1,?,?,?,?) "
    "ON CONFLICT (connection) DO UPDATE SET count=part_warnings.count+1, message_id=excluded.message_id, "
    "segments=excluded.segments, parts=excluded.parts, at=excluded.at"
)
MESSAGE_DEBITS = "SELECT customer_id, amount FROM ledger WHERE message_id=? AND cause='message' ORDER BY customer_id"
CREDIT_BACK = "UPDATE customers SET balance=balance-? WHERE id=?"
MARK_UNKNOWN = (
    "UPDATE messages SET delivery='unknown', updated_at=? WHERE id=? AND status_code=1 "
    "AND delivery='pending'"
)
BALANCE = "SELECT balance, credit_limit FROM customers WHERE id=?"
MESSAGE_BY_ID = f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id=? AND customer_id=?"
MESSAGES_BY_CTID = (
    f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE customer_id=? AND corr_id=? ORDER BY id LIMIT ?"
)
MESSAGES_PAGE = (
    f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE customer_id=? AND created_at>=? "
    "AND created_at<? AND id>? ORDER BY id LIMIT ?"
)
FIND_BY_UPSTREAM = "SELECT id, status_code, delivery FROM messages WHERE connection=? AND upstream_id=?"
FIND_BY_ID = "SELECT id, status_code, delivery FROM messages WHERE id=? AND connection=?"
MESSAGE_REFUNDED = "SELECT 1 FROM ledger WHERE message_id=? AND cause='refund' LIMIT 1"
# a report's move, guarded by the state it was decided on; {stamp} is sent_at or final_at
REPORT_MOVE = (
    "UPDATE messages SET delivery=?, {stamp}=?, status_code=?, updated_at=? "
    "WHERE id=? AND delivery=? AND status_code=?"
)
# the same when the report settles a waiting message: what it carries stands in for the answer
REPORT_SETTLE = (
    "UPDATE messages SET delivery=?, {stamp}=?, status_code=?, updated_at=?, "
    "return_log=COALESCE(return_log, ?), upstream_id=COALESCE(upstream_id, ?) "
    "WHERE id=? AND delivery=? AND status_code=?"
)
INSERT_REPORT = (
    "INSERT INTO dlr_reports (connection, message_id, state, raw, created_at) VALUES (?,?,?,?,?)"
)
IP_BLOCKED = "SELECT 1 FROM ip_blocks WHERE ip=?"
IP_FAILURES = "SELECT COUNT(*) FROM auth_failures WHERE ip=? AND created_at>=?"
USER_FAILURES = "SELECT COUNT(*) FROM auth_failures WHERE username=? AND code=? AND created_at>=?"
IP_CODE_FAILURES = "SELECT COUNT(*) FROM auth_failures WHERE ip=? AND code=? AND created_at>=?"
INSERT_FAILURE = "INSERT INTO auth_failures (ip, username, code, created_at) VALUES (?,?,?,?)"
BLOCK_IP = "INSERT INTO ip_blocks (ip, reason, created_at) VALUES (?,?,?) ON CONFLICT (ip) DO NOTHING"
# who had failures since a moment, each with its latest one (both read ix_auth_failures_created)
SUSPECT_FAILURES = (
    "SELECT ip AS who, MAX(created_at) AS at FROM auth_failures WHERE created_at>=? GROUP BY ip "
    "UNION ALL SELECT username, MAX(created_at) FROM auth_failures WHERE created_at>=? "
    "AND username IS NOT NULL GROUP BY username"
)
BLOCKED_IPS = "SELECT ip FROM ip_blocks"
BLOCKED_IPS_SINCE = "SELECT ip FROM ip_blocks WHERE created_at>=?"
LEDGER_SUMS = (
    "SELECT c.id, c.balance, COALESCE((SELECT SUM(amount) FROM ledger l "
    "WHERE l.customer_id=c.id), 0) AS ledger FROM customers c ORDER BY c.id"
)

# callbacks: one event per state change, in the transaction of the change
ENQUEUE_CALLBACK = (
    "INSERT INTO callbacks (event_id, message_id, customer_id, url, status_code, delivery, state, "
    "attempts, next_at, created_at, updated_at) SELECT ?, id, customer_id, notify_url, status_code, "
    "delivery, 'pending', 0, ?, ?, ? FROM messages WHERE id=? AND notify_url IS NOT NULL"
)
DUE_CALLBACKS = (
    "SELECT c.id FROM callbacks c WHERE c.state='pending' AND c.next_at<=? "
    "AND (c.lease_until IS NULL OR c.lease_until<?) AND NOT EXISTS (SELECT 1 FROM callbacks p "
    "WHERE p.message_id=c.message_id AND p.id<c.id AND p.state='pending') ORDER BY c.id LIMIT ?"
)
# the same, at most N per customer, customers taking turns (each one's 1st, then each one's 2nd...)
DUE_CALLBACKS_FAIR = (
    "SELECT d.id FROM (SELECT c.id, ROW_NUMBER() OVER (PARTITION BY c.customer_id ORDER BY c.id) AS rn "
    "FROM callbacks c WHERE c.state='pending' AND c.next_at<=? "
    "AND (c.lease_until IS NULL OR c.lease_until<?) AND NOT EXISTS (SELECT 1 FROM callbacks p "
    "WHERE p.message_id=c.message_id AND p.id<c.id AND p.state='pending')) d "
    "WHERE d.rn<=? ORDER BY d.rn, d.id LIMIT ?"
)
LEASE_CALLBACK = (
    "UPDATE callbacks SET lease_until=? WHERE id=? AND state='pending' "
    "AND (lease_until IS NULL OR lease_until<?)"
)
CALLBACK_EVENT = (
    "SELECT id, event_id, url, status_code, delivery, attempts, created_at AS occurred_at, customer_id, "
    "message_id FROM callbacks WHERE id=?"
)
MESSAGE_ROW = f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id=?"
CALLBACK_DONE = "UPDATE callbacks SET state='done', attempts=attempts+1, lease_until=NULL, updated_at=? WHERE id=?"
CALLBACK_RETRY = (
    "UPDATE callbacks SET state=?, attempts=attempts+1, next_at=?, lease_until=NULL, last_error=?, "
    "updated_at=? WHERE id=?"
)
# reconciliation: a process claims a waiting message before asking the provider about it
CLAIM_ORPHAN = (
    "UPDATE messages SET reconcile_at=? WHERE id=? AND status_code=1 AND delivery='pending' "
    "AND (reconcile_at IS NULL OR reconcile_at<?)"
)
# a message waiting in the upstream queue, or claimed from it lately, is the engine's, not an orphan
ORPHAN_ROWS = (
    f"SELECT {MESSAGE_COLUMNS} FROM messages m WHERE status_code=1 AND delivery='pending' "
    "AND created_at<? AND (reconcile_at IS NULL OR reconcile_at<?) "
    "AND NOT EXISTS (SELECT 1 FROM upstream_queue q WHERE q.message_id=m.id) "
    "AND NOT EXISTS (SELECT 1 FROM upstream_attempts a WHERE a.message_id=m.id AND a.kind='claimed' AND a.at>=?) "
    "ORDER BY id LIMIT ?"
)
