"""Partition reassignments in ZooKeeper (Kafka's `/admin/reassign_partitions`, one znode per
partition):

    /admin/reassignments/<topic>:<partition>   {"version": 1, "target": [2, 3]}

A broker answering a reassignment request writes each partition's target (replacing one
already there) and queues a `reassign` request for the controller in the same transaction
(controller_requests.py). The controller moves the replicas (actors/controller/
reassignment.py), writing each new assignment with `fenced_assign`, and deletes the znode
when the partition has its target. A new controller reads every target at start and
carries on where the last one was: the assignment in ZooKeeper says how far it got.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

from zafka.coordination import controller_requests, paths
from zafka.coordination.controller import ControllerLease, fenced_set
from zafka.coordination.topic_records import STALE_VERSION_ERROR, TopicInfo
from zafka.errors import ZafkaError

FORMAT_VERSION = 1
ASSIGN_ATTEMPTS_MAX = 5  # topic znode races (other partitions' moves) before giving up
Key = tuple[str, int]


def write_targets(client: KazooClient, targets: Mapping[Key, tuple[int, ...]]) -> None:
    """Record the targets and tell the controller, in one transaction."""
    client.ensure_path(paths.REASSIGNMENTS)
    client.ensure_path(paths.CONTROLLER_REQUESTS)
    tx = client.transaction()
    for (topic, p), target in targets.items():
        path, data = paths.reassignment(topic, p), _dump(target)
        if client.exists(path) is None:
            tx.create(path, data)
        else:
            tx.set_data(path, data)
    request = controller_requests.reassign_json(list(targets))
    tx.create(paths.CONTROLLER_REQUEST_PREFIX, request, sequence=True)
    failed = [r for r in tx.commit() if isinstance(r, Exception)]
    if failed:  # a concurrent request for the same partition: the caller may try again
        raise ZafkaError(STALE_VERSION_ERROR, f"reassignments changed meanwhile: {failed[0]!r}")


def read_targets(client: KazooClient, keys: list[Key] | None = None) -> dict[Key, tuple[int, ...]]:
    """The recorded targets (of `keys`, default all); one that does not parse is skipped."""
    if keys is None:
        try:
            children = client.get_children(paths.REASSIGNMENTS)
        except NoNodeError:
            return {}
        keys = [k for k in map(_key, children) if k is not None]
    targets = {}
    for topic, p in keys:
        try:
            data, _ = client.get(paths.reassignment(topic, p))
        except NoNodeError:
            continue
        target = _parse(data)
        if target is not None:
            targets[(topic, p)] = target
    return targets


def delete_target(client: KazooClient, topic: str, partition: int) -> None:
    with contextlib.suppress(NoNodeError):
        client.delete(paths.reassignment(topic, partition))


def fenced_assign(
    client: KazooClient,
    lease: ControllerLease,
    topic: str,
    partition: int,
    replicas: tuple[int, ...],
    state_version: int,
) -> None:
    """Set the partition's replicas in its topic's assignment, if its state znode is still at
    `state_version` and `lease` holds (fenced_set's errors). The topic's znode is read,
    changed and written against its version, again if another write raced it."""
    path, state_path = paths.topic(topic), paths.partition_state(topic, partition)
    for _ in range(ASSIGN_ATTEMPTS_MAX):
        data, stat = client.get(path)
        info = TopicInfo.from_json(topic, data, None)
        moved = tuple(replicas if p == partition else r for p, r in enumerate(info.replicas))
        changed = TopicInfo(topic, info.topic_id, moved)
        try:
            fenced_set(
                client,
                lease,
                path,
                changed.assignment_json(),
                stat.version,
                ((state_path, state_version),),
            )
            return
        except ZafkaError as err:
            if (
                err.error.name != STALE_VERSION_ERROR
                or client.exists(state_path).version != state_version
            ):
                raise
    raise ZafkaError(STALE_VERSION_ERROR, f"{path} kept changing; the controller tries again")


def _key(child: str) -> Key | None:
    topic, sep, p = child.rpartition(":")
    return (topic, int(p)) if sep and p.isascii() and p.isdigit() else None


def _parse(data: bytes) -> tuple[int, ...] | None:
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        return None
    target = body.get("target") if isinstance(body, dict) else None
    if body.get("version") != FORMAT_VERSION or not isinstance(target, list) or not target:
        return None
    if not all(type(b) is int and b >= 0 for b in target) or len(set(target)) != len(target):
        return None
    return tuple(target)


def _dump(target: tuple[int, ...]) -> bytes:
    return json.dumps({"version": FORMAT_VERSION, "target": list(target)}).encode()
