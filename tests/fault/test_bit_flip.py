"""One flipped bit in a follower's sealed segment while it is down: back, the follower checks
its log before it copies anything, cuts it at the damaged batch and fetches the rest again
from its leader; it is not in the ISR (so cannot be elected) until then. Elected afterwards
(the two other brokers killed), it serves every acked record, none damaged."""

from __future__ import annotations

from tests.fault.cluster import TOPIC, FaultCluster
from tests.integration.broker_helpers import wait_until
from zafka.storage.batch import HEADER_SIZE, parse_header


def test_a_follower_with_a_flipped_bit_is_repaired_from_its_leader(cluster: FaultCluster):
    cluster.create({"min.insync.replicas": "2", "segment.bytes": "4096"})
    cluster.wait_in_sync()
    cluster.start_producers(count=1, seconds=8, rate=300)
    cluster.wait_producers()
    leader = cluster.leader(0)
    follower = next(b for b in cluster.state(0).isr if b != leader)
    cluster.kill(follower)
    assert wait_until(lambda: follower not in cluster.state(0).isr, 30.0)  # seen dead
    segments = sorted((cluster.brokers[follower].data_dir / f"{TOPIC}-0").glob("*.log"))
    assert len(segments) > 2, segments  # sealed ones to damage
    damaged = segments[1]
    data = bytearray(damaged.read_bytes())
    middle = 0
    while middle + parse_header(data, middle).size <= len(data) // 2:
        middle += parse_header(data, middle).size
    data[middle + HEADER_SIZE + 1] ^= 0x10  # in a batch's records: only its CRC tells
    damaged.write_bytes(bytes(data))
    cluster.restart(follower)
    cluster.wait_in_sync()
    log = cluster.brokers[follower].log_path.read_text()
    assert "cut there, to fetch again" in log, log[-3000:]
    others = [b for b in cluster.brokers if b != follower]
    for b in others:  # the repaired follower is the only one left: it leads partition 0
        cluster.kill(b)
    assert wait_until(lambda: cluster.leader(0) == follower, 30.0), cluster.state(0)
    for b in others:
        cluster.restart(b)
    cluster.wait_in_sync()
    figures = cluster.figures(min_insync=2)
    assert figures.acked > 0 and figures.clean(), figures.line()
