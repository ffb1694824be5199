"""BrokerActor: one broker's admin and metadata front, and the host of its partition actors.

The actor is named `broker`, so on node `broker-<id>` clients reach it at `broker-<id>/broker`;
produce, fetch and list-offsets go straight to the partition actors (`broker-<id>/<topic>-<p>`,
see actors/partition/actor.py), never through this actor.

For every partition this broker is a replica of it hosts one `PartitionActor`
with its log in `<data dir>/<topic>-<p>` (that directory also holds a `topic_id` file: data
left by a deleted topic of the same name is removed, never served as the new topic's).

Requests: Metadata (brokers from /brokers/ids, topics with leaders, epochs and ISR; unknown
topics created when `auto_create_topics` is on), CreateTopics, DeleteTopics, DescribeTopics,
each with a result code per topic, and InitProducerId (a producer id unique in the cluster,
epoch 0, from blocks claimed in ZooKeeper: coordination/producer_ids.py).

ZooKeeper never runs on the runtime's thread once the broker serves. These requests are
answered DEFERRED: their ZooKeeper part (actors/broker/admin.py) runs on the process's
`ZooKeeperWorker` thread, one job at a time in arrival order, and its result comes back
through `Runtime.post`; the actor then hosts or drops the partitions the result created or
deleted, and replies. So produce, fetch and list offsets never wait behind ZooKeeper, even
when it is slow or unreachable; admin requests wait behind one another (a stuck ZooKeeper
call ends with the session timeout and UNKNOWN_SERVER_ERROR). A deferred request still
pending when the actor stops (or is restarted after a crash) gets STOPPED, also one whose
reply is queued behind hosting.

Hosting: on the process's first start, before it serves anything, the actor reads every
topic synchronously and spawns what it leads (nothing is served yet, so nothing waits). A
watch on the topic list (kazoo's thread) posts a re-sync; the sync job reads the list again
(never trusting the watch's list, which may be older than jobs queued before it) and the
actor applies it: partitions of new topics spawned, those of deleted topics stopped and
their data deleted. One sync at a time (changes meanwhile make one more). A sync that fails
is retried after `limits.topic_sync_retry_ms`. Spawning and stopping go through one FIFO
queue worked `limits.hosted_topics_per_turn_max` topics per runtime turn, each deferred reply
queued behind the hosting
its job asked for, so no number of topics keeps produce and fetch waiting. An item that
fails (a full disk) is logged and skipped; a sync drops topics still queued for hosting too.
A restart after a crash keeps the hosted partitions, the queue and the watch (in the
`BrokerContext`).

Consumer groups: FindCoordinator names the broker leading the group's partition of
`__consumer_offsets` (created on first use, on the worker: `BrokerZooKeeper.find_coordinator`);
when that is this broker, it also makes sure the group's coordinator actor (`group-<id>`,
actors/group/coordinator.py) runs here. A request for a group whose partition this broker leads is
answered at once, without ZooKeeper. The partitions of `__consumer_offsets` led here are
replayed before their groups are served, and coordinators are told of topic changes
(actors/group/host.py keeps that bookkeeping). ListGroups lists the groups coordinated here.

Replicas: every partition this broker is a replica of runs here as leader or follower
(actors/broker/hosting.py), as the controller's LeaderAndIsr says (controller_messages.py);
a leader's ISR changes are written through the worker (isr_writes.py).
"""

from __future__ import annotations

import itertools
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from zafka import limits
from zafka.actors.broker.admin import (
    BrokerZooKeeper,
    CoordinatorLookup,
    HostPlan,
    as_error,
    check_group_id,
    coordinator_partition,
)
from zafka.actors.broker.controller_messages import on_controller_message
from zafka.actors.broker.hosting import host_topic, led, unhost_topic
from zafka.actors.broker.isr_writes import on_alter_isr
from zafka.actors.broker.metadata_cache import MetadataCache, merged
from zafka.actors.broker.partition_admin import (
    alter_reassignments,
    create_partitions,
    elect_leaders,
    list_reassignments,
)
from zafka.actors.broker.partition_dirs import delete_orphans
from zafka.actors.broker.producer_id_requests import on_init_producer_id_request
from zafka.actors.group.host import GroupHost
from zafka.actors.group.messages import GroupGone, GroupStatus, NeedState
from zafka.actors.group.offsets_loader import OffsetsLoaded
from zafka.actors.group.records import OFFSETS_TOPIC
from zafka.actors.partition.replica_io import AlterIsr
from zafka.actors.runtime.actor import DEFERRED, Actor, handlers
from zafka.coordination.producer_ids import ProducerIdPool
from zafka.coordination.topic_records import TopicInfo
from zafka.coordination.worker import ZooKeeperWorker
from zafka.errors import BY_NAME, ZafkaError
from zafka.transport.admin import (
    AlterPartitionReassignmentsRequest,
    CreatePartitionsRequest,
    CreateTopicsRequest,
    DeleteTopicsRequest,
    DescribeTopicsRequest,
    ElectLeadersRequest,
    ListPartitionReassignmentsRequest,
)
from zafka.transport.client import (
    InitProducerIdRequest,
    MetadataRequest,
    MetadataResponse,
    TopicMetadata,
)
from zafka.transport.controller import LeaderAndIsrRequest, UpdateMetadataRequest
from zafka.transport.envelope import Envelope
from zafka.transport.group import FindCoordinatorRequest, FindCoordinatorResponse, ListGroupsRequest

