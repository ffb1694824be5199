"""Property test of the pure partition state machine (actors/partition/state.py): random
produces (new, retried, out of order, corrupt, acks=0), fetches (in and out of range, long
polls), time passing and restarts, with this test as the shell and a list of batches as the
log. The invariants are the log model's (tests/unit/test_log_model.py): the offsets match,
a read gives whole batches in order from the one holding its offset, an offset outside
[log start, log end] is OFFSET_OUT_OF_RANGE. And the state's own: every acknowledged batch
is in the log exactly once (a retry gets its first base offset), a parked fetch is answered
once — when an append gives it `min_bytes`, at its deadline, or when the leader stops."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from zafka.actors.partition.fetch_waiters import PendingFetch
from zafka.actors.partition.state import PARKED, Append, PartitionState, Read
from zafka.errors import ZafkaError
from zafka.storage.batch import build_batch, check_batch, parse_header, stamp
from zafka.storage.config import LogConfig
from zafka.transport.client import FetchRequest, FetchResponse, ProduceRequest

TOPIC, PARTITION = "orders", 0
PRODUCERS = (-1, 7, 8)  # -1: not idempotent
WINDOW = 5  # batches a producer's retries are recognised for (Kafka's)


class PartitionStateModel(RuleBasedStateMachine):
    """The shell: `batches` is the log (base, last, stamped bytes), `parked` the fetches
    waiting, by handle, with what they asked."""

    @initialize()
    def start(self) -> None:
        self.batches: list[tuple[int, int, bytes]] = []
        self.sequences = {pid: 0 for pid in PRODUCERS}  # the next sequence per producer
        self.sent: dict[int, list[tuple[int, int, int]]] = {p: [] for p in PRODUCERS}
        self.now_ms = 0
        self.parked: dict[int, FetchRequest] = {}
        self.handles = 0
        self.state = self._open()

    def _open(self) -> PartitionState:
        state = PartitionState(TOPIC, PARTITION, LogConfig(), leader_epoch=3)
        headers = [parse_header(data) for _, _, data in self.batches]
        state.log_opened(headers, 0, self.end, self.end)
        return state

    @property
    def end(self) -> int:
        return self.batches[-1][1] + 1 if self.batches else 0

    # --- the shell's log ------------------------------------------------------------------

    def _read(self, read: Read) -> bytes:
        assert read.max_offset == self.end  # the high watermark is the log end
        if read.offset == self.end:
            return b""
        taken: list[bytes] = []
        for _, last, data in self.batches:
            if last < read.offset:
                continue
            if taken and sum(map(len, taken)) + len(data) > read.max_bytes:
                break
            taken.append(data)
        return b"".join(taken)

    def _available(self, offset: int, up_to_offset: int) -> int:
        return sum(len(data) for _, last, data in self.batches if last >= offset)

    def _append(self, step: Append) -> list[PendingFetch]:
        stamped = bytearray(step.batch)
        check_batch(stamped)  # as PartitionLog.append does, before it writes
        stamp(stamped, self.end, step.leader_epoch)
        base, count = self.end, step.header.record_count
        self.batches.append((base, base + count - 1, bytes(stamped)))
        self.state.log_changed(0, self.end, self.end)
        return self.state.appended(step, base, base + count - 1, self._available).fetches

    def _answer(self, pending: PendingFetch, why: str) -> None:
        request = self.parked.pop(pending.handle)  # answered once: a second pop fails
        data = self._read(self.state.released(pending))
        self._check_read(request.offset, request.max_bytes, data)
        if why == "append":
            assert data and self._available(request.offset, self.end) >= request.min_bytes
        if why == "deadline":
            assert pending.deadline_ms <= self.now_ms

    def _check_read(self, offset: int, max_bytes: int, data: bytes) -> None:
        expected = [d for _, last, d in self.batches if last >= offset]
        if offset == self.end:
            assert data == b""
            return
        assert data and expected[0] == data[: len(expected[0])]  # the batch holding offset
        assert data == b"".join(expected[: _count_batches(data)])
        assert len(data) <= max(max_bytes, len(expected[0]))

    # --- rules ----------------------------------------------------------------------------

    @rule(
        pid=st.sampled_from(PRODUCERS),
        count=st.integers(1, 4),
        kind=st.sampled_from(["next", "next", "retry", "gap", "corrupt"]),
        acks=st.sampled_from([0, 1, -1]),
        data=st.data(),
    )
    def produce(self, pid: int, count: int, kind: str, acks: int, data: st.DataObject) -> None:
        sent = self.sent[pid][-WINDOW:]
        if kind == "retry" and (pid < 0 or not sent):
            kind = "next"
        first, count, expected_base = self.sequences[pid], count, self.end
        if kind == "retry":
            first, count, expected_base = data.draw(st.sampled_from(sent))
        elif kind == "gap" and pid >= 0:
            first += 1
        batch = self._batch(pid, first, count)
        if kind == "corrupt":
            batch[-1] ^= 0xFF
        request = ProduceRequest(TOPIC, PARTITION, acks, 30_000, bytes(batch))
        try:
            step = self.state.produce(request)
            released = self._append(step) if isinstance(step, Append) else []
        except ZafkaError as err:
            assert err.error.name == self._refusal(pid, kind)
            return
        assert kind not in ("gap", "corrupt") or (kind == "gap" and pid < 0)
        if kind == "retry":
            assert step == expected_base  # the first append's offset; nothing appended
            return
        assert isinstance(step, Append) and step.leader_epoch == 3
        for pending in released:
            self._answer(pending, "append")
        if pid >= 0:
            self.sent[pid].append((first, count, expected_base))
            self.sequences[pid] += count

    def _refusal(self, pid: int, kind: str) -> str:
        if kind == "corrupt":
            return "CORRUPT_MESSAGE"
        assert kind == "gap" and pid >= 0
        return "OUT_OF_ORDER_SEQUENCE" if self.sent[pid] else "UNKNOWN_PRODUCER_ID"

    def _batch(self, pid: int, first: int, count: int) -> bytearray:
        records = [(self.now_ms, b"k%d" % i, b"v" * 40, None) for i in range(count)]
        if pid < 0:
            return bytearray(build_batch(records))
        return bytearray(
            build_batch(records, producer_id=pid, producer_epoch=0, base_sequence=first)
        )

    @rule(
        data=st.data(),
        min_bytes=st.integers(0, 400),
        max_wait_ms=st.sampled_from([0, 0, 50, 500]),
        max_bytes=st.integers(0, 600),
    )
    def fetch(self, data: st.DataObject, min_bytes: int, max_wait_ms: int, max_bytes: int):
        offset = data.draw(st.integers(-2, self.end + 2))
        request = FetchRequest(TOPIC, PARTITION, offset, max_bytes, max_wait_ms, min_bytes)
        try:
            read = self.state.fetch(request)
        except ZafkaError as err:
            assert err.error.name == "OFFSET_OUT_OF_RANGE"
            assert not 0 <= offset <= self.end
            return
        assert 0 <= offset <= self.end
        got = self._read(read)
        self.handles += 1
        response = self.state.fetched(request, self.handles, got, self.now_ms)
        if response is PARKED:
            assert len(got) < min_bytes and max_wait_ms > 0
            self.parked[self.handles] = request
            return
        assert isinstance(response, FetchResponse) and response.records is got
        assert response.high_watermark == self.end and response.log_start_offset == 0
        self._check_read(offset, max_bytes, got)

    @rule(elapsed_ms=st.integers(1, 600))
    def time_passes(self, elapsed_ms: int) -> None:
        self.now_ms += elapsed_ms
        for pending in self.state.expire(self.now_ms):
            self._answer(pending, "deadline")

    @rule()
    def restart(self) -> None:
        fetches, acks = self.state.stop()
        assert acks == []  # acks=all is answered at once by a sole leader
        for pending in fetches:
            self._answer(pending, "stop")
        self.state = self._open()

    # --- invariants -----------------------------------------------------------------------

    @invariant()
    def offsets_match(self) -> None:
        if hasattr(self, "state"):
            assert (self.state.log_start_offset, self.state.high_watermark) == (0, self.end)

    @invariant()
    def parked_fetches_wait_in_the_state(self) -> None:
        if hasattr(self, "state"):
            assert len(self.state.waiters) == len(self.parked)
            deadline = self.state.next_fetch_deadline_ms()
            assert (deadline is None) == (not self.parked)
            for request in self.parked.values():  # none waits that a fetch now would answer
                now = self._read(Read(request.offset, request.max_bytes, self.end))
                assert len(now) < request.min_bytes

    @invariant()
    def every_acknowledged_batch_is_in_the_log_once(self) -> None:
        if not hasattr(self, "state"):
            return
        stored = [parse_header(data) for _, _, data in self.batches]
        keys = [(h.producer_id, h.base_sequence) for h in stored if h.producer_id >= 0]
        assert len(keys) == len(set(keys))
        for pid, sent in self.sent.items():
            for first, _, base in sent:
                assert (pid, first) in keys and stored[self._index_of(base)].base_offset == base

    def _index_of(self, base: int) -> int:
        return next(i for i, (b, _, _) in enumerate(self.batches) if b == base)


def _count_batches(data: bytes) -> int:
    position, count = 0, 0
    while position < len(data):
        position += parse_header(data, position).size
        count += 1
    return count


PartitionStateModel.TestCase.settings = settings(
    max_examples=200, stateful_step_count=50, deadline=None
)
TestPartitionStateModel = PartitionStateModel.TestCase
