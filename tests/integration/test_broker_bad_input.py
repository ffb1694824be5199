"""Bad input to a real broker process: every request below gets its error code, appends
nothing, touches no path outside the broker's data directory, and a good client producing
and fetching in parallel (its own thread and connection) keeps being served throughout.

One broker process and one ZooKeeper chroot serve the whole module. Every wait is bounded.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import msgpack
import pytest
from kazoo.client import KazooClient

from tests.integration.broker_helpers import (
    NODE,
    BrokerProcess,
    RawClient,
    code,
    create,
    free_port,
    produce,
)
from zafka import limits
from zafka.storage.batch import build_batch
from zafka.transport.admin import (
    CreateTopicsRequest,
    DeleteTopicsRequest,
    DescribeTopicsRequest,
    NewTopic,
)
from zafka.transport.client import (
    FetchRequest,
    FetchResponse,
    InitProducerIdRequest,
    InitProducerIdResponse,
    ListOffsetsRequest,
    ListOffsetsResponse,
    MetadataRequest,
    ProduceRequest,
    ProduceResponse,
)
from zafka.transport.control import ErrorReply

pytestmark = pytest.mark.slow

INVALID_NAMES = ["", ".", "..", "a" * 250, "a/b", "a\x00b", "../escape"]
TOPICS = {"victim": {}, "small": {"max.message.bytes": "1024"}, "good": {}}
SMALL_LIMIT_BYTES = 1024
SERVED_TIMEOUT_S = 10.0
GOOD_ROUNDS_PER_TEST = 3  # round trips the good client completes after each test's bad input
GOOD_PACE_S = 0.01  # the good client's pause between round trips (pacing, not a wait)


class GoodClient(threading.Thread):
    """Produces one record to `good-0` and fetches it back, again and again, on its own
    connection; counts the round trips that returned exactly what it sent."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(name="good-client", daemon=True)
        self.endpoint = endpoint
        self.rounds = 0
        self.errors: list[str] = []
        self.changed = threading.Condition()
        self.stopping = threading.Event()

    def run(self) -> None:
        client = RawClient(self.endpoint)
        try:
            while not self.stopping.wait(GOOD_PACE_S):
                self._round(client)
        except Exception as exc:  # recorded for the test to see; the thread ends
            with self.changed:
                self.errors.append(f"{type(exc).__name__}: {exc}")
                self.changed.notify_all()
        finally:
            client.close()

    def _round(self, client: RawClient) -> None:
        value = f"good-{self.rounds}".encode()
        offset = produce(client, "good", 0, [value])
        reply = client.call("good-0", FetchRequest("good", 0, offset, 1 << 20, 0, 0))
        assert isinstance(reply, FetchResponse) and value in bytes(reply.records), reply
        with self.changed:
            self.rounds += 1
            self.changed.notify_all()

    def served_beyond(self, rounds: int) -> bool:
        """Wait (bounded) until more than `rounds` round trips succeeded; False on error."""
        with self.changed:
            self.changed.wait_for(lambda: self.rounds > rounds or self.errors, SERVED_TIMEOUT_S)
            return self.rounds > rounds and not self.errors


@pytest.fixture(scope="module")
def module_zk(zk_server) -> Iterator[str]:
    """A ZooKeeper chroot for this module's one broker, deleted afterwards."""
    chroot = f"/zafka-tests/bad-input-{uuid.uuid4().hex[:8]}"
    admin = KazooClient(hosts=zk_server.hosts)
    admin.start(timeout=15)
    try:
        admin.ensure_path(chroot)
        yield zk_server.hosts + chroot
        admin.delete(chroot, recursive=True)
    finally:
        admin.stop()
        admin.close()


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Path:
    """The data dir's parent: holds the data dir and nothing else (the log is elsewhere)."""
    return tmp_path_factory.mktemp("sandbox")


@pytest.fixture(scope="module")
def broker(module_zk, sandbox, tmp_path_factory) -> Iterator[BrokerProcess]:
    log_path = tmp_path_factory.mktemp("logs") / "broker.log"
    process = BrokerProcess(module_zk, sandbox / "data", log_path, free_port())
    process.start()
    setup = RawClient(process.endpoint)
    try:
        for name, configs in TOPICS.items():
            assert create(setup, name, 1, configs).results[0].error_code == 0
    finally:
        setup.close()
    yield process
    process.kill()


