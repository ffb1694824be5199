"""The fault suite's checker: from the producers' logs of every send and a final full read of
the topic, what went wrong (Jepsen's questions for Kafka, asked of zafka).

A producer log (tests/fault/producer.py writes it) has one JSON object per line:
`{"kind": "acked", "producer": P, "seq": n, "partition": p, "offset": o, "t": s}`, or
`"failed"` (with "error"), for the record whose value is `f"{P}:{n}"`; a record with neither
outcome is unknown (the producer was stopped first). The final read (tests/fault/reader.py)
is `{"partition": p, "offset": o, "value": v}` per record, every partition read from its
start to its end. Times are wall-clock seconds (`time.time()`), comparable across processes.

Counted: acked records lost (not in the final read), duplicates (a value at two offsets),
offsets with two values (acked at one offset, read there with another value, or acked twice
with different values), order violations (a producer's records out of sequence order within
a partition), acks while the ISR was below min.insync.replicas (by an ISR timeline), acks of a
zombie (lost acks within a window the caller names), and the recovery time (a fault to the
next ack on the partitions it hit).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

Offset = tuple[int, int]  # (partition, offset)


@dataclass(frozen=True)
class Ack:
    value: str
    partition: int
    offset: int
    t: float


@dataclass
class History:
    acks: list[Ack] = field(default_factory=list)
    failed: int = 0
    sent: int = 0


def read_history(paths: Iterable[Path]) -> History:
    history = History()
    for path in paths:
        for line in path.read_text().splitlines():
            event = json.loads(line)
            value = f"{event['producer']}:{event['seq']}"
            if event["kind"] == "sent":
                history.sent += 1
            elif event["kind"] == "acked":
                ack = Ack(value, event["partition"], event["offset"], event["t"])
                history.acks.append(ack)
            elif event["kind"] == "failed":
                history.failed += 1
    return history


def read_final(path: Path) -> dict[Offset, str]:
    found = {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        found[(record["partition"], record["offset"])] = record["value"]
    return found


@dataclass(frozen=True)
class Figures:
    acked: int
    lost: int
    duplicates: int
    two_values: int
    order_violations: int
    below_min_insync: int
    zombie_acks: int
    recovery_s: float | None

    def line(self) -> str:
        recovery = "n/a" if self.recovery_s is None else f"{self.recovery_s:.2f}"
        return (
            f"checker: acked={self.acked} lost={self.lost} duplicates={self.duplicates} "
            f"two_values={self.two_values} order_violations={self.order_violations} "
            f"below_min_insync={self.below_min_insync} zombie_acks={self.zombie_acks} "
            f"recovery_s={recovery}"
        )

    def clean(self) -> bool:
        bad = (self.lost, self.duplicates, self.two_values, self.order_violations)
        return not any(bad) and self.below_min_insync == 0 and self.zombie_acks == 0


# An ISR timeline: (time, partition, ISR size) as a ZooKeeper watch saw each change.
IsrTimeline = Sequence[tuple[float, int, int]]


def check(
    history: History,
    final: dict[Offset, str],
    min_insync: int = 1,
    isr: IsrTimeline = (),
    fault_t: float | None = None,
    hit: Iterable[int] = (),
    zombie_window: tuple[float, float] | None = None,
) -> Figures:
    """The figures of one run. `fault_t` and `hit` (partitions): the recovery time is the
    longest wait from the fault to the next ack on a hit partition."""
    where = _where(final)
    lost_acks = lost(history, final)
    acked_at: dict[Offset, set[str]] = defaultdict(set)
    for a in history.acks:
        acked_at[(a.partition, a.offset)].add(a.value)
    two_values = sum(
        1
        for at, values in acked_at.items()
        if len(values | ({final[at]} if at in final else set())) > 1
    )
    return Figures(
        acked=len({a.value for a in history.acks}),
        lost=len({a.value for a in lost_acks}),
        duplicates=sum(len(ats) - 1 for ats in where.values()),
        two_values=two_values,
        order_violations=_order_violations(final),
        below_min_insync=_below_min(history.acks, isr, min_insync),
        zombie_acks=_in_window(lost_acks, zombie_window),
        recovery_s=_recovery(history.acks, fault_t, set(hit)),
    )


def _where(final: dict[Offset, str]) -> dict[str, list[Offset]]:
    where: dict[str, list[Offset]] = defaultdict(list)
    for at, value in final.items():
        where[value].append(at)
    return where


def lost(history: History, final: dict[Offset, str]) -> list[Ack]:
    """The acks whose record is nowhere in the final read."""
    where = _where(final)
    return [a for a in history.acks if a.value not in where]


def _order_violations(final: dict[Offset, str]) -> int:
    """Within each partition, each producer's sequence numbers must rise with the offset."""
    last: dict[tuple[int, str], int] = {}
    violations = 0
    for (partition, _), value in sorted(final.items()):
        producer, _, seq = value.rpartition(":")
        key = (partition, producer)
        if key in last and int(seq) <= last[key]:
            violations += 1
        last[key] = int(seq)
    return violations


def _isr_size_at(isr: IsrTimeline, partition: int, t: float) -> int | None:
    size = None
    for at, p, n in isr:
        if p == partition and at <= t:
            size = n
    return size


def _below_min(acks: list[Ack], isr: IsrTimeline, min_insync: int) -> int:
    """Acks at a time when ZooKeeper had held the partition's ISR below `min_insync` for a
    while already (`ISR_LAG_S`: a watch hears of an ISR growing a moment after the leader
    has written it, and acked)."""
    count = 0
    for a in acks:
        before = _isr_size_at(isr, a.partition, a.t - ISR_LAG_S)
        now = _isr_size_at(isr, a.partition, a.t)
        if before is not None and now is not None and max(before, now) < min_insync:
            count += 1
    return count


ISR_LAG_S = 1.0


def _in_window(acks: list[Ack], window: tuple[float, float] | None) -> int:
    if window is None:
        return 0
    return sum(1 for a in acks if window[0] <= a.t <= window[1])


def _recovery(acks: list[Ack], fault_t: float | None, hit: set[int]) -> float | None:
    if fault_t is None or not hit:
        return None
    waits = []
    for partition in hit:
        after = [a.t for a in acks if a.partition == partition and a.t > fault_t]
        if not after:
            return None
        waits.append(min(after) - fault_t)
    return max(waits)
