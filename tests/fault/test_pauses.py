"""SIGSTOP faults under load (acks=all, min.insync.replicas=2, RF=3): a leader paused past
its ZooKeeper session and resumed (a zombie: it must ack nothing), one follower paused past
the lag time (the ISR shrinks, writes go on, it rejoins), both followers of a partition
paused (no ack while the ISR is below min.insync.replicas; acks resume once they are back)."""

from __future__ import annotations

import time

from tests.fault.cluster import SESSION_TIMEOUT_S, STATE_WAIT_S, FaultCluster
from tests.integration.broker_helpers import wait_until
from zafka import limits

PAUSE_S = SESSION_TIMEOUT_S + 4  # past the session: the controller moves on without it
LAG_PAUSE_S = limits.replica_lag_time_max_ms / 1000 + 2


def test_a_leader_paused_past_its_session_acks_nothing_when_it_wakes(cluster: FaultCluster):
    cluster.create({"min.insync.replicas": "2"})
    cluster.wait_in_sync()
    cluster.under_load(seconds=25)
    zombie = cluster.leader(0)
    paused_at = cluster.pause(zombie)
    cluster.wait_led_elsewhere(0, zombie)
    time.sleep(PAUSE_S)  # the fault itself: how long the process stays frozen
    resumed_at = cluster.resume(zombie)
    cluster.wait_in_sync()
    figures = cluster.figures(min_insync=2, zombie_window=(paused_at, resumed_at + 10))
    assert figures.acked > 0 and figures.clean(), figures.line()


def test_a_follower_paused_past_the_lag_time_leaves_the_isr_and_rejoins(cluster: FaultCluster):
    cluster.create({"min.insync.replicas": "2"})
    cluster.wait_in_sync()
    cluster.under_load(seconds=LAG_PAUSE_S + 15)
    follower = next(b for b in cluster.state(0).isr if b != cluster.leader(0))
    paused_at = cluster.pause(follower)
    time.sleep(LAG_PAUSE_S)  # the fault itself
    resumed_at = cluster.resume(follower)
    shrunk = [n for t, p, n in cluster.isr if paused_at <= t <= resumed_at and n < 3]
    assert shrunk, "the ISR never shrank while the follower was paused"
    assert cluster.acks_between(paused_at + SESSION_TIMEOUT_S + 3, resumed_at) > 0  # writes go on
    cluster.wait_in_sync()  # it rejoined
    figures = cluster.figures(min_insync=2)
    assert figures.acked > 0 and figures.clean(), figures.line()


def test_both_followers_paused_no_ack_below_min_insync(cluster: FaultCluster):
    cluster.create({"min.insync.replicas": "2"})
    cluster.wait_in_sync()
    cluster.under_load(seconds=30)
    leader = cluster.leader(0)
    followers = [b for b in cluster.brokers if b != leader]
    for b in followers:
        cluster.pause(b)
    assert wait_until(lambda: len(cluster.state(0).isr) == 1, STATE_WAIT_S), cluster.state(0)
    alone_at = time.time()
    time.sleep(3)  # the fault itself: the partition stays below min.insync.replicas
    for b in followers:
        resumed_at = cluster.resume(b)
    assert cluster.acks_between(alone_at, resumed_at) == 0  # nothing acked meanwhile
    cluster.wait_in_sync()
    figures = cluster.figures(min_insync=2)
    assert figures.acked > 0 and figures.clean(), figures.line()
    assert cluster.acks_between(resumed_at, time.time()) > 0  # and acks resumed
