"""The leader's view of its followers: their log end offsets, the ISR and the high watermark.

Pure: no I/O; time comes in as `now_ms` (the runtime's monotonic clock). The leader's
`PartitionState` owns one and feeds it the leader's log end offset (`leader_appended`), each
follower fetch (`follower_fetched`: a fetch from offset O says the follower holds everything
below O) and the results of ISR writes (`isr_written`, `isr_write_failed`).

Kafka's rules (ZK-era AlterIsr with KIP-497's "maximal ISR"):
- A follower is caught up at the time of a fetch from the leader's log end offset, or at the
  time of its previous fetch when this one reaches what the leader's end offset was then.
- `lagging(now_ms)`: the ISR followers not caught up within `lag_max_ms` (or no longer
  replicas) are to be removed;
  `joining()`: a follower outside the ISR that holds the high watermark (and the start of the
  leader's epoch) and is `eligible` (live, as the controller says) is to be added.
  Either is proposed as one new ISR, written by the shell with
  a version check; one write at a time.
- The high watermark is the lowest log end offset over the *maximal* ISR (the written ISR
  plus the members a write in flight adds), so a record below it is on every replica that is
  or may become in sync. It never goes back. A follower whose end offset is unknown (it has
  not fetched since this leader took over) holds it where it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

UNKNOWN = -1


@dataclass(slots=True)
class FollowerProgress:
    """What the leader knows of one follower."""

    log_end_offset: int = UNKNOWN
    caught_up_ms: int = 0  # when it last held everything the leader had
    fetch_ms: int = 0  # its last fetch ...
    leader_end_at_fetch: int = UNKNOWN  # ... and the leader's log end offset then


class ReplicaSet:
    """Leader `leader` of `replicas` with in-sync set `isr` (ZooKeeper version `version`)."""

    def __init__(
        self,
        leader: int,
        replicas: tuple[int, ...],
        isr: tuple[int, ...],
        version: int,
        high_watermark: int,
        leader_end: int,
        epoch_start: int,
        now_ms: int,
        lag_max_ms: int,
        eligible: Callable[[int], bool] = lambda replica: True,
    ) -> None:
        self.leader = leader
        self.isr = tuple(isr)
        self.version = version
        self.pending: tuple[int, ...] | None = None  # an ISR being written
        self.high_watermark = min(high_watermark, leader_end)
        self.leader_end = leader_end
        self.epoch_start = epoch_start  # where this leader's epoch starts in its log
        self.lag_max_ms = lag_max_ms
        self.eligible = eligible  # may join the ISR (the controller counts it live)
        self.followers: dict[int, FollowerProgress] = {}
        self.set_replicas(replicas, now_ms)
        self._advance()

    def set_replicas(self, replicas: tuple[int, ...], now_ms: int) -> None:
        """The assignment changed (a reassignment): track the new followers, forget old ones.
        A follower is given `lag_max_ms` from now before it counts as lagging (Kafka's)."""
        self.replicas = tuple(replicas)
        wanted = {r for r in replicas if r != self.leader}
        for gone in set(self.followers) - wanted:
            del self.followers[gone]
        for new in wanted - set(self.followers):
            self.followers[new] = FollowerProgress(caught_up_ms=now_ms, fetch_ms=now_ms)

    @property
    def maximal_isr(self) -> tuple[int, ...]:
        if self.pending is None:
            return self.isr
        return self.isr + tuple(r for r in self.pending if r not in self.isr)

    # --- inputs -----------------------------------------------------------------------------

    def leader_appended(self, leader_end: int) -> bool:
        """The leader's log now ends at `leader_end`; True if the high watermark moved."""
        self.leader_end = leader_end
        return self._advance()

    def follower_fetched(self, replica: int, offset: int, now_ms: int) -> bool:
        """`replica` fetched from `offset`; True if the high watermark moved. A replica not
        among the replicas changes nothing."""
        progress = self.followers.get(replica)
        if progress is None:
            return False
        if offset >= self.leader_end:
            progress.caught_up_ms = now_ms
        elif offset >= progress.leader_end_at_fetch >= 0:
            progress.caught_up_ms = max(progress.caught_up_ms, progress.fetch_ms)
        progress.fetch_ms, progress.leader_end_at_fetch = now_ms, self.leader_end
        progress.log_end_offset = offset
        return self._advance()

    def new_epoch(self, epoch_start: int, isr: tuple[int, ...], now_ms: int) -> None:
        """The leader goes on in a new epoch from `epoch_start` (the controller changed the
        ISR). What it knew of a follower outside `isr` is forgotten: that replica may have
        died and lost its tail since; it must fetch again to show what it holds (Kafka
        resets its followers' state in a new leader epoch too)."""
        self.epoch_start = epoch_start
        for r in self.followers:
            if r not in isr:
                self.followers[r] = FollowerProgress(caught_up_ms=now_ms, fetch_ms=now_ms)

    def isr_written(self, isr: tuple[int, ...], version: int) -> bool:
        """The ISR is in ZooKeeper at `version` (proposed here or told by the controller);
        True if the high watermark moved. An older version than known is ignored."""
        if version < self.version:
            self.pending = None
            return False
        self.isr, self.version, self.pending = tuple(isr), version, None
        return self._advance()

    def isr_write_failed(self) -> None:
        """The write was refused (the state changed under us: the controller will tell)."""
        self.pending = None

    # --- decisions --------------------------------------------------------------------------

    def proposal(self, now_ms: int) -> tuple[int, ...] | None:
        """The ISR to write now (lagging members out, caught-up followers in), or None: no
        change, or a write is in flight already. The caller writes it and reports back."""
        if self.pending is not None:
            return None
        lagging = self.lagging(now_ms)
        joining = self.joining()
        if not lagging and not joining:
            return None
        proposed = tuple(r for r in self.isr if r not in lagging) + joining
        self.pending = proposed
        return proposed

    def lagging(self, now_ms: int) -> tuple[int, ...]:
        return tuple(
            r
            for r in self.isr
            if r != self.leader
            and ((f := self.followers.get(r)) is None or now_ms - f.caught_up_ms > self.lag_max_ms)
        )

    def joining(self) -> tuple[int, ...]:
        floor = max(self.high_watermark, self.epoch_start)
        return tuple(
            r
            for r, f in sorted(self.followers.items())
            if r not in self.isr and f.log_end_offset >= floor and self.eligible(r)
        )

    def _advance(self) -> bool:
        ends = [self.leader_end]
        for r in self.maximal_isr:
            if r != self.leader:
                f = self.followers.get(r)
                ends.append(UNKNOWN if f is None else f.log_end_offset)
        low = min(ends)
        if low > self.high_watermark:
            self.high_watermark = low
            return True
        return False
