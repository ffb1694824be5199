"""`zafka cluster restart [--rolling]`: restart the local cluster's brokers.

All at once: every broker is stopped (SIGTERM, as `cluster down` does), then started again
on its port and waited for as `cluster up` does. Rolling (`--rolling`), as an operator
restarts Kafka: one broker at a time, the controller last (one controller move, not one per
broker); each is stopped, started, waited for until it answers, and then until the cluster
has settled: no more partitions offline or under-replicated than before it was stopped
(once followers replicate, that is "its replicas are back in the ISR"). A broker that does
not settle within `limits.broker_start_timeout_s` stops the restart with a LauncherError,
leaving the remaining brokers running as they were.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from kazoo.client import KazooClient

from zafka import clock, limits
from zafka.cluster import BROKER_PREFIX, start_brokers, zookeeper_client
from zafka.cluster_processes import (
    LauncherError,
    ProcessInfo,
    is_running,
    load_state,
    stop_processes,
)
from zafka.coordination.controller import read_controller
from zafka.coordination.topics import TopicStore
from zafka.errors import ZafkaError

SETTLE_POLL_S = 0.2  # how often a rolling restart looks at the partitions' states


def running_brokers(root: Path) -> dict[int, ProcessInfo]:
    """The recorded brokers that run now, by id."""
    brokers = {}
    for name, info in load_state(root).items():
        if name.startswith(BROKER_PREFIX) and is_running(info.pid, info.marker):
            brokers[int(name.removeprefix(BROKER_PREFIX))] = info
    return dict(sorted(brokers.items()))


def restart(root: Path, rolling: bool, say: Callable[[str], None]) -> list[ProcessInfo]:
    """Restart every running broker (see the module docstring); `say` reports each step."""
    brokers = running_brokers(root)
    if not brokers:
        raise LauncherError("no broker is running: start the cluster with `zafka cluster up`")
    count = max(brokers)
    if not rolling:
        say(f"stopping {len(brokers)} broker{'s' if len(brokers) > 1 else ''} ...")
        stop_processes(list(brokers.values()))
        say("starting them again ...")
        return start_brokers(root, count, set(brokers))
    with zookeeper_client(root) as client:
        if client is None:
            raise LauncherError("ZooKeeper does not answer: check it with `zafka cluster status`")
        first = read_controller(client)
        order = [b for b in brokers if b != first] + [b for b in brokers if b == first]
        for broker_id in order:
            _restart_one(root, client, brokers[broker_id], count, say)
    return list(running_brokers(root).values())


def _restart_one(
    root: Path, client: KazooClient, info: ProcessInfo, count: int, say: Callable[[str], None]
) -> None:
    before = unsettled(client)
    say(f"restarting {info.name} ...")
    stop_processes([info])
    broker_id = int(info.name.removeprefix(BROKER_PREFIX))
    start_brokers(root, count, {broker_id})  # waits until it answers
    deadline = clock.monotonic_s() + limits.broker_start_timeout_s
    while _worse(now := unsettled(client), before):
        if clock.monotonic_s() > deadline:
            offline, under = now
            raise LauncherError(
                f"{info.name} is back, but {offline} partitions are offline and {under} "
                f"under-replicated (before: {before[0]} and {before[1]}) after "
                f"{limits.broker_start_timeout_s:.0f}s; see its log: {info.log}"
            )
        time.sleep(SETTLE_POLL_S)  # ZooKeeper has no one watch for "all partitions settled"
    say(f"{info.name} is back; the partitions are as led and replicated as before")


def _worse(now: tuple[int, int], before: tuple[int, int]) -> bool:
    return now[0] > before[0] or now[1] > before[1]


def unsettled(client: KazooClient) -> tuple[int, int]:
    """(partitions offline, partitions under-replicated) in the cluster now."""
    store = TopicStore(client)
    offline = under = 0
    for name in store.names():
        try:
            info = store.get(name)
            if info is None:
                continue
            states = [store.partition_state(name, p)[0] for p in range(info.partitions)]
        except ZafkaError:  # deleted while read
            continue
        for state, replicas in zip(states, info.replicas, strict=True):
            offline += state.leader < 0
            under += len(state.isr) < len(replicas)
    return offline, under
