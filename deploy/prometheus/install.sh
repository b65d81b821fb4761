#!/usr/bin/env bash
# Installs Prometheus + promtool (Debian's `prometheus` package) for tests/deploy.
# Idempotent: does nothing when `prometheus` and `promtool` are already on PATH.
# Never starts the Debian service: the tests run their own server on a temp port and TSDB.
set -euo pipefail

if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
    exit 0
fi
"$(dirname "$0")/../apt-install.sh" prometheus

# On a systemd host the package also enables the unit for the next boot; undo that.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    sudo_=(); [ "$(id -u)" -ne 0 ] && sudo_=(sudo -n)
    "${sudo_[@]}" systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
command -v prometheus >/dev/null && command -v promtool >/dev/null