log = logging.getLogger(__name__)
Work = tuple[Callable[..., None], tuple]  # a BrokerActor method and its arguments

BROKER_ACTOR = "broker"


@dataclass
class BrokerContext:
    """What a BrokerActor needs, shared by its incarnations. A restart after a crash keeps
    the partition actors, the one topic watch and the producer ids; the requests waiting for
    ZooKeeper are answered STOPPED (`on_stop`), while their jobs still finish (hosting,
    unhosting, a claimed id block) when the worker is done with them."""

    zookeeper: BrokerZooKeeper
    worker: ZooKeeperWorker
    data_dir: Path
    endpoint: str = ""  # where clients reach this broker (FindCoordinator answers it)
    groups: GroupHost = field(default_factory=GroupHost)  # group coordinators and loaders
    started: bool = False  # hosting done and watch set (once per process)
    topic_ids: dict[str, str] = field(default_factory=dict)  # hosted topic -> its topic_id
    infos: dict[str, TopicInfo] = field(default_factory=dict)  # hosted topic -> as stored
    running: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)  # replicas
    # here: (topic, partition) -> (leader epoch, leader) it runs in
    scrubbed: set[tuple[str, int]] = field(default_factory=set)  # followers' logs checked once
    link: Callable[[str, str], None] = lambda node, endpoint: None  # reach node at endpoint
    controller_id: int = -1  # the controller whose messages are accepted ...
    controller_epoch: int = 0  # ... in this epoch (older epochs are refused)
    metadata: MetadataCache = field(default_factory=MetadataCache)  # UpdateMetadata's
    hosted: dict[str, list[int]] = field(default_factory=dict)  # topic -> replicas here
    partition_counts: dict[str, int] = field(default_factory=dict)  # every known topic
    producer_ids: ProducerIdPool = field(default_factory=ProducerIdPool)
    claiming_ids: bool = False  # a producer id block claim is with the worker
    awaiting_ids: deque[Envelope] = field(default_factory=deque)  # InitProducerId requests
    deferred: dict[int, Envelope] = field(default_factory=dict)  # requests at the worker
    syncing: bool = False  # a topic sync is with the worker
    sync_again: bool = False  # the topics changed meanwhile: one more sync after it
    hosting: deque[Work] = field(default_factory=deque)  # see _enqueue
    keys: itertools.count = field(default_factory=lambda: itertools.count(1))


# Requests answered by one job on the ZooKeeper worker and nothing else: (zk, message) -> reply.
ZOOKEEPER_ANSWERS: dict[type, Callable[[BrokerZooKeeper, Any], object]] = {
    DescribeTopicsRequest: lambda zk, m: zk.describe_topics(m.names),
    ElectLeadersRequest: lambda zk, m: elect_leaders(zk, m.partitions),
    AlterPartitionReassignmentsRequest: lambda zk, m: alter_reassignments(zk, m.partitions),
    ListPartitionReassignmentsRequest: lambda zk, m: list_reassignments(zk),
}


