"""Record batch payload: round trips, columns, RecordBatch and Record, build_batch refusals."""

from __future__ import annotations

import os
import random
from concurrent.futures import ThreadPoolExecutor

import msgpack
import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.batch_helpers import T0, _error, _records
from zafka import limits
from zafka.errors import ZafkaError
from zafka.storage import batch as b
from zafka.storage import records as rec

# --- round trips and columns ----------------------------------------------------------


@pytest.mark.parametrize("codec", [b.CODEC_NONE, b.CODEC_ZSTD])
def test_round_trip_keeps_every_field(codec):
    records = [
        (T0, b"k", b"v", None),
        (T0 - 3, None, b"", [("trace", b"\x00\x01"), ("h", b"")]),
        (T0 + 10, b"", None, []),
        (T0 + 1, None, None, (("x", b"y"),)),
    ]
    blob = b.build_batch(records, codec=codec, base_offset=50)
    got = rec.read_records(blob)
    assert [r.offset for r in got] == [50, 51, 52, 53]
    assert [r.timestamp for r in got] == [T0, T0 - 3, T0 + 10, T0 + 1]
    assert [(r.key, r.value) for r in got] == [(b"k", b"v"), (None, b""), (b"", None), (None, None)]
    assert [r.headers for r in got] == [
        None,
        (("trace", b"\x00\x01"), ("h", b"")),
        (),
        (("x", b"y"),),
    ]
    assert b.check_batch(blob).max_timestamp == T0 + 10


def test_the_payload_is_four_columns_and_headers_is_nil_unless_a_record_has_some():
    records = [(T0 + 3, b"a", b"1", None), (T0, None, b"2", None), (T0 + 9, b"c", None, None)]
    blob = b.build_batch(records, codec=b.CODEC_NONE)
    assert msgpack.unpackb(blob[61:]) == [[0, -3, 6], [b"a", None, b"c"], [b"1", b"2", None], None]
    records[1] = (T0, None, b"2", [])  # an empty list is headers, kept as ()
    blob = b.build_batch(records, codec=b.CODEC_NONE)
    assert msgpack.unpackb(blob[61:])[3] == [None, [], None]
    assert [r.headers for r in rec.read_records(blob)] == [None, (), None]


def test_read_batch_exposes_the_columns_and_builds_records_on_demand():
    records = [
        (T0 + 3, b"a", b"1", None),
        (T0, None, b"2", [("h", b"x")]),
        (T0 + 9, b"c", None, None),
    ]
    blob = b.build_batch(records, control=True, base_offset=9)
    batch = rec.read_batch(blob)
    assert batch.header == b.check_batch(blob) and batch.header.is_control
    assert len(batch) == 3
    assert batch.offsets == range(9, 12)
    assert batch.timestamps == (T0 + 3, T0, T0 + 9)
    assert batch.timestamp_deltas == (0, -3, 6)
    assert batch.keys == (b"a", None, b"c") and batch.values == (b"1", b"2", None)
    assert batch.headers == (None, (("h", b"x"),), None)
    records_read = rec.read_records(blob)
    assert batch.records() == list(batch) == records_read
    assert records_read == [
        rec.Record(9, T0 + 3, b"a", b"1", None),
        rec.Record(10, T0, None, b"2", (("h", b"x"),)),
        rec.Record(11, T0 + 9, b"c", None, None),
    ]
    assert all(type(r) is rec.Record for r in records_read)
    with pytest.raises(AttributeError):
        batch.keys = ()  # type: ignore[misc]


def test_record_batch_iteration_is_lazy_and_restartable():
    batch = rec.read_batch(b.build_batch(_records(4), base_offset=100))
    assert batch.headers is None
    it = iter(batch)
    assert next(it) == rec.Record(100, T0, b"key-0", b'{"n": 0}', None)
    assert [r.offset for r in it] == [101, 102, 103]
    assert [r.offset for r in batch] == [100, 101, 102, 103]  # a new pass each time
    assert [r.timestamp for r in batch] == list(batch.timestamps)


