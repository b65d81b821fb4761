#!/bin/sh
# Container entrypoint of session-promotions. POSIX sh on purpose: the slim image runs it with
# `sh`, and so does waxctl's Helm chart (`sh ./entrypoint.sh`).
#
# 1. With BYTEWAX_RECOVERY_DIRECTORY set, create the recovery partitions on the first start and
#    default the snapshot/backup intervals that `bytewax.run` insists on.
# 2. Default the rejected and late records' files to the image's volume (see below).
# 3. `exec` the dataflow, so Python is PID 1 and gets the stop signal. SIGINT (the image's) and
#    SIGTERM (Kubernetes) both stop it cleanly: one line, exit 0 (dataflows/shutdown.py).
#
# Process id, addresses, workers and the API server are read by `bytewax.run` itself from the
# BYTEWAX_* variables; the service's own settings from PROMO_* (dataflows/settings.py).
set -eu

PYTHON=${PYTHON:-python}
# The bytewax/bytewax images name the flow to run this way; the default is our module.
FLOW=${BYTEWAX_PYTHON_FILE_PATH:-dataflows.promotions}

# This process's id, derived the way `bytewax.run` derives it.
process_id() {
    if [ -n "${BYTEWAX_PROCESS_ID:-}" ]; then
        echo "$BYTEWAX_PROCESS_ID"
    elif [ -n "${BYTEWAX_POD_NAME:-}" ] && [ -n "${BYTEWAX_STATEFULSET_NAME:-}" ]; then
        echo "${BYTEWAX_POD_NAME#"$BYTEWAX_STATEFULSET_NAME"-}"
    else
        echo 0
    fi
}

# Any part-*.sqlite3 (or its -wal/-shm) means partitions exist. A new volume is not always
# empty (ext4 puts lost+found at its root), so emptiness is judged by partition files only.
has_partitions() {
    for f in "$1"/part-*; do
        [ -e "$f" ] && return 0
    done
    return 1
}

init_recovery() {
    dir=$1
    mkdir -p "$dir"
    has_partitions "$dir" && return 0
    id=$(process_id)
    # Process 0 creates and keeps every partition. Bytewax needs each partition index to be
    # visible exactly once in the cluster and does not detect two processes holding copies
    # of the same index, so "every pod inits its own empty volume" would silently fork the
    # state. With one owner, adding or removing processes never creates or loses partitions.
    if [ "$id" != 0 ]; then
        echo "entrypoint: process $id holds no recovery partitions; process 0 owns them" >&2
        return 0
    fi
    count=${PROMO_RECOVERY_PARTITIONS:-4}
    echo "entrypoint: creating $count recovery partitions in $dir" >&2
    # Build in a scratch dir and move in, so a crash midway never leaves a partial set.
    scratch="$dir/.init.$$"
    rm -rf "$scratch"
    mkdir "$scratch"
    "$PYTHON" -m bytewax.recovery "$scratch" "$count"
    mv "$scratch"/part-* "$dir"/
    rmdir "$scratch"
}

# Rejected and late records default to rejects.jsonl and late.jsonl in the working directory,
# which is read-only in the image: there they go to its writable volume instead.
if [ -z "${PROMO_REJECTS_OUTPUT:-}" ] && [ -d /var/lib/promotions ] && [ -w /var/lib/promotions ]; then
    export PROMO_REJECTS_OUTPUT=/var/lib/promotions/rejects.jsonl
fi
if [ -z "${PROMO_LATE_OUTPUT:-}" ] && [ -d /var/lib/promotions ] && [ -w /var/lib/promotions ]; then
    export PROMO_LATE_OUTPUT=/var/lib/promotions/late.jsonl
fi

if [ -n "${BYTEWAX_RECOVERY_DIRECTORY:-}" ]; then
    init_recovery "$BYTEWAX_RECOVERY_DIRECTORY"
    # bytewax.run refuses -r without both intervals; these are safe defaults (seconds).
    export BYTEWAX_SNAPSHOT_INTERVAL="${BYTEWAX_SNAPSHOT_INTERVAL:-30}"
    export BYTEWAX_RECOVERY_BACKUP_INTERVAL="${BYTEWAX_RECOVERY_BACKUP_INTERVAL:-0}"
fi

exec "$PYTHON" -m bytewax.run "$FLOW" "$@"
