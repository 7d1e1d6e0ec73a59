#!/usr/bin/env bash
# What tests/observability/test_prometheus.py runs against: Debian's Prometheus (the server and
# promtool), from the package registry. Idempotent: does nothing when both are installed.
set -euo pipefail
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  # the package's service is not wanted here: the tests start their own server on a free port
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
prometheus --version 2>&1 | head -1
