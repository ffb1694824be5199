"""The Consumer's group calls: subscribing, who it is in the group, commits, committed
offsets and lag. A part the `Consumer` (clients/consumer.py) owns, working on the consumer's
shared `ConsumerCore` (clients/consumer_core.py; its `group` is None without a group_id)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from typing import NamedTuple

from zafka.clients.consumer_config import check_subscription, check_tp, check_tps
from zafka.clients.consumer_core import ConsumerCore
from zafka.clients.consumer_group import (
    CommitCallback,
    ConsumerGroup,
    ConsumerRebalanceListener,
    OffsetAndMetadata,
)
from zafka.clients.group_member import GroupMemberActor
from zafka.errors import ZafkaError
from zafka.transport.names import TopicPartition


class GroupMetadata(NamedTuple):
    """Who this consumer is in its group (`Consumer.group_metadata`)."""

    group_id: str
    member_id: str
    member_epoch: int
    instance_id: str | None


class GroupCalls:
    """The consumer's group-facing calls (see the module docstring)."""

    def __init__(self, core: ConsumerCore) -> None:
        self.core = core

    # --- group subscription ---------------------------------------------------------------

    def subscribe(
        self,
        topics: Iterable[str] | None = None,
        *,
        pattern: str | None = None,
        listener: ConsumerRebalanceListener | None = None,
    ) -> None:
        """Join the group (or change the subscription) with `topics` or a `pattern` (a
        regular expression a whole topic name must match; internal topics never do).
        `listener` replaces the rebalance callbacks. Needs a group_id; refused while
        partitions are assigned by hand."""
        if self.core.group is None:
            raise ZafkaError("INVALID_REQUEST", "subscribe needs a group_id; use assign() without")
        if topics is None and pattern is None:
            raise ZafkaError("INVALID_REQUEST", "subscribe to topics or a pattern")
        self.join(*check_subscription(topics, pattern), listener)

    def join(
        self,
        topics: tuple[str, ...],
        pattern: str | None,
        listener: ConsumerRebalanceListener | None,
    ) -> None:
        """Subscribe with a checked subscription: `topics`, or a `pattern`."""
        group = self.core.group
        assert group is not None
        with self.core.cond:
            self.core.check_open()
            if self.core.state.partitions and not group.membership.subscribed:
                raise ZafkaError(
                    "INVALID_REQUEST", "partitions are assigned by hand: assign([]) first"
                )
            if listener is not None:
                group.listener = listener
            group.membership.subscribe(topics, pattern)
            self._group_actor().group_kick()

    def unsubscribe(self) -> None:
        """Leave the group: revoke the partitions (callbacks, commit with auto-commit), then
        LeaveGroup. `subscribe` joins again; `assign` is allowed again."""
        if self.core.group is None:
            return
        self.core.check_open()
        self.core.group.leave(self.core.request_timeout_ms, callbacks=True)

    def subscription(self) -> set[str] | str | None:
        """The subscribed topics, the pattern, or None when not subscribed."""
        if self.core.group is None:
            return None
        with self.core.cond:
            membership = self.core.group.membership
            if not membership.subscribed:
                return None
            return membership.pattern if membership.pattern is not None else set(membership.topics)

    @property
    def member_id(self) -> str | None:
        """This consumer's member id in its group (None without a group_id)."""
        return None if self.core.group is None else self.core.group.membership.member_id

    def group_metadata(self) -> GroupMetadata | None:
        """The group, member id, member epoch (0 while not a member) and instance id, as of
        now (None without a group_id)."""
        if self.core.group is None:
            return None
        with self.core.cond:
            m = self.core.group.membership
            return GroupMetadata(m.group_id, m.member_id, m.epoch, m.instance_id)

    def _group_actor(self) -> GroupMemberActor:
        return self.core.io.actor  # type: ignore[return-value]

    # --- offsets and lag --------------------------------------------------------------------

    def commit(
        self,
        offsets: Mapping[tuple[str, int], int | OffsetAndMetadata | tuple[int, str]] | None = None,
        timeout_ms: int | None = None,
    ) -> None:
        """Commit, and wait (at most `timeout_ms`, default `request_timeout_ms`): the
        positions of every partition (the offsets after the records handed out), or
        `offsets` ({tp: offset, OffsetAndMetadata or (offset, metadata)}: the next offset to
        read). Needs a group_id. CommitFailedError (FENCED_MEMBER_EPOCH or
        UNKNOWN_MEMBER_ID) when the group no longer counts these partitions as this member's:
        they were lost (the member joins again), and their records since the last commit may
        be delivered again. Manually assigned partitions are committed as no member (the
        coordinator accepts that only while the group has no members)."""
        group = self._require_group("commit")
        timeout = self.core.timeout_ms(timeout_ms)
        self.core.check_open()
        group.run_commit_callbacks()
        group.commit(self._offsets(group, offsets), timeout)

    def commit_async(
        self,
        offsets: Mapping[tuple[str, int], int | OffsetAndMetadata | tuple[int, str]] | None = None,
        callback: CommitCallback | None = None,
    ) -> Future:
        """Commit without waiting (as `commit`). `callback(offsets, error or None)` runs on
        your thread in a later `poll`, `commit` or `close`; the returned future completes on
        the I/O thread."""
        group = self._require_group("commit_async")
        self.core.check_open()
        return group.commit_async(
            self._offsets(group, offsets), callback, self.core.request_timeout_ms
        )

    def _offsets(
        self, group: ConsumerGroup, offsets: Mapping | None
    ) -> dict[TopicPartition, OffsetAndMetadata]:
        if offsets is None:
            with self.core.cond:
                return group.positions()
        if not isinstance(offsets, Mapping):
            raise ZafkaError("INVALID_REQUEST", "offsets: expected a {(topic, partition): offset}")
        checked = {}
        for tp, value in offsets.items():
            om = OffsetAndMetadata(*value) if isinstance(value, tuple) else OffsetAndMetadata(value)
            if type(om.offset) is not int or om.offset < 0 or not isinstance(om.metadata, str):
                raise ZafkaError(
                    "INVALID_REQUEST", f"offset {value!r} of {tp}: expected an int >= 0"
                )
            checked[check_tp(tp)] = om
        return checked

    def committed(
        self, partitions: Iterable[tuple[str, int]], timeout_ms: int | None = None
    ) -> dict[TopicPartition, OffsetAndMetadata | None]:
        """The group's committed offsets of `partitions` (any partitions; None where nothing
        is committed), waiting at most `timeout_ms` (default `request_timeout_ms`)."""
        group = self._require_group("committed")
        tps = check_tps(partitions, "committed")
        timeout = self.core.timeout_ms(timeout_ms)
        self.core.check_open()
        return group.committed(tps, timeout) if tps else {}

    def lag(self, partition: tuple[str, int]) -> int | None:
        """How many records of an assigned partition are still to be read: its high
        watermark (as the last fetch said) minus its position; None until both are known."""
        with self.core.cond:
            ps = self.core.state.get(check_tp(partition))
            hw, position = ps.high_watermark, ps.position
        return None if hw < 0 or position is None else max(hw - position, 0)

    def lags(self) -> dict[TopicPartition, int | None]:
        """`lag` of every assigned partition."""
        with self.core.cond:
            parts = list(self.core.state.partitions.values())
            return {
                ps.tp: None
                if ps.high_watermark < 0 or ps.position is None
                else max(ps.high_watermark - ps.position, 0)
                for ps in parts
            }

    def _require_group(self, what: str) -> ConsumerGroup:
        if self.core.group is None:
            raise ZafkaError("INVALID_REQUEST", f"{what} needs a group_id")
        return self.core.group
