"""Kafka-compatible key partitioning (murmur2) and sticky partitioning for null keys."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zafka import limits
from zafka.clients.accumulator import RecordAccumulator
from zafka.clients.partitioner import Partitioner
from zafka.transport.murmur2 import key_partition, murmur2, to_positive

# Kafka's own vectors: apache/kafka clients/src/test/java/org/apache/kafka/common/utils/
# UtilsTest.java, testMurmur2.
KAFKA_VECTORS = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}
# Tails of 1, 2, 3 bytes and none, checked against Kafka's Utils.murmur2 by Akka's
# Murmur2Spec (its Kafka-compatible sharding).
TAIL_VECTORS = {
    b"1": -1993445489,
    b"12": 126087238,
    b"123": -267702483,
    b"1234": -1614185708,
    b"12345": -1188365604,
}


def _int32(x: int) -> int:
    x &= 0xFFFFFFFF
    return x - (1 << 32) if x & 0x80000000 else x


def java_murmur2(data: bytes) -> int:
    """Kafka's Utils.murmur2, line by line, with Java's signed bytes and 32-bit ints."""
    signed = [b - 256 if b > 127 else b for b in data]  # Java's byte[]
    length = len(signed)
    seed = _int32(0x9747B28C)
    m = 0x5BD1E995
    r = 24
    h = _int32(seed ^ length)
    length4 = length // 4
    for i in range(length4):
        i4 = i * 4
        k = (
            (signed[i4 + 0] & 0xFF)
            + ((signed[i4 + 1] & 0xFF) << 8)
            + ((signed[i4 + 2] & 0xFF) << 16)
            + ((signed[i4 + 3] & 0xFF) << 24)
        )
        k = _int32(k * m)
        k = _int32(k ^ ((k & 0xFFFFFFFF) >> r))  # k >>> r
        k = _int32(k * m)
        h = _int32(h * m)
        h = _int32(h ^ k)
    rest = length % 4  # switch with fall-through
    if rest >= 3:
        h = _int32(h ^ ((signed[(length & ~3) + 2] & 0xFF) << 16))
    if rest >= 2:
        h = _int32(h ^ ((signed[(length & ~3) + 1] & 0xFF) << 8))
    if rest >= 1:
        h = _int32(h ^ (signed[length & ~3] & 0xFF))
        h = _int32(h * m)
    h = _int32(h ^ ((h & 0xFFFFFFFF) >> 13))
    h = _int32(h * m)
    h = _int32(h ^ ((h & 0xFFFFFFFF) >> 15))
    return h


@pytest.mark.parametrize(("key", "expected"), [*KAFKA_VECTORS.items(), *TAIL_VECTORS.items()])
def test_murmur2_matches_kafka_vectors(key, expected):
    assert murmur2(key) == expected
    assert java_murmur2(key) == expected  # the transcription is right too


def test_murmur2_of_every_length_matches_the_java_transcription():
    rng = random.Random(5)
    for n in range(300):  # both word paths, every tail, short and long keys
        for _ in range(5):
            data = rng.randbytes(n)
            assert murmur2(data) == java_murmur2(data), n
    for data in (b"", b"\x00" * 8, b"\xff" * 17, bytes(range(256)), b"\x80" * 1000):
        assert murmur2(data) == java_murmur2(data)


@given(st.binary(max_size=400))
def test_murmur2_equals_the_java_transcription(data):
    assert murmur2(data) == java_murmur2(data)
    assert -(2**31) <= murmur2(data) < 2**31


def test_murmur2_accepts_buffers():
    for data in KAFKA_VECTORS:
        assert murmur2(bytearray(data)) == murmur2(memoryview(data)) == KAFKA_VECTORS[data]


def test_to_positive_clears_the_sign_bit_like_kafka():
    assert to_positive(0) == 0
    assert to_positive(5) == 5
    assert to_positive(-1) == 0x7FFFFFFF
    assert to_positive(-(2**31)) == 0  # abs() would give 2**31: out of int32
    assert to_positive(2**31 - 1) == 2**31 - 1
    assert to_positive(-973932308) == 1173551340


def test_negative_hashes_use_to_positive_not_abs_or_python_modulo():
    h = murmur2(b"21")
    assert h < 0
    assert key_partition(b"21", 10) == 1173551340 % 10 == 0
    found = False
    for n in range(2, 50):
        p = key_partition(b"21", n)
        assert p == to_positive(h) % n
        found |= p != abs(h) % n and p != h % n
    assert found  # the difference shows for some partition counts


def test_key_partition_is_that_of_the_java_client():
    for key, h in KAFKA_VECTORS.items():
        for n in (1, 3, 6, 12, 100, 1000):
            assert key_partition(key, n) == (h & 0x7FFFFFFF) % n
    p = Partitioner()
    for key in KAFKA_VECTORS:
        assert p.partition("t", key, 12) == key_partition(key, 12)
        assert p.partition("t", key, 12) == key_partition(key, 12)  # from the cache
        assert p.partition("t", bytearray(key), 12) == key_partition(key, 12)


def test_keys_spread_evenly():
    rng = random.Random(11)
    p = Partitioner()
    counts = Counter(p.partition("t", rng.randbytes(16), 12) for _ in range(24_000))
    assert sorted(counts) == list(range(12))
    assert max(counts.values()) < 2000 * 1.12 and min(counts.values()) > 2000 * 0.88
    chi2 = sum((c - 2000) ** 2 / 2000 for c in counts.values())
    assert chi2 < 40  # 11 degrees of freedom: p < 0.0001 above ~35


def test_sequential_text_keys_spread_evenly():
    p = Partitioner()
    counts = Counter(p.partition("t", b"user-%d" % i, 10) for i in range(20_000))
    assert max(counts.values()) < 2000 * 1.1 and min(counts.values()) > 2000 * 0.9


def test_the_hash_cache_is_bounded_and_keeps_no_long_keys(monkeypatch):
    monkeypatch.setattr(limits, "key_hash_cache_keys_max", 100)
    p = Partitioner()
    for i in range(1000):
        key = b"k%d" % i
        assert p.partition("t", key, 7) == key_partition(key, 7)
        assert len(p._hashes) <= 100
    long_key = b"x" * (limits.key_hash_cache_key_bytes_max + 1)
    assert p.partition("t", long_key, 7) == key_partition(long_key, 7)
    assert long_key not in p._hashes


def test_null_keys_stick_until_the_batch_closes():
    p = Partitioner(random.Random(3))
    first = p.partition("t", None, 8)
    assert {p.partition("t", None, 8) for _ in range(100)} == {first}
    assert p.sticky_partition("t") == first
    p.batch_closed("t", (first + 1) % 8)  # another partition's batch: no change
    assert p.partition("t", None, 8) == first
    p.batch_closed("other", first)  # another topic: no change
    assert p.partition("t", None, 8) == first
    p.batch_closed("t", first)
    second = p.partition("t", None, 8)
    assert second != first
    assert {p.partition("t", None, 8) for _ in range(100)} == {second}


def test_topics_stick_independently():
    p = Partitioner(random.Random(4))
    a, b = p.partition("a", None, 50), p.partition("b", None, 50)
    p.batch_closed("a", a)
    assert p.partition("b", None, 50) == b


def test_the_next_sticky_partition_is_uniform_among_the_others():
    p = Partitioner(random.Random(9))
    moves: Counter[tuple[int, int]] = Counter()
    for _ in range(12_000):
        before = p.partition("t", None, 4)
        p.batch_closed("t", before)
        after = p.partition("t", None, 4)
        assert after != before
        moves[before, after] += 1
    for before in range(4):
        row = [moves[before, after] for after in range(4) if after != before]
        assert min(row) > 0.8 * max(row), (before, row)


def test_null_keys_stick_to_available_partitions():
    p = Partitioner(random.Random(1))
    seen = set()
    for _ in range(200):
        q = p.partition("t", None, 10, available=[2, 5, 7])
        seen.add(q)
        p.batch_closed("t", q)
    assert seen == {2, 5, 7}
    for _ in range(20):  # one available partition: it is chosen again, there is no other
        q = p.partition("t", None, 10, available=[4])
        assert q == 4
        p.batch_closed("t", q)
    assert p.partition("u", None, 3, available=[]) in range(3)  # none known: any partition
    assert p.partition("v", None, 3, available=[9]) in range(3)  # stale: any partition


def test_fewer_partitions_than_the_sticky_one_chooses_again():
    p = Partitioner(random.Random(2))
    while p.partition("t", None, 100) < 10:
        p.batch_closed("t", p.partition("t", None, 100))
    assert p.partition("t", None, 10) < 10


def test_null_keys_fill_whole_batches_through_the_accumulator():
    """KIP-480 with the accumulator: a full batch moves null keys to another partition, and
    abort_on_full keeps the record that did not fit from starting a lone batch there."""
    p = Partitioner(random.Random(6))
    acc = RecordAccumulator(1000, 10, 10**6, False, on_batch_closed=p.batch_closed)
    in_flight = {("t", q) for q in range(6)}  # everything busy: batches fill
    for i in range(300):
        while True:
            q = p.partition("t", None, 6)
            if acc.append("t", q, i, None, b"v" * 80, None, 0, abort_on_full=True):
                break
    batches = acc.drain(acc.ready(0, in_flight, flush=True), 0)
    while acc.has_undrained():
        batches += acc.drain(acc.ready(0, in_flight, flush=True), 0)
    sizes = sorted(len(b.records) for b in batches)
    assert sum(sizes) == 300
    assert sizes[1:] == [10] * (len(sizes) - 1)  # 10 records of 100 bytes each; one open
    assert len({b.partition for b in batches}) > 3
