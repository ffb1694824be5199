"""BrokerActor without ZooKeeper: a fake `BrokerZooKeeper` behind the real ZooKeeperWorker.

What it shows: ZooKeeper work runs on the worker, so produce and fetch are answered while a
metadata request is stuck in ZooKeeper; results come back in order and host partitions;
producer ids wait for their block; a stopping broker answers what is still waiting."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from kazoo.exceptions import ConnectionLoss

from zafka.actors.broker.actor import BrokerActor, BrokerContext
from zafka.actors.broker.admin import HostPlan
from zafka.actors.runtime.actor import Actor
from zafka.actors.runtime.loop import Runtime
from zafka.coordination.producer_ids import ProducerIdBlock
from zafka.coordination.topic_records import TopicInfo
from zafka.coordination.worker import ZooKeeperWorker
from zafka.errors import ZafkaError
from zafka.storage.batch import build_batch
from zafka.transport.admin import DescribeTopicsRequest
from zafka.transport.client import (
    FetchRequest,
    FetchResponse,
    InitProducerIdRequest,
    InitProducerIdResponse,
    MetadataRequest,
    MetadataResponse,
    ProduceRequest,
    ProduceResponse,
)
from zafka.transport.controller import LeaderAndIsrRequest, LeaderAndIsrResponse
from zafka.transport.envelope import Envelope

NODE = "broker-1"
WAIT_S = 5.0
ORDERS = TopicInfo("orders", "id-1", ((1,),))


def led_here(info: TopicInfo, broker: int = 1) -> tuple[LeaderAndIsrRequest, ...]:
    """The states of a topic whose every partition `broker` leads alone, epoch 0."""
    return tuple(
        LeaderAndIsrRequest(info.name, p, broker, 0, (broker,), (broker,), 0, "")
        for p in range(info.partitions)
    )


class FakeStore:
    def __init__(self) -> None:
        self.watchers: list = []

    def watch(self, callback) -> None:
        self.watchers.append(callback)


class FakeZooKeeper:
    """BrokerZooKeeper's interface; `gate` holds a metadata job until the test opens it."""

    broker_id = 1

    def __init__(self) -> None:
        self.store = FakeStore()
        self.topics = {"orders": ORDERS}
        self.gate = threading.Event()
        self.blocks = iter([ProducerIdBlock(1, 0, 1), ProducerIdBlock(1, 2000, 2001)])
        self.fail_with: Exception | None = None
        self.created: list[HostPlan] = []  # what a metadata request auto-creates

    def topic_plans(self, known):
        plans = [
            HostPlan(i, led_here(i)) for n, i in self.topics.items() if known.get(n) != i.topic_id
        ]
        return sorted(self.topics), plans

    def metadata(self, topics):
        assert self.gate.wait(WAIT_S), "the test never opened the gate"
        if self.fail_with is not None:
            raise self.fail_with
        return MetadataResponse((), ()), self.created

    def describe_topics(self, names):
        raise ZafkaError("INVALID_TOPIC", "from the job")

    def claim_producer_ids(self):
        return next(self.blocks)

    def controller(self):
        return self.controller_is

    controller_is = (1, 3)  # (broker id, controller epoch) in ZooKeeper


class Client(Actor):
    def __init__(self) -> None:
        super().__init__("client")
        self.replies: dict[int, object] = {}

    def ask(self, target: str, message: object, epoch: int = -1) -> int:
        """Call the broker's `target`; its answer lands in `replies[correlation id]`."""
        holder: list[int] = []

        def record(reply: Envelope | ZafkaError) -> None:
            self.replies[holder[0]] = reply.message if isinstance(reply, Envelope) else reply

        holder.append(self.call(f"{NODE}/{target}", message, 60_000, record, epoch))
        return holder[0]


