"""Admin: create, delete, describe and list topics; describe the cluster; list, describe,
reset the offsets of and delete consumer groups (those in clients/admin_groups.py).

    from zafka.clients.admin import Admin, NewTopic

    with Admin("127.0.0.1:9092") as admin:
        admin.create_topic("orders", partitions=3, configs={"retention.ms": "86400000"})
        print(admin.list_topics())
        (orders,) = admin.describe_topics(["orders"])
        print(orders.partitions[0].leader)

Every method blocks its caller until the broker answered, at most `request_timeout_ms`, and
raises a `ZafkaError` (code and name from the error table in `zafka/errors.py`, with the
broker's detail) in the caller's thread. An Admin is thread-safe: its I/O runs on one
background thread (`clients/io.py`), shared by every caller.

Requests go to any broker's `broker` actor (`broker-<id>/broker`); there is no controller
yet, so any broker answers topic admin. The first request asks a bootstrap server for the
brokers (trying each bootstrap server once, within the timeout); a request that times out
makes the next one ask again. Group requests go to the group's coordinator and ListOffsets to
each partition's leader (clients/admin_groups.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from types import TracebackType
from typing import Any, TypeVar

from zafka import clock, limits
from zafka.clients.admin_groups import GroupAdmin, wait_reply
from zafka.clients.admin_partitions import PartitionAdmin
from zafka.clients.admin_types import (
    BrokerDescription,
    GroupDescription,
    GroupListing,
    GroupOffset,
    MemberDescription,
    NewTopic,
    PartitionInfo,
    PartitionReassignment,
    TopicDescription,
    partition_info,
    topic_error,
    topic_results,
)
from zafka.clients.io import CLIENT_ACTOR, ClientActor, ClientIO
from zafka.clients.metadata import leader_may_have_moved, parse_bootstrap
from zafka.errors import ZafkaError
from zafka.transport import admin as wire
from zafka.transport.client import MetadataRequest, MetadataResponse
from zafka.transport.envelope import ANY_NODE
from zafka.transport.names import TopicPartition, broker_node, is_internal

__all__ = [  # the types its calls take and return live in clients/admin_types.py
    "Admin",
    "BrokerDescription",
    "GroupDescription",
    "GroupListing",
    "GroupOffset",
    "MemberDescription",
    "NewTopic",
    "PartitionInfo",
    "PartitionReassignment",
    "TopicDescription",
]
_Response = TypeVar("_Response")


def _names(names: Iterable[str], what: str) -> tuple[str, ...]:
    """`names` as a tuple without repeats (first occurrence kept); one str is refused, since
    iterating it would give its characters."""
    if isinstance(names, str):
        raise ZafkaError("INVALID_REQUEST", f"{what} takes a list of topic names, got a str")
    return tuple(dict.fromkeys(names))


class Admin:
    """Topic, cluster and consumer-group administration; see the module docstring.

    `bootstrap_servers`: "host:port" (or "tcp://host:port"), a list of them or one
    comma-separated string. `request_timeout_ms`: how long one method waits for the broker.
    Close it when done (`close()` or a `with` block)."""

    def __init__(
        self,
        bootstrap_servers: str | Iterable[str],
        request_timeout_ms: int = limits.request_timeout_ms,
    ) -> None:
        if type(request_timeout_ms) is not int or not (
            0 < request_timeout_ms <= limits.call_timeout_ms_max
        ):
            raise ZafkaError(
                "INVALID_CONFIG",
                f"request_timeout_ms must be 1..{limits.call_timeout_ms_max}, "
                f"got {request_timeout_ms!r}",
            )
        self._bootstrap = parse_bootstrap(bootstrap_servers)
        self._timeout_ms = request_timeout_ms
        # Each bootstrap server gets its share of the timeout on first contact.
        attempt_ms = max(1, request_timeout_ms // len(self._bootstrap))
        self._refresh_first = True  # I/O thread only: ask for the brokers before a request
        self._io = ClientIO(
            "admin",
            self._bootstrap,
            lambda bootstrap, transport: ClientActor(bootstrap, transport, attempt_ms),
        )
        self._groups = GroupAdmin(self._call, self._submit, request_timeout_ms)
        self._partitions = PartitionAdmin(self._call, self.describe_topics, request_timeout_ms)

    # --- consumer groups (GroupAdmin's, whose docstrings say more) -----------------------

    def list_groups(self) -> list[GroupListing]:
        """Every group some broker coordinates, by id."""
        return self._groups.list_groups()

    def describe_group(self, group_id: str) -> GroupDescription:
        """One group's state, members and assignment (GROUP_ID_NOT_FOUND if none)."""
        return self._groups.describe_group(group_id)

    def list_group_offsets(
        self, group_id: str, partitions: Iterable[tuple[str, int]] | None = None
    ) -> list[GroupOffset]:
        """A group's committed offsets with each partition's log end and lag."""
        return self._groups.list_group_offsets(group_id, partitions)

    def reset_group_offsets(self, group_id: str, offsets: Mapping[tuple[str, int], int]) -> None:
        """Set a group's committed offsets, while it has no members (else NON_EMPTY_GROUP)."""
        self._groups.reset_group_offsets(group_id, offsets)

    def delete_group(self, group_id: str) -> None:
        """Delete a group with no members and its committed offsets."""
        self._groups.delete_group(group_id)

    def list_offsets(
        self, specs: Mapping[tuple[str, int], int]
    ) -> dict[TopicPartition, int | None]:
        """Each partition's offset for EARLIEST (-2), LATEST (-1) or a timestamp (ms)."""
        return self._groups.list_offsets(specs)

    # --- topics ---------------------------------------------------------------------------

    def create_topic(
        self,
        name: str,
        partitions: int = 1,
        replication_factor: int = 1,
        configs: Mapping[str, str | int] | None = None,
    ) -> None:
        """Create one topic. Raises INVALID_TOPIC, TOPIC_ALREADY_EXISTS, INVALID_PARTITIONS,
        INVALID_REPLICATION_FACTOR (more replicas than live brokers), INVALID_CONFIG, ..."""
        topic = NewTopic(name, partitions, replication_factor, configs or {})
        error = self.create_topics([topic])[name]
        if error is not None:
            raise error

    def create_topics(self, topics: Iterable[NewTopic]) -> dict[str, ZafkaError | None]:
        """Create several topics in one request; each succeeds or fails on its own. Returns
        each name with None (created) or its error. Raises (nothing created) when the request
        itself fails: a name given twice, a value of the wrong type, no broker answering."""
        requested = [_wire_topic(t) for t in topics]
        names = [t.name for t in requested]
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            raise ZafkaError("INVALID_REQUEST", f"topics named more than once: {twice}")
        if not requested:
            return {}
        response = self._call(
            wire.CreateTopicsRequest(topics=tuple(requested)), wire.CreateTopicsResponse
        )
        return topic_results(names, response.results)

    def delete_topic(self, name: str) -> None:
        """Delete one topic and its data. Raises UNKNOWN_TOPIC_OR_PARTITION if there is none."""
        error = self.delete_topics([name])[name]
        if error is not None:
            raise error

    def delete_topics(self, names: Iterable[str]) -> dict[str, ZafkaError | None]:
        """Delete several topics in one request; returns each name with None (deleted) or its
        error (UNKNOWN_TOPIC_OR_PARTITION, INVALID_TOPIC, ...)."""
        wanted = _names(names, "delete_topics")
        if not wanted:
            return {}
        response = self._call(wire.DeleteTopicsRequest(names=wanted), wire.DeleteTopicsResponse)
        return topic_results(list(wanted), response.results)

    def describe_topics(self, names: Iterable[str]) -> list[TopicDescription]:
        """Partitions (leader, replicas, in-sync replicas) and config overrides of each named
        topic, in the order asked. Raises the first topic's error if any topic cannot be
        described (UNKNOWN_TOPIC_OR_PARTITION, INVALID_TOPIC)."""
        wanted = _names(names, "describe_topics")
        if not wanted:
            return []
        response = self._call(wire.DescribeTopicsRequest(names=wanted), wire.DescribeTopicsResponse)
        by_name = {t.name: t for t in response.topics}
        descriptions = []
        for name in wanted:
            topic = by_name.get(name)
            if topic is None:
                raise ZafkaError("UNKNOWN_SERVER_ERROR", f"the broker did not describe {name!r}")
            if topic.error_code != 0:
                raise topic_error(name, topic.error_code, None)
            partitions = tuple(partition_info(p) for p in topic.partitions)
            descriptions.append(TopicDescription(name, partitions, dict(topic.configs)))
        return descriptions

    def create_partitions(self, counts: Mapping[str, int]) -> dict[str, ZafkaError | None]:
        """Grow topics to more partitions ({topic: count in all}); each name with None or
        its error (INVALID_PARTITIONS, UNKNOWN_TOPIC_OR_PARTITION, ...)."""
        return self._partitions.create_partitions(counts)

    def alter_partition_reassignments(
        self, moves: Mapping[tuple[str, int], Sequence[int]]
    ) -> dict[TopicPartition, ZafkaError | None]:
        """Move partitions' replicas ({(topic, partition): [broker ids]}); each partition
        with None (the controller moves it) or its error (INVALID_REPLICA_ASSIGNMENT, ...)."""
        return self._partitions.alter_partition_reassignments(moves)

    def list_partition_reassignments(self) -> dict[TopicPartition, PartitionReassignment]:
        """The partitions being moved now: replicas, adding, removing."""
        return self._partitions.list_partition_reassignments()

    def elect_leaders(
        self, partitions: Iterable[tuple[str, int]] | None = None
    ) -> dict[TopicPartition, ZafkaError | None]:
        """Preferred leader election (None: every partition); each partition with None
        (its preferred replica leads now) or why not (ELECTION_NOT_NEEDED,
        PREFERRED_LEADER_NOT_AVAILABLE, REQUEST_TIMED_OUT)."""
        return self._partitions.elect_leaders(partitions)

    def list_topics(self, include_internal: bool = False) -> list[str]:
        """Every topic's name, sorted; internal topics (`__...`) only if asked."""
        response = self._call(MetadataRequest(topics=None), MetadataResponse)
        names = {t.name for t in response.topics}
        return sorted(n for n in names if include_internal or not is_internal(n))

    # --- cluster --------------------------------------------------------------------------

    def describe_cluster(self) -> list[BrokerDescription]:
        """The live brokers (registered in ZooKeeper now), by id."""
        response = self._call(MetadataRequest(topics=()), MetadataResponse)
        return sorted((BrokerDescription(b.id, b.endpoint) for b in response.brokers), key=_id)

    def controller(self) -> BrokerDescription | None:
        """The broker that controls the cluster now, or None while none does (for a moment
        after the controller's death)."""
        response = self._call(MetadataRequest(topics=()), MetadataResponse)
        found = [b for b in response.brokers if b.id == response.controller_id]
        return BrokerDescription(found[0].id, found[0].endpoint) if found else None

    # --- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the I/O thread; requests in flight fail with STOPPED. Idempotent."""
        self._io.close()

    def __enter__(self) -> Admin:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- plumbing -------------------------------------------------------------------------

    def _call(
        self,
        message: object,
        expected: type[_Response],
        target: tuple[int, str] | None = None,
        deadline: float | None = None,
        context: str = "",
    ) -> _Response:
        """Send `message` and wait for its reply, which must be an `expected`; every error is
        raised here, in the caller's thread (a response's error code too, `context` in its
        detail). `target`: (broker id, actor name), default any broker's `broker` actor.
        `deadline`: clock.monotonic_s() by which the answer is due (default:
        `request_timeout_ms` from now)."""
        if deadline is None:
            deadline = clock.monotonic_s() + self._timeout_ms / 1000
        return wait_reply(self._submit(message, target, deadline, context), deadline, expected)

    def _submit(
        self, message: object, target: tuple[int, str] | None, deadline: float, context: str = ""
    ) -> Future[Any]:
        """`_call` without the wait: a future for the reply message (or the ZafkaError)."""
        return self._io.submit(lambda f: self._start(message, deadline, f, target, context))

    # On the I/O thread from here on.

    def _actor(self) -> ClientActor:
        actor = self._io.runtime.actor(CLIENT_ACTOR)  # the current one, even after a restart
        assert isinstance(actor, ClientActor)
        return actor

    def _start(
        self,
        message: object,
        deadline: float,
        future: Future[Any],
        target: tuple[int, str] | None = None,
        context: str = "",
    ) -> None:
        """Send `message` to `target` (None: any broker's `broker` actor), asking for the
        brokers first when they are not known yet or `target`'s broker is not among them."""
        known = target is None or target[0] in self._actor().metadata.brokers
        if not self._refresh_first and known:
            self._send(message, deadline, future, target, context)
            return
        attempts = [0]

        def on_metadata(error: ZafkaError | None) -> None:
            attempts[0] += 1
            if error is None:
                self._refresh_first = False
                self._send(message, deadline, future, target, context)
            elif error.retriable and attempts[0] < len(self._bootstrap):
                self._actor().refresh_metadata((), on_metadata)  # the next bootstrap server
            elif error.error.name == "REQUEST_TIMED_OUT":
                servers = ", ".join(s.removeprefix("tcp://") for s in self._bootstrap)
                future.set_exception(
                    ZafkaError(
                        "REQUEST_TIMED_OUT",
                        f"no broker answered at {servers} within {self._timeout_ms} ms; "
                        "is a broker running there?",
                    )
                )
            else:
                future.set_exception(error)

        self._actor().refresh_metadata((), on_metadata)

    def _send(
        self,
        message: object,
        deadline: float,
        future: Future[Any],
        target: tuple[int, str] | None = None,
        context: str = "",
    ) -> None:
        remaining_ms = int((deadline - clock.monotonic_s()) * 1000)
        if remaining_ms <= 0:
            future.set_exception(
                ZafkaError("REQUEST_TIMED_OUT", f"no answer within {self._timeout_ms} ms")
            )
            return
        actor = self._actor()
        if target is not None:
            broker_id, actor_name = target
            if broker_id not in actor.metadata.brokers:  # not registered now: gone, or moved
                future.set_exception(
                    ZafkaError("STOPPED", f"broker {broker_id} is not in the cluster now")
                )
                return
            node = broker_node(broker_id)
        else:
            node, actor_name = actor.any_broker(), "broker"
        if node == ANY_NODE:  # the broker list was empty: ask the bootstrap server itself
            self._refresh_first = True
        inner: Future[Any] = Future()

        def done(answer: Future[Any]) -> None:
            error = answer.exception()
            if error is None:
                future.set_result(answer.result())
                return
            if isinstance(error, ZafkaError) and error.error.name == "NETWORK_EXCEPTION":
                self._refresh_first = True  # that broker is gone: ask another, after a pause
                retry = lambda: self._start(message, deadline, future, target, context)  # noqa: E731
                self._actor().later(limits.retry_backoff_ms, retry)
                return
            if isinstance(error, ZafkaError) and leader_may_have_moved(error):
                self._refresh_first = True  # that broker may be gone: ask again next time
                error = ZafkaError(
                    error.error.name,
                    f"{node}: no answer within {remaining_ms} ms"
                    if error.error.name == "REQUEST_TIMED_OUT"
                    else f"{node}: {error.detail}",
                )
            future.set_exception(error)

        inner.add_done_callback(done)
        actor.request(f"{node}/{actor_name}", message, inner, remaining_ms, context)


def _id(broker: BrokerDescription) -> int:
    return broker.id


def _wire_topic(topic: NewTopic) -> wire.NewTopic:
    """The wire message for `topic` (INVALID_REQUEST naming the field if a value has the
    wrong type); config values given as ints are sent as strings."""
    if not isinstance(topic, NewTopic):
        raise ZafkaError("INVALID_REQUEST", f"expected a NewTopic, got {type(topic).__name__}")
    configs = {}
    for key, value in dict(topic.configs).items():
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ZafkaError(
                "INVALID_CONFIG", f"topic {topic.name!r}: config {key!r} must be a str or int"
            )
        configs[key] = str(value)
    return wire.NewTopic(topic.name, topic.partitions, topic.replication_factor, configs)
