"""OffsetsLoader: replays one partition of `__consumer_offsets` into group states.

A coordinator serves a group only once its state was rebuilt from the log: every record of
the group's partition, in offset order, through `GroupState.replay` (the function that applies
live changes), each routed to its group by `record_group`. The partition actor owns the log,
so the loader reads it through that actor like any consumer: ListOffsets (the log start),
then Fetch calls (`limits.offsets_load_fetch_bytes` each, never parked) up to the high
watermark of the first answer. Nothing of a group being loaded is appended meanwhile (its
coordinator waits for the result), so what lies beyond that mark belongs to other groups.

The broker actor spawns one loader per job, named `offsets-loader-<n>`: a whole partition
(when the broker starts leading it; `groups` None) or a few groups (a coordinator that lost
its state: an append failed, or it restarted after a crash). The result goes to the broker as
a local cast, `OffsetsLoaded`; the broker hands each state to its group's coordinator and
stops the loader. A failed read (the partition actor not there yet, a timeout) starts the
whole replay again after `limits.offsets_load_retry_ms`. Records that do not parse are
logged and skipped: one bad record must not keep a partition's groups from ever loading.

Calls: loader -> partition actor (`__consumer_offsets-<p>`, local); casts to `broker`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from zafka import limits
from zafka.actors.group.records import OFFSETS_TOPIC, RecordError, record_group
from zafka.actors.group.state import GroupState
from zafka.actors.runtime.actor import Actor, answer_of
from zafka.errors import ZafkaError
from zafka.storage.batch import parse_header
from zafka.storage.records import read_records
from zafka.transport.client import (
    EARLIEST,
    FetchRequest,
    FetchResponse,
    ListOffsetsRequest,
    ListOffsetsResponse,
)
from zafka.transport.envelope import Envelope, address
from zafka.transport.names import partition_actor_name

log = logging.getLogger(__name__)

LOADER_PREFIX = "offsets-loader-"


@dataclass(frozen=True, eq=False)
class OffsetsLoaded:
    """Local cast, loader -> broker: the states replayed from `partition` (every group found
    there, or only those of `groups`; a group without records has no entry). The states'
    ownership passes to the receiver."""

    loader: str
    partition: int
    groups: frozenset[str] | None
    states: dict[str, GroupState]


def replay_batches(
    states: dict[str, GroupState],
    data: bytes | memoryview,
    next_offset: int,
    groups: frozenset[str] | None,
    new_state: Callable[[str], GroupState],
) -> int:
    """Replays the records at or after `next_offset` in `data` (whole stored batches) into
    `states` (a group's state is made by `new_state` at its first record), only those of
    `groups` unless None. Returns the offset after the last record seen."""
    view = memoryview(data)
    position = 0
    while position < len(view):
        size = parse_header(view, position).size
        for record in read_records(view[position : position + size]):
            if record.offset < next_offset:
                continue  # a batch may start before the offset asked for
            next_offset = record.offset + 1
            if record.key is None:
                log.warning("%s: record %d has no key; skipped", OFFSETS_TOPIC, record.offset)
                continue
            try:
                group_id = record_group(record.key)
                if groups is not None and group_id not in groups:
                    continue
                state = states.get(group_id)
                if state is None:
                    state = states[group_id] = new_state(group_id)
                state.replay(record.key, record.value)
            except RecordError as err:
                log.warning("%s: record %d skipped: %s", OFFSETS_TOPIC, record.offset, err)
        position += size
    return next_offset


class OffsetsLoader(Actor):
    """Replays partition `partition` of `__consumer_offsets` (see the module docstring)."""

    def __init__(
        self,
        name: str,
        partition: int,
        groups: frozenset[str] | None,
        new_state: Callable[[str], GroupState],
        reply_to: str = "broker",
    ) -> None:
        super().__init__(name)
        self.partition = partition
        self.groups = groups
        self._new_state = new_state
        self._reply_to = reply_to
        self._states: dict[str, GroupState] = {}
        self._next = 0
        self._end: int | None = None

    @property
    def _leader(self) -> str:
        return address(self._runtime().node, partition_actor_name(OFFSETS_TOPIC, self.partition))

    def on_start(self) -> None:
        self._begin()

    def _begin(self) -> None:
        self._states, self._next, self._end = {}, 0, None
        request = ListOffsetsRequest(OFFSETS_TOPIC, self.partition, EARLIEST)
        self.call(self._leader, request, limits.group_log_timeout_ms, self._on_start_offset)

    def _on_start_offset(self, reply: Envelope | ZafkaError) -> None:
        answer = answer_of(reply, "list offsets")
        if isinstance(answer, ZafkaError):
            self._retry(answer)
            return
        assert isinstance(answer, ListOffsetsResponse)
        self._next = answer.offset
        self._fetch()

    def _fetch(self) -> None:
        request = FetchRequest(
            OFFSETS_TOPIC, self.partition, self._next, limits.offsets_load_fetch_bytes, 0, 0
        )
        self.call(self._leader, request, limits.group_log_timeout_ms, self._on_fetch)

    def _on_fetch(self, reply: Envelope | ZafkaError) -> None:
        answer = answer_of(reply, "fetch")
        if isinstance(answer, ZafkaError):
            self._retry(answer)
            return
        assert isinstance(answer, FetchResponse)
        if self._end is None:
            self._end = answer.high_watermark
        try:
            self._next = replay_batches(
                self._states, answer.records, self._next, self.groups, self._new_state
            )
        except ZafkaError as err:  # a batch that does not decode (CORRUPT_MESSAGE)
            self._retry(err)
            return
        if self._next < self._end and len(answer.records):
            self._fetch()
            return
        done = OffsetsLoaded(self.name, self.partition, self.groups, self._states)
        self._states = {}
        self.cast(address(self._runtime().node, self._reply_to), done)

    def _retry(self, err: ZafkaError) -> None:
        log.warning(
            "%s-%d: replay failed (%s); again in %d ms",
            OFFSETS_TOPIC,
            self.partition,
            err,
            limits.offsets_load_retry_ms,
        )
        self.set_timer("retry", limits.offsets_load_retry_ms)

    def on_retry_timeout(self, now_ms: int) -> None:
        self._begin()
