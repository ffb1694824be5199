#!/usr/bin/env bash
# Runs the whole test suite on this machine, doing all of its own set-up first:
# Debian packages and .venv (scripts/setup.sh --dev), a Docker engine if none runs
# (scripts/docker-engine.sh), the ZooKeeper and broker images (scripts/zk-image.sh,
# scripts/broker-image.sh), then ruff and pytest.
# Whatever it started (test containers, dockerd) is stopped on exit, pass or fail.
# Extra arguments go to pytest, e.g. `scripts/test.sh -m unit`.
set -euo pipefail
cd "$(dirname "$0")/.."

export TESTCONTAINERS_RYUK_DISABLED=true  # Ryuk's image needs a registry; we clean up ourselves
ZAFKA_TEST_RUN_ID="run-$$-$(date +%s)"
export ZAFKA_TEST_RUN_ID
started_engine=""

cleanup() {
    local status=$?
    set +e  # clean up as much as possible, whatever fails here
    if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
        local leftovers
        leftovers="$(docker ps -aq --filter "label=zafka.test-run=$ZAFKA_TEST_RUN_ID")"
        if [ -n "$leftovers" ]; then
            echo "==> removing leftover test containers"
            docker rm -f $leftovers >/dev/null
        fi
    fi
    if [ -n "$started_engine" ]; then bash scripts/docker-engine.sh stop; fi
    exit "$status"
}
trap cleanup EXIT

bash scripts/setup.sh --dev
if ! docker info >/dev/null 2>&1; then
    started_engine=1
    bash scripts/docker-engine.sh start
fi
bash scripts/zk-image.sh
bash scripts/broker-image.sh

echo "==> ruff (lint and format check)"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "==> pytest"
.venv/bin/python -m pytest "$@"
