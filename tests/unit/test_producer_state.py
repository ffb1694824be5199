"""The producer state table: Kafka's idempotent-producer rules, replay, truncation, bounds,
and a property test of a producer that retries and reorders within its in-flight window."""

from __future__ import annotations

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from zafka import limits
from zafka.actors.partition.producer_state import (
    APPEND,
    SEQUENCE_MAX,
    Action,
    AppendedBatch,
    Decision,
    ProducerStateTable,
    last_sequence,
)
from zafka.errors import ZafkaError
from zafka.storage.batch import BatchHeader

PID = 7


def header(pid: int, epoch: int, seq: int, count: int, base: int) -> BatchHeader:
    """A header as the log holds it: only the offsets and producer fields matter here."""
    fields = {"base_offset": base, "last_offset_delta": count - 1, "record_count": count}
    fields |= {"producer_id": pid, "producer_epoch": epoch, "base_sequence": seq}
    return BatchHeader(**(dict.fromkeys(BatchHeader.__slots__, 0) | fields))


class Partition:
    """A table driven the way the partition actor drives it, over a list of headers as log."""

    def __init__(self, producers_max: int = 1000) -> None:
        self.table = ProducerStateTable(producers_max)
        self.log: list[BatchHeader] = []
        self.end = 0

    def produce(self, pid: int, epoch: int, seq: int, count: int) -> tuple[int, int]:
        decision = self.table.check(pid, epoch, seq, count)
        if decision.action is Action.DUPLICATE:
            return decision.base_offset, decision.last_offset
        base, last = self.end, self.end + count - 1
        self.log.append(header(pid, epoch, seq, count, base))
        self.table.record(pid, epoch, seq, count, base, last)
        self.end = last + 1
        return base, last

    def replay(self, pid: int, epoch: int, seq: int, count: int) -> None:
        """A batch that is in the log already (written before the partition was opened)."""
        self.log.append(header(pid, epoch, seq, count, self.end))
        self.table.record(pid, epoch, seq, count, self.end, self.end + count - 1)
        self.end += count


def error_name(excinfo: pytest.ExceptionInfo[ZafkaError]) -> str:
    return excinfo.value.error.name


# --- the rules --------------------------------------------------------------------------


def test_non_idempotent_batches_are_always_appended_and_never_recorded():
    p = Partition()
    for _ in range(3):
        assert p.table.check(-1, -1, -1, 5) == APPEND
        p.produce(-1, -1, -1, 5)
    assert p.table.entries() == {}
    assert p.end == 15


def test_an_unknown_producer_must_start_at_sequence_0():
    p = Partition()
    with pytest.raises(ZafkaError) as excinfo:
        p.table.check(PID, 0, 3, 1)
    assert error_name(excinfo) == "UNKNOWN_PRODUCER_ID"
    assert p.table.check(PID, 0, 0, 1) == APPEND


def test_consecutive_batches_are_appended_and_recorded():
    p = Partition()
    assert p.produce(PID, 0, 0, 3) == (0, 2)
    assert p.produce(PID, 0, 3, 2) == (3, 4)
    entry = p.table.entries()[PID]
    assert entry.epoch == 0
    assert entry.batches == (AppendedBatch(0, 2, 0, 2), AppendedBatch(3, 4, 3, 4))


def test_a_duplicate_gets_its_original_offsets_and_appends_nothing():
    p = Partition()
    p.produce(PID, 0, 0, 3)
    p.produce(-1, -1, -1, 10)  # someone else's records in between
    p.produce(PID, 0, 3, 2)
    assert p.table.check(PID, 0, 0, 3) == Decision(Action.DUPLICATE, 0, 2)
    assert p.table.check(PID, 0, 3, 2) == Decision(Action.DUPLICATE, 13, 14)
    end = p.end
    assert p.produce(PID, 0, 0, 3) == (0, 2)
    assert p.end == end


def test_a_batch_with_the_same_first_but_another_last_sequence_is_no_duplicate():
    p = Partition()
    p.produce(PID, 0, 0, 3)
    with pytest.raises(ZafkaError) as excinfo:
        p.table.check(PID, 0, 0, 2)
    assert error_name(excinfo) == "OUT_OF_ORDER_SEQUENCE"


