#!/usr/bin/env bash
# Makes sure the ZooKeeper image the integration tests use is present.
# The image name comes from ZAFKA_ZK_IMAGE (default: zafka/zookeeper:local).
#  - already present            -> nothing to do
#  - the local default name     -> built here from Debian packages (no registry needed)
#  - any other name (e.g. zookeeper:3.9, the official image) -> docker pull
set -euo pipefail

IMAGE="${ZAFKA_ZK_IMAGE:-zafka/zookeeper:local}"
LOCAL_IMAGE="zafka/zookeeper:local"
MIRROR="${ZAFKA_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

if $SUDO docker image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "==> ZooKeeper image $IMAGE is present"
    exit 0
fi
if [ "$IMAGE" != "$LOCAL_IMAGE" ]; then
    echo "==> pulling ZooKeeper image $IMAGE"
    $SUDO docker pull "$IMAGE"
    exit 0
fi

if ! command -v debootstrap >/dev/null; then
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq debootstrap >/dev/null
fi
rootfs="$(mktemp -d /tmp/zafka-zk-rootfs.XXXXXX)"
trap '$SUDO rm -rf "$rootfs"' EXIT
echo "==> building $IMAGE from Debian packages (debootstrap, about a minute)"
$SUDO debootstrap --variant=minbase --include=openjdk-17-jre-headless,zookeeper \
    bookworm "$rootfs" "$MIRROR" >"$rootfs.log" 2>&1 || {
    echo "debootstrap failed; last lines of $rootfs.log:" >&2
    tail -n 20 "$rootfs.log" >&2
    exit 1
}
rm -f "$rootfs.log"
# Same entry point as the official image: `zkServer.sh start-foreground CONFIG_FILE`.
$SUDO tee "$rootfs/usr/local/bin/zkServer.sh" >/dev/null <<'WRAPPER'
#!/bin/sh
# zafka's stand-in for the official image's zkServer.sh: runs ZooKeeper in the foreground.
[ "$1" = "start-foreground" ] || { echo "usage: zkServer.sh start-foreground CONFIG_FILE" >&2; exit 2; }
exec java -Dzookeeper.log.dir=/tmp -Dzookeeper.root.logger=INFO,CONSOLE \
    -cp "/usr/share/java/*:/etc/zookeeper/conf" \
    org.apache.zookeeper.server.quorum.QuorumPeerMain "$2"
WRAPPER
$SUDO chmod +x "$rootfs/usr/local/bin/zkServer.sh"
$SUDO rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
$SUDO tar -C "$rootfs" -c . | $SUDO docker import - "$IMAGE" >/dev/null
echo "==> built $IMAGE"
