"""Replication's pure parts under hypothesis: the leader's `ReplicaSet` (ISR, high watermark)
and the follower's truncation by leader epoch (`divergence`), driven together through
appends, fetches, ISR checks, crashes, restarts and clean elections as the controller makes
them (first live ISR member; a dead member leaves the ISR in a new epoch, and only a live
one may join it: the controller learns of deaths at once here).

A replica's log is a list of the leader epochs its records were written in (the record at
offset i holds `log[i]`); its epoch history is derived the way `PartitionLog` keeps it.

Invariants: the high watermark of a leader never decreases; every record below it is on
every member of the (maximal) ISR; every record that was ever below a high watermark (acked
with acks=all) stays in every later leader's log, at its offset, in its epoch.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from zafka.actors.partition.divergence import AskEpoch, TruncateTo, answered, first_step
from zafka.actors.partition.replica_set import ReplicaSet
from zafka.storage.epochs import LeaderEpochCache

REPLICAS = (1, 2, 3)
LAG_MAX_MS = 100


def history(log: list[int]) -> LeaderEpochCache:
    cache = LeaderEpochCache()
    for offset, epoch in enumerate(log):
        cache.assign(epoch, offset)
    return cache


def truncation_point(follower: list[int], leader: list[int]) -> int:
    """Run the OffsetForLeaderEpoch exchange between two logs; where the follower cuts."""
    mine, theirs = history(follower), history(leader)
    step = first_step(mine, 0, len(follower))
    for _ in range(len(REPLICAS) * 100):
        if isinstance(step, TruncateTo):
            return step.offset
        assert isinstance(step, AskEpoch)
        epoch, end = theirs.end_offset_for(step.epoch, len(leader))
        step = answered(mine, 0, len(follower), epoch, end)
    raise AssertionError("the exchange did not end")


class ReplicationModel(RuleBasedStateMachine):
    @initialize()
    def start(self) -> None:
        self.now_ms = 0
        self.logs: dict[int, list[int]] = {r: [] for r in REPLICAS}
        self.alive = set(REPLICAS)
        self.epoch = 0
        self.isr = REPLICAS  # as ZooKeeper holds it
        self.version = 0
        self.follower_hw = dict.fromkeys(REPLICAS, 0)
        self.truncated: set[int] = set()  # followers done truncating in this epoch
        self.committed: list[int] = []  # the longest prefix ever below a high watermark
        self._lead(1)

    def _lead(self, leader: int | None) -> None:
        self.leader = leader
        self.truncated = set()
        self.rs: ReplicaSet | None = None
        if leader is None:
            return
        log = self.logs[leader]
        epoch_start = len(log)
        self.rs = ReplicaSet(
            leader,
            REPLICAS,
            self.isr,
            self.version,
            self.follower_hw[leader],
            len(log),
            epoch_start,
            self.now_ms,
            LAG_MAX_MS,
            eligible=lambda replica: replica in self.alive,  # as the broker's metadata says
        )
        self.hw_seen = self.rs.high_watermark

    def _hw_moved(self) -> None:
        assert self.rs is not None and self.leader is not None
        high = self.rs.high_watermark
        prefix = self.logs[self.leader][:high]
        if len(prefix) > len(self.committed):
            assert prefix[: len(self.committed)] == self.committed
            self.committed = prefix

    def _elect(self) -> None:
        """The controller: first live ISR member in assignment order leads, epoch + 1, the
        dead leave the ISR; no live member: offline."""
        live_isr = tuple(r for r in self.isr if r in self.alive)
        self.epoch += 1
        self.version += 1
        if live_isr:
            self.isr = live_isr
            self._lead(next(r for r in REPLICAS if r in live_isr))
        else:
            self._lead(None)

    # --- rules ------------------------------------------------------------------------------

    @precondition(lambda self: self.leader is not None)
    @rule(count=st.integers(1, 3))
    def append(self, count: int) -> None:
        assert self.rs is not None and self.leader is not None
        self.logs[self.leader].extend([self.epoch] * count)
        if self.rs.leader_appended(len(self.logs[self.leader])):
            self._hw_moved()

    @precondition(lambda self: self.leader is not None)
    @rule(follower=st.sampled_from(REPLICAS), most=st.integers(0, 4))
    def fetch(self, follower: int, most: int) -> None:
        assert self.rs is not None and self.leader is not None
        if follower == self.leader or follower not in self.alive:
            return
        mine, theirs = self.logs[follower], self.logs[self.leader]
        if follower not in self.truncated:
            del mine[truncation_point(mine, theirs) :]
            self.truncated.add(follower)
        offset = len(mine)
        assert mine == theirs[:offset], "a truncated follower disagrees with its leader"
        if self.rs.follower_fetched(follower, offset, self.now_ms):
            self._hw_moved()
        mine.extend(theirs[offset : offset + most])
        self.follower_hw[follower] = min(self.rs.high_watermark, len(mine))

    @rule(ms=st.integers(1, 80))
    def time_passes(self, ms: int) -> None:
        self.now_ms += ms

    @precondition(lambda self: self.leader is not None)
    @rule()
    def isr_check(self) -> None:
        """The leader proposes an ISR (written while other things happen)."""
        assert self.rs is not None
        self.rs.proposal(self.now_ms)

    @precondition(lambda self: self.rs is not None and self.rs.pending is not None)
    @rule(lands=st.booleans())
    def isr_write_done(self, lands: bool) -> None:
        """The proposed ISR's write lands, or a controller change beat it."""
        assert self.rs is not None and self.rs.pending is not None
        if lands:
            self.version += 1
            self.isr = self.rs.pending
            if self.rs.isr_written(self.isr, self.version):
                self._hw_moved()
        else:
            self.rs.isr_write_failed()

    @rule(replica=st.sampled_from(REPLICAS), lost=st.integers(0, 3))
    def crash(self, replica: int, lost: int) -> None:
        """`replica` dies; a follower may come back without its last `lost` records (a
        damaged tail cut, a disk that lost unflushed data)."""
        if replica not in self.alive:
            return
        was_leader = replica == self.leader
        self.alive.discard(replica)
        joining = self.rs is not None and replica in (self.rs.pending or ())
        if joining:  # the controller's removal below moves the version on: that write fails
            assert self.rs is not None
            self.rs.isr_write_failed()
        if replica == self.leader or replica in self.isr or joining:
            self.follower_hw[replica] = min(self.follower_hw[replica], len(self.logs[replica]))
            if replica == self.leader and self.rs is not None:
                self.follower_hw[replica] = self.rs.high_watermark
            if replica != self.leader:  # the controller: out of the ISR, in a new epoch
                self.isr = tuple(r for r in self.isr if r != replica)
                self.epoch += 1
                self.version += 1
                assert self.rs is not None and self.leader is not None
                self.rs.new_epoch(len(self.logs[self.leader]), self.isr, self.now_ms)
                self.rs.isr_written(self.isr, self.version)
            else:
                self._elect()
        if not was_leader and lost:
            log = self.logs[replica]
            del log[max(len(log) - lost, 0) :]
            self.follower_hw[replica] = min(self.follower_hw[replica], len(log))

    @rule(replica=st.sampled_from(REPLICAS))
    def restart(self, replica: int) -> None:
        if replica in self.alive:
            return
        self.alive.add(replica)
        self.truncated.discard(replica)
        if self.leader is None and replica in self.isr:
            self._elect()

    # --- invariants -------------------------------------------------------------------------

    @invariant()
    def high_watermark_never_decreases(self) -> None:
        if self.rs is not None:
            assert self.rs.high_watermark >= self.hw_seen
            self.hw_seen = self.rs.high_watermark
            assert self.rs.high_watermark <= len(self.logs[self.rs.leader])

    @invariant()
    def below_the_high_watermark_every_in_sync_replica_agrees(self) -> None:
        if self.rs is None or self.leader is None:
            return
        high = self.rs.high_watermark
        prefix = self.logs[self.leader][:high]
        for r in self.rs.maximal_isr:
            assert self.logs[r][:high] == prefix, f"replica {r} lacks what is below {high}"

    @invariant()
    def acked_records_survive_every_clean_election(self) -> None:
        if self.leader is not None:
            log = self.logs[self.leader]
            assert log[: len(self.committed)] == self.committed, "an acked record was lost"


