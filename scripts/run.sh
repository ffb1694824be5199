#!/usr/bin/env bash
# The main command: installs everything (scripts/setup.sh), starts the local cluster on
# 127.0.0.1 (ZooKeeper and one broker: `zafka cluster up`), then streams a few records
# through it: creates the topic zafka-demo (if it does not exist), produces five keyed
# records to it and consumes the topic back from offset 0, printing KEY<tab>VALUE lines.
# It ends with the command that stops the cluster. Safe to run again: a running cluster is
# kept, the topic is reused (it keeps the records of earlier runs: a topic is a log).
#
# Extra arguments go to `zafka cluster up`, e.g. `scripts/run.sh --zk-port 2182` or
# `scripts/run.sh --dir /tmp/zafka-state`.
# ZAFKA_SKIP_SETUP=1 skips scripts/setup.sh (for when it ran already; the tests use it).
set -euo pipefail
caller_dir="$PWD"
cd "$(dirname "$0")/.."
repo_dir="$PWD"

if [ "${ZAFKA_SKIP_SETUP:-}" != 1 ]; then
    bash scripts/setup.sh
fi
zafka=.venv/bin/zafka
topic=zafka-demo

echo "==> starting the local cluster: $zafka cluster up${*:+ $*}"
up_log="$(mktemp)"
trap 'rm -f "$up_log"' EXIT
$zafka cluster up "$@" | tee "$up_log"
# The broker address and the stop command, as `cluster up` printed them (they follow --dir).
bootstrap="$(sed -n 's/^bootstrap: //p' "$up_log")"
stop="$(sed -n 's/^  stop: *//p' "$up_log")"
if [ -z "$bootstrap" ] || [ -z "$stop" ]; then
    echo "run.sh: \`zafka cluster up\` printed no bootstrap address or stop command" >&2
    exit 1
fi
if [ "$caller_dir" != "$repo_dir" ]; then stop="cd $repo_dir && $stop"; fi
export ZAFKA_BOOTSTRAP="$bootstrap"  # the commands below talk to this cluster

echo
echo "==> creating topic $topic: $zafka topics create $topic --if-not-exists"
$zafka topics create "$topic" --if-not-exists

echo
echo "==> producing 5 records (KEY:VALUE lines): $zafka produce $topic --key-separator :"
printf '%s\n' \
    "user-1:signed up" \
    "user-2:signed up" \
    "user-1:added a book to the cart" \
    "user-2:added a pen to the cart" \
    "user-1:checked out" |
    $zafka produce "$topic" --key-separator :

echo
echo "==> consuming $topic from offset 0: $zafka consume $topic --from-beginning --print-key"
$zafka consume "$topic" --from-beginning --print-key

echo
echo "The cluster keeps running (bootstrap: $bootstrap). Stop it with:"
echo "    $stop"
