"""The partition actor's cleanup timer, which keeps `__consumer_offsets` compacted (and
enforces retention on delete topics): a FakeClock drives the timer, a fake wall clock the
record ages, real log files underneath."""

from __future__ import annotations

from pathlib import Path

from tests.unit.test_partition_actor import Client, FakeClock, records_in
from zafka.actors.partition.actor import PartitionActor
from zafka.actors.runtime.loop import Runtime
from zafka.storage.batch import build_batch
from zafka.storage.config import Fsync, LogConfig
from zafka.transport.client import FetchRequest, FetchResponse, ProduceRequest, ProduceResponse

TOPIC = "orders"  # the Client helper targets n1/orders-0
INTERVAL_MS = 1_000
T0 = 1_700_000_000_000


class Node:
    def __init__(self, directory: Path, config: LogConfig) -> None:
        self.clock = FakeClock()
        self.wall_ms = T0
        self.runtime = Runtime("n1", clock=self.clock)
        self.partition: PartitionActor = self.runtime.spawn(
            lambda: PartitionActor(
                TOPIC,
                0,
                directory,
                config,
                cleanup_interval_ms=INTERVAL_MS,
                wall_clock=lambda: self.wall_ms,
            )
        )
        self.client: Client = self.runtime.spawn(Client)
        self.runtime.start()

    def settle(self) -> None:
        for _ in range(100):
            if not self.runtime.step():
                return
        raise AssertionError("the runtime never went idle")

    def call(self, message: object) -> object:
        before = len(self.client.replies)
        self.client.ask(message)
        self.settle()
        assert len(self.client.replies) == before + 1
        return self.client.replies[-1]

    def write(self, key: bytes | None, value: bytes | None, ts: int) -> None:
        batch = build_batch([(ts, key, value, None)])
        reply = self.call(ProduceRequest(TOPIC, 0, 1, 1000, batch))
        assert isinstance(reply, ProduceResponse) and reply.error_code == 0, reply

    def values(self) -> list[tuple[int, bytes | None]]:
        """Every (offset, value) of the log (a fetch reads one segment at a time)."""
        found: list[tuple[int, bytes | None]] = []
        offset = self.partition.log.log_start_offset
        while offset < self.partition.log.log_end_offset:
            reply = self.call(FetchRequest(TOPIC, 0, offset, 1 << 20, 0, 0))
            assert isinstance(reply, FetchResponse), reply
            found += [r for r in records_in(bytes(reply.records)) if r[0] >= offset]
            offset = found[-1][0] + 1
        return found

    def tick(self, ms: int = INTERVAL_MS) -> None:
        self.clock.now_ms += ms
        self.settle()


def test_a_compacted_topic_keeps_the_latest_record_per_key_once_a_segment_is_sealed(
    tmp_path: Path,
) -> None:
    config = LogConfig(segment_bytes=1024, cleanup_policy="compact", fsync=Fsync.NEVER)
    node = Node(tmp_path, config)
    for i in range(60):
        node.write(b"key-%d" % (i % 3), b"value-%d" % i, T0 + i)
    assert len(node.partition.log.segments) > 2
    before = node.values()
    node.tick(INTERVAL_MS - 1)
    assert node.values() == before  # not due yet
    node.tick(1)
    after = node.values()
    assert len(after) < len(before)
    latest = {}
    for offset, value in before:
        latest[int(value.split(b"-")[1]) % 3] = (offset, value)
    assert set(latest.values()) <= set(after)  # the latest per key, at their offsets
    assert node.partition.clean() == 0  # nothing sealed since: no rewrite


def test_a_delete_topic_drops_segments_past_retention(tmp_path: Path) -> None:
    config = LogConfig(segment_bytes=1024, retention_ms=60_000, fsync=Fsync.NEVER)
    node = Node(tmp_path, config)
    for i in range(40):
        node.write(None, b"old-%d" % i, T0)
    node.wall_ms = T0 + 60_001
    node.tick()
    remaining = node.values()
    assert remaining and node.partition.log.log_start_offset > 0
    assert len(node.partition.log.segments) == 1  # only the active segment is ever kept