ReplicationModel.TestCase.settings = settings(max_examples=300, stateful_step_count=60)
TestReplicationModel = ReplicationModel.TestCase


def test_a_follower_ahead_of_its_new_leader_cuts_its_tail_to_the_leader_epoch_end():
    # Epoch 0 wrote 3 records; the old leader wrote 2 more in epoch 1 that no one copied;
    # the new leader (epoch 2) wrote its own after offset 3.
    old_leader, new_leader = [0, 0, 0, 1, 1], [0, 0, 0, 2, 2, 2]
    assert truncation_point(old_leader, new_leader) == 3


def test_a_follower_of_an_unclean_leader_converges_to_it():
    # An out-of-sync replica led (unclean): the follower holds records it never had.
    follower, leader = [0, 0, 1, 1, 1], [0, 3, 3]
    assert truncation_point(follower, leader) == 1
    assert truncation_point([], leader) == 0 and truncation_point(leader, leader) == 3


def test_a_replica_the_controller_does_not_count_live_does_not_join_the_isr():
    # Back before its registration: caught up, but adding it would only be undone.
    live = {1, 2}
    rs = ReplicaSet(1, REPLICAS, (1, 2), 0, 0, 5, 0, 0, LAG_MAX_MS, lambda r: r in live)
    rs.follower_fetched(2, 5, 0)
    rs.follower_fetched(3, 5, 0)
    assert rs.proposal(0) is None
    live.add(3)  # registered: the next check takes it in
    assert rs.proposal(0) == (1, 2, 3)


def test_a_follower_out_of_the_isr_in_a_new_epoch_must_fetch_again_to_join():
    # Broker 2 was caught up at 5, died (the controller took it out in a new epoch), and came
    # back having lost its tail (a damaged batch cut): what the leader knew of it is stale.
    rs = ReplicaSet(1, (1, 2), (1, 2), 0, 0, 5, 0, 0, LAG_MAX_MS)
    rs.follower_fetched(2, 5, 0)
    assert rs.high_watermark == 5
    rs.new_epoch(5, (1,), 10)
    rs.isr_written((1,), 1)
    assert rs.proposal(10) is None  # not taken back in on what it held before
    rs.follower_fetched(2, 3, 20)
    assert rs.proposal(20) is None  # it holds less than the high watermark
    rs.follower_fetched(2, 5, 30)
    assert rs.proposal(30) == (1, 2)
