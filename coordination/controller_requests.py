"""Work asked of the controller, queued in ZooKeeper (Kafka's ZooKeeper-era admin znodes,
`/admin/preferred_replica_election` and the like, as one queue).

    /admin/controller_requests/request-<seq>   {"version": 1, "kind": ..., ...}

Any broker queues a request (a persistent sequential znode) while it answers a client; the
controller watches the queue, does each request in order and deletes it. The queue outlives
controllers: a request queued while none is elected, or while one fails over, is done by the
next. Kinds:

- `elect_preferred` {"partitions": [[topic, partition], ...]}: move each partition's
  leadership to its preferred replica (the first of its replicas) where that one is live and
  in sync (`zafka cluster elect-leaders`).
- `partitions_added` {"topic": name}: the topic has new partitions (`zafka topics alter
  --partitions N`): their replicas are told to host them.
- `reassign` {"partitions": [[topic, partition], ...]}: these partitions have new targets
  in `/admin/reassignments` (reassignments.py): move their replicas there.
- `isr_changed` {"partitions": [[topic, partition], ...]}: a leader wrote a new ISR to these
  partitions' state znodes (Kafka's `/isr_change_notification`): the controller reads them
  again, so that it elects from the ISR as it is.

A request that does not parse is dropped by the controller with a warning (it can do
nothing with it, and it must not block the queue).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

from zafka.coordination import paths

if TYPE_CHECKING:
    from zafka.coordination.controller import ControllerLease

log = logging.getLogger(__name__)
FORMAT_VERSION = 1
ELECT_PREFERRED = "elect_preferred"
PARTITIONS_ADDED = "partitions_added"
ISR_CHANGED = "isr_changed"
REASSIGN = "reassign"
LISTING_KINDS = (ELECT_PREFERRED, ISR_CHANGED, REASSIGN)  # the kinds that name partitions


class ControllerRequest(NamedTuple):
    """One queued request: its znode's child name, its kind, and what it names."""

    name: str
    kind: str
    topic: str = ""  # partitions_added
    partitions: tuple[tuple[str, int], ...] = ()  # elect_preferred, isr_changed, reassign


def elect_preferred_json(partitions: Sequence[tuple[str, int]]) -> bytes:
    return _dump({"kind": ELECT_PREFERRED, "partitions": [list(tp) for tp in partitions]})


def isr_changed_json(partitions: Sequence[tuple[str, int]]) -> bytes:
    return _dump({"kind": ISR_CHANGED, "partitions": [list(tp) for tp in partitions]})


def reassign_json(partitions: Sequence[tuple[str, int]]) -> bytes:
    return _dump({"kind": REASSIGN, "partitions": [list(tp) for tp in partitions]})


def partitions_added_json(topic: str) -> bytes:
    return _dump({"kind": PARTITIONS_ADDED, "topic": topic})


def queue(client: KazooClient, data: bytes) -> str:
    """Queue one request (from `*_json`); returns its child name."""
    path = client.create(paths.CONTROLLER_REQUEST_PREFIX, data, sequence=True, makepath=True)
    return path.rsplit("/", 1)[1]


def read_queue(client: KazooClient) -> list[ControllerRequest]:
    """The queued requests, oldest first; one that does not parse is deleted (logged)."""
    try:
        children = client.get_children(paths.CONTROLLER_REQUESTS)
    except NoNodeError:
        return []
    requests = []
    for name in sorted(c for c in children if c.startswith("request-")):
        try:
            data, _ = client.get(paths.controller_request(name))
        except NoNodeError:
            continue  # done meanwhile (by a controller that has just been deposed)
        request = parse(name, data)
        if request is None:
            log.warning("controller request %s does not parse; dropped: %r", name, data[:200])
            done(client, name)
            continue
        requests.append(request)
    return requests


def done(client: KazooClient, name: str, lease: ControllerLease | None = None) -> None:
    """Delete a request once it is done (already gone is fine); with `lease`, only while it
    holds (a deposed controller leaves the request to its successor)."""
    if lease is None:
        with contextlib.suppress(NoNodeError):
            client.delete(paths.controller_request(name))
        return
    tx = client.transaction()
    tx.check(paths.CONTROLLER_EPOCH, lease.epoch_version)
    tx.delete(paths.controller_request(name))
    tx.commit()  # a failed check, or a request gone already: nothing to do


def parse(name: str, data: bytes) -> ControllerRequest | None:
    """The request in `data`, or None if it is not one this version understands."""
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(body, dict) or body.get("version") != FORMAT_VERSION:
        return None
    kind = body.get("kind")
    if kind == PARTITIONS_ADDED and isinstance(body.get("topic"), str):
        return ControllerRequest(name, kind, topic=body["topic"])
    listed = body.get("partitions")
    if kind not in LISTING_KINDS or not isinstance(listed, list):
        return None
    partitions = []
    for item in listed:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
            return None
        if type(item[1]) is not int or item[1] < 0:
            return None
        partitions.append((item[0], item[1]))
    return ControllerRequest(name, kind, partitions=tuple(partitions))


def _dump(body: dict[str, object]) -> bytes:
    return json.dumps({"version": FORMAT_VERSION, **body}, separators=(",", ":")).encode()