@pytest.mark.parametrize("seq", [4, 7, 1, 2])  # a gap, further on, inside the last batch
def test_a_sequence_that_does_not_follow_is_out_of_order(seq):
    p = Partition()
    p.produce(PID, 0, 0, 3)
    with pytest.raises(ZafkaError) as excinfo:
        p.table.check(PID, 0, seq, 1)
    assert error_name(excinfo) == "OUT_OF_ORDER_SEQUENCE"


def test_only_the_last_five_batches_are_recognised_as_duplicates():
    p = Partition()
    for i in range(limits.idempotent_in_flight_batches_max + 1):
        p.produce(PID, 0, i, 1)
    for i in range(1, limits.idempotent_in_flight_batches_max + 1):
        assert p.table.check(PID, 0, i, 1) == Decision(Action.DUPLICATE, i, i)
    with pytest.raises(ZafkaError) as excinfo:  # batch 0 left the window: an old sequence
        p.table.check(PID, 0, 0, 1)
    assert error_name(excinfo) == "OUT_OF_ORDER_SEQUENCE"
    assert len(p.table.entries()[PID].batches) == limits.idempotent_in_flight_batches_max


def test_sequences_wrap_from_the_maximum_to_0():
    assert last_sequence(SEQUENCE_MAX, 1) == SEQUENCE_MAX
    assert last_sequence(SEQUENCE_MAX - 1, 4) == 1
    p = Partition()
    p.replay(PID, 0, SEQUENCE_MAX - 2, 3)  # 0-2, ends at SEQUENCE_MAX
    with pytest.raises(ZafkaError):
        p.table.check(PID, 0, SEQUENCE_MAX + 1, 1)  # no sequence beyond the maximum
    assert p.produce(PID, 0, 0, 2) == (3, 4)  # SEQUENCE_MAX is followed by 0
    assert p.produce(PID, 0, 2, 1) == (5, 5)
    assert p.table.check(PID, 0, SEQUENCE_MAX - 2, 3) == Decision(Action.DUPLICATE, 0, 2)


def test_a_batch_may_straddle_the_wrap():
    p = Partition()
    p.replay(PID, 0, SEQUENCE_MAX - 1, 4)  # sequences MAX-1, MAX, 0, 1 at offsets 0-3
    assert p.table.entries()[PID].batches == (AppendedBatch(SEQUENCE_MAX - 1, 1, 0, 3),)
    assert p.table.check(PID, 0, SEQUENCE_MAX - 1, 4) == Decision(Action.DUPLICATE, 0, 3)
    assert p.table.check(PID, 0, 2, 1) == APPEND
    for seq in (SEQUENCE_MAX, 0, 1):
        with pytest.raises(ZafkaError) as excinfo:
            p.table.check(PID, 0, seq, 1)
        assert error_name(excinfo) == "OUT_OF_ORDER_SEQUENCE"


def test_an_older_epoch_is_fenced():
    p = Partition()
    p.produce(PID, 3, 0, 1)
    with pytest.raises(ZafkaError) as excinfo:
        p.table.check(PID, 2, 1, 1)
    assert error_name(excinfo) == "INVALID_PRODUCER_EPOCH"
    with pytest.raises(ZafkaError) as excinfo:  # even a batch that looks like a duplicate
        p.table.check(PID, 2, 0, 1)
    assert error_name(excinfo) == "INVALID_PRODUCER_EPOCH"


def test_a_new_epoch_starts_at_0_and_resets_the_state():
    p = Partition()
    p.produce(PID, 0, 0, 2)
    p.produce(PID, 0, 2, 2)
    with pytest.raises(ZafkaError) as excinfo:
        p.table.check(PID, 1, 4, 1)  # continuing the old sequence in a new epoch
    assert error_name(excinfo) == "OUT_OF_ORDER_SEQUENCE"
    assert p.produce(PID, 1, 0, 1) == (4, 4)
    assert p.table.entries()[PID].epoch == 1
    assert p.table.entries()[PID].batches == (AppendedBatch(0, 0, 4, 4),)
    assert p.table.check(PID, 1, 0, 1) == Decision(Action.DUPLICATE, 4, 4)
    with pytest.raises(ZafkaError) as excinfo:  # the old epoch is fenced from now on
        p.table.check(PID, 0, 4, 1)
    assert error_name(excinfo) == "INVALID_PRODUCER_EPOCH"


def test_check_changes_nothing():
    p = Partition()
    p.produce(PID, 0, 0, 1)
    before = p.table.entries()
    p.table.check(PID, 0, 1, 1)
    p.table.check(PID, 1, 0, 1)
    p.table.check(PID + 1, 0, 0, 1)
    assert p.table.entries() == before


