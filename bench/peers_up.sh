#!/bin/bash
# POMBO_UP hook for ../shared/peers/run_all.sh (see bench/peers.sh, bench/README.md).
# Provisions Pombo as a user would (`pombo load`) and starts `pombo serve` in its own session
# (setsid), pid file /tmp/peers/pombo/pombo.pid (pid = session leader), then waits for /healthz.
#
#   one customer (id 1000, ample balance, no night cap) with token $PEERS_POMBO_TOKEN
#   connection velip, kind kannel -> the shared fake upstream http://127.0.0.1:18080
#
# env (all optional):
#   POMBO_URL                  http://127.0.0.1:8080   (the port is taken from it)
#   PEERS_POMBO_TOKEN          benchbenchbench         (tokens are 10-64 characters; use it in POMBO_PATH)
#   PEERS_POMBO_WORKERS        1                       (pombo serve --workers)
#   PEERS_POMBO_DATABASE_URL   sqlite:////tmp/peers/pombo/pombo.db (recreated on every start)
#   PEERS_POMBO_NIGHT          0                       (1: the customer is inside its night window
#                                                      at any hour, 00:00-23:59, night_limit 1000000000)
#   PEERS_POMBO_PYTHON         python3                 (when this tree has no .venv: runs this tree's
#                                                      src with that interpreter, e.g. a worktree)
#   PEERS_POMBO_SMPP_PORT      unset: the kannel connection above; set: the connection is
#                              `kind: smpp` to the shared SMPP sink on that port (bench/smpp_peers.sh)
#   PEERS_POMBO_SMPP_BINDS / PEERS_POMBO_SMPP_WINDOW   1 / 100
#   PEERS_POMBO_BIN            $ROOT/.venv/bin/pombo
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$HERE")"
PEERS_DIR="${PEERS_DIR:-$(cd "$ROOT/../shared/peers" && pwd)}"
source "$PEERS_DIR/common.sh"          # SCRATCH, UPSTREAM_PORT, start_bg, wait_port

D="$SCRATCH/pombo"
URL="${POMBO_URL:-http://127.0.0.1:8080}"
PORT="${URL##*:}"; PORT="${PORT%%/*}"
TOKEN="${PEERS_POMBO_TOKEN:-benchbenchbench}"
WORKERS="${PEERS_POMBO_WORKERS:-1}"
DB_URL="${PEERS_POMBO_DATABASE_URL:-sqlite:///$D/pombo.db}"
NIGHT='night_limit: null'
[ "${PEERS_POMBO_NIGHT:-0}" = 1 ] && NIGHT='night_limit: 1000000000, night_window: "00:00-23:59"'
if [ -n "${PEERS_POMBO_BIN:-}" ]; then
  POMBO_CMD=("$PEERS_POMBO_BIN")
elif [ -x "$ROOT/.venv/bin/pombo" ]; then
  POMBO_CMD=("$ROOT/.venv/bin/pombo")
else
  POMBO_CMD=(env PYTHONPATH="$ROOT/src" "${PEERS_POMBO_PYTHON:-python3}" -c "from pombo.cli import main; main()")
fi
mkdir -p "$D"
rm -f "$D"/pombo.db "$D"/pombo.db-wal "$D"/pombo.db-shm "$D"/pombo.log

if [ -n "${PEERS_POMBO_SMPP_PORT:-}" ]; then
  CONNECTION="{name: velip, kind: smpp, host: 127.0.0.1, port: $PEERS_POMBO_SMPP_PORT, system_id: bench, password: bench, binds: ${PEERS_POMBO_SMPP_BINDS:-1}, window: ${PEERS_POMBO_SMPP_WINDOW:-100}, ack_timeout: 5, final_timeout: 30}"
else
  CONNECTION="{name: velip, kind: kannel, url: \"http://127.0.0.1:$UPSTREAM_PORT\", username: bench, password: bench, ack_timeout: 5, final_timeout: 30}"
fi
cat > "$D/provisioning.yaml" <<YAML
# written by bench/peers_up.sh
connections:
  - $CONNECTION
customers:
  - {id: 1000, name: "Peers bench", balance: "100000000.00", $NIGHT, tokens: ["$TOKEN"]}
tariffs:
  - {customer: 1000, prefix: "55", value: "0.0500"}
YAML

# pombo sees only its own settings, not run_all's POMBO_UP/POMBO_PATH/... hooks
run_pombo() {
  env -u POMBO_UP -u POMBO_DOWN -u POMBO_URL -u POMBO_PATH -u POMBO_EXPECT \
      POMBO_DATABASE_URL="$DB_URL" "${POMBO_CMD[@]}" "$@"
}
( cd "$D" && run_pombo load "$D/provisioning.yaml" )
ARGS=(serve --host 127.0.0.1 --port "$PORT")
[ "$WORKERS" -gt 1 ] && ARGS+=(--workers "$WORKERS")
cd "$D"
start_bg pombo "$D/pombo.pid" "$D/pombo.log" \
  env -u POMBO_UP -u POMBO_DOWN -u POMBO_URL -u POMBO_PATH -u POMBO_EXPECT \
      POMBO_DATABASE_URL="$DB_URL" "${POMBO_CMD[@]}" "${ARGS[@]}"
PID=$(cat "$D/pombo.pid")
for i in $(seq 1 300); do
  if curl -fsS -o /dev/null "http://127.0.0.1:$PORT/healthz" 2>/dev/null; then
    echo "pombo up on http://127.0.0.1:$PORT (pid $PID, $WORKERS worker(s), ${DB_URL%%:*})"
    exit 0
  fi
  if ! kill -0 "$PID" 2>/dev/null; then
    echo "pombo serve died:" >&2; tail -n 20 "$D/pombo.log" >&2; exit 1
  fi
  sleep 0.2
done
echo "pombo: no /healthz after 60 s" >&2; tail -n 20 "$D/pombo.log" >&2; exit 1
