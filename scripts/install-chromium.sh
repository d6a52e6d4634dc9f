#!/usr/bin/env bash
# install-chromium.sh installs Debian's chromium package, which the web UI's browser
# tests (tests/browser) drive headless with chromedp. It does nothing when Chromium is
# already there (CHROMIUM names another binary). Independent of the Makefile so CI and
# developers can call it directly.
set -euo pipefail

BIN="${CHROMIUM:-/usr/bin/chromium}"
if [[ -x "$BIN" ]]; then
  echo "chromium already installed: $("$BIN" --version 2>/dev/null || echo "$BIN")"
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "install-chromium.sh: no apt-get here; install Chromium yourself and set CHROMIUM=/path/to/chromium" >&2
  exit 1
fi
SUDO=""
if [[ "$(id -u)" != 0 ]]; then
  SUDO="sudo"
fi
echo "installing chromium (apt-get)"
$SUDO apt-get update -qq || true
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
"$BIN" --version