class Node:
    """A runtime with the broker (fake ZooKeeper, real worker) and a client actor."""

    def __init__(self, data_dir: Path) -> None:
        self.runtime = Runtime(NODE)
        self.posts = threading.Semaphore(0)

        def post(fn) -> None:  # Runtime.post, and a count the test can wait on
            self.runtime.post(fn)
            self.posts.release()

        self.zk = FakeZooKeeper()
        self.worker = ZooKeeperWorker(post)
        self.context = BrokerContext(self.zk, self.worker, data_dir)  # type: ignore[arg-type]
        self.broker = self.runtime.spawn(lambda: BrokerActor(self.context))
        self.client: Client = self.runtime.spawn(Client)
        self.worker.start()
        self.runtime.start()

    def settle(self) -> None:
        for _ in range(100):
            if not self.runtime.step():
                return
        raise AssertionError("the runtime never went idle")

    def ask(self, target: str, message: object, epoch: int = -1) -> int:
        correlation_id = self.client.ask(target, message, epoch)
        self.settle()
        return correlation_id

    def after_jobs(self, count: int) -> None:
        """Wait (bounded) until `count` more job results were posted, then run them."""
        for _ in range(count):
            assert self.posts.acquire(timeout=WAIT_S), "no job result came back"
        self.settle()


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    node = Node(tmp_path / "data")
    yield node
    node.zk.gate.set()
    node.runtime.stop()
    assert node.worker.close(WAIT_S)


def test_produce_and_fetch_are_served_while_zookeeper_is_stuck(node: Node) -> None:
    metadata = node.ask("broker", MetadataRequest(None))
    assert metadata not in node.client.replies  # deferred: its job waits at the gate
    batch = build_batch([(1, None, b"v", None)])
    produced = node.ask("orders-0", ProduceRequest("orders", 0, 1, 1000, batch))
    fetched = node.ask("orders-0", FetchRequest("orders", 0, 0, 1 << 20, 0, 0))
    assert node.client.replies[produced] == ProduceResponse(0, 0, -1)
    assert isinstance(node.client.replies[fetched], FetchResponse)
    assert metadata not in node.client.replies  # still stuck, and nobody waited for it
    node.zk.gate.set()
    node.after_jobs(1)
    assert node.client.replies[metadata] == MetadataResponse((), ())


def test_zookeeper_errors_become_error_codes(node: Node) -> None:
    node.zk.fail_with = ConnectionLoss()
    node.zk.gate.set()
    lost = node.ask("broker", MetadataRequest(None))
    described = node.ask("broker", DescribeTopicsRequest(("x",)))
    node.after_jobs(2)
    assert node.client.replies[lost].error.name == "UNKNOWN_SERVER_ERROR"
    assert "ConnectionLoss" in node.client.replies[lost].detail
    assert node.client.replies[described].error.name == "INVALID_TOPIC"


def test_producer_ids_wait_for_their_block_and_never_repeat(node: Node) -> None:
    asked = [node.ask("broker", InitProducerIdRequest()) for _ in range(3)]
    assert not any(a in node.client.replies for a in asked)  # all wait for the first block
    node.after_jobs(1)  # the first block holds two ids: a second claim follows
    node.after_jobs(1)
    ids = [node.client.replies[a] for a in asked]
    assert ids == [InitProducerIdResponse(0, pid, 0) for pid in (0, 1, 2000)]
    again = node.ask("broker", InitProducerIdRequest())
    assert node.client.replies[again] == InitProducerIdResponse(0, 2001, 0)  # no ZooKeeper


def test_a_stopping_broker_answers_what_waits_for_zookeeper(node: Node) -> None:
    metadata = node.ask("broker", MetadataRequest(None))
    node.broker.on_stop()
    node.settle()
    assert node.client.replies[metadata].error.name == "STOPPED"
    node.zk.gate.set()
    node.after_jobs(1)  # the late result is dropped: one answer per request
    assert node.client.replies[metadata].error.name == "STOPPED"


def test_a_topic_change_is_read_again_then_hosted_or_dropped(node: Node) -> None:
    assert node.context.hosted == {"orders": [0]}  # the first start hosted it
    node.zk.topics = {"new": TopicInfo("new", "id-2", ((1,),))}
    node.zk.store.watchers[0](["stale", "list"])  # what the watch says is only a trigger
    node.settle()  # the watch's post queues the sync job
    node.after_jobs(1)
    assert node.context.hosted == {"new": [0]}
    assert sorted(p.name for p in node.context.data_dir.iterdir()) == ["new-0"]


