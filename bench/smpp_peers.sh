#!/bin/bash
# SMPP side by side (issue 12): HTTP in, SMPP out to the shared SMPP sink, Kannel 1.4.5
# (`smsc = smpp`, bench/kannel_smpp_up.sh) then Pombo (`kind: smpp`, bench/peers_up.sh with
# PEERS_POMBO_SMPP_PORT), one after the other, same load (wrk + vary_dest.lua through the
# shared bench_run.py: 3 s warm-up, 3 runs), same sink, same window (100, one bind).
#
#   bench/smpp_peers.sh                       # CONNS="32", SECONDS_PER_RUN=10
#   PEERS="pombo" CONNS="32 64" bench/smpp_peers.sh
#
# After each peer: the sink's count of submit_sm against what the peer says it sent
# (Kannel: status.txt "sent"; Pombo: messages with status 0): every message exactly once.
# Pombo runs from this checkout (PYTHONPATH=src) with the venv of ../main (POMBO_VENV).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$HERE")"
PEERS_DIR="${PEERS_DIR:-$(cd "$ROOT/../shared/peers" && pwd)}"
source "$PEERS_DIR/common.sh"
PEERS=${PEERS:-kannel pombo}
CONNS=${CONNS:-32}
SECS=${SECONDS_PER_RUN:-10}
VENV=${POMBO_VENV:-$ROOT/.venv}
[ -x "$VENV/bin/pombo" ] || VENV="$(cd "$ROOT/../main" && pwd)/.venv"
TOKEN="${PEERS_POMBO_TOKEN:-benchbenchbench}"
OUT="$SCRATCH/results/smpp-$(date +%Y%m%d-%H%M%S).txt"
mkdir -p "$SCRATCH/results" "$SCRATCH/sink" "$SCRATCH/pombo"
SINK="http://127.0.0.1:$SINK_HTTP_PORT/count"
sink_total() { curl -fsS "$SINK" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])'; }

CUR=""
down() {
  case $1 in
    kannel) "$PEERS_DIR/kannel_down.sh" ;;
    pombo) "$HERE/peers_down.sh"; rm -f "$SCRATCH/pombo/pombo.pid" ;;
  esac
}
cleanup() { [ -n "$CUR" ] && down "$CUR" || true; stop_pidfile smpp_sink "$SCRATCH/sink/sink.pid" || true; }
trap cleanup EXIT

DELAY_MS=${DELAY_MS:-0} start_bg smpp_sink "$SCRATCH/sink/sink.pid" "$SCRATCH/sink/sink.log" \
  "$UP_VENV/bin/python" "$PEERS_DIR/smpp_sink.py" "$SINK_SMPP_PORT" "$SINK_HTTP_PORT"
wait_port "$SINK_HTTP_PORT" 20

for peer in $PEERS; do
  before=$(sink_total)
  CUR=$peer
  case $peer in
    kannel)
      "$HERE/kannel_smpp_up.sh"
      path='/cgi-bin/sendsms?username=bench&password=bench&to={DEST}&text=hello+world'
      base="http://127.0.0.1:$KANNEL_SENDSMS_PORT"; expect=""
      pids="$SCRATCH/kannel/*.pid" ;;
    pombo)
      PYTHONPATH="$ROOT/src" PEERS_POMBO_SMPP_PORT=$SINK_SMPP_PORT POMBO_URL=http://127.0.0.1:8080 \
        PEERS_POMBO_TOKEN=$TOKEN PEERS_POMBO_BIN="$VENV/bin/pombo" "$HERE/peers_up.sh"
      path="/api/v2/MakeSMS.php?tsid=$TOKEN&dest={DEST}&message=hello+world"
      base="http://127.0.0.1:8080"; expect='"status_code":"0"'
      pids="$SCRATCH/pombo/*.pid" ;;
  esac
  for c in $CONNS; do
    BASE_URL=$base BENCH_EXPECT=$expect COUNT_URL=$SINK PIDFILES="$pids $SCRATCH/sink/*.pid" \
      RESULTS="$SCRATCH/results/smpp-$peer.jsonl" \
      python3 "$PEERS_DIR/bench_run.py" "$peer" "$path" "$c" "$SECS" 2>&1 | sed "s/^RESULT/RESULT smpp/" | tee -a "$OUT"
  done
  got=$(( $(sink_total) - before ))
  case $peer in
    kannel) said=$(curl -fsS "http://127.0.0.1:$KANNEL_ADMIN_PORT/status.txt?password=bench" \
                   | sed -n 's/.*SMS: received [0-9]* ([0-9]* queued), sent \([0-9]*\).*/\1/p' | head -1) ;;
    pombo) said=$(PYTHONPATH="$ROOT/src" "$VENV/bin/python" -c "
import sqlite3; print(sqlite3.connect('$SCRATCH/pombo/pombo.db').execute('SELECT count(*) FROM messages WHERE status_code=0').fetchone()[0])") ;;
  esac
  echo "EXACTLY-ONCE $peer: sink got $got submit_sm, $peer says it sent $said" | tee -a "$OUT"
  down "$peer"; CUR=""
done
echo; echo "== summary ($OUT)"; grep -E '^(RESULT|EXACTLY)' "$OUT"
