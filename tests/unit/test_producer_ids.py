"""Producer id blocks: the znode's JSON, the next block, and the pool (pure, no ZooKeeper)."""

from __future__ import annotations

import pytest

from zafka.coordination.producer_ids import (
    PRODUCER_ID_MAX,
    ProducerIdBlock,
    ProducerIdPool,
    next_block,
)
from zafka.coordination.topic_records import MalformedZnode
from zafka.errors import ZafkaError

PATH = "/latest_producer_id_block"


def test_blocks_follow_each_other_without_overlap():
    first = next_block(None, broker_id=1, size=1000)
    second = next_block(first, broker_id=2, size=1000)
    assert first == ProducerIdBlock(1, 0, 999)
    assert second == ProducerIdBlock(2, 1000, 1999)


def test_the_json_is_kafkas_layout_and_round_trips():
    block = ProducerIdBlock(3, 2000, 2999)
    assert block.to_json() == b'{"version":1,"broker":3,"block_start":2000,"block_end":2999}'
    assert ProducerIdBlock.from_json(PATH, block.to_json()) == block


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"[]",
        b'{"version":2,"broker":1,"block_start":0,"block_end":9}',
        b'{"version":1,"broker":1,"block_start":0}',
        b'{"version":1,"broker":1,"block_start":"0","block_end":"9"}',
        b'{"version":1,"broker":1,"block_start":10,"block_end":9}',
        b'{"version":1,"broker":-1,"block_start":0,"block_end":9}',
        b'{"version":1,"broker":true,"block_start":0,"block_end":9}',
    ],
)
def test_a_malformed_znode_is_refused_naming_its_path(data):
    with pytest.raises(MalformedZnode) as err:
        ProducerIdBlock.from_json(PATH, data)
    assert err.value.path == PATH and err.value.error.name == "UNKNOWN_SERVER_ERROR"


def test_ids_run_out_loudly_never_wrapping():
    last = ProducerIdBlock(1, PRODUCER_ID_MAX - 9, PRODUCER_ID_MAX)
    with pytest.raises(ZafkaError, match="used up"):
        next_block(last, broker_id=1, size=10)
    assert next_block(ProducerIdBlock(1, 0, PRODUCER_ID_MAX - 10), 1, 10).end == PRODUCER_ID_MAX


def test_the_pool_hands_out_each_id_of_its_block_once_then_asks_for_more():
    pool = ProducerIdPool()
    assert pool.take() is None  # no block yet
    pool.add_block(ProducerIdBlock(1, 5000, 5002))
    assert [pool.take() for _ in range(3)] == [5000, 5001, 5002]
    assert pool.take() is None
    pool.add_block(ProducerIdBlock(1, 9000, 9000))
    assert (pool.take(), pool.take()) == (9000, None)
