"""Topics in ZooKeeper: replica assignment, partition state and configs (Kafka's ZK-era layout).

Every znode holds JSON with `"version": 1` (paths in `paths.py`; the formats, as values, in
`topic_records.py`):

    /brokers/topics/<t>                     {"version": 1, "topic_id": "<hex>",
                                             "partitions": {"0": [1, 2], "1": [2, 0]}}
    /brokers/topics/<t>/partitions/<p>/state
                                            {"version": 1, "leader": 1, "leader_epoch": 0,
                                             "isr": [1, 2], "controller_epoch": 0}
    /config/topics/<t>                      {"version": 1, "config": {"retention.ms": "60000"}}

A topic is created, and deleted, in one ZooKeeper transaction: it is never half there. The
state znode's version fences writers: `update_partition_state` succeeds only against the version
the writer read. Data that does not parse raises `MalformedZnode` (a ZafkaError), never
anything else. `TopicStore` is synchronous: call it off the hot path. Connection errors from
kazoo (ConnectionLoss, SessionExpiredError) propagate; writes are never retried blindly.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError, RolledBackError
from kazoo.recipe.watchers import ChildrenWatch

from zafka import limits
from zafka.coordination import paths
from zafka.coordination.assignment import place
from zafka.coordination.controller_requests import partitions_added_json
from zafka.coordination.topic_records import (
    STALE_VERSION_ERROR,
    LeaderIsr,
    MalformedZnode,
    TopicInfo,
)
from zafka.errors import ZafkaError
from zafka.transport.names import check_topic_name

# A topic is created in one transaction, which must fit ZooKeeper's 1 MiB request
# (jute.maxbuffer): with a 249-character name, 1300 partitions fit and 1400 drop the
# connection; limits.topic_partitions_max keeps a margin.
Brokers = Sequence[int] | Mapping[int, str | None]  # live broker ids, or id -> rack


class TopicStore:
    """Topics in ZooKeeper through one kazoo client (paths relative to its chroot)."""

    def __init__(self, client: KazooClient) -> None:
        self._client = client

    def create(
        self,
        name: str,
        partitions: int,
        replication_factor: int,
        configs: Mapping[str, str],
        live_brokers: Brokers,
    ) -> TopicInfo:
        """Create a topic over `live_brokers` (ids, or id -> rack: assignment.py's `place`):
        assignment, configs and states, atomically.

        Each partition starts led by its first replica, leader epoch 0, every replica in sync.
        Raises INVALID_TOPIC, INVALID_PARTITIONS, INVALID_REPLICATION_FACTOR, INVALID_CONFIG,
        or TOPIC_ALREADY_EXISTS (also when another client created it first).
        """
        check_topic_name(name)
        if type(partitions) is not int or not 1 <= partitions <= limits.topic_partitions_max:
            raise ZafkaError(
                "INVALID_PARTITIONS",
                f"partitions must be 1..{limits.topic_partitions_max}, got {partitions!r}",
            )
        replicas = place(partitions, replication_factor, _racks(live_brokers))
        info = TopicInfo(name, uuid.uuid4().hex, replicas, tuple(configs.items()))
        self._client.ensure_path(paths.BROKER_TOPICS)
        self._client.ensure_path(paths.CONFIG_TOPICS)
        writes = [
            (paths.topic(name), info.assignment_json()),
            (paths.topic_partitions(name), b""),
        ]
        for p, replicas_of_p in enumerate(replicas):
            # Every replica is in sync with an empty log (Kafka's): the first leader is the
            # first replica; followers that do not keep up leave the ISR after the lag time.
            state = LeaderIsr(leader=replicas_of_p[0], leader_epoch=0, isr=tuple(replicas_of_p))
            writes += [
                (paths.partition(name, p), b""),
                (paths.partition_state(name, p), state.to_json()),
            ]
        writes.append((paths.topic_config(name), info.config_json()))
        transaction = self._client.transaction()
        for path, data in writes:
            transaction.create(path, data)
        failed = _first_failure(transaction.commit(), [path for path, _ in writes])
        if failed is not None:
            path, error = failed
            if isinstance(error, NodeExistsError):
                raise ZafkaError("TOPIC_ALREADY_EXISTS", f"topic {name!r}: {path} exists")
            raise error
        return info

    def add_partitions(self, name: str, total: int, live_brokers: Brokers) -> TopicInfo:
        """Grow topic `name` to `total` partitions over `live_brokers`, in one transaction
        that also checks the assignment's version and tells the controller
        (controller_requests.py), so that the new partitions' replicas host them.

        New partitions are placed as Kafka places them (assignment.py), each led by its first
        replica, leader epoch 0, ISR = [it] (see `create`). Raises UNKNOWN_TOPIC_OR_PARTITION,
        INVALID_PARTITIONS (not more than now, or beyond the limit),
        INVALID_REPLICATION_FACTOR (fewer live brokers than the topic's replication factor),
        or STALE_VERSION_ERROR (the topic changed meanwhile: try again).
        """
        try:
            assignment, stat = self._client.get(paths.topic(name))
        except NoNodeError:
            raise _unknown_topic(name) from None
        info = TopicInfo.from_json(name, assignment, self._config(name))
        if type(total) is not int or not info.partitions < total <= limits.topic_partitions_max:
            raise ZafkaError(
                "INVALID_PARTITIONS",
                f"topic {name!r} has {info.partitions} partitions: the new count must be "
                f"{info.partitions + 1}..{limits.topic_partitions_max}, got {total!r}",
            )
        count, racks, first = total - info.partitions, _racks(live_brokers), info.replicas[0][0]
        added = place(count, info.replication_factor, racks, info.partitions, first)
        grown = TopicInfo(name, info.topic_id, info.replicas + added, info.configs)
        self._client.ensure_path(paths.CONTROLLER_REQUESTS)
        transaction = self._client.transaction()
        transaction.set_data(paths.topic(name), grown.assignment_json(), version=stat.version)
        for p, replicas_of_p in enumerate(added, info.partitions):
            state = LeaderIsr(leader=replicas_of_p[0], leader_epoch=0, isr=tuple(replicas_of_p))
            transaction.create(paths.partition(name, p), b"")
            transaction.create(paths.partition_state(name, p), state.to_json())
        transaction.create(
            paths.CONTROLLER_REQUEST_PREFIX, partitions_added_json(name), sequence=True
        )
        results = transaction.commit()
        if any(isinstance(r, Exception) for r in results):
            raise ZafkaError(
                STALE_VERSION_ERROR, f"topic {name!r} changed while partitions were added"
            )
        return grown

    def delete(self, name: str) -> None:
        """Remove the topic's assignment, partition states, configs and reassignment targets
        in one transaction."""
        topic_path, partitions_path = paths.topic(name), paths.topic_partitions(name)
        deletes = []
        try:
            children = self._client.get_children(partitions_path)
        except NoNodeError:  # no topic, or a topic without partitions (not written by zafka)
            if self._client.exists(topic_path) is None:
                raise _unknown_topic(name) from None
        else:
            for child in children:
                p = int(child) if child.isascii() and child.isdigit() else -1
                if str(p) != child:  # "1" only: not "01", "-1" or another script's digits
                    raise MalformedZnode(partitions_path, f"child {child!r} is no partition id")
                deletes += [paths.partition_state(name, p), paths.partition(name, p)]
                if self._client.exists(paths.reassignment(name, p)) is not None:
                    deletes.append(paths.reassignment(name, p))  # a move under way ends too
            deletes.append(partitions_path)
        deletes.append(topic_path)
        if self._client.exists(paths.topic_config(name)) is not None:
            deletes.append(paths.topic_config(name))
        transaction = self._client.transaction()
        for path in deletes:
            transaction.delete(path)
        failed = _first_failure(transaction.commit(), deletes)
        if failed is not None:
            if self._client.exists(topic_path) is None:
                raise _unknown_topic(name)  # deleted by someone else meanwhile
            path, error = failed
            raise MalformedZnode(path, f"cannot delete it ({type(error).__name__})")

    def get(self, name: str) -> TopicInfo | None:
        """The topic as stored, or None if there is no such topic."""
        try:
            assignment, _ = self._client.get(paths.topic(name))
        except NoNodeError:
            return None
        return TopicInfo.from_json(name, assignment, self._config(name))

    def _config(self, name: str) -> bytes | None:
        try:
            return self._client.get(paths.topic_config(name))[0]
        except NoNodeError:
            return None

    def incarnations(self, names: list[str]) -> dict[str, tuple[str, int] | None]:
        """Each topic's (id, partition count) (None: gone, or unreadable), read in one
        pipelined burst: a broker with thousands of topics checks them all in about one
        round trip's time."""
        return {
            name: info and (info.topic_id, info.partitions)
            for name, info in self._read_many(names).items()
        }

    def existing(self, names: list[str]) -> set[str]:
        """Which of `names` are topics now (unreadable ones count: `get` will say why), read
        in one pipelined burst."""
        pending = [(name, self._client.exists_async(paths.topic(name))) for name in names]
        return {name for name, result in pending if result.get() is not None}

    def _read_many(self, names: list[str]) -> dict[str, TopicInfo | None]:
        pending = [(name, self._client.get_async(paths.topic(name))) for name in names]
        found: dict[str, TopicInfo | None] = {}
        for name, result in pending:
            try:
                found[name] = TopicInfo.from_json(name, result.get()[0], None)
            except (NoNodeError, ZafkaError):
                found[name] = None
        return found

    def names(self) -> list[str]:
        """Every topic's name, sorted."""
        try:
            return sorted(self._client.get_children(paths.BROKER_TOPICS))
        except NoNodeError:
            return []

    def partition_state(self, name: str, partition: int) -> tuple[LeaderIsr, int]:
        """The partition's state and the znode version to pass to `update_partition_state`."""
        path = paths.partition_state(name, partition)
        try:
            data, stat = self._client.get(path)
        except NoNodeError:
            raise _unknown_topic(name, partition) from None
        return LeaderIsr.from_json(path, data), stat.version

    def update_partition_state(
        self, name: str, partition: int, state: LeaderIsr, expected_version: int
    ) -> int:
        """Write `state` if the znode is still at `expected_version`; returns the new version.

        A writer that read an older version is refused with STALE_VERSION_ERROR: it must read
        the state again and decide anew (someone else changed leader or ISR meanwhile).
        """
        if type(expected_version) is not int or expected_version < 0:
            raise ValueError(f"expected_version must be an int >= 0, got {expected_version!r}")
        path = paths.partition_state(name, partition)
        try:
            stat = self._client.set(path, state.to_json(), version=expected_version)
        except BadVersionError:
            raise ZafkaError(
                STALE_VERSION_ERROR,
                f"{path} changed since version {expected_version} was read; read it again",
            ) from None
        except NoNodeError:
            raise _unknown_topic(name, partition) from None
        return stat.version

    def watch(self, callback: Callable[[list[str]], None]) -> None:
        """Call `callback(sorted names)` now and whenever the topic list changes.

        Runs on kazoo's thread, so `callback` must not block. Quick changes may arrive as one
        call; the list passed is always the current one. The watch outlives session loss and
        lasts as long as the client.
        """
        self._client.ensure_path(paths.BROKER_TOPICS)

        def on_children(children: list[str]) -> None:
            callback(sorted(children))  # returns None: kazoo stops a watch whose func is False

        ChildrenWatch(self._client, paths.BROKER_TOPICS, on_children)


def _racks(live_brokers: Brokers) -> dict[int, str | None]:
    if isinstance(live_brokers, Mapping):
        return dict(live_brokers)
    return dict.fromkeys(live_brokers)


def _first_failure(results: list[Any], ops: list[str]) -> tuple[str, Exception] | None:
    """The path and error of the operation that made a transaction fail, if it failed."""
    for path, result in zip(ops, results, strict=True):
        if isinstance(result, Exception) and not isinstance(result, RolledBackError):
            return path, result
    return None


def _unknown_topic(name: str, partition: int | None = None) -> ZafkaError:
    where = f"topic {name!r}" if partition is None else f"partition {name}-{partition}"
    return ZafkaError("UNKNOWN_TOPIC_OR_PARTITION", f"no {where}")
