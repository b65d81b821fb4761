#!/usr/bin/env bash
# `make image`: builds the service's image (IMAGE, default session-promotions:local) from the
# repository's Dockerfile, the Rust kernel compiled in its kernel stage.
# - docker with a daemon: the Dockerfile's defaults (the official python:3.12-slim-bookworm).
# - podman (this machine: no daemon, no image registry): BASE_IMAGE defaults to a base made from
#   Debian's archive by base.sh; host networking; the host's CA bundle is mounted into the build
#   steps only (pip, cargo and apt go through a proxy with its own CA here), so it ends up in no
#   layer.
# BASE_IMAGE=... picks another base either way. Built layers are kept (podman: in the cache
# directory), so a rebuild runs only the steps whose inputs changed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
IMAGE=${IMAGE:-session-promotions:local}
LOCAL_BASE=localhost/session-promotions-base:bookworm
CA=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
container() { bash "$here/container.sh" "$@"; }

engine=$(container --engine)
args=(build -t "$IMAGE" -f "$repo/Dockerfile")
if [ "$engine" = podman ]; then
    base=${BASE_IMAGE:-$LOCAL_BASE}
    [ "$base" = "$LOCAL_BASE" ] && bash "$here/base.sh" "$base"
    args+=(--network host --pull=never --layers --build-arg "BASE_IMAGE=$base")
    [ -r "$CA" ] && args+=(-v "$CA:/etc/ssl/certs/ca-certificates.crt:ro")
elif [ -n "${BASE_IMAGE:-}" ]; then
    args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
fi
start=$SECONDS
container "${args[@]}" "$repo"
echo "build.sh: $IMAGE built with $engine in $((SECONDS - start)) s" >&2
# Each rebuild leaves the layers it replaced; the kept storage drops those unused for a week (the
# layers still reused, however old, have children and are not dangling).
if [ "$engine" = podman ]; then
    container image prune -f --filter until=168h >/dev/null
fi
