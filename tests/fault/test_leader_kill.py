"""kill -9 of the leader under load, three times in a row, chasing the new leader each time
(the killed broker comes back and catches up before the next kill): no acknowledged record
lost or duplicated, and each hit partition acks again within the session timeout + 2 s."""

from __future__ import annotations

from tests.fault.cluster import RECOVERY_BOUND_S, SESSION_TIMEOUT_S, FaultCluster

KILLS = 3


def test_kill_the_leader_three_times_in_a_row(cluster: FaultCluster) -> None:
    cluster.create({"min.insync.replicas": "2"})
    cluster.wait_in_sync()
    cluster.start_producers(seconds=10 + KILLS * 10)
    cluster.wait_acked(100)
    recoveries = []
    for _ in range(KILLS):
        victim = cluster.leader(0)
        hit = [p for p in range(3) if cluster.leader(p) == victim]
        fault_t = cluster.kill(victim)
        recoveries.append(cluster.wait_recovered(fault_t, hit, RECOVERY_BOUND_S + 10))
        print(f"kill -9 of leader {victim} ({hit}): acks again after {recoveries[-1]} s")
        cluster.restart(victim)
        cluster.wait_in_sync()
    figures = cluster.figures(min_insync=2)
    print(f"session timeout {SESSION_TIMEOUT_S} s; recoveries {recoveries}")
    assert figures.acked > 0 and figures.clean(), figures.line()
    assert all(r is not None and r <= RECOVERY_BOUND_S for r in recoveries), recoveries
