#!/usr/bin/env bash
# `base.sh IMAGE`: makes IMAGE, a local stand-in for python:3.12-slim-bookworm, where no image
# registry is reachable (the development machine). Debian bookworm from its package archive by
# debootstrap, with Python (Debian's 3.11: the kernel wheel is abi3, for 3.11 and 3.12) as a venv
# in /usr/local, which gives the python:slim layout (python and pip in /usr/local/bin).
# The root filesystem is kept as a tarball in the cache directory, so only the first run on a
# machine pays for debootstrap (1-3 minutes); later runs import it (seconds), or find the image.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
image=${1:?usage: base.sh IMAGE}
CACHE=${SESSION_PROMOTIONS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/session-promotions}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
# passwd: useradd/groupadd for the image's user; the rest is what python:slim has.
PACKAGES=python3,python3-venv,ca-certificates,passwd
container() { bash "$here/container.sh" "$@"; }

if container image exists "$image"; then
    exit 0
fi

# The tarball's name changes with what goes into it.
key=$(printf '%s\n' "$SUITE" "$PACKAGES" "$(sed -n '/# recipe:$/,/# end recipe$/p' "$0")" | sha1sum | cut -c1-12)
tarball="$CACHE/base/rootfs-$SUITE-$key.tar"
if [ ! -s "$tarball" ]; then
    command -v debootstrap >/dev/null || bash "$here/../apt-install.sh" debootstrap
    mkdir -p "$CACHE/base"
    rootfs=$(mktemp -d "$CACHE/base/rootfs.XXXXXX")
    # --one-file-system: never into anything debootstrap may have left mounted there.
    trap 'rm -rf --one-file-system "$rootfs"' EXIT
    echo "base.sh: debootstrap $SUITE into $rootfs (1-3 minutes)" >&2
    start=$SECONDS
    # recipe:
    debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$rootfs" "$MIRROR" >&2
    # The official images also take updates and security fixes (a newer rustc-web among them).
    cat > "$rootfs/etc/apt/sources.list" <<SOURCES
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb http://deb.debian.org/debian-security $SUITE-security main
SOURCES
    chroot "$rootfs" python3 -m venv /usr/local
    rm -rf "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
        "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* \
        "$rootfs"/usr/share/info/* "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/*
    # end recipe
    tar -C "$rootfs" --numeric-owner -cf "$tarball.part" .
    mv "$tarball.part" "$tarball"
    echo "base.sh: root filesystem made in $((SECONDS - start)) s: $tarball" >&2
fi
container import -q --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' \
    "$tarball" "$image" >/dev/null
echo "base.sh: imported $image from $tarball" >&2
