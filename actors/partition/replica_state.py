"""The replication decisions of a partition's state (`PartitionState` inherits them): a
follower's fetch at its leader (`replica_fetch`), the ISR the leader proposes and what was
written (`isr_proposal`, `isr_written`, `isr_write_failed`, `update` from the controller),
and a follower's own log (`replicated`, `truncated`). Pure, like the rest of the state; the
attributes are PartitionState's (state.py)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from zafka.actors.partition.operations import Read, Released
from zafka.actors.partition.roles import Leadership
from zafka.errors import ZafkaError
from zafka.storage.batch import BatchHeader

if TYPE_CHECKING:
    from zafka.actors.partition.fetch_waiters import BytesAvailableFn


class ReplicaDecisions:
    def check_epoch(self, leader_epoch: int) -> None:
        """A replica's request in `leader_epoch`: FENCED_LEADER_EPOCH if that is older than
        this one's, UNKNOWN_LEADER_EPOCH if newer (the controller's word has not come yet)."""
        if leader_epoch < self.leader_epoch:
            raise ZafkaError("FENCED_LEADER_EPOCH", f"epoch {leader_epoch} < {self.leader_epoch}")
        if leader_epoch > self.leader_epoch:
            raise ZafkaError("UNKNOWN_LEADER_EPOCH", f"epoch {leader_epoch} > {self.leader_epoch}")

    def replica_fetch(
        self, replica: int, leader_epoch: int, offset: int, max_bytes: int, now_ms: int
    ) -> tuple[Read, bool]:
        """Follower `replica` fetches from `offset`: the read (up to the log end) and whether
        the high watermark moved (then `release`)."""
        self.check_leader()
        self.check_epoch(leader_epoch)
        start, end = self.log_start_offset, self.log_end_offset
        if not start <= offset <= end:
            raise ZafkaError("OFFSET_OUT_OF_RANGE", f"offset {offset} is outside [{start}, {end}]")
        assert self.replicas is not None
        moved = self.replicas.follower_fetched(replica, offset, now_ms)
        return Read(offset, max_bytes, end), moved

    def release(self, available: BytesAvailableFn) -> Released:
        """The high watermark moved: the fetches and acks=all answers it released."""
        return self._release(available)

    def isr_proposal(self, now_ms: int) -> tuple[int, ...] | None:
        """The ISR to write now (see `ReplicaSet.proposal`), or None."""
        return None if self.replicas is None else self.replicas.proposal(now_ms)

    def isr_written(self, isr: tuple[int, ...], version: int) -> bool:
        assert self.replicas is not None and isinstance(self.role, Leadership)
        self.role = Leadership(
            self.role.broker_id,
            isr,
            self.role.replicas,
            version,
            self.role.min_insync,
            self.role.lag_max_ms,
        )
        return self.replicas.isr_written(isr, version)

    def isr_write_failed(self) -> None:
        if self.replicas is not None:
            self.replicas.isr_write_failed()

    def update(self, role: Leadership, leader_epoch: int, log_end: int, now_ms: int) -> bool:
        """The controller changed the ISR or replicas, maybe in a newer epoch (starting at
        `log_end`), or repeated them; True if the high watermark moved."""
        assert self.replicas is not None
        if leader_epoch > self.leader_epoch:
            self.leader_epoch = leader_epoch
            self.replicas.new_epoch(log_end, role.isr, now_ms)
        self.role = role
        self.replicas.set_replicas(role.replicas, now_ms)
        return self.replicas.isr_written(role.isr, role.version)

    def replicated(self, headers: Iterable[BatchHeader], leader_high_watermark: int) -> None:
        """A follower appended its leader's batches (report `log_changed` first)."""
        self.producers.record_headers(headers)
        high = min(leader_high_watermark, self.log_end_offset)
        self.follower_high_watermark = max(self.follower_high_watermark, high)

    def truncated(self) -> None:
        """A follower cut its log's divergent tail (report `log_changed` first)."""
        self.producers.truncate(self.log_end_offset)
        self.follower_high_watermark = min(self.follower_high_watermark, self.log_end_offset)
