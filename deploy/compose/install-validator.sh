#!/usr/bin/env bash
# Makes a Compose implementation available to validate docker-compose.yml (tests/deploy):
# prefers the Docker CLI plugin (`docker compose`), else Debian's `docker-compose` package
# (Compose v1, Python). Neither needs a running Docker engine for `config`.
# Idempotent: does nothing when either is already there. Prints the command to use.
set -euo pipefail

if docker compose version >/dev/null 2>&1; then echo "docker compose"; exit 0; fi
if command -v docker-compose >/dev/null; then echo "docker-compose"; exit 0; fi
"$(dirname "$0")/../apt-install.sh" docker-compose
echo "docker-compose"
