"""A follower's disk is full (RLIMIT_FSIZE: no file of its process grows past a few KiB):
its appends fail, it falls behind, the leaders shrink the ISR past the lag time and writes
to the partitions it follows go on (min.insync.replicas=2 of RF=3); the partition it leads
refuses writes (KAFKA_STORAGE_ERROR, retried). With room again it catches up and rejoins,
and nothing acked is lost."""

from __future__ import annotations

from tests.fault.cluster import STATE_WAIT_S, FaultCluster
from tests.integration.broker_helpers import wait_until

FILE_BYTES_MAX = 16 * 1024


def test_a_follower_with_a_full_disk_leaves_the_isr_and_writes_go_on(cluster: FaultCluster):
    full = max(cluster.brokers)
    broker = cluster.brokers[full]
    cluster.kill(full)
    unlimited = list(broker.args)
    broker.args = ["prlimit", f"--fsize={FILE_BYTES_MAX}", "--", *unlimited]
    cluster.restart(full)
    cluster.create({"min.insync.replicas": "2"})
    cluster.wait_in_sync()
    cluster.under_load(seconds=40)
    others = [p for p in range(3) if cluster.leader(p) != full]
    dropped = lambda: all(full not in cluster.state(p).isr for p in others)  # noqa: E731
    assert wait_until(dropped, STATE_WAIT_S), [cluster.state(p) for p in range(3)]
    left_at = max(t for t, p, n in cluster.isr if p in others)
    cluster.wait_acked(len(cluster.history().acks) + 200)  # writes go on without it
    assert cluster.acks_between(left_at, left_at + STATE_WAIT_S) >= 200
    assert "cannot append" in broker.log_path.read_text() or "File too large" in broker.log()
    cluster.kill(full)
    broker.args = unlimited  # room again
    cluster.restart(full)
    cluster.wait_in_sync()
    figures = cluster.figures(min_insync=2)
    assert figures.acked > 0 and figures.clean(), figures.line()