@pytest.fixture(scope="module")
def good(broker) -> Iterator[GoodClient]:
    client = GoodClient(broker.endpoint)
    client.start()
    yield client
    client.stopping.set()
    client.join(SERVED_TIMEOUT_S)


@pytest.fixture
def client(broker) -> Iterator[RawClient]:
    raw = RawClient(broker.endpoint)
    yield raw
    raw.close()


def tree(root: Path, skip: Path) -> dict[str, tuple[int, int]]:
    """Every path under `root` except `skip` and what is under it: (size, mtime_ns)."""
    found = {}
    for directory, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if Path(directory, d) != skip]
        for name in dirs + files:
            stat = os.lstat(Path(directory, name))
            found[str(Path(directory, name).relative_to(root))] = (stat.st_size, stat.st_mtime_ns)
    return found


@pytest.fixture(autouse=True)
def served_and_contained(broker, good, sandbox) -> Iterator[None]:
    """Around every test: the good client is served after the bad input, the broker is
    alive, the data dir's parent is unchanged and the data dir holds only the topics."""
    data_dir = sandbox / "data"
    before, rounds = tree(sandbox, data_dir), good.rounds
    yield
    assert good.served_beyond(rounds + GOOD_ROUNDS_PER_TEST - 1), good.errors or broker.log()
    assert broker.alive(), broker.log()
    assert tree(sandbox, data_dir) == before
    assert sorted(os.listdir(data_dir)) == sorted(f"{name}-0" for name in TOPICS)


def end_offset(client: RawClient, topic: str) -> int:
    reply = client.call(f"{topic}-0", ListOffsetsRequest(topic, 0, -1))
    assert isinstance(reply, ListOffsetsResponse), reply
    return reply.offset


def end_offsets(client: RawClient) -> dict[str, int]:
    """The log end of every topic a test may try to append to (not `good`: it grows)."""
    return {topic: end_offset(client, topic) for topic in ("victim", "small")}


def error_code(reply: object) -> int:
    assert isinstance(reply, ErrorReply), reply
    return reply.code


def raw_header(client: RawClient, type_name: str, target: str, body: dict, **fields) -> bytes:
    """A header frame built by hand (the codec would refuse to encode a bad one)."""
    header = [1, type_name, 1, f"{client.node}/c", target, -1, False, body]
    for index, name in enumerate(("version", "type", "correlation_id", "sender")):
        if name in fields:
            header[index] = fields[name]
    return msgpack.packb(header)


def raw_reply(client: RawClient, frames: list[bytes], correlation_id: int = 1) -> object:
    """Send hand-made frames; the answer, whether a reply to `correlation_id` or a cast to
    the client's `peer` actor (when the broker could not read who sent it)."""
    casts = len(client.casts)
    client.send_frames(frames)
    assert client.wait_for(lambda: client.replied(correlation_id) or len(client.casts) > casts)
    if len(client.casts) > casts:
        return client.casts[-1].message
    return client.receive(correlation_id)


# --- topic names ----------------------------------------------------------------------------


def test_invalid_topic_names_in_admin_requests(client):
    created = client.call(
        "broker", CreateTopicsRequest(tuple(NewTopic(n, 1, 1, {}) for n in INVALID_NAMES))
    )
    described = client.call("broker", DescribeTopicsRequest(tuple(INVALID_NAMES)))
    metadata = client.call("broker", MetadataRequest(tuple(INVALID_NAMES)))
    deleted = client.call("broker", DeleteTopicsRequest(tuple(INVALID_NAMES)))
    invalid = [(n, code("INVALID_TOPIC")) for n in INVALID_NAMES]
    assert [(r.name, r.error_code) for r in created.results] == invalid
    assert [(t.name, t.error_code) for t in described.topics] == invalid
    assert [(t.name, t.error_code) for t in metadata.topics] == invalid
    assert [(r.name, r.error_code) for r in deleted.results] == invalid


