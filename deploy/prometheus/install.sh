#!/usr/bin/env bash
# Installs Prometheus + promtool (Debian's `prometheus` package) for tests/deploy.
# Idempotent: does nothing when `prometheus` and `promtool` are already on PATH.
# Never starts the Debian service: the tests run their own server on a temp port and TSDB.
set -euo pipefail

if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "install.sh: no apt-get; install Prometheus (prometheus + promtool) yourself" >&2
    exit 1
fi
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if sudo -n true 2>/dev/null; then SUDO=(sudo -n); else
        echo "install.sh: run as root (or with passwordless sudo) to apt-get install prometheus" >&2
        exit 1
    fi
fi

# invoke-rc.d / deb-systemd-invoke ask /usr/sbin/policy-rc.d before starting a service; exit
# code 101 means "don't". Create one only for this install, and only if the host has none.
POLICY=/usr/sbin/policy-rc.d
if [ ! -e "$POLICY" ]; then
    "${SUDO[@]}" sh -c "printf '#!/bin/sh\nexit 101\n' > $POLICY && chmod 755 $POLICY"
    trap '"${SUDO[@]}" rm -f "$POLICY"' EXIT
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" apt-get install -y -q --no-install-recommends prometheus

# On a systemd host the package also enables the unit for the next boot; undo that.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    "${SUDO[@]}" systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
command -v prometheus >/dev/null && command -v promtool >/dev/null
