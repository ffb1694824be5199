"""Every replica loses power at once: kill -9 of all three brokers, then each partition log
cut back to what was surely fsynced, as a machine keeps after a power loss: with
`zafka.fsync=always` that is everything appended (each append is fsynced before it is
acked); with fsync on the 1 s timer (the default) the worst case, the recovery point (the
last fsync). With `always` no acked record is lost; with the timer only records acked in the
last interval before the power went may be, and new records then take their offsets
(docs/ARCHITECTURE.md, Storage decisions). Losing a minority of brokers loses nothing
either way (the other scenarios)."""

from __future__ import annotations

import pytest

from tests.fault import checker
from tests.fault.cluster import TOPIC, FaultCluster
from zafka.storage.log import PartitionLog

FSYNC_INTERVAL_S = 1.0
SLACK_S = 0.5  # an ack is logged by the producer a moment after the leader answered


def lose_power(cluster: FaultCluster, fsync: str) -> float:
    at = min(cluster.kill(b) for b in cluster.brokers)
    if fsync == "interval":  # the page cache is gone: what came after the last fsync too
        for broker in cluster.brokers.values():
            for directory in broker.data_dir.glob(f"{TOPIC}-*"):
                log = PartitionLog.open(directory)
                log.truncate_to(log.recovery_point)
                log.close()
    return at


@pytest.mark.parametrize("fsync", ["always", "interval"])
def test_all_replicas_lose_power_at_once(cluster: FaultCluster, fsync: str) -> None:
    cluster.create({"min.insync.replicas": "2", "zafka.fsync": fsync})
    cluster.wait_in_sync()
    cluster.under_load(seconds=30)
    power_off = lose_power(cluster, fsync)
    for broker_id in cluster.brokers:
        cluster.restart(broker_id)
    cluster.wait_in_sync()
    figures = cluster.figures(min_insync=2)
    lost = checker.lost(cluster.history(), checker.read_final(cluster.tmp / "final.jsonl"))
    oldest = max((power_off - a.t for a in lost), default=0.0)
    print(f"fsync={fsync}: {len(lost)} acked records lost, acked up to {oldest:.2f} s before")
    assert figures.duplicates == figures.order_violations == 0, figures.line()
    if fsync == "always":
        assert figures.clean(), figures.line()
    else:  # only what was acked within the last interval; its offsets were reused
        assert oldest <= FSYNC_INTERVAL_S + SLACK_S, figures.line()
        assert figures.two_values <= figures.lost, figures.line()
