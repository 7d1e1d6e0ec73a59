#!/bin/bash
# The side-by-side run: Kannel, Jasmin and Pombo, one after the other, under the same load
# (wrk + the shared vary_dest.lua) against the same fake upstream, on this machine.
#
#   bench/peers.sh                      # PEERS="kannel jasmin pombo" CONNS="32 64", 3 x 10 s each
#   PEERS=pombo CONNS=32 bench/peers.sh # just Pombo through the shared harness
#
# Runs ../shared/peers/setup.sh first when its venvs (or wrk / Kannel) are missing. Every other
# knob of ../shared/peers/run_all.sh (SECONDS_PER_RUN, DELAY_MS, ...) passes through, and so do
# peers_up.sh's PEERS_POMBO_WORKERS / PEERS_POMBO_DATABASE_URL / PEERS_POMBO_TOKEN.
# Output: per-run lines and a summary; the log is /tmp/peers/results/run-*.txt.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$HERE")"
PEERS_DIR="${PEERS_DIR:-$(cd "$ROOT/../shared/peers" && pwd)}"
SCRATCH="${SCRATCH:-/tmp/peers}"

if [ ! -x "$SCRATCH/up-venv/bin/python" ] || [ ! -x "$SCRATCH/jasmin-venv/bin/jasmind.py" ] \
   || [ ! -d "$SCRATCH/dl/jasmin-0.11.1" ] || ! command -v wrk >/dev/null || ! command -v bearerbox >/dev/null; then
  echo "== peers setup ($PEERS_DIR/setup.sh)"
  "$PEERS_DIR/setup.sh"
fi

TOKEN="${PEERS_POMBO_TOKEN:-benchbenchbench}"
export PEERS_POMBO_TOKEN="$TOKEN"
export POMBO_UP="$HERE/peers_up.sh"
export POMBO_DOWN="$HERE/peers_down.sh"
export POMBO_URL="${POMBO_URL:-http://127.0.0.1:8080}"
export POMBO_PATH="/api/v2/MakeSMS.php?tsid=$TOKEN&dest={DEST}&message=hello+world"
export POMBO_EXPECT='"status_code":"0"'
export PEERS="${PEERS:-kannel jasmin pombo}"
export CONNS="${CONNS:-32 64}"
cd "$ROOT"
exec "$PEERS_DIR/run_all.sh"
