#!/usr/bin/env bash
# `container.sh ARGS...`: the container engine used by `make image` and tests/deploy, with ARGS.
# - docker, where a Docker daemon answers (CONTAINER_ENGINE=docker forces it);
# - otherwise podman (installed with apt if missing, with runc and catatonit: the pause process
#   of pods, which `podman kube play` builds its infra image around), as root, with this directory's
#   containers.conf and its own storage under the cache directory, so nothing of the host's
#   configuration is changed and built layers are kept between runs.
# `container.sh --engine` prints which one it is (docker or podman).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
CACHE=${SESSION_PROMOTIONS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/session-promotions}

engine=${CONTAINER_ENGINE:-}
if [ -z "$engine" ]; then
    if command -v docker >/dev/null && docker info >/dev/null 2>&1; then engine=docker; else engine=podman; fi
fi
if [ "${1:-}" = --engine ]; then echo "$engine"; exit 0; fi

case $engine in
docker) exec docker "$@" ;;
podman)
    if ! command -v podman >/dev/null || ! command -v runc >/dev/null \
        || ! command -v catatonit >/dev/null; then
        echo "container.sh: no Docker daemon: installing podman, runc and catatonit (apt)" >&2
        bash "$here/../apt-install.sh" podman runc catatonit
    fi
    mkdir -p "$CACHE/podman/root" "$CACHE/podman/run"
    export CONTAINERS_CONF="$here/containers.conf"
    exec podman --root "$CACHE/podman/root" --runroot "$CACHE/podman/run" \
        --storage-driver overlay "$@" ;;
*) echo "container.sh: CONTAINER_ENGINE must be docker or podman, not '$engine'" >&2; exit 1 ;;
esac