def test_invalid_topic_names_in_produce_and_fetch(client):
    before = end_offsets(client)
    batch = build_batch([(1, None, b"x", None)])
    for name in INVALID_NAMES:
        # Named in the request to an existing partition: that partition is not this topic's.
        produced = client.call("victim-0", ProduceRequest(name, 0, 1, 1000, batch))
        fetched = client.call("victim-0", FetchRequest(name, 0, 0, 1024, 0, 0))
        assert error_code(produced) == error_code(fetched) == code("UNKNOWN_TOPIC_OR_PARTITION")
        # Addressed to the partition actor the name would have: there is none ('/' makes
        # the address itself invalid).
        body = {"topic": name, "partition": 0, "acks": 1, "timeout_ms": 1000}
        frames = [raw_header(client, "ProduceRequest", f"{NODE}/{name}-0", body), batch]
        expected = "INVALID_REQUEST" if "/" in name else "UNKNOWN_ACTOR"
        assert error_code(raw_reply(client, frames)) == code(expected), name
    assert end_offsets(client) == before


# --- unknown topics and partitions ----------------------------------------------------------


def test_unknown_topics_and_partitions(client):
    before = end_offsets(client)
    batch = build_batch([(1, None, b"x", None)])
    described = client.call("broker", DescribeTopicsRequest(("missing",)))
    metadata = client.call("broker", MetadataRequest(("missing",)))
    deleted = client.call("broker", DeleteTopicsRequest(("missing",)))
    unknown = code("UNKNOWN_TOPIC_OR_PARTITION")
    assert described.topics[0].error_code == metadata.topics[0].error_code == unknown
    assert deleted.results[0].error_code == unknown
    # No actor for a topic that does not exist or a partition the topic does not have.
    for actor, topic, partition in (("missing-0", "missing", 0), ("victim-1", "victim", 1)):
        reply = client.call(actor, ProduceRequest(topic, partition, 1, 1000, batch))
        assert error_code(reply) == code("UNKNOWN_ACTOR")
    # The right actor, another partition number in the request.
    for message in (
        ProduceRequest("victim", 1, 1, 1000, batch),
        FetchRequest("victim", -1, 0, 1024, 0, 0),
        ListOffsetsRequest("victim", 5, -1),
    ):
        assert error_code(client.call("victim-0", message)) == unknown
    assert end_offsets(client) == before


# --- offsets --------------------------------------------------------------------------------


def test_fetch_offsets_outside_the_log_are_out_of_range(client):
    produce(client, "victim", 0, [b"a", b"b"])
    end = end_offset(client, "victim")
    for offset in (-1, -100, end + 1, end + 1000, 2**62):
        for max_wait_ms in (0, 5_000):  # a long poll is refused at once, never parked
            reply = client.call("victim-0", FetchRequest("victim", 0, offset, 1024, max_wait_ms, 1))
            assert error_code(reply) == code("OFFSET_OUT_OF_RANGE"), offset
    bad = [FetchRequest("victim", 0, 0, -1, 0, 0), ListOffsetsRequest("victim", 0, -3)]
    assert [error_code(client.call("victim-0", m)) for m in bad] == [code("INVALID_REQUEST")] * 2
    assert end_offset(client, "victim") == end


# --- batches --------------------------------------------------------------------------------


def test_batches_over_the_size_limits_are_too_large(client):
    before = end_offsets(client)
    big = build_batch([(1, None, os.urandom(2 * SMALL_LIMIT_BYTES), None)])
    assert len(big) > SMALL_LIMIT_BYTES
    reply = client.call("small-0", ProduceRequest("small", 0, 1, 1000, big))
    assert error_code(reply) == code("MESSAGE_TOO_LARGE")
    huge = bytes(limits.batch_bytes_max + 1)  # over the broker-wide limit: not even parsed
    reply = client.call("victim-0", ProduceRequest("victim", 0, 1, 1000, huge))
    assert error_code(reply) == code("MESSAGE_TOO_LARGE")
    assert end_offsets(client) == before
    fits = build_batch([(1, None, b"fits", None)])
    assert isinstance(
        client.call("small-0", ProduceRequest("small", 0, 1, 1000, fits)), ProduceResponse
    )


def test_corrupt_batches_are_refused(client):
    before = end_offsets(client)
    good_batch = build_batch([(1, None, b"a", None), (2, None, b"b", None)])
    flipped = bytearray(good_batch)
    flipped[-1] ^= 0xFF  # the CRC no longer matches
    for batch in (bytes(flipped), good_batch[:-1], good_batch[:10], b"", b"\x00" * 200):
        reply = client.call("victim-0", ProduceRequest("victim", 0, 1, 1000, batch))
        assert error_code(reply) == code("CORRUPT_MESSAGE"), batch[:16]
    assert end_offsets(client) == before


