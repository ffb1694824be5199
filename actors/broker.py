"""BrokerActor: one broker's admin and metadata front, and the host of its partition actors.

The actor is named `broker`, so on node `broker-<id>` clients reach it at `broker-<id>/broker`;
produce, fetch and list-offsets go straight to the partition actors (`broker-<id>/<topic>-<p>`,
see partition.py), never through this actor.

It owns a `TopicStore` and, for every partition whose leader (in ZooKeeper) is this broker, one
`PartitionActor` with its log in `<data dir>/<topic>-<p>` (that directory also holds a
`topic_id` file: data left by a deleted topic of the same name is removed, never served as
the new topic's). On start it reads every topic and spawns what it leads; a watch on the topic
list (kazoo's thread, handed to the runtime with `Runtime.post`) spawns partitions of created
topics and stops those of deleted ones (their data directories are deleted too).

Requests: Metadata (brokers from /brokers/ids, topics with leaders, epochs and ISR; unknown
topics created when `auto_create_topics` is on), CreateTopics, DeleteTopics, DescribeTopics,
each with a result code per topic, and InitProducerId (a producer id unique in the cluster,
epoch 0, from blocks claimed in ZooKeeper: coordination/producer_ids.py).

Known limitation: kazoo calls are synchronous, so an admin or metadata request blocks the
runtime's one thread for a few ZooKeeper round trips (milliseconds on a healthy ensemble, up to
the session timeout when ZooKeeper is unreachable). Produce and fetch never touch ZooKeeper, but
they wait behind such a request; moving ZooKeeper work to a thread of its own (replying through
`Runtime.post`) is the next step. There is no replication and no controller yet: a partition's
leader is what ZooKeeper says at creation, and replication factors above 1 are refused by the
TopicStore unless more brokers are registered (their followers do nothing yet).
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException, NoNodeError

from zafka.actors.actor import Actor
from zafka.actors.partition import PartitionActor, actor_name
from zafka.coordination import paths
from zafka.coordination.names import check_topic_name
from zafka.coordination.producer_ids import ProducerIdPool, claim_block
from zafka.coordination.topics import PartitionState, TopicInfo, TopicStore
from zafka.errors import BY_NAME, ZafkaError
from zafka.transport.admin import (
    CreateTopicsRequest,
    CreateTopicsResponse,
    DeleteTopicsRequest,
    DeleteTopicsResponse,
    DescribeTopicsRequest,
    DescribeTopicsResponse,
    TopicDescription,
    TopicResult,
)
from zafka.transport.client import (
    BrokerInfo,
    InitProducerIdResponse,
    MetadataRequest,
    MetadataResponse,
    PartitionMetadata,
    TopicMetadata,
)
from zafka.transport.envelope import Envelope

log = logging.getLogger(__name__)

BROKER_ACTOR = "broker"
TOPIC_ID_FILE = "topic_id"  # in each partition directory: which incarnation of the topic


@dataclass
class BrokerContext:
    """What a BrokerActor needs, shared by its incarnations (a restart after a crash keeps
    the partition actors and the one topic watch)."""

    broker_id: int
    client: KazooClient
    data_dir: Path
    auto_create_topics: bool = False
    default_partitions: int = 1
    watching: bool = False
    topic_ids: dict[str, str] = field(default_factory=dict)  # hosted topic -> its topic_id
    hosted: dict[str, list[int]] = field(default_factory=dict)  # topic -> partitions led here
    producer_ids: ProducerIdPool = field(default_factory=ProducerIdPool)


def _code(name: str) -> int:
    return BY_NAME[name].code


def _zk_error(err: Exception) -> ZafkaError:
    return ZafkaError("UNKNOWN_SERVER_ERROR", f"ZooKeeper: {type(err).__name__}")


class BrokerActor(Actor):
    """The `broker` actor of one broker process; see the module docstring."""

    def __init__(self, context: BrokerContext) -> None:
        super().__init__(BROKER_ACTOR)
        self.context = context
        self.store = TopicStore(context.client)

    # --- lifecycle ------------------------------------------------------------------------

    def on_start(self) -> None:
        self.sync_topics(self.store.names())
        if not self.context.watching:
            self.context.watching = True
            runtime = self._runtime()

            def on_topics(names: list[str]) -> None:  # kazoo's thread: hand over, never block
                runtime.post(lambda: _current(runtime).sync_topics(names))

            self.store.watch(on_topics)

    def on_stop(self) -> None:
        """Partition actors are stopped by the runtime (they were spawned after this one)."""

    # --- hosting partitions ---------------------------------------------------------------

    def sync_topics(self, names: list[str]) -> None:
        """Make the hosted partitions match the topic list `names` (the current one)."""
        current = set(names)
        for name in [t for t in self.context.hosted if t not in current]:
            self._unhost(name, delete_data=True)
        for name in sorted(current):
            try:
                info = self.store.get(name)
                if info is not None:
                    self._host(info)
            except (ZafkaError, KazooException) as err:  # one bad topic must not stop the rest
                log.warning("broker %s: cannot host topic %s: %s", self._id, name, err)

    @property
    def _id(self) -> int:
        return self.context.broker_id

    def _host(self, info: TopicInfo) -> None:
        """Spawn the partition actors of `info` led by this broker (once per topic id)."""
        known = self.context.topic_ids.get(info.name)
        if known == info.topic_id:
            return
        if known is not None:  # deleted and created again since we looked
            self._unhost(info.name, delete_data=True)
        led = []
        for p in range(info.partitions):
            state, _ = self.store.partition_state(info.name, p)
            if state.leader != self._id:
                continue
            directory = self._partition_dir(info.name, p)
            _claim(directory, info.topic_id)
            name = actor_name(info.name, p)
            factory = partial(
                PartitionActor,
                info.name,
                p,
                directory,
                info.log_config,
                state.leader_epoch,
                info.max_message_bytes,
            )
            try:
                self._runtime().spawn(factory)
            except Exception:
                log.exception("broker %s: partition %s did not start", self._id, name)
                self._runtime().despawn(name)
                continue
            led.append(p)
        self.context.topic_ids[info.name] = info.topic_id
        self.context.hosted[info.name] = led

    def _unhost(self, name: str, delete_data: bool) -> None:
        """Stop the partition actors of topic `name` (their logs are closed) and, if asked,
        delete their data directories."""
        for p in self.context.hosted.pop(name, []):
            self._runtime().despawn(actor_name(name, p))
        self.context.topic_ids.pop(name, None)
        if delete_data:
            self._delete_partition_dirs(name)

    def _partition_dir(self, topic: str, partition: int) -> Path:
        return self.context.data_dir / actor_name(check_topic_name(topic), partition)

    def _delete_partition_dirs(self, topic: str) -> None:
        """Delete `<data dir>/<topic>-<p>` for every p; nothing outside the data dir."""
        root = self.context.data_dir.resolve()
        prefix = f"{check_topic_name(topic)}-"
        for path in root.iterdir():
            suffix = path.name[len(prefix) :]
            if not (path.name.startswith(prefix) and suffix.isascii() and suffix.isdigit()):
                continue
            if path.is_dir() and not path.is_symlink() and path.resolve().parent == root:
                shutil.rmtree(path)

    # --- metadata -------------------------------------------------------------------------

    def _brokers(self) -> tuple[BrokerInfo, ...]:
        client, brokers = self.context.client, []
        try:
            children = client.get_children(paths.BROKER_IDS)
        except NoNodeError:
            return ()
        for child in sorted(children, key=lambda c: (len(c), c)):
            if not (child.isascii() and child.isdigit()):
                continue
            try:
                data, _ = client.get(paths.broker(int(child)))
                endpoint = json.loads(data)["endpoint"]
            except NoNodeError:
                continue  # went away meanwhile
            except (ValueError, KeyError, TypeError):
                log.warning("broker %s: malformed registration of broker %s", self._id, child)
                continue
            brokers.append(BrokerInfo(id=int(child), endpoint=str(endpoint)))
        return tuple(brokers)

    def _partitions(self, info: TopicInfo) -> tuple[PartitionMetadata, ...]:
        result = []
        for p, replicas in enumerate(info.replicas):
            try:
                state, _ = self.store.partition_state(info.name, p)
            except ZafkaError:  # deleted meanwhile, or malformed: no leader
                state = PartitionState(leader=-1, leader_epoch=0, isr=())
            result.append(
                PartitionMetadata(
                    partition=p,
                    leader=state.leader,
                    leader_epoch=state.leader_epoch,
                    replicas=replicas,
                    isr=state.isr,
                )
            )
        return tuple(result)

    def _topic_metadata(self, name: str) -> TopicMetadata:
        try:
            check_topic_name(name)
            info = self.store.get(name)
            if info is None and self.context.auto_create_topics:
                info = self._create(name, self.context.default_partitions, 1, {}, exists_ok=True)
            if info is None:
                return TopicMetadata(name, _code("UNKNOWN_TOPIC_OR_PARTITION"), ())
            return TopicMetadata(name, 0, self._partitions(info))
        except ZafkaError as err:
            return TopicMetadata(name, err.error.code, ())
        except KazooException as err:
            return TopicMetadata(name, _zk_error(err).error.code, ())

    def on_metadata_request(self, envelope: Envelope) -> MetadataResponse:
        request: MetadataRequest = envelope.message
        try:
            brokers = self._brokers()
            names = self.store.names() if request.topics is None else request.topics
        except KazooException as err:
            raise _zk_error(err) from None
        topics = tuple(self._topic_metadata(name) for name in dict.fromkeys(names))
        return MetadataResponse(brokers=brokers, topics=topics)

    # --- admin ----------------------------------------------------------------------------

    def _create(
        self,
        name: str,
        partitions: int,
        replication_factor: int,
        configs: dict[str, str],
        exists_ok: bool = False,
    ) -> TopicInfo | None:
        """Create the topic in ZooKeeper and host what this broker leads at once (the watch
        would do it a moment later; a client producing right away must not miss it)."""
        live = [b.id for b in self._brokers()]
        try:
            info = self.store.create(name, partitions, replication_factor, configs, live)
        except ZafkaError as err:
            if exists_ok and err.error.name == "TOPIC_ALREADY_EXISTS":
                return self.store.get(name)
            raise
        self._host(info)
        return info

    def on_create_topics_request(self, envelope: Envelope) -> CreateTopicsResponse:
        request: CreateTopicsRequest = envelope.message
        results = []
        for topic in request.topics:
            try:
                self._create(
                    topic.name, topic.partitions, topic.replication_factor, dict(topic.configs)
                )
                results.append(TopicResult(topic.name, 0, None))
            except ZafkaError as err:
                results.append(TopicResult(topic.name, err.error.code, err.detail or None))
            except KazooException as err:
                results.append(TopicResult(topic.name, _zk_error(err).error.code, str(err)))
        return CreateTopicsResponse(results=tuple(results))

    def on_delete_topics_request(self, envelope: Envelope) -> DeleteTopicsResponse:
        request: DeleteTopicsRequest = envelope.message
        results = []
        for name in request.names:
            try:
                self.store.delete(name)
                self._unhost(name, delete_data=True)
                results.append(TopicResult(name, 0, None))
            except ZafkaError as err:
                results.append(TopicResult(name, err.error.code, err.detail or None))
            except KazooException as err:
                results.append(TopicResult(name, _zk_error(err).error.code, str(err)))
        return DeleteTopicsResponse(results=tuple(results))

    def on_describe_topics_request(self, envelope: Envelope) -> DescribeTopicsResponse:
        request: DescribeTopicsRequest = envelope.message
        return DescribeTopicsResponse(topics=tuple(self._describe(n) for n in request.names))

    def _describe(self, name: str) -> TopicDescription:
        try:
            check_topic_name(name)
            info = self.store.get(name)
            if info is None:
                return TopicDescription(name, _code("UNKNOWN_TOPIC_OR_PARTITION"), (), {})
            return TopicDescription(name, 0, self._partitions(info), dict(info.configs))
        except ZafkaError as err:
            return TopicDescription(name, err.error.code, (), {})
        except KazooException as err:
            return TopicDescription(name, _zk_error(err).error.code, (), {})

    # --- producer ids ---------------------------------------------------------------------

    def on_init_producer_id_request(self, envelope: Envelope) -> InitProducerIdResponse:
        """A producer id no broker has handed out before, epoch 0 (a block of ids is
        claimed in ZooKeeper when the current one is used up)."""
        pool = self.context.producer_ids
        producer_id = pool.take()
        if producer_id is None:
            try:
                pool.add_block(claim_block(self.context.client, self._id))
            except KazooException as err:
                raise _zk_error(err) from None
            producer_id = pool.take()
        return InitProducerIdResponse(error_code=0, producer_id=producer_id, producer_epoch=0)


def _current(runtime) -> BrokerActor:
    """The broker actor now hosted (a restart after a crash replaces the instance)."""
    return runtime.actor(BROKER_ACTOR)


def _claim(directory: Path, topic_id: str) -> None:
    """Make `directory` belong to topic incarnation `topic_id`: data of another one (a topic
    of the same name deleted while this broker was down) is removed first."""
    marker = directory / TOPIC_ID_FILE
    try:
        owner = marker.read_text().strip()
    except FileNotFoundError:
        owner = None
    except OSError:
        owner = ""
    if owner is not None and owner != topic_id:
        log.warning("removing %s: it holds another incarnation of the topic", directory)
        shutil.rmtree(directory)
    if owner != topic_id:
        directory.mkdir(parents=True, exist_ok=True)
        marker.write_text(topic_id + "\n")