def test_columns_compress_better_than_rows():
    rng = random.Random(7)
    records = [
        (T0 + i // 4, b"user-%06d" % rng.randrange(5000), b'{"n":%d,"ok":true}' % i, None)
        for i in range(3000)
    ]
    rows = [(t - T0, k, v, h) for t, k, v, h in records]
    as_rows = len(zstandard.ZstdCompressor(level=1).compress(msgpack.packb(rows)))
    assert len(b.build_batch(records)) - b.HEADER_SIZE < as_rows


def test_zstd_compresses_and_records_its_content_size():
    records = [(T0, b"k" * 16, b'{"user": "alice", "page": "/home"}' * 3, None)] * 200
    plain = b.build_batch(records, codec=b.CODEC_NONE)
    packed = b.build_batch(records)
    assert len(packed) < len(plain) // 4
    assert zstandard.frame_content_size(packed[61:]) == len(plain) - 61


def test_record_is_a_named_tuple_frozen_and_compared_by_value():
    r = rec.Record(1, 2, b"k", b"v", None)
    assert r == rec.Record(1, 2, b"k", b"v", None) and r != rec.Record(1, 2, b"k", b"w", None)
    assert r == (1, 2, b"k", b"v", None) and isinstance(r, tuple)
    assert rec.Record._fields == ("offset", "timestamp", "key", "value", "headers")
    assert (r.offset, r.timestamp, r.key, r.value, r.headers) == tuple(r)
    assert r._replace(offset=3).offset == 3 and r.offset == 1
    with pytest.raises(AttributeError):
        r.offset = 5  # type: ignore[misc]


# --- build_batch refusals --------------------------------------------------------------


def test_build_refuses_no_records_and_unknown_codecs():
    with pytest.raises(ZafkaError, match="at least one record") as exc:
        b.build_batch([])
    assert _error(exc) == "INVALID_REQUEST"
    with pytest.raises(ZafkaError, match="codec"):
        b.build_batch(_records(), codec=3)


def test_build_refuses_too_many_records(monkeypatch):
    monkeypatch.setattr(limits, "batch_records_max", 10)
    assert b.check_batch(b.build_batch(_records(10))).record_count == 10
    with pytest.raises(ZafkaError) as exc:
        b.build_batch(_records(11))
    assert _error(exc) == "MESSAGE_TOO_LARGE"


@pytest.mark.parametrize("codec", [b.CODEC_NONE, b.CODEC_ZSTD])
def test_build_refuses_a_result_over_the_byte_limit(codec):
    value = os.urandom(limits.batch_bytes_max)  # incompressible
    with pytest.raises(ZafkaError) as exc:
        b.build_batch([(T0, None, value, None)], codec=codec)
    assert _error(exc) == "MESSAGE_TOO_LARGE"


@pytest.mark.parametrize(
    "record",
    [
        (T0, b"k", b"v"),
        (T0, b"k", b"v", None, None),
        (T0 + 0.5, b"k", b"v", None),
        ("1", b"k", b"v", None),
        (T0, b"k", {1, 2}, None),
        (2**63, b"k", b"v", None),
        (-(2**63), b"k", b"v", None),
        (),
        rec.Record(0, T0, b"k", b"v", None),
        "abcd",
        None,
        7,
    ],
)
def test_build_refuses_records_it_cannot_encode(record):
    with pytest.raises(ZafkaError) as exc:
        b.build_batch([(T0, None, None, None), record])
    assert _error(exc) == "INVALID_REQUEST"


def test_build_refuses_records_of_unequal_length_anywhere():
    for bad in ((T0, None, None), (T0, None, None, None, None)):
        records = [(T0, None, None, None)] * 5
        records[3] = bad
        with pytest.raises(ZafkaError) as exc:
            b.build_batch(records)
        assert _error(exc) == "INVALID_REQUEST"


@pytest.mark.parametrize("at", [0, 511, 512, 1023, 1024, 1499])
@pytest.mark.parametrize("bad", [(T0, None, None), (T0, None, None, None, None), None])
def test_large_batches_are_transposed_in_steps_and_still_refuse_any_bad_record(at, bad):
    records = [(T0 + i, b"k%d" % i, None, None) for i in range(1500)]
    blob = b.build_batch(records, base_offset=10)
    got = rec.read_records(blob)
    assert [tuple(r) for r in got] == [(10 + i, *r) for i, r in enumerate(records)]
    records[at] = bad
    with pytest.raises(ZafkaError) as exc:
        b.build_batch(records)
    assert _error(exc) == "INVALID_REQUEST"


def test_the_reused_packer_starts_empty_after_a_refused_batch():
    good = b.build_batch(_records(3))
    with pytest.raises(ZafkaError):
        b.build_batch([(T0, None, None, None), (T0, b"k", {1, 2}, None)])  # fails mid-pack
    with pytest.raises(ZafkaError):
        b.build_batch([(T0, None, None, None), (T0 + 0.5, None, None, None)])
    assert b.build_batch(_records(3)) == good
    assert b.build_batch(_records(3), codec=b.CODEC_NONE) == b.build_batch(
        _records(3), codec=b.CODEC_NONE
    )


def test_a_packer_grown_past_the_keep_limit_is_dropped(monkeypatch):
    monkeypatch.setattr(b, "_PACKER_KEEP_BYTES", 1000)
    b.build_batch(_records(3))
    kept = b._local.packer
    b.build_batch(_records(3))
    assert b._local.packer is kept
    big = [(T0, None, b"x" * 2000, None)]
    assert len(rec.read_records(b.build_batch(big))[0].value) == 2000
    assert not hasattr(b._local, "packer")
    assert rec.read_records(b.build_batch(_records(3))) == rec.read_records(
        b.build_batch(_records(3))
    )


def test_threads_build_with_their_own_packers():
    batches = [[(T0 + i, b"t%d" % n, b"v" * i, None) for i in range(300)] for n in range(8)]
    want = [b.build_batch(r) for r in batches]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(5):
            assert list(pool.map(b.build_batch, batches)) == want


def test_build_refuses_a_float_first_timestamp_and_out_of_range_header_ints():
    with pytest.raises(ZafkaError, match="timestamp"):
        b.build_batch([(T0 * 1.0, None, None, None)])
    with pytest.raises(ZafkaError, match="timestamp"):
        b.build_batch([(T0, None, None, None), (T0 + 1.0, None, None, None)])
    with pytest.raises(ZafkaError, match="out of range"):
        b.build_batch(_records(), producer_epoch=2**15)
    with pytest.raises(ZafkaError, match="out of range"):
        b.build_batch(_records(), base_offset=-(2**63) - 1)


@pytest.mark.parametrize(
    "record",
    [
        (T0, "k", b"v", None),
        (T0, b"k", 5, None),
        (T0, b"k", b"v", {"h": b"x"}),
        (T0, b"k", b"v", [("h", "x")]),
        (T0, b"k", b"v", [("h", b"x", b"y")]),
        (T0, b"k", b"v", [(b"h", b"x")]),
        b"abcd",
    ],
)
def test_value_types_are_the_callers_contract_and_readers_refuse_a_breach(record):
    """build_batch leaves key/value/header types to the caller; no reader misreads a breach."""
    blob = b.build_batch([(T0, None, None, None), record])
    assert b.check_batch(blob).record_count == 2
    with pytest.raises(ZafkaError) as exc:
        rec.read_records(blob)
    assert _error(exc) == "CORRUPT_MESSAGE"


def test_bytes_like_values_are_packed_as_bytes():
    blob = b.build_batch([(T0, bytearray(b"k"), memoryview(b"v"), [("h", bytearray(b"x"))])])
    assert rec.read_records(blob) == [rec.Record(0, T0, b"k", b"v", (("h", b"x"),))]


# --- property tests --------------------------------------------------------------------

HEADER_LISTS = st.none() | st.lists(
    st.tuples(st.text(max_size=8), st.binary(max_size=8)), max_size=3
)
RECORDS = st.lists(
    st.tuples(
        st.integers(-(2**40), 2**45),
        st.none() | st.binary(max_size=20),
        st.none() | st.binary(max_size=50),
        HEADER_LISTS,
    ),
    min_size=1,
    max_size=30,
)


@given(
    records=RECORDS,
    codec=st.sampled_from([b.CODEC_NONE, b.CODEC_ZSTD]),
    control=st.booleans(),
    base=st.integers(0, 2**62),
)
def test_round_trip_property(records, codec, control, base):
    blob = b.build_batch(records, codec=codec, control=control, base_offset=base)
    h = b.check_batch(blob)
    assert (h.codec, h.is_control, h.record_count) == (codec, control, len(records))
    assert h.max_timestamp == max(r[0] for r in records)
    got = rec.read_records(blob)
    assert [(r.offset, r.timestamp, r.key, r.value) for r in got] == [
        (base + i, t, k, v) for i, (t, k, v, _) in enumerate(records)
    ]
    assert [r.headers for r in got] == [None if hs is None else tuple(hs) for *_, hs in records]
