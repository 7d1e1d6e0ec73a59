#!/usr/bin/env bash
# What tests/console/test_browser.py drives: Debian's Chromium and its driver, and Selenium in
# the project's virtualenv. Nothing is downloaded outside the package registries (Selenium is
# pointed at /usr/bin/chromedriver, so its driver manager never runs).
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver fonts-dejavu-core >/dev/null
fi
"${PYTHON:-.venv/bin/python}" -m pip install --quiet "selenium>=4.20"
chromium --version 2>/dev/null | head -1
