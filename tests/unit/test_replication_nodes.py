"""Replication between two runtimes over the memory network (real log files, no sockets):
a leader node (`broker-1`: its `replication` actor and the leader partition actor) and a
follower node (`broker-2`: the follower partition actor and its fetcher), driven by one
virtual clock. acks=all waits for the follower; min.insync.replicas refuses below it; the ISR
shrinks when the follower stops fetching; a follower with a divergent tail cuts it."""

from __future__ import annotations

from pathlib import Path

from zafka import limits
from zafka.actors.partition.actor import PartitionActor
from zafka.actors.partition.replica_io import AlterIsr, IsrWritten
from zafka.actors.partition.roles import Followership, Leadership
from zafka.actors.replication.fetcher import ReplicaFetcher
from zafka.actors.replication.server import ReplicationActor, wake_followers
from zafka.actors.runtime.actor import Actor, handlers
from zafka.actors.runtime.loop import Runtime
from zafka.errors import ZafkaError
from zafka.storage.batch import build_batch
from zafka.storage.config import LogConfig
from zafka.storage.log import PartitionLog
from zafka.transport.client import ProduceRequest, ProduceResponse
from zafka.transport.envelope import Envelope
from zafka.transport.memory import MemoryNetwork, MemoryTransport

TOPIC = "orders"
LAG_MS = 1_000
FETCH_GIVEN_UP_MS = limits.replica_fetch_wait_ms + limits.replica_fetch_timeout_ms + 1


class Broker(Actor):
    """Stands for the broker actor: writes every AlterIsr at once (as ZooKeeper would)."""

    def __init__(self) -> None:
        super().__init__("broker")
        self.version = 0
        self.isrs: list[tuple[int, ...]] = []

    def on_alter_isr(self, envelope: Envelope) -> None:
        change: AlterIsr = envelope.message
        self.version += 1
        self.isrs.append(change.isr)
        written = IsrWritten(change.leader_epoch, change.isr, self.version)
        self.cast(f"{self._runtime().node}/{TOPIC}-0", written)

    HANDLERS = handlers({AlterIsr: on_alter_isr})


class Client(Actor):
    def __init__(self) -> None:
        super().__init__("client")
        self.replies: list[object] = []

    def produce(self, acks: int, values: list[bytes], timeout_ms: int = 5_000) -> None:
        batch = build_batch([(1, None, v, None) for v in values])
        request = ProduceRequest(TOPIC, 0, acks, timeout_ms, batch)
        self.call(f"broker-1/{TOPIC}-0", request, 60_000, self._record)

    def _record(self, reply: Envelope | ZafkaError) -> None:
        self.replies.append(reply.message if isinstance(reply, Envelope) else reply)


class Pair:
    def __init__(self, root: Path, min_insync: int = 1, follower_log: list[int] = ()) -> None:
        self.network = MemoryNetwork(seed=3)
        clock = lambda: self.network.now_ms  # noqa: E731
        t1, t2 = (
            MemoryTransport(self.network, "broker-1"),
            MemoryTransport(self.network, "broker-2"),
        )
        t1.bind("mem://1")
        t2.bind("mem://2")
        t2.connect("broker-1", "mem://1")
        self.leader_node = Runtime("broker-1", t1, clock=clock)
        self.follower_node = Runtime("broker-2", t2, clock=clock)
        self.root = root
        for epoch in follower_log:  # a divergent tail the follower holds from an old epoch
            log = PartitionLog.open(root / "2")
            log.append(bytearray(build_batch([(1, None, b"stale", None)])), epoch)
            log.close()
        self.leader_node.spawn(ReplicationActor)
        self.broker: Broker = self.leader_node.spawn(Broker)
        lead = Leadership(1, (1, 2), (1, 2), 0, min_insync, LAG_MS)
        wake = lambda t, p: wake_followers(self.leader_node, t, p)  # noqa: E731
        self.leader: PartitionActor = self.leader_node.spawn(
            lambda: PartitionActor(TOPIC, 0, root / "1", LogConfig(), 5, role=lead, on_append=wake)
        )
        self.client: Client = self.leader_node.spawn(Client)
        self.follower: PartitionActor = self.follower_node.spawn(
            lambda: PartitionActor(TOPIC, 0, root / "2", LogConfig(), 5, role=Followership(1))
        )
        self.fetcher: ReplicaFetcher = self.follower_node.spawn(lambda: ReplicaFetcher(2, 1))
        self.leader_node.start()
        self.follower_node.start()
        self.fetcher.follow(TOPIC, 0, 5)

    def settle(self, ms: int = 0, rounds: int = 200) -> None:
        """Run both nodes until idle; then move the clock `ms` and run them again."""
        for advance in (0, ms):
            self.network.advance(advance)
            for _ in range(rounds):
                if self.leader_node.step() + self.follower_node.step() == 0:
                    break


