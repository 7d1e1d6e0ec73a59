#!/bin/bash
# POMBO_DOWN hook for ../shared/peers/run_all.sh: stop the session started by peers_up.sh
# (SIGTERM to its process group, SIGKILL after 10 s).
#
# The pid file is left in place on purpose: run_all.sh's down() then loops over
# /tmp/peers/pombo/*.pid itself; with no file there, that loop's last command
# (`[ -e "$f" ] && ...`) returns 1, and under `set -e` run_all.sh stops before its summary.
HERE="$(cd "$(dirname "$0")" && pwd)"
PEERS_DIR="${PEERS_DIR:-$(cd "$HERE/../../shared/peers" && pwd)}"
source "$PEERS_DIR/common.sh"
f="$SCRATCH/pombo/pombo.pid"
[ -s "$f" ] || { echo "pombo: no pid file"; exit 0; }
pid=$(cat "$f")
if kill -0 "$pid" 2>/dev/null; then
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
  for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "pombo: still alive after 10 s, SIGKILL"; kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid"
  fi
  echo "pombo stopped (pid $pid)"
fi
exit 0
