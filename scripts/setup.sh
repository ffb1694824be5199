#!/usr/bin/env bash
# Installs what zafka needs on a Debian/Ubuntu machine: Debian packages, a virtualenv
# in .venv and zafka itself (editable). Safe to run again: it skips what is already there.
#   scripts/setup.sh          runtime: Java + ZooKeeper (for the local cluster) and zafka
#   scripts/setup.sh --dev    also the test tools (pytest, ruff, testcontainers, ...) and
#                             Debian's docker-compose (the compose test; the engine itself
#                             comes from scripts/docker-engine.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

apt_updated=""
# apt_install PKG...: installs the Debian packages that are missing (quietly, no prompts).
apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "==> installing Debian packages: ${missing[*]}"
    if [ -z "$apt_updated" ]; then $SUDO apt-get update -qq; apt_updated=1; fi
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
}

command -v python3 >/dev/null || apt_install python3
if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "zafka needs Python >= 3.11 as python3 (found: $(python3 --version 2>&1))" >&2
    exit 1
fi
python3 -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
# The local cluster runs ZooKeeper from Debian's package (Java + the ZooKeeper jars).
apt_install zookeeper
if [ "${1:-}" = "--dev" ]; then apt_install docker-compose; fi

if [ ! -x .venv/bin/python ]; then
    echo "==> creating virtualenv .venv"
    python3 -m venv .venv
fi
extra=""
if [ "${1:-}" = "--dev" ]; then extra="[dev]"; fi
echo "==> installing zafka${extra} into .venv"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".${extra}"
echo "==> set-up done: $(.venv/bin/zafka --version)"