class BrokerActor(Actor):
    """The `broker` actor of one broker process; see the module docstring."""

    def __init__(self, context: BrokerContext) -> None:
        super().__init__(BROKER_ACTOR)
        self.context = context
        self.zk = context.zookeeper

    # --- lifecycle ------------------------------------------------------------------------

    def on_start(self) -> None:
        if self.context.started:  # a restart after a crash: the hosted partitions and the
            if self.context.hosting:  # watch live on; so does work queued, not its timer
                self.set_timer("host", 0)
            return
        self.context.started = True
        names, plans = self.zk.topic_plans({})  # before serving: nothing waits on this
        delete_orphans(self.context.data_dir, set(names))  # topics deleted while it was down
        self._apply_sync((names, plans))
        while self.context.hosting:
            self._work(self.context.hosting.popleft())
        self.cancel_timer("host")
        runtime = self._runtime()

        def on_topics(names: list[str]) -> None:  # kazoo's thread: hand over, never block
            runtime.post(lambda: _current(runtime).request_sync())

        self.zk.store.watch(on_topics)

    def on_stop(self) -> None:
        """Requests waiting for ZooKeeper, or for the hosting their job queued, get STOPPED
        (partition actors are stopped by the runtime: they were spawned after this one).
        The hosting work stays queued in the context for a restart after a crash."""
        stopped = ZafkaError("STOPPED", f"{self.name} stopped before the request was done")
        queued = [item for item in self.context.hosting if item[0] is BrokerActor._answer]
        waiting = [*self.context.deferred.values(), *self.context.awaiting_ids]
        waiting += [args[0] for _, args in queued]
        self.context.deferred.clear()
        self.context.awaiting_ids.clear()
        hosting = [item for item in self.context.hosting if item[0] is not BrokerActor._answer]
        self.context.hosting = deque(hosting)
        for envelope in waiting:
            self._answer(envelope, stopped)

    # --- deferring to the ZooKeeper worker ------------------------------------------------

    def _defer(
        self, envelope: Envelope, job: Callable[[], Any], finish: Callable[[BrokerActor, Any], Any]
    ) -> object:
        """Run `job` on the worker; then `finish(actor, result)` here makes the reply."""
        key = next(self.context.keys)
        self.context.deferred[key] = envelope
        runtime = self._runtime()
        try:
            self.context.worker.submit(
                job, lambda result: _current(runtime)._complete(key, result, finish)
            )
        except ZafkaError:  # BUSY, STOPPED: answered as an ErrorReply now
            del self.context.deferred[key]
            raise
        return DEFERRED

    def _complete(self, key: int, result: Any, finish: Callable[[BrokerActor, Any], Any]) -> None:
        """A job's result is back: finish (host, unhost) even if nobody waits any more."""
        envelope = self.context.deferred.pop(key, None)
        if isinstance(result, Exception):
            reply = as_error(result)
        else:
            try:
                reply = finish(self, result)
            except Exception as exc:
                reply = as_error(exc)
        if envelope is not None:  # after the hosting its job queued (and any before it)
            self._enqueue([(BrokerActor._answer, (envelope, reply))])

    def _answer(self, envelope: Envelope, reply: object) -> None:
        """Reply to a deferred call (a cast gets nothing), errors as ErrorReply."""
        if envelope.correlation_id == 0:
            return
        if isinstance(reply, ZafkaError):
            self.reply_error(envelope, reply)
            return
        try:
            self.reply(envelope, reply)
        except ZafkaError as err:  # e.g. a reply too large for the wire
            self.reply_error(envelope, err)

    # --- hosting partitions ---------------------------------------------------------------

    def request_sync(self) -> None:
        """Read the topic list again (on the worker) and host what it says. One sync at a
        time: changes seen meanwhile make one more (a burst of topic changes costs a few
        syncs, not one per change)."""
        if self.context.syncing:
            self.context.sync_again = True
            return
        counts = self.context.partition_counts
        known = {name: (tid, counts[name]) for name, tid in self.context.topic_ids.items()}
        runtime = self._runtime()
        try:
            self.context.worker.submit(
                partial(self.zk.topic_plans, known),
                lambda result: _current(runtime)._apply_sync(result),
            )
        except ZafkaError as err:
            log.warning("broker %s: topic sync not queued (%s); retrying", self._id, err)
            self.set_timer("sync", limits.topic_sync_retry_ms)
            return
        self.context.syncing = True

    def on_sync_timeout(self, now_ms: int) -> None:
        self.request_sync()

    def _apply_sync(self, result: tuple[list[str], list[HostPlan]] | Exception) -> None:
        self.context.syncing = False
        if isinstance(result, Exception):
            log.warning("broker %s: cannot read the topics: %s; retrying", self._id, result)
            self.set_timer("sync", limits.topic_sync_retry_ms)
            return
        names, plans = result
        current = set(names)
        queued = [args[0].info.name for m, args in self.context.hosting if m is BrokerActor._host]
        gone = [t for t in dict.fromkeys([*self.context.hosted, *queued]) if t not in current]
        self._enqueue([(BrokerActor._unhost, (name, True)) for name in gone])
        self._enqueue([(BrokerActor._host, (plan,)) for plan in plans])
        self._enqueue([(BrokerActor._topics_changed, ())])
        if self.context.sync_again:
            self.context.sync_again = False
            self.request_sync()

    def _enqueue(self, work: list[Work]) -> None:
        """Queue hosting work (one topic each, or a reply), done
        `limits.hosted_topics_per_turn_max` per runtime turn, in order: produce and fetch are
        served between slices however many topics change. Items name the method, not the
        instance: a restart replaces it."""
        if not work:
            return
        if not self.context.hosting:
            self.set_timer("host", 0)
        self.context.hosting.extend(work)

    def on_host_timeout(self, now_ms: int) -> None:
        hosting = self.context.hosting
        for _ in range(min(len(hosting), limits.hosted_topics_per_turn_max)):
            self._work(hosting.popleft())
        if hosting:
            self.set_timer("host", 0)

    def _work(self, item: Work) -> None:
        """Do one queued item. One that fails (a full disk, a directory that cannot be
        deleted) is logged and skipped: it never takes the actor, or the queue, down."""
        method, args = item
        try:
            method(self, *args)
        except Exception:
            log.exception("broker %s: %s%r failed", self._id, method.__name__, args)

    @property
    def _id(self) -> int:
        return self.zk.broker_id

    def _host(self, plan: HostPlan) -> None:
        """Spawn the partition actors `plan` says this broker leads (once per topic id)."""
        if self.context.topic_ids.get(plan.info.name) not in (None, plan.info.topic_id):
            self.context.metadata.forget(plan.info.name)  # created again: the old is gone
        self.context.metadata.learn(TopicMetadata(plan.info.name, 0, plan.partitions))
        hosted = host_topic(self.context, self._runtime(), plan.info, plan.states)
        if hosted and plan.info.name == OFFSETS_TOPIC:
            self.context.groups.lead(self, led(self.context, OFFSETS_TOPIC))

    def _unhost(self, name: str, delete_data: bool) -> None:
        """Stop the partition actors of topic `name` and, if asked, delete their data. For
        `__consumer_offsets`, its group coordinators and loaders first."""
        if name == OFFSETS_TOPIC:
            self.context.groups.unlead_all(self)
        self.context.metadata.forget(name)
        unhost_topic(self.context, self._runtime(), name, delete_data)

    def _host_all(self, result: tuple[object, list[HostPlan]]) -> object:
        response, plans = result
        self._enqueue([(BrokerActor._host, (plan,)) for plan in plans])
        if plans:
            self._enqueue([(BrokerActor._topics_changed, ())])
        return response

    def _unhost_all(self, result: tuple[object, list[str]]) -> object:
        response, deleted = result
        self._enqueue([(BrokerActor._unhost, (name, True)) for name in deleted])
        if deleted:
            self._enqueue([(BrokerActor._topics_changed, ())])
        return response

    def _topics_changed(self) -> None:
        """Group coordinators learn every topic's partition count when it changed."""
        self.context.groups.topics_changed(self, self.context.partition_counts)

    # --- requests -------------------------------------------------------------------------

    def on_metadata_request(self, envelope: Envelope) -> object:
        """From the metadata cache once the controller filled it; what it lacks (and all,
        before) from ZooKeeper, which also auto-creates topics if enabled."""
        request: MetadataRequest = envelope.message
        cache = self.context.metadata
        if not cache.ready:
            job = partial(self.zk.metadata, request.topics)
            return self._defer(envelope, job, BrokerActor._host_all)
        cached, missing = cache.answer(request.topics, self.context.controller_id)
        if not missing:
            return cached

        def finish(actor: BrokerActor, result: tuple[MetadataResponse, list]) -> object:
            read, plans = result
            return actor._host_all((merged(request.topics, cached, read), plans))

        return self._defer(envelope, partial(self.zk.metadata, tuple(missing)), finish)

    def on_create_topics_request(self, envelope: Envelope) -> object:
        request: CreateTopicsRequest = envelope.message
        return self._defer(
            envelope, partial(self.zk.create_topics, request.topics), BrokerActor._host_all
        )

    def on_delete_topics_request(self, envelope: Envelope) -> object:
        request: DeleteTopicsRequest = envelope.message
        return self._defer(
            envelope, partial(self.zk.delete_topics, request.names), BrokerActor._unhost_all
        )

    def on_create_partitions_request(self, envelope: Envelope) -> object:
        request: CreatePartitionsRequest = envelope.message
        job = partial(create_partitions, self.zk, request.topics)
        return self._defer(envelope, job, BrokerActor._host_all)

    def on_zookeeper_request(self, envelope: Envelope) -> object:
        """A request answered from ZooKeeper alone (ZOOKEEPER_ANSWERS), on the worker."""
        job = partial(ZOOKEEPER_ANSWERS[type(envelope.message)], self.zk, envelope.message)
        return self._defer(envelope, job, lambda _actor, response: response)

    # --- producer ids ---------------------------------------------------------------------

    on_init_producer_id_request = on_init_producer_id_request  # producer_id_requests.py

    # --- the controller -----------------------------------------------------------------

    def current_epoch(self, kind: str, message: object) -> int:
        return (
            self.context.controller_epoch
            if kind == "controller"
            else super().current_epoch(kind, message)
        )

    on_controller_message = on_controller_message  # controller_messages.py
    on_alter_isr = on_alter_isr  # isr_writes.py

    # --- consumer groups ------------------------------------------------------------------

    def on_find_coordinator_request(self, envelope: Envelope) -> object:
        """The broker coordinating the group (see the module docstring); INVALID_GROUP_ID,
        COORDINATOR_NOT_AVAILABLE (retriable) in the response's error code."""
        request: FindCoordinatorRequest = envelope.message
        group_id = request.group_id
        try:
            check_group_id(group_id)
        except ZafkaError as err:
            return FindCoordinatorResponse(err.error.code, -1, "")
        partitions = self.context.partition_counts.get(OFFSETS_TOPIC)
        if partitions is not None:
            partition = coordinator_partition(group_id, partitions)
            if self.context.groups.serves(partition):
                return self._coordinate(group_id, partition)
        known = self.context.topic_ids.get(OFFSETS_TOPIC)
        job = partial(self.zk.find_coordinator, group_id, known)
        return self._defer(envelope, job, lambda actor, found: actor._found(group_id, found))

    def _found(self, group_id: str, found: CoordinatorLookup) -> FindCoordinatorResponse:
        for plan in found.plans:
            self._host(plan)
        if found.plans:
            self._topics_changed()
        response = found.response
        if response.error_code != 0 or response.node != self._id:
            return response
        if not self.context.groups.serves(found.partition):  # its partition did not start
            return FindCoordinatorResponse(BY_NAME["COORDINATOR_NOT_AVAILABLE"].code, -1, "")
        return self._coordinate(group_id, found.partition)

    def _coordinate(self, group_id: str, partition: int) -> FindCoordinatorResponse:
        """This broker coordinates the group: its coordinator actor runs from now on."""
        self.context.groups.ensure(self, group_id, partition)
        return FindCoordinatorResponse(0, self._id, self.context.endpoint)

    def on_list_groups_request(self, envelope: Envelope) -> object:
        return self.context.groups.list_groups()

    # Local casts from the group coordinators and offsets loaders of this process.

    def on_offsets_loaded(self, envelope: Envelope) -> None:
        loaded: OffsetsLoaded = envelope.message
        self.context.groups.on_loaded(self, loaded)

    def on_need_state(self, envelope: Envelope) -> None:
        message: NeedState = envelope.message
        self.context.groups.on_need_state(self, message.group_id)

    def on_group_status(self, envelope: Envelope) -> None:
        message: GroupStatus = envelope.message
        self.context.groups.on_status(message.group_id, message.state)

    def on_group_gone(self, envelope: Envelope) -> None:
        message: GroupGone = envelope.message
        self.context.groups.on_gone(message.group_id)

    HANDLERS = handlers(
        {
            MetadataRequest: on_metadata_request,
            CreateTopicsRequest: on_create_topics_request,
            DeleteTopicsRequest: on_delete_topics_request,
            CreatePartitionsRequest: on_create_partitions_request,
            **dict.fromkeys(ZOOKEEPER_ANSWERS, on_zookeeper_request),
            InitProducerIdRequest: on_init_producer_id_request,
            FindCoordinatorRequest: on_find_coordinator_request,
            ListGroupsRequest: on_list_groups_request,
            OffsetsLoaded: on_offsets_loaded,
            NeedState: on_need_state,
            GroupStatus: on_group_status,
            GroupGone: on_group_gone,
            LeaderAndIsrRequest: on_controller_message,
            UpdateMetadataRequest: on_controller_message,
            AlterIsr: on_alter_isr,
        }
    )


def _current(runtime) -> BrokerActor:
    """The broker actor now hosted (a restart after a crash replaces the instance)."""
    return runtime.actor(BROKER_ACTOR)
