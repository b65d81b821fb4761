#!/usr/bin/env bash
# Installs Debian packages for the tooling of tests/deploy (used by prometheus/install.sh and
# compose/install-validator.sh): `apt-install.sh PACKAGE...`. Runs as root or with passwordless
# sudo; never starts a service the packages ship. apt's output goes to stderr, so callers can
# print a result on stdout.
set -euo pipefail

if ! command -v apt-get >/dev/null; then
    echo "apt-install.sh: no apt-get here; install $* yourself" >&2
    exit 1
fi
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if sudo -n true 2>/dev/null; then SUDO=(sudo -n); else
        echo "apt-install.sh: run as root (or with passwordless sudo) to apt-get install $*" >&2
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
"${SUDO[@]}" apt-get update -q >&2
"${SUDO[@]}" apt-get install -y -q --no-install-recommends "$@" >&2
