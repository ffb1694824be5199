"""What the controller reads from ZooKeeper, in the shapes its state takes (run on its
ZooKeeper worker, never on the runtime's thread)."""

from __future__ import annotations

from typing import NamedTuple

from kazoo.client import KazooClient

from zafka.actors.controller.state import PartitionView
from zafka.coordination import controller_requests, reassignments
from zafka.coordination.controller_requests import ControllerRequest
from zafka.coordination.topics import TopicStore


class TopicView(NamedTuple):
    """A topic as the controller reads it: whether it allows unclean elections, and its
    partitions' views."""

    unclean: bool
    partitions: dict[int, PartitionView]


Views = dict[str, TopicView]
Targets = dict[tuple[str, int], tuple[int, ...]]  # reassignment targets


def read_topics(store: TopicStore, names: list[str]) -> Views:
    """The views of the named topics (a topic deleted meanwhile is left out)."""
    views: Views = {}
    for name in names:
        info = store.get(name)
        if info is None:
            continue
        views[name] = TopicView(info.unclean_leader_election, {})
        for p, replicas in enumerate(info.replicas):
            state, version = store.partition_state(name, p)
            views[name].partitions[p] = PartitionView(replicas, state, version)
    return views


class QueuedRequest(NamedTuple):
    """A request from the controller's queue with what it names, as read now: the topic's
    views (partitions_added) or the partitions' reassignment targets (reassign)."""

    request: ControllerRequest
    views: Views
    targets: Targets


def read_request_queue(client: KazooClient, store: TopicStore) -> list[QueuedRequest]:
    """The queued requests, oldest first, each with what it names."""
    queued = []
    for request in controller_requests.read_queue(client):
        views = read_topics(store, [request.topic] if request.topic else [])
        targets: Targets = {}
        if request.kind == controller_requests.REASSIGN:
            targets = reassignments.read_targets(client, list(request.partitions))
        queued.append(QueuedRequest(request, views, targets))
    return queued
