#!/usr/bin/env bash
# Makes sure the broker image compose/docker-compose.yml runs holds this checkout's zafka.
# The image name comes from ZAFKA_BROKER_IMAGE (default: zafka/broker:local).
#  - a base image (zafka/broker-base:local): Debian's python3 and python3-venv, made with
#    debootstrap like the ZooKeeper image (no registry needed), built once;
#  - on it, this checkout's wheel and its dependencies' wheels (built here with pip, which
#    reaches PyPI; the image build itself needs no network), installed into /opt/zafka.
# The image is labelled with a hash of the checkout's source; a matching image is kept.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE="${ZAFKA_BROKER_IMAGE:-zafka/broker:local}"
BASE="zafka/broker-base:local"
MIRROR="${ZAFKA_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
PYTHON="${PYTHON:-.venv/bin/python}"

source_hash="$(git ls-files -z -- pyproject.toml zafka actors transport coordination storage clients \
    | xargs -0 sha1sum | sha1sum | cut -c1-16)"
if [ "$($SUDO docker image inspect -f '{{ index .Config.Labels "zafka.source" }}' "$IMAGE" 2>/dev/null)" = "$source_hash" ]; then
    echo "==> broker image $IMAGE is up to date"
    exit 0
fi

work="$(mktemp -d /tmp/zafka-broker-image.XXXXXX)"
trap '$SUDO rm -rf "$work"' EXIT
if ! $SUDO docker image inspect "$BASE" >/dev/null 2>&1; then
    if ! command -v debootstrap >/dev/null; then
        $SUDO apt-get update -qq
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq debootstrap >/dev/null
    fi
    echo "==> building $BASE from Debian packages (debootstrap, about a minute)"
    $SUDO debootstrap --variant=minbase --include=python3,python3-venv \
        bookworm "$work/rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 || {
        echo "debootstrap failed; last lines of its log:" >&2
        tail -n 20 "$work/debootstrap.log" >&2
        exit 1
    }
    $SUDO rm -rf "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/lib/apt/lists/*
    $SUDO tar -C "$work/rootfs" -c . | $SUDO docker import - "$BASE" >/dev/null
    $SUDO rm -rf "$work/rootfs"
fi

echo "==> building $IMAGE: zafka's wheel and its dependencies on $BASE"
mkdir -p "$work/src"  # the tracked files only: no stale build/ or local leftovers
git ls-files -z | tar --null -T - -c | tar -x -C "$work/src"
"$PYTHON" -m pip wheel --quiet --wheel-dir "$work/wheels" "$work/src" >"$work/pip.log" 2>&1 || {
    echo "pip wheel failed; last lines of its log:" >&2
    tail -n 20 "$work/pip.log" >&2
    exit 1
}
cat >"$work/Dockerfile" <<DOCKERFILE
FROM $BASE
COPY wheels /wheels
RUN python3 -m venv /opt/zafka && /opt/zafka/bin/pip install --quiet --no-index --find-links /wheels zafka && rm -rf /wheels
ENV PATH=/opt/zafka/bin:/usr/sbin:/usr/bin:/sbin:/bin
ENTRYPOINT ["zafka"]
LABEL zafka.source=$source_hash
DOCKERFILE
$SUDO docker build --quiet --network none -t "$IMAGE" -f "$work/Dockerfile" "$work" >"$work/build.log" 2>&1 || {
    echo "docker build failed; its log:" >&2
    cat "$work/build.log" >&2
    exit 1
}
echo "==> built $IMAGE"
