"""Producer id blocks claimed in a real ZooKeeper: concurrent claimers never overlap, and a
claimer that starts again (a restarted broker) continues past the last block."""

from __future__ import annotations

import threading

import pytest

from zafka.coordination import paths
from zafka.coordination.producer_ids import ProducerIdBlock, ProducerIdPool, claim_block

pytestmark = pytest.mark.integration

CLAIMS_PER_BROKER = 25
JOIN_TIMEOUT_S = 30.0


def test_two_brokers_claiming_at_once_never_overlap(make_client):
    clients = {1: make_client(), 2: make_client()}
    claimed: dict[int, list[ProducerIdBlock]] = {1: [], 2: []}
    start = threading.Barrier(2, timeout=JOIN_TIMEOUT_S)

    def claim(broker_id: int) -> None:
        start.wait()
        for _ in range(CLAIMS_PER_BROKER):
            claimed[broker_id].append(claim_block(clients[broker_id], broker_id, size=10))

    threads = [threading.Thread(target=claim, args=(b,)) for b in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT_S)
        assert not thread.is_alive(), "a claim did not finish"
    blocks = sorted(claimed[1] + claimed[2], key=lambda b: b.start)
    assert len(blocks) == 2 * CLAIMS_PER_BROKER
    # Contiguous and disjoint: every id 0..499 is in exactly one block.
    assert [(b.start, b.end) for b in blocks] == [(i * 10, i * 10 + 9) for i in range(50)]
    assert all(b.broker == 1 for b in claimed[1]) and all(b.broker == 2 for b in claimed[2])


def test_a_restarted_claimer_continues_past_the_last_block(make_client):
    first = claim_block(make_client(), broker_id=1)
    assert (first.start, first.end) == (0, 999)
    pool = ProducerIdPool()
    pool.add_block(first)
    assert pool.take() == 0  # only one id used; the rest of the block is never reused

    again = claim_block(make_client(), broker_id=1)  # a new session: the broker restarted
    assert (again.start, again.end) == (1000, 1999)
    stored = make_client().get(paths.LATEST_PRODUCER_ID_BLOCK)[0]
    assert ProducerIdBlock.from_json(paths.LATEST_PRODUCER_ID_BLOCK, stored) == again
