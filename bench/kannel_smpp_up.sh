#!/bin/bash
# Kannel 1.4.5 with `smsc = smpp` towards the shared SMPP sink (the SMPP side of the peers bench):
# bearerbox + smsbox, HTTP sendsms on :13013 (user bench/bench), one transceiver bind to
# 127.0.0.1:$SINK_SMPP_PORT with max-pending-submits = $KANNEL_SMPP_WINDOW (default 100, the
# window Pombo gets too). Pid files in /tmp/peers/kannel/ (stop with ../shared/peers/kannel_down.sh).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PEERS_DIR="${PEERS_DIR:-$(cd "$HERE/../../shared/peers" && pwd)}"
source "$PEERS_DIR/common.sh"
K="$SCRATCH/kannel"
WINDOW=${KANNEL_SMPP_WINDOW:-100}
LOGLVL=${KANNEL_LOG_LEVEL:-2}
mkdir -p "$K"
rm -rf "$K/spool" "$K"/*.log "$K"/*.out; mkdir -p "$K/spool"
cat > "$K/kannel.conf" <<CONF
group = core
admin-port = $KANNEL_ADMIN_PORT
admin-interface = 127.0.0.1
admin-password = bench
status-password = bench
admin-allow-ip = "127.0.0.1"
smsbox-port = $KANNEL_BOX_PORT
smsbox-interface = 127.0.0.1
box-allow-ip = "127.0.0.1"
log-file = "$K/bearerbox.log"
log-level = $LOGLVL
store-type = spool
store-location = "$K/spool"
dlr-storage = internal
sms-incoming-queue-limit = -1
sms-outgoing-queue-limit = -1

group = smsc
smsc = smpp
smsc-id = sink
host = 127.0.0.1
port = $SINK_SMPP_PORT
transceiver-mode = true
smsc-username = bench
smsc-password = bench
system-type = ""
max-pending-submits = $WINDOW
enquire-link-interval = 30
log-level = $LOGLVL

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = $KANNEL_BOX_PORT
sendsms-port = $KANNEL_SENDSMS_PORT
sendsms-interface = 127.0.0.1
global-sender = 4000
log-file = "$K/smsbox.log"
log-level = $LOGLVL

group = sendsms-user
username = bench
password = bench
default-sender = 4000
max-messages = 1

group = sms-service
keyword = default
text = "ok"
max-messages = 0
CONF
start_bg bearerbox "$K/bearerbox.pid" "$K/bearerbox.out" /usr/sbin/bearerbox -v "$LOGLVL" "$K/kannel.conf"
wait_port "$KANNEL_BOX_PORT" 20
start_bg smsbox "$K/smsbox.pid" "$K/smsbox.out" /usr/sbin/smsbox -v "$LOGLVL" "$K/kannel.conf"
wait_port "$KANNEL_SENDSMS_PORT" 20
for i in $(seq 1 50); do
  curl -s "http://127.0.0.1:$KANNEL_ADMIN_PORT/status.txt?password=bench" | grep -q 'sink.*online' && break; sleep 0.2
done
curl -s "http://127.0.0.1:$KANNEL_ADMIN_PORT/status.txt?password=bench" | grep -E 'sink' || true
echo "kannel up: smsc = smpp -> 127.0.0.1:$SINK_SMPP_PORT, max-pending-submits=$WINDOW"