def _plan(name: str) -> HostPlan:
    info = TopicInfo(name, f"id-{name}", ((1,),))
    return HostPlan(info, led_here(info))


def test_a_failing_hosting_item_is_logged_and_the_rest_is_done(node, monkeypatch, caplog):
    def no_disk(*args) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("zafka.actors.broker.hosting.delete_partition_dirs", no_disk)
    monkeypatch.setattr("zafka.actors.broker.hosting.claim", no_disk)
    node.zk.topics = {"new": TopicInfo("new", "id-2", ((1,),))}
    node.zk.store.watchers[0]([])
    node.settle()
    node.after_jobs(1)
    assert node.runtime.actor("broker") is node.broker  # not crashed, not restarted
    assert node.context.hosted == {"new": []}  # its partition could not claim a directory
    assert "_unhost('orders', True) failed" in caplog.text and "No space left" in caplog.text


def test_a_topic_deleted_while_its_hosting_is_queued_is_never_left_hosted(node: Node) -> None:
    node.broker._apply_sync((["orders", "late"], [_plan("late")]))  # queued, not yet done
    node.broker._apply_sync((["orders"], []))  # deleted before its turn
    node.settle()
    assert node.context.hosted == {"orders": [0]}
    with pytest.raises(KeyError):  # its partition actor was stopped
        node.runtime.actor("late-0")


def test_a_stopping_broker_answers_replies_queued_behind_hosting(node: Node) -> None:
    node.zk.created = [_plan(f"t{i}") for i in range(120)]  # more than one slice
    node.zk.gate.set()
    metadata = node.ask("broker", MetadataRequest(None))
    assert node.posts.acquire(timeout=WAIT_S)
    node.runtime.step()  # the result is back: hosting and the reply are queued
    assert metadata not in node.client.replies
    node.broker.on_stop()
    node.settle()
    assert node.client.replies[metadata].error.name == "STOPPED"
    assert len(node.context.hosted) == 121  # the hosting itself is kept and done


def test_leadership_follows_the_controller_and_other_senders_are_refused(node: Node) -> None:
    """The client's node is broker-1: it stands for a controller on this broker's node."""

    def told(leader: int, leader_epoch: int, controller_epoch: int) -> object:
        request = LeaderAndIsrRequest(
            "orders", 0, leader, leader_epoch, (leader,), (1, 2), 0, "tcp://127.0.0.1:1"
        )
        return node.ask("broker", request, controller_epoch)

    moved = told(2, 1, 3)  # a controller epoch not seen yet: checked with ZooKeeper
    node.after_jobs(1)
    assert node.client.replies[moved] == LeaderAndIsrResponse(0)
    assert node.context.running == {("orders", 0): (1, 2)}  # broker 2 leads: a follower here
    assert node.runtime.actor("fetcher-2").partitions.keys() == {("orders", 0)}
    assert (node.context.data_dir / "orders-0").is_dir()
    back = told(1, 2, 3)  # the same controller and epoch: applied at once
    assert node.client.replies[back] == LeaderAndIsrResponse(0)
    assert node.context.running == {("orders", 0): (2, 1)}
    assert node.runtime.actor("fetcher-2").partitions == {}  # led here: not fetched
    stale = told(2, 3, 2)
    assert node.client.replies[stale].error.name == "STALE_CONTROLLER_EPOCH"
    node.zk.controller_is = (2, 4)  # ZooKeeper names another controller for epoch 4
    foreign = told(2, 3, 4)
    node.after_jobs(1)
    assert node.client.replies[foreign].error.name == "NOT_CONTROLLER"
    late = told(2, 1, 3)  # an older leader epoch than the one running: ignored
    assert node.client.replies[late] == LeaderAndIsrResponse(0)
    assert node.context.running == {("orders", 0): (2, 1)}
