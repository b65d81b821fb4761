#!/usr/bin/env bash
# Makes a Compose implementation available to validate docker-compose.yml (tests/deploy):
# prefers the Docker CLI plugin (`docker compose`), else Debian's `docker-compose` package
# (Compose v1, Python). Neither needs a running Docker engine for `config`.
# Idempotent: does nothing when either is already there. Prints the command to use.
set -euo pipefail

if docker compose version >/dev/null 2>&1; then echo "docker compose"; exit 0; fi
if command -v docker-compose >/dev/null; then echo "docker-compose"; exit 0; fi
if ! command -v apt-get >/dev/null; then
    echo "install-validator.sh: install the Docker Compose plugin (no apt-get here)" >&2
    exit 1
fi
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if sudo -n true 2>/dev/null; then SUDO=(sudo -n); else
        echo "install-validator.sh: run as root (or with passwordless sudo) to apt-get install docker-compose" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q >&2
"${SUDO[@]}" apt-get install -y -q --no-install-recommends docker-compose >&2
echo "docker-compose"