@pytest.mark.parametrize(
    ("epoch", "seq", "count"),
    [(-1, 0, 1), (2**15, 0, 1), (0, -1, 1), (0, SEQUENCE_MAX + 1, 1), (0, 0, 0)],
)
def test_fields_an_idempotent_batch_cannot_carry_are_refused(epoch, seq, count):
    with pytest.raises(ZafkaError) as excinfo:
        ProducerStateTable().check(PID, epoch, seq, count)
    assert error_name(excinfo) == "INVALID_REQUEST"


def test_producers_are_independent():
    p = Partition()
    p.produce(1, 0, 0, 2)
    p.produce(2, 5, 0, 1)
    assert p.table.check(1, 0, 2, 1) == APPEND
    assert p.table.check(2, 5, 1, 1) == APPEND
    assert p.table.check(2, 5, 0, 1) == Decision(Action.DUPLICATE, 2, 2)


# --- replay, truncation, bounds ---------------------------------------------------------


def test_rebuild_from_the_headers_equals_live_recording():
    p = Partition()
    p.produce(1, 0, 0, 2)
    for seq in range(2, 9):
        p.produce(2, 0, seq - 2, 1)
        p.produce(-1, -1, -1, 3)
    p.produce(1, 0, 2, 4)
    p.produce(2, 1, 0, 2)  # epoch bump
    p.produce(3, 0, 0, 1)
    rebuilt = ProducerStateTable()
    rebuilt.record(99, 0, 0, 1, 0, 0)  # whatever was there before is forgotten
    rebuilt.rebuild(p.log)
    assert rebuilt.entries() == p.table.entries()
    assert list(rebuilt.entries()) == list(p.table.entries())  # the same LRU order


def test_replay_follows_the_log_even_to_an_older_epoch():
    table = ProducerStateTable()
    table.rebuild([header(PID, 2, 0, 1, 0), header(PID, 1, 5, 1, 1)])
    assert table.entries()[PID].epoch == 1
    assert table.entries()[PID].batches == (AppendedBatch(5, 5, 1, 1),)


def test_truncate_forgets_batches_at_or_above_the_point():
    p = Partition()
    p.produce(1, 0, 0, 2)  # 0-1
    p.produce(2, 0, 0, 1)  # 2
    p.produce(1, 0, 2, 3)  # 3-5
    p.produce(2, 0, 1, 1)  # 6
    p.table.truncate(4)  # whole batches: 3-5 goes (its last offset is >= 4)
    entries = p.table.entries()
    assert entries[1].batches == (AppendedBatch(0, 1, 0, 1),)
    assert entries[2].batches == (AppendedBatch(0, 0, 2, 2),)
    assert p.table.check(1, 0, 2, 3) == APPEND  # the cut batch may be produced again
    assert p.table.check(2, 0, 1, 1) == APPEND