def test_acks_all_is_answered_once_the_follower_has_the_batch(tmp_path: Path) -> None:
    pair = Pair(tmp_path)
    pair.settle()
    pair.client.produce(-1, [b"a", b"b"])
    pair.leader_node.step()  # appended on the leader; the follower has not fetched it yet
    assert pair.client.replies == [] and pair.leader.state.high_watermark == 0
    pair.settle()
    assert pair.client.replies == [ProduceResponse(0, 0, -1)]
    assert pair.follower.log.log_end_offset == 2 and pair.leader.state.high_watermark == 2


def test_a_stopped_follower_leaves_the_isr_and_writes_go_on(tmp_path: Path) -> None:
    pair = Pair(tmp_path, min_insync=1)
    pair.settle()
    pair.network.drop("broker-2", "broker-1", 1.0)  # the follower is cut off
    pair.client.produce(-1, [b"a"])
    pair.settle(ms=LAG_MS + 600)  # past the lag time, and the next ISR check
    assert pair.broker.isrs == [(1,)]
    assert pair.client.replies == [ProduceResponse(0, 0, -1)]  # answered once the ISR shrank
    pair.network.drop("broker-2", "broker-1", 0.0)
    pair.settle(ms=FETCH_GIVEN_UP_MS)  # its lost fetch timed out ...
    pair.settle(ms=limits.replica_fetch_backoff_ms)  # ... and it fetches again
    assert pair.broker.isrs == [(1,), (1, 2)]  # caught up: back in the ISR
    assert pair.follower.log.log_end_offset == 1


def test_below_min_insync_acks_all_is_refused_and_nothing_is_appended(tmp_path: Path) -> None:
    pair = Pair(tmp_path, min_insync=2)
    pair.settle()
    pair.network.drop("broker-2", "broker-1", 1.0)
    pair.client.produce(-1, [b"a"], timeout_ms=500)
    pair.settle(ms=LAG_MS + 600)
    (timed_out,) = pair.client.replies  # not acked: the ISR shrank to the leader alone
    assert isinstance(timed_out, ZafkaError)
    assert timed_out.error.name in ("REQUEST_TIMED_OUT", "NOT_ENOUGH_REPLICAS_AFTER_APPEND")
    end = pair.leader.log.log_end_offset
    pair.client.produce(-1, [b"b"])
    pair.settle()
    assert pair.client.replies[1].error.name == "NOT_ENOUGH_REPLICAS"
    assert pair.leader.log.log_end_offset == end  # refused before anything was appended
    pair.client.produce(1, [b"c"])  # acks=1 needs the leader alone
    pair.settle()
    assert pair.client.replies[2] == ProduceResponse(0, end, -1)


def test_a_follower_cuts_a_divergent_tail_before_it_copies(tmp_path: Path) -> None:
    pair = Pair(tmp_path, follower_log=[0, 0, 4])  # offsets 0-1 in epoch 0, 2 in epoch 4
    leader_log = pair.leader.log
    pair.client.produce(1, [b"x", b"y", b"z"])
    pair.settle()
    pair.settle(ms=600)
    follower_log = pair.follower.log
    assert follower_log.log_end_offset == 3
    assert follower_log.read(0, 1 << 20).tobytes() == leader_log.read(0, 1 << 20).tobytes()
    assert follower_log.epochs.entries() == [(5, 0)]  # the stale epochs are gone
