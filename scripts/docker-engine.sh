#!/usr/bin/env bash
# Starts or stops a Docker engine on a machine where none runs (no systemd needed).
#   scripts/docker-engine.sh start   install docker.io if missing, start dockerd, wait for it
#   scripts/docker-engine.sh stop    stop the dockerd this script started (by its PID file)
# The engine runs with overlay2, no bridge and no iptables rules: zafka's containers use
# host networking only, so nothing is exposed beyond what the containers bind themselves.
set -euo pipefail

PID_FILE="${ZAFKA_DOCKERD_PID_FILE:-/run/zafka-dockerd.pid}"
LOG_FILE="${ZAFKA_DOCKERD_LOG_FILE:-/var/log/zafka-dockerd.log}"
START_TIMEOUT_S=60
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

engine_answers() { $SUDO docker info >/dev/null 2>&1; }

install_engine() {
    command -v dockerd >/dev/null && return 0
    echo "==> installing docker.io"
    # Keep the package's init script from starting a daemon with default networking.
    local policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
        $SUDO chmod +x "$policy"
        trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT  # removed even if the install fails
    fi
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq docker.io >/dev/null
}

start() {
    if engine_answers; then
        echo "==> a Docker engine is already running; using it"
        return 0
    fi
    install_engine
    echo "==> starting dockerd (log: $LOG_FILE)"
    $SUDO sh -c "nohup dockerd --storage-driver=overlay2 --bridge=none --iptables=false \
        >'$LOG_FILE' 2>&1 & echo \$! >'$PID_FILE'"
    local waited_s=0
    until engine_answers; do
        if [ "$waited_s" -ge "$START_TIMEOUT_S" ]; then
            echo "dockerd did not answer within ${START_TIMEOUT_S}s; see $LOG_FILE" >&2
            tail -n 20 "$LOG_FILE" >&2 || true
            exit 1
        fi
        sleep 1
        waited_s=$((waited_s + 1))
    done
    echo "==> dockerd is up (pid $(cat "$PID_FILE"))"
}

stop() {
    if [ ! -f "$PID_FILE" ]; then
        echo "==> no dockerd started by zafka (no $PID_FILE); nothing to stop"
        return 0
    fi
    local pid
    pid="$(cat "$PID_FILE")"
    if kill -0 "$pid" 2>/dev/null; then
        echo "==> stopping dockerd (pid $pid)"
        $SUDO kill -TERM "$pid"
        for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
        if kill -0 "$pid" 2>/dev/null; then $SUDO kill -KILL "$pid"; fi
    fi
    $SUDO rm -f "$PID_FILE"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