def test_truncate_agrees_with_a_rebuild_of_what_is_left():
    p = Partition()
    for i in range(12):
        p.produce(i % 3, 0, i // 3 * 2, 2)
    for point in (24, 17, 12, 5, 0):
        p.table.truncate(point)
        kept = [h for h in p.log if h.last_offset < point]
        rebuilt = ProducerStateTable()
        rebuilt.rebuild(kept)
        truncated = p.table.entries()
        assert set(truncated) == set(rebuilt.entries())
        for pid, entry in truncated.items():
            assert entry.epoch == rebuilt.entries()[pid].epoch
            assert entry.batches[-1] == rebuilt.entries()[pid].batches[-1]


def test_a_producer_truncated_to_nothing_is_forgotten():
    p = Partition()
    p.produce(1, 0, 0, 1)
    p.produce(2, 0, 0, 1)
    p.table.truncate(1)
    assert list(p.table.entries()) == [1]
    with pytest.raises(ZafkaError) as excinfo:
        p.table.check(2, 0, 1, 1)
    assert error_name(excinfo) == "UNKNOWN_PRODUCER_ID"


def test_the_least_recently_appended_producer_is_evicted_beyond_the_bound():
    p = Partition(producers_max=3)
    for pid in (1, 2, 3):
        p.produce(pid, 0, 0, 1)
    p.produce(1, 0, 1, 1)  # 1 is used again: 2 is now the oldest
    p.produce(4, 0, 0, 1)
    assert list(p.table.entries()) == [3, 1, 4]
    with pytest.raises(ZafkaError) as excinfo:
        p.table.check(2, 0, 1, 1)
    assert error_name(excinfo) == "UNKNOWN_PRODUCER_ID"
    for pid in range(10, 100):
        p.produce(pid, 0, 0, 1)
    assert len(p.table.entries()) == 3


def test_the_bound_must_be_positive():
    with pytest.raises(ValueError):
        ProducerStateTable(0)


# --- property: retries and reordering never append a record twice ------------------------


class RetryingProducer:
    """Kafka's idempotent producer: at most limits.idempotent_in_flight_batches_max
    unacknowledged batches in flight, each sent again until it is acknowledged."""

    def __init__(self, pid: int, counts: list[int], first_seq: int) -> None:
        self.pid = pid
        self.batches = []  # (base_sequence, record_count)
        seq = first_seq
        for count in counts:
            self.batches.append((seq, count))
            seq = (last_sequence(seq, count) + 1) % (SEQUENCE_MAX + 1)
        self.acked: set[int] = set()

    @property
    def first_unacked(self) -> int | None:
        return next((i for i in range(len(self.batches)) if i not in self.acked), None)

    def sendable(self) -> range:
        """Unacknowledged batches in the window, and acknowledged ones (late copies)."""
        first = self.first_unacked
        end = (
            len(self.batches) if first is None else first + limits.idempotent_in_flight_batches_max
        )
        return range(min(end, len(self.batches)))


def deliver(p: Partition, appended_at: dict, producer: RetryingProducer, index: int) -> bool:
    """The broker handles one copy of a batch: it is appended once, answered with the
    offsets of that append ever after, or refused. True unless refused."""
    seq, count = producer.batches[index]
    end = p.end
    try:
        offsets = p.produce(producer.pid, 0, seq, count)
    except ZafkaError as exc:  # arrived early (before its predecessor) or too late
        known = producer.pid in p.table.entries()
        assert exc.error.name == ("OUT_OF_ORDER_SEQUENCE" if known else "UNKNOWN_PRODUCER_ID")
        assert p.end == end
        event(exc.error.name)
        return False
    if p.end != end:
        assert (producer.pid, index) not in appended_at
        appended_at[producer.pid, index] = offsets
    else:
        event("DUPLICATE")
    assert offsets == appended_at[producer.pid, index]
    return True


RUNS = st.lists(  # per producer: batch sizes, and how far before the wrap it starts (or None)
    st.tuples(st.lists(st.integers(1, 4), min_size=1, max_size=14), st.none() | st.integers(0, 6)),
    min_size=1,
    max_size=2,
)


@settings(max_examples=300, deadline=None)
@given(runs=RUNS, data=st.data())
def test_retries_and_reordering_never_append_a_record_twice(runs, data):
    p = Partition()
    producers = []
    for pid, (counts, before_wrap) in enumerate(runs):
        first_seq = 0 if before_wrap is None else SEQUENCE_MAX - before_wrap
        if first_seq:  # a long-lived producer: its last batch ends just before first_seq
            p.replay(pid, 0, first_seq - 1, 1)
        producers.append(RetryingProducer(pid, counts, first_seq))
    appended_at: dict[tuple[int, int], tuple[int, int]] = {}  # (pid, batch index) -> offsets
    for _ in range(data.draw(st.integers(0, 80))):
        producer = data.draw(st.sampled_from(producers))
        index = data.draw(st.sampled_from(producer.sendable()))
        if deliver(p, appended_at, producer, index) and not data.draw(st.booleans()):
            producer.acked.add(index)  # else the response was lost: the producer retries
    for producer in producers:  # then the network heals: every batch gets through
        while (index := producer.first_unacked) is not None:
            assert deliver(p, appended_at, producer, index), "no retry gets through: stuck"
            producer.acked.add(index)

    for producer in producers:
        sequences = [
            (h.base_sequence, h.record_count) for h in p.log if h.producer_id == producer.pid
        ]
        seeded = len(sequences) - len(producer.batches)
        assert sequences[seeded:] == producer.batches  # each once, in order
        assert seeded == (producer.batches[0][0] != 0)
    rebuilt = ProducerStateTable()
    rebuilt.rebuild(p.log)
    assert rebuilt.entries() == p.table.entries()
