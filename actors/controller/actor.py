"""ControllerActor: the shell around the controller's decisions (actors/controller/state.py).

Every broker runs one, named `controller`; it is in the running for the cluster's controller
(coordination/controller.py) and acts only while it holds the lease. Elected, it reads the
cluster from ZooKeeper (the live brokers and their endpoints, every topic's replicas and
partition states with their versions), hands that to a fresh `ControllerState` of its epoch,
and then does what the state returns: each write is a fenced ZooKeeper transaction, each
push a LeaderAndIsr cast to the broker's `broker` actor with the controller epoch in the
envelope. Watches on the broker registrations and on the topic list (kazoo's threads) post
a re-read; what changed goes in as `brokers_changed`, `topic_added` and `topic_removed`.

All ZooKeeper work runs on a ZooKeeper worker of its own (so controller work never delays
the broker's admin requests), never on the runtime's thread;
its results come back through `Runtime.post` and are dropped when they belong to a lease
that has ended (`_term` counts leases). A write refused for its version makes the
partition be read again; one refused for the controller epoch means another controller was
elected: this one resigns at once. Resigned (SUSPENDED, LOST, or deposed), it forgets its
state; elected again, it reads everything again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from kazoo.recipe.watchers import ChildrenWatch

from zafka import limits
from zafka.actors.controller.coalesce import OneAtATime
from zafka.actors.controller.context import ControllerContext
from zafka.actors.controller.metadata import delta_update, full_updates
from zafka.actors.controller.reads import (
    QueuedRequest,
    Targets,
    Views,
    read_request_queue,
    read_topics,
)
from zafka.actors.controller.state import (
    AssignmentWrite,
    ControllerState,
    Decisions,
    StateWrite,
)
from zafka.actors.runtime.actor import Actor, handlers
from zafka.coordination import controller_requests, paths, reassignments
from zafka.coordination.brokers import Registration
from zafka.coordination.controller import (
    ControllerElection,
    ControllerLease,
    fenced_set,
    live_brokers,
)
from zafka.coordination.controller_requests import ControllerRequest
from zafka.coordination.topics import TopicStore
from zafka.errors import ZafkaError
from zafka.transport.controller import LeaderAndIsrRequest
from zafka.transport.names import broker_node

log = logging.getLogger(__name__)
CONTROLLER_ACTOR = "controller"


class ControllerActor(Actor):
    def __init__(self, context: ControllerContext) -> None:
        super().__init__(CONTROLLER_ACTOR)
        self.context = context
        self.store = TopicStore(context.client)
        self.lease: ControllerLease | None = None
        self.state: ControllerState | None = None
        self._term = 0  # one more per lease: results of an older one are dropped
        self._endpoints: dict[int, str] = {}  # broker id -> endpoint, as registered
        self._kafka: dict[int, str] = {}  # broker id -> Kafka listener host:port, if it has one
        self._reloads: set[tuple[str, int]] = set()  # partitions to read again (timer)
        self._rereads, self._request_reads = OneAtATime(), OneAtATime()
        self._full: set[int] = set()  # brokers that get a full UpdateMetadata next

    def on_start(self) -> None:
        if self.context.election is None:
            runtime = self._runtime()

            def post(method: Callable[..., object], *args: object) -> None:
                runtime.post(lambda: method(runtime.actor(CONTROLLER_ACTOR), *args))

            self.context.election = ControllerElection(
                self.context.client,
                self.context.broker_id,
                lambda lease: post(ControllerActor.elected, lease),
                lambda: post(ControllerActor.resigned),
            )
            self._submit(self.context.election.start, ControllerActor._started)
        elif self.context.election.lease is not None:  # a restart after a crash
            self.elected(self.context.election.lease)

    def _started(self, result: object) -> None:
        if isinstance(result, Exception):  # ZooKeeper unreachable at start: try again later
            log.warning("controller: election not started (%s); retrying", result)
            self.set_timer("start", limits.topic_sync_retry_ms)

    def on_start_timeout(self, now_ms: int) -> None:
        election = self.context.election
        assert election is not None
        self._submit(election.start, ControllerActor._started)

    # --- the lease ------------------------------------------------------------------------

    def elected(self, lease: ControllerLease) -> None:
        self._term += 1
        self.lease, self.state = lease, ControllerState(lease.epoch)
        self._endpoints, self._reloads, self._full = {}, set(), set()
        self._rereads, self._request_reads = OneAtATime(), OneAtATime()
        self._submit(self._read_all, ControllerActor._loaded)

    def resigned(self) -> None:
        self._term += 1
        self.lease = self.state = None

    def _read_all(self) -> tuple[dict[int, Registration], Views, Targets]:
        client = self.context.client
        client.ensure_path(paths.BROKER_IDS)  # the watches need them
        client.ensure_path(paths.CONTROLLER_REQUESTS)
        views = read_topics(self.store, self.store.names())
        return live_brokers(client), views, reassignments.read_targets(client)

    def _loaded(self, result: tuple[dict[int, Registration], Views, Targets] | Exception) -> None:
        if isinstance(result, Exception):  # read it all again, later
            log.warning("controller: cannot read the cluster (%s); retrying", result)
            self.set_timer("load", limits.topic_sync_retry_ms)
            return
        brokers, views, targets = result
        assert self.state is not None
        self._watch()
        self._apply(self._brokers(brokers))
        for topic, view in sorted(views.items()):
            self._apply(self.state.topic_added(topic, view.partitions, view.unclean))
        for key, target in sorted(targets.items()):  # moves a former controller began
            self._apply(self.state.reassign(*key, target))
        self.read_requests()
        self.on_metadata_refresh_timeout(0)
        interval_ms = self.context.settings.imbalance_check_interval_ms
        if interval_ms > 0:
            self.set_timer("rebalance", interval_ms)

    def on_rebalance_timeout(self, now_ms: int) -> None:
        if self.state is None:
            return
        percentage = self.context.settings.imbalance_per_broker_percentage
        chosen = self.state.imbalanced(percentage)
        if chosen:
            log.info("controller: preferred leader election for %d partitions", len(chosen))
            self._apply(self.state.elect_preferred(chosen))
        self.set_timer("rebalance", self.context.settings.imbalance_check_interval_ms)

    def on_load_timeout(self, now_ms: int) -> None:
        if self.state is not None:
            self._submit(self._read_all, ControllerActor._loaded)

    def _watch(self) -> None:
        """Watch registrations and topics once per process; each change posts a re-read."""
        if self.context.watching:
            return
        runtime = self._runtime()

        def changed(_: object) -> None:  # kazoo's thread: hand over, never block
            runtime.post(lambda: runtime.actor(CONTROLLER_ACTOR).reread())

        def requested(_: object) -> None:
            runtime.post(lambda: runtime.actor(CONTROLLER_ACTOR).read_requests())

        ChildrenWatch(self.context.client, paths.BROKER_IDS, changed)  # made by _read_all
        ChildrenWatch(self.context.client, paths.CONTROLLER_REQUESTS, requested)
        self.store.watch(changed)
        self.context.watching = True  # only now: a failure above is tried again next load

    # --- requests queued for the controller -------------------------------------------------

    def read_requests(self) -> None:
        """Take the queued requests (coordination/controller_requests.py), one read at a
        time (requests queued meanwhile make one more)."""
        if self.state is None:
            return
        if not self._request_reads.start():
            return
        read = partial(read_request_queue, self.context.client, self.store)
        self._submit(read, ControllerActor._requests_read)

    def _requests_read(self, result: list[QueuedRequest] | Exception) -> None:
        again = self._request_reads.done()
        if isinstance(result, Exception):
            log.warning("controller: cannot read its requests (%s); retrying", result)
            self.set_timer("requests", limits.topic_sync_retry_ms)
            return
        for request, views, targets in result:
            self._do(request, views, targets)
            lease = self.lease
            assert lease is not None
            done = partial(controller_requests.done, self.context.client, request.name, lease)
            self._submit(done)
        if again:
            self.read_requests()

    def on_requests_timeout(self, now_ms: int) -> None:
        self.read_requests()

    def _do(self, request: ControllerRequest, views: Views, targets: Targets) -> None:
        assert self.state is not None
        if request.kind == controller_requests.REASSIGN:
            for key, target in sorted(targets.items()):
                self._apply(self.state.reassign(*key, target))
            return
        if request.kind == controller_requests.ELECT_PREFERRED:
            self._apply(self.state.elect_preferred(request.partitions))
            return
        if request.kind == controller_requests.ISR_CHANGED:  # read again, unless being written
            for key in request.partitions:  # (then a refused write makes it read again)
                if key in self.state.partitions and key not in self.state.in_flight:
                    self.state.rereading(*key)
                    self._reload(key)
            return
        view = views.get(request.topic)  # partitions added: host the new ones
        known = {p for t, p in self.state.partitions if t == request.topic}
        if view is not None and known:
            added = {p: v for p, v in view.partitions.items() if p not in known}
            self._apply(self.state.topic_added(request.topic, added, view.unclean))

    # --- what changed -----------------------------------------------------------------------

    def reread(self) -> None:
        """Read the brokers and the topic list again; feed in what changed. One re-read at a
        time: changes seen meanwhile make one more (a burst costs a few, not one each)."""
        if self.state is None:
            return
        if not self._rereads.start():
            return
        known = sorted({topic for topic, _ in self.state.partitions})

        def read() -> tuple[dict[int, str], list[str], Views]:
            names = self.store.names()
            new = [n for n in names if n not in known]
            return live_brokers(self.context.client), names, read_topics(self.store, new)

        self._submit(read, ControllerActor._reread_done)

    def _reread_done(self, result: tuple[dict[int, str], list[str], Views] | Exception) -> None:
        if self._rereads.done():
            self.reread()
        if isinstance(result, Exception):
            log.warning("controller: cannot read the cluster (%s); retrying", result)
            self.set_timer("reread", limits.topic_sync_retry_ms)
            return
        brokers, names, new = result
        assert self.state is not None
        self._apply(self._brokers(brokers))
        for topic in sorted({t for t, _ in self.state.partitions} - set(names)):
            self._apply(self.state.topic_removed(topic))
        for topic, view in sorted(new.items()):
            self._apply(self.state.topic_added(topic, view.partitions, view.unclean))

    def _brokers(self, registered: dict[int, Registration]) -> Decisions:
        """Link the live brokers (the runtime reaches `broker-<id>` by its endpoint); those
        new or registered anew get a full UpdateMetadata."""
        assert self.state is not None
        brokers = {b: r.endpoint for b, r in registered.items()}
        kafka = {b: r.kafka for b, r in registered.items() if r.kafka}
        if kafka != self._kafka:
            self._kafka = kafka
            self._full |= set(brokers)
            self.set_timer("metadata", 0)
        if brokers != self._endpoints:
            self._full |= {b for b, e in brokers.items() if self._endpoints.get(b) != e}
            self.set_timer("metadata", 0)
        for broker_id in set(self._endpoints) - set(brokers):
            self.context.transport.disconnect(broker_node(broker_id))
        for broker_id, endpoint in brokers.items():
            if self._endpoints.get(broker_id) != endpoint and broker_id != self.context.broker_id:
                self.context.transport.ensure_link(broker_node(broker_id), endpoint)
        self._endpoints = dict(brokers)
        return self.state.brokers_changed(brokers)

    # --- doing what the state decided -----------------------------------------------------

    def _apply(self, decided: Decisions) -> None:
        assert self.lease is not None
        if decided.update_metadata:
            self.set_timer("metadata", 0)  # one update per turn, however many changes
        for write in decided.writes:
            self._write(write)
        for assignment in decided.assignments:
            self._assign(assignment)
        for topic, partition in decided.finished:
            log.info("controller: %s-%s reassigned", topic, partition)
            self._submit(
                partial(reassignments.delete_target, self.context.client, topic, partition)
            )
        for push in decided.pushes:
            state = push.state
            request = LeaderAndIsrRequest(
                push.topic,
                push.partition,
                state.leader,
                state.leader_epoch,
                state.isr,
                push.replicas,
                push.version,
                self._endpoints.get(state.leader, ""),
            )
            self.cast(f"{broker_node(push.broker)}/broker", request, self.lease.epoch)

    def _write(self, write: StateWrite) -> None:
        lease = self.lease
        assert lease is not None
        path = paths.partition_state(write.topic, write.partition)
        job = partial(fenced_set, self.context.client, lease, path, write.state.to_json())
        self._submit(lambda: job(write.version), lambda actor, r: actor._written(write, r))

    def _assign(self, write: AssignmentWrite) -> None:
        lease = self.lease
        assert lease is not None
        job = partial(
            reassignments.fenced_assign, self.context.client, lease, *write[:3], write.version
        )
        self._submit(job, lambda actor, r: actor._assigned(write, r))

    def _assigned(self, write: AssignmentWrite, result: object) -> None:
        assert self.state is not None
        if not isinstance(result, Exception):
            self._apply(self.state.assigned(write.topic, write.partition, write.replicas))
            return
        self._not_written((write.topic, write.partition), result)

    def _written(self, write: StateWrite, result: object) -> None:
        assert self.state is not None
        key = (write.topic, write.partition)
        if isinstance(result, int):
            self._apply(self.state.written(*key, write.state, result))
            return
        self._not_written(key, result)

    def _not_written(self, key: tuple[str, int], result: object) -> None:
        """A write failed: deposed (resign), or the partition changed (read it again)."""
        assert self.state is not None
        if isinstance(result, ZafkaError) and result.error.name == "STALE_CONTROLLER_EPOCH":
            log.warning("controller %s: deposed (%s)", self.context.broker_id, result)
            self.resigned()
            return
        if key not in self.state.partitions:  # its topic was deleted meanwhile
            return
        log.info("controller: %s-%s not written (%s); reading it again", *key, result)
        self.state.rereading(*key)
        self._reload(key)

    def _reload(self, key: tuple[str, int]) -> None:
        self._submit(
            partial(self.store.partition_state, *key),
            lambda actor, r: actor._reloaded(key, r),
        )

    def _reloaded(self, key: tuple[str, int], result: object) -> None:
        assert self.state is not None
        if isinstance(result, Exception):
            if key in self.state.partitions:  # not deleted meanwhile: read it again later
                log.warning("controller: cannot read %s-%s: %s", *key, result)
                self._reloads.add(key)
                self.set_timer("reload", limits.topic_sync_retry_ms)
            return
        state, version = result  # type: ignore[misc]
        self._apply(self.state.reloaded(*key, state, version))

    # --- the brokers' metadata caches ------------------------------------------------------

    def on_metadata_timeout(self, now_ms: int) -> None:
        """Send what changed to every live broker, everything to those in `_full`."""
        if self.state is None or self.lease is None:
            return
        changed, removed = self.state.take_changes()
        delta = delta_update(self.state, self._endpoints, self._kafka, changed, removed)
        full = full_updates(self.state, self._endpoints, self._kafka) if self._full else []
        for broker_id in sorted(self._endpoints):
            for update in full if broker_id in self._full else [delta]:
                self.cast(f"{broker_node(broker_id)}/broker", update, self.lease.epoch)
        self._full = set()

    def on_metadata_refresh_timeout(self, now_ms: int) -> None:
        """Every broker gets everything now and then (a lost message heals)."""
        if self.state is not None:
            self._full = set(self._endpoints)
            self.set_timer("metadata", 0)
            self.set_timer("metadata_refresh", limits.metadata_refresh_ms)

    def on_reload_timeout(self, now_ms: int) -> None:
        keys, self._reloads = self._reloads, set()
        for key in sorted(keys):
            self._reload(key)

    def on_reread_timeout(self, now_ms: int) -> None:
        self.reread()

    def _submit(
        self,
        job: Callable[[], Any],
        done: Callable[[ControllerActor, Any], None] = lambda actor, result: None,
    ) -> None:
        """Run `job` on the ZooKeeper worker; `done(actor, result or exception)` runs here
        if the lease it was asked under is still the current one."""
        runtime, term = self._runtime(), self._term

        def back(result: object) -> None:
            actor = runtime.actor(CONTROLLER_ACTOR)
            if isinstance(actor, ControllerActor) and actor._term == term:
                done(actor, result)

        try:
            self.context.worker.submit(job, back)
        except ZafkaError as err:  # BUSY: the job failed; its own path retries it
            log.warning("controller: ZooKeeper job not queued (%s)", err)
            done(self, err)

    HANDLERS = handlers({})  # it answers only Ping (every actor does): it sends, never serves
