"""Process and ZooKeeper faults under load (acks=all, min.insync.replicas=2, RF=3): kill -9
of the controller; ZooKeeper down for 2 s and for 8 s (past every session); a rolling
restart by SIGTERM and by kill -9 (each broker back and in sync before the next); a torn
tail on the leader's active segment (kill -9, half a batch appended, restart)."""

from __future__ import annotations

import time

import pytest

from tests.fault.cluster import RECOVERY_BOUND_S, TOPIC, FaultCluster

INSYNC = {"min.insync.replicas": "2"}


def test_kill_the_controller(cluster: FaultCluster) -> None:
    cluster.create(INSYNC)
    cluster.wait_in_sync()
    cluster.under_load(seconds=20)
    controller = cluster.controller()
    hit = [p for p in range(3) if cluster.leader(p) == controller]
    fault_t = cluster.kill(controller)
    recovery = cluster.wait_recovered(fault_t, hit, RECOVERY_BOUND_S + 10)
    assert cluster.controller() != controller
    cluster.restart(controller)
    cluster.wait_in_sync()
    figures = cluster.figures(min_insync=2)
    print(f"kill -9 of the controller (leading {hit}): acks again after {recovery} s")
    assert figures.acked > 0 and figures.clean(), figures.line()
    assert recovery is not None and recovery <= RECOVERY_BOUND_S


@pytest.mark.parametrize("down_s", [2, 8])
def test_zookeeper_down(cluster: FaultCluster, zk_server, down_s: int) -> None:
    cluster.create(INSYNC)
    cluster.wait_in_sync()
    cluster.under_load(seconds=20 + down_s)
    stopped_at = time.time()
    zk_server.stop()
    time.sleep(down_s)  # the fault itself: how long ZooKeeper stays away
    zk_server.restart()
    back_at = time.time()
    cluster.wait_in_sync()
    figures = cluster.figures(min_insync=2)
    print(f"ZooKeeper down {down_s} s ({back_at - stopped_at:.1f} s with its restart)")
    assert figures.acked > 0 and figures.clean(), figures.line()
    assert cluster.acks_between(back_at, time.time()) > 0  # served again after it


@pytest.mark.parametrize("how", ["sigterm", "kill"])
def test_rolling_restart(cluster: FaultCluster, how: str) -> None:
    cluster.create(INSYNC)
    cluster.wait_in_sync()
    cluster.under_load(seconds=45)
    for broker_id, broker in cluster.brokers.items():
        if how == "sigterm":
            assert broker.terminate() == 0, broker.log()
        else:
            cluster.kill(broker_id)
        cluster.restart(broker_id)
        cluster.wait_in_sync()
    figures = cluster.figures(min_insync=2)
    assert figures.acked > 0 and figures.clean(), figures.line()


def test_a_torn_tail_on_the_leader_is_cut_at_restart(cluster: FaultCluster) -> None:
    cluster.create(INSYNC)
    cluster.wait_in_sync()
    cluster.under_load(seconds=20)
    victim = cluster.leader(0)
    cluster.kill(victim)
    segment = max((cluster.brokers[victim].data_dir / f"{TOPIC}-0").glob("*.log"))
    with open(segment, "ab") as f:  # half a batch: what a crash in mid-write leaves
        f.write(segment.read_bytes()[:40] or b"\x00" * 40)
    cluster.restart(victim)
    cluster.wait_in_sync()
    figures = cluster.figures(min_insync=2)
    assert figures.acked > 0 and figures.clean(), figures.line()
