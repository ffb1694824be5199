#!/usr/bin/env bash
# The main job: installs everything (scripts/setup.sh) and starts the local cluster on
# 127.0.0.1, waiting until it answers. Stop it with `.venv/bin/zafka cluster down`.
# Extra arguments go to `zafka cluster up`, e.g. `scripts/run.sh --zk-port 2182`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
.venv/bin/zafka cluster up "$@"