def test_sequence_replays_and_gaps(client):
    init = client.call("broker", InitProducerIdRequest())
    assert isinstance(init, InitProducerIdResponse) and init.error_code == 0
    pid = init.producer_id

    def batch(sequence: int, epoch: int = 0, values=(b"a", b"b")) -> ProduceRequest:
        records = [(1, None, v, None) for v in values]
        built = build_batch(records, producer_id=pid, producer_epoch=epoch, base_sequence=sequence)
        return ProduceRequest("victim", 0, 1, 1000, built)

    first = client.call("victim-0", batch(0))
    assert isinstance(first, ProduceResponse)
    end = end_offset(client, "victim")
    assert client.call("victim-0", batch(0)) == first  # the replay gets the original offset
    assert error_code(client.call("victim-0", batch(5))) == code("OUT_OF_ORDER_SEQUENCE")
    assert error_code(client.call("victim-0", batch(1))) == code("OUT_OF_ORDER_SEQUENCE")
    assert end_offset(client, "victim") == end  # nothing appended by any of them
    assert isinstance(client.call("victim-0", batch(0, epoch=1)), ProduceResponse)  # new epoch
    end = end_offset(client, "victim")
    assert error_code(client.call("victim-0", batch(2, epoch=0))) == code("INVALID_PRODUCER_EPOCH")
    assert end_offset(client, "victim") == end


def test_acks_outside_0_1_all_are_refused(client):
    before = end_offsets(client)
    batch = build_batch([(1, None, b"x", None)])
    for acks in (2, -2, 100, -(2**40)):
        reply = client.call("victim-0", ProduceRequest("victim", 0, acks, 1000, batch))
        assert error_code(reply) == code("INVALID_REQUEST"), acks
    client.send("victim-0", ProduceRequest("victim", 0, 7, 1000, batch), cast=True)
    assert end_offsets(client) == before  # the cast (read in order before this) added nothing


# --- frames and requests --------------------------------------------------------------------


def test_malformed_frames_and_unknown_requests(client):
    before = end_offsets(client)
    target = f"{NODE}/victim-0"
    batch = build_batch([(1, None, b"x", None)])
    body = {"topic": "victim", "partition": 0, "acks": 1, "timeout_ms": 1000}
    header = partial(raw_header, client, "ProduceRequest", target)
    invalid, unsupported, unknown_actor = "INVALID_REQUEST", "UNSUPPORTED_VERSION", "UNKNOWN_ACTOR"
    cases = {
        "not msgpack": ([b"\xc1\xc1"], invalid),
        "not an array": ([msgpack.packb({"a": 1})], invalid),
        "short array": ([msgpack.packb([1, "ProduceRequest", 1])], invalid),
        "unknown type": ([raw_header(client, "Nonsense", target, {})], invalid),
        "version 2": ([header(body, version=2), batch], unsupported),
        "no batch frame": ([header(body)], invalid),
        "two batch frames": ([header(body), batch, batch], invalid),
        "unknown field": ([header({**body, "x": 1}), batch], invalid),
        "mistyped field": ([header({**body, "acks": "1"}), batch], invalid),
        "missing field": ([header({"topic": "victim"}), batch], invalid),
        "foreign sender": ([header(body, sender="other/c"), batch], invalid),
        "bad target": ([raw_header(client, "ProduceRequest", "no-slash", body), batch], invalid),
        "no such actor": (
            [raw_header(client, "MetadataRequest", f"{NODE}/nobody", {"topics": None})],
            unknown_actor,
        ),
    }
    for name, (frames, expected) in cases.items():
        assert error_code(raw_reply(client, frames)) == code(expected), name
    # Well-formed requests to an actor that does not handle them.
    wrong = [
        ("broker", FetchRequest("victim", 0, 0, 1024, 0, 0)),
        ("victim-0", MetadataRequest(None)),
    ]
    for actor, message in wrong:
        assert error_code(client.call(actor, message)) == code("INVALID_REQUEST"), actor
    assert end_offsets(client) == before
