"""The broker's ZooKeeper side: metadata, topic admin, producer id blocks, what to host.

Every method here is synchronous (kazoo) and is meant for the `ZooKeeperWorker`'s thread,
never the runtime's. `BrokerZooKeeper` holds only its settings and the kazoo client (which
is thread-safe), so it can run there; it returns plain values: the response message to
send and, when topics appeared, the `HostPlan`s that the broker actor applies on its own
thread (spawning partition actors is the actor's job, not this module's).

Auto-creation by Metadata is bounded: `limits.auto_created_topics_per_request_max` per
request and `limits.auto_created_topics_per_minute_max` per broker (a token bucket); other
unknown names get THROTTLING_QUOTA_EXCEEDED, and the client retries later.

Per-topic errors become per-topic codes in the response (INVALID_TOPIC, TOPIC_ALREADY_EXISTS,
UNKNOWN_TOPIC_OR_PARTITION, ...; a kazoo error: UNKNOWN_SERVER_ERROR naming it); an error
that spoils the whole request (the broker list cannot be read) is raised.

Consumer groups: `find_coordinator` creates the internal topic `__consumer_offsets` on first
use (compacted, `offsets_partitions` partitions, replication factor min(3, registered
brokers); a broker that loses the creation race reads the winner's) and names the broker
leading the group's partition of it, `coordinator_partition(group, partitions)`. Internal
topics are never auto-created by Metadata requests, nor created or deleted through
CreateTopics / DeleteTopics.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.handlers.threading import KazooTimeoutError

from zafka import clock, limits
from zafka.actors.group.records import OFFSETS_TOPIC
from zafka.coordination.brokers import registration, registrations
from zafka.coordination.controller import read_controller, read_epoch
from zafka.coordination.producer_ids import ProducerIdBlock, claim_block
from zafka.coordination.topic_records import LeaderIsr, TopicInfo
from zafka.coordination.topics import TopicStore
from zafka.errors import BY_NAME, ZafkaError
from zafka.token_bucket import TokenBucket
from zafka.transport.admin import (
    CreateTopicsResponse,
    DeleteTopicsResponse,
    DescribeTopicsResponse,
    NewTopic,
    TopicDescription,
    TopicResult,
)
from zafka.transport.client import (
    BrokerInfo,
    MetadataResponse,
    PartitionMetadata,
    TopicMetadata,
)
from zafka.transport.controller import LeaderAndIsrRequest
from zafka.transport.group import FindCoordinatorResponse
from zafka.transport.murmur2 import key_partition
from zafka.transport.names import check_topic_name

log = logging.getLogger(__name__)

NO_LEADER = LeaderIsr(leader=-1, leader_epoch=0, isr=())
DEFAULT_OFFSETS_PARTITIONS = 8  # `zafka broker --offsets-topic-partitions`
INTERNAL_TOPICS = frozenset({OFFSETS_TOPIC})
OFFSETS_TOPIC_CONFIGS = {
    "cleanup.policy": "compact",
    "segment.bytes": str(limits.offsets_segment_bytes),
}
_GROUP_ID = re.compile(r"[A-Za-z0-9._-]+")


def check_group_id(group_id: str) -> str:
    """`group_id` if it is 1..group_id_bytes_max of [A-Za-z0-9._-]; else INVALID_GROUP_ID (it
    names the coordinator's actor, `group-<id>`, so it must be a safe name)."""
    if (
        not isinstance(group_id, str)
        or len(group_id) > limits.group_id_bytes_max
        or _GROUP_ID.fullmatch(group_id) is None
    ):
        raise ZafkaError(
            "INVALID_GROUP_ID",
            f"group id {str(group_id)[:64]!r}: 1..{limits.group_id_bytes_max} of [A-Za-z0-9._-]",
        )
    return group_id


def coordinator_partition(group_id: str, partitions: int) -> int:
    """The partition of `__consumer_offsets` holding `group_id`'s records, whose leader
    coordinates the group: Kafka's key partitioner on the id's UTF-8 bytes,
    `(murmur2(id) & 0x7fffffff) % partitions`."""
    return key_partition(group_id.encode(), partitions)


@dataclass(frozen=True)
class CoordinatorLookup:
    """What `find_coordinator` found: the answer, the group's partition of `__consumer_offsets`
    (-1 if unknown) and plans for the broker to host it (when it did not know the topic)."""

    response: FindCoordinatorResponse
    partition: int = -1
    plans: list[HostPlan] = field(default_factory=list)


def _unavailable(detail: str, partition: int = -1, plans=None) -> CoordinatorLookup:
    log.info("no coordinator: %s", detail)
    response = FindCoordinatorResponse(_code("COORDINATOR_NOT_AVAILABLE"), -1, "")
    return CoordinatorLookup(response, partition, plans or [])


@dataclass(frozen=True)
class HostPlan:
    """A topic as ZooKeeper has it, the state of each partition this broker is a replica of
    (as the controller's LeaderAndIsr would say it), and every partition's metadata as read
    (the metadata cache learns the topic from it)."""

    info: TopicInfo
    states: tuple[LeaderAndIsrRequest, ...]
    partitions: tuple[PartitionMetadata, ...] = ()


def zk_error(err: Exception) -> ZafkaError:
    """A kazoo error as the code a client gets (the broker log has the details)."""
    return ZafkaError("UNKNOWN_SERVER_ERROR", f"ZooKeeper: {type(err).__name__}")


def as_error(exc: Exception) -> ZafkaError:
    """What a failed job (or a failed step after it) answers; unexpected ones are logged."""
    if isinstance(exc, ZafkaError):
        return exc
    if isinstance(exc, KazooException | KazooTimeoutError):
        return zk_error(exc)
    log.error("broker: unexpected error", exc_info=exc)
    return ZafkaError("UNKNOWN_SERVER_ERROR", type(exc).__name__)


def _code(name: str) -> int:
    return BY_NAME[name].code


class BrokerZooKeeper:
    """What broker `broker_id` reads and writes in ZooKeeper to answer its requests."""

    def __init__(
        self,
        client: KazooClient,
        broker_id: int,
        auto_create_topics: bool = False,
        default_partitions: int = 1,
        offsets_partitions: int = DEFAULT_OFFSETS_PARTITIONS,
    ) -> None:
        self.client = client
        self.broker_id = broker_id
        self.auto_create_topics = auto_create_topics
        self.default_partitions = default_partitions
        self.offsets_partitions = offsets_partitions
        self.store = TopicStore(client)
        # Auto-creation is bounded per broker (a burst, then a rate), used on the worker only.
        self._creations = TokenBucket(
            limits.auto_created_topics_per_minute_max, 60.0, clock.monotonic_s()
        )

    # --- hosting --------------------------------------------------------------------------

    def plan(self, info: TopicInfo) -> HostPlan:
        """The state of `info`'s partitions this broker is a replica of, from their state
        znodes (with the leaders' endpoints, for its fetchers)."""
        states, partitions, endpoints = [], [], {}
        for p, replicas in enumerate(info.replicas):
            state, version = self.store.partition_state(info.name, p)
            if self.broker_id in replicas:
                leader = state.leader
                if leader >= 0 and leader not in endpoints:
                    found = registration(self.client, leader)
                    endpoints[leader] = "" if found is None else found.endpoint
                states.append(
                    LeaderAndIsrRequest(
                        info.name,
                        p,
                        leader,
                        state.leader_epoch,
                        state.isr,
                        replicas,
                        version,
                        endpoints.get(leader, ""),
                    )
                )
            partitions.append(
                PartitionMetadata(p, state.leader, state.leader_epoch, replicas, state.isr)
            )
        return HostPlan(info, tuple(states), tuple(partitions))

    def topic_plans(self, known: Mapping[str, tuple[str, int]]) -> tuple[list[str], list[HostPlan]]:
        """The topic list now, and plans for the topics not in `known` as they are now
        (topic -> (topic id, partition count) the broker hosts: a topic created again, or
        grown, is planned again). A topic that cannot be read is logged and skipped."""
        names = self.store.names()
        now = self.store.incarnations([name for name in names if name in known])
        plans = []
        for name in names:
            if name in known and now.get(name) == known[name]:
                continue  # hosted already, as it is: nothing to read
            try:
                info = self.store.get(name)
                if info is not None and known.get(name) != (info.topic_id, info.partitions):
                    plans.append(self.plan(info))
            except (ZafkaError, KazooException) as err:  # one bad topic must not stop the rest
                log.warning("broker %s: cannot host topic %s: %s", self.broker_id, name, err)
        return names, plans

    def controller(self) -> tuple[int, int]:
        """(the controller's broker id, -1 if none; the controller epoch) now."""
        controller_id = read_controller(self.client)
        return -1 if controller_id is None else controller_id, read_epoch(self.client)[0]

    # --- metadata -------------------------------------------------------------------------

    def endpoint_of(self, broker_id: int) -> str | None:
        """The registered endpoint of one broker (None: not registered, or unreadable)."""
        registered = registration(self.client, broker_id)
        return None if registered is None else registered.endpoint

    def brokers(self) -> tuple[BrokerInfo, ...]:
        """The registered brokers, by id."""
        registered = registrations(self.client).items()
        return tuple(BrokerInfo(b, r.endpoint, r.kafka) for b, r in registered)

    def racks(self) -> dict[int, str | None]:
        """The registered brokers' racks (None: started without --rack)."""
        return {b: r.rack for b, r in registrations(self.client).items()}

    def _partitions(self, info: TopicInfo) -> tuple[PartitionMetadata, ...]:
        result = []
        for p, replicas in enumerate(info.replicas):
            try:
                state, _ = self.store.partition_state(info.name, p)
            except ZafkaError:  # deleted meanwhile, or malformed: no leader
                state = NO_LEADER
            result.append(
                PartitionMetadata(p, state.leader, state.leader_epoch, replicas, state.isr)
            )
        return tuple(result)

    def _topic_metadata(
        self, name: str, plans: list[HostPlan], existing: set[str]
    ) -> TopicMetadata:
        try:
            check_topic_name(name)
            info = self.store.get(name) if name in existing else None
            if info is None and self.auto_create_topics and name not in INTERNAL_TOPICS:
                if not self._may_auto_create(len(plans)):
                    return TopicMetadata(name, _code("THROTTLING_QUOTA_EXCEEDED"), ())
                info = self._create(name, self.default_partitions, 1, {}, plans, exists_ok=True)
            if info is None:
                return TopicMetadata(name, _code("UNKNOWN_TOPIC_OR_PARTITION"), ())
            return TopicMetadata(name, 0, self._partitions(info))
        except ZafkaError as err:
            return TopicMetadata(name, err.error.code, ())
        except KazooException as err:
            return TopicMetadata(name, zk_error(err).error.code, ())

    def _may_auto_create(self, created: int) -> bool:
        """Whether one more topic may be auto-created, `created` by this request so far."""
        if created >= limits.auto_created_topics_per_request_max:
            return False
        return self._creations.take(clock.monotonic_s())

    def metadata(self, topics: tuple[str, ...] | None) -> tuple[MetadataResponse, list[HostPlan]]:
        """Brokers and the named topics (None: all); plans for the topics it auto-created."""
        try:
            brokers = self.brokers()
            names = self.store.names() if topics is None else topics
            controller_id = read_controller(self.client)
        except KazooException as err:
            raise zk_error(err) from None
        plans: list[HostPlan] = []
        wanted = list(dict.fromkeys(names))
        try:
            existing = self.store.existing([n for n in wanted if _valid_name(n)])
        except KazooException as err:
            raise zk_error(err) from None
        described = tuple(self._topic_metadata(name, plans, existing) for name in wanted)
        throttled = sum(t.error_code == _code("THROTTLING_QUOTA_EXCEEDED") for t in described)
        if throttled:
            log.warning(
                "broker %s: %d topics not auto-created: at most %d per request and %d per "
                "minute (THROTTLING_QUOTA_EXCEEDED; clients retry)",
                self.broker_id,
                throttled,
                limits.auto_created_topics_per_request_max,
                limits.auto_created_topics_per_minute_max,
            )
        controller = -1 if controller_id is None else controller_id
        return MetadataResponse(brokers, described, controller), plans

    # --- admin ----------------------------------------------------------------------------

    def _create(
        self,
        name: str,
        partitions: int,
        replication_factor: int,
        configs: dict[str, str],
        plans: list[HostPlan],
        exists_ok: bool = False,
    ) -> TopicInfo | None:
        """Create the topic and add its plan to `plans`: the broker hosts it before it answers
        (the watch would a moment later; a client producing right away must not miss it)."""
        try:
            info = self.store.create(name, partitions, replication_factor, configs, self.racks())
        except ZafkaError as err:
            if exists_ok and err.error.name == "TOPIC_ALREADY_EXISTS":
                return self.store.get(name)
            raise
        plans.append(self.plan(info))
        return info

    def create_topics(
        self, topics: tuple[NewTopic, ...]
    ) -> tuple[CreateTopicsResponse, list[HostPlan]]:
        results, plans = [], []
        for topic in topics:
            if topic.name in INTERNAL_TOPICS:
                results.append(_internal(topic.name))
                continue
            try:
                configs = dict(topic.configs)
                self._create(topic.name, topic.partitions, topic.replication_factor, configs, plans)
                results.append(TopicResult(topic.name, 0, None))
            except ZafkaError as err:
                results.append(TopicResult(topic.name, err.error.code, err.detail or None))
            except KazooException as err:
                results.append(TopicResult(topic.name, zk_error(err).error.code, str(err)))
        return CreateTopicsResponse(results=tuple(results)), plans

    def delete_topics(self, names: tuple[str, ...]) -> tuple[DeleteTopicsResponse, list[str]]:
        """Delete the topics; returns the response and the names actually deleted."""
        results, deleted = [], []
        for name in names:
            if name in INTERNAL_TOPICS:
                results.append(_internal(name))
                continue
            try:
                self.store.delete(name)
                deleted.append(name)
                results.append(TopicResult(name, 0, None))
            except ZafkaError as err:
                results.append(TopicResult(name, err.error.code, err.detail or None))
            except KazooException as err:
                results.append(TopicResult(name, zk_error(err).error.code, str(err)))
        return DeleteTopicsResponse(results=tuple(results)), deleted

    def describe_topics(self, names: tuple[str, ...]) -> DescribeTopicsResponse:
        return DescribeTopicsResponse(topics=tuple(self._describe(n) for n in names))

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
            return TopicDescription(name, zk_error(err).error.code, (), {})

    # --- producer ids ---------------------------------------------------------------------

    def claim_producer_ids(self) -> ProducerIdBlock:
        return claim_block(self.client, self.broker_id)

    # --- group coordinators ---------------------------------------------------------------

    def find_coordinator(self, group_id: str, known_topic_id: str | None) -> CoordinatorLookup:
        """The broker coordinating `group_id`: the leader of its partition of
        `__consumer_offsets`, which is created here on first use. `known_topic_id`: the
        incarnation of the topic the broker hosts (a plan comes back for any other one).
        ZooKeeper trouble, a leaderless partition or an unregistered leader:
        COORDINATOR_NOT_AVAILABLE (the client retries)."""
        plans: list[HostPlan] = []
        try:
            info = self.store.get(OFFSETS_TOPIC)
            if info is None:
                factor = max(min(limits.offsets_replicas_count, len(self.racks())), 1)
                configs = OFFSETS_TOPIC_CONFIGS
                info = self._create(
                    OFFSETS_TOPIC, self.offsets_partitions, factor, configs, [], True
                )
            if info is None:  # created and deleted again meanwhile
                return _unavailable(f"{OFFSETS_TOPIC} vanished while it was created")
            if info.topic_id != known_topic_id:
                plans.append(self.plan(info))
            partition = coordinator_partition(group_id, info.partitions)
            state, _ = self.store.partition_state(OFFSETS_TOPIC, partition)
            if state.leader < 0:
                return _unavailable(f"{OFFSETS_TOPIC}-{partition} has no leader", partition, plans)
            endpoint = self.endpoint_of(state.leader)
            if endpoint is None:
                detail = f"the leader of {OFFSETS_TOPIC}-{partition}, {state.leader}, is down"
                return _unavailable(detail, partition, plans)
        except (ZafkaError, KazooException, KazooTimeoutError) as err:
            return _unavailable(f"{type(err).__name__}: {err}", plans=plans)
        response = FindCoordinatorResponse(0, state.leader, endpoint)
        return CoordinatorLookup(response, partition, plans)


def _valid_name(name: str) -> bool:
    try:
        check_topic_name(name)
    except ZafkaError:
        return False
    return True


def _internal(name: str) -> TopicResult:
    detail = f"{name} is an internal topic: the brokers create it on first use"
    return TopicResult(name, _code("INVALID_REQUEST"), detail)
