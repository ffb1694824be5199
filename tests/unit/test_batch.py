"""Record batch format: round trips, stamping, CRC, limits, zstd bombs, malformed payloads."""

from __future__ import annotations

import os
import random
import re
import struct
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import crc32c
import msgpack
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zafka import limits
from zafka.errors import ZafkaError
from zafka.storage import batch as b

T0 = 1_700_000_000_000


def _records(n: int = 5) -> list[tuple]:
    return [(T0 + i, b"key-%d" % i, b'{"n": %d}' % i, None) for i in range(n)]


def _cols(deltas, keys, values, headers=None) -> bytes:
    """A payload in the stored form: [timestamp_deltas, keys, values, headers]."""
    return msgpack.packb([deltas, keys, values, headers])


def _wrap(payload: bytes, count: int, codec: int = b.CODEC_NONE, **fields: int) -> bytes:
    """A batch around any payload, with a correct CRC: reaches the checks after the CRC."""
    values = {
        "base_offset": 0,
        "batch_length": b.HEADER_SIZE - b.LENGTH_PREFIX_SIZE + len(payload),
        "leader_epoch": 0,
        "format_version": b.FORMAT_VERSION,
        "crc": 0,
        "attributes": codec,
        "last_offset_delta": count - 1,
        "first_timestamp": T0,
        "max_timestamp": T0,
        "producer_id": -1,
        "producer_epoch": -1,
        "base_sequence": -1,
        "record_count": count,
    }
    values.update(fields)
    head = bytearray(b.HEADER.pack(*values.values()) + payload)
    if "crc" not in fields:
        struct.pack_into(">I", head, 17, _crc(head))
    return bytes(head)


def _crc(batch: bytes | bytearray) -> int:
    return crc32c.crc32c(bytes(batch[21:]))  # the documented offset, not b.CRC_START


def _error(exc_info: pytest.ExceptionInfo[ZafkaError]) -> str:
    return exc_info.value.error.name


# --- the format itself -------------------------------------------------------------------


def test_header_layout_matches_the_documented_offsets():
    assert b.HEADER.size == b.HEADER_SIZE == 61
    blob = b.build_batch(_records(3), codec=b.CODEC_NONE, base_offset=7, leader_epoch=2)
    assert struct.unpack_from(">q", blob, 0)[0] == 7
    assert struct.unpack_from(">i", blob, 8)[0] == len(blob) - b.LENGTH_PREFIX_SIZE
    assert struct.unpack_from(">i", blob, 12)[0] == 2
    assert blob[16] == b.FORMAT_VERSION
    assert struct.unpack_from(">I", blob, 17)[0] == _crc(blob)
    assert struct.unpack_from(">h", blob, b.CRC_START)[0] == b.CODEC_NONE
    assert struct.unpack_from(">i", blob, 57)[0] == 3
    assert msgpack.unpackb(blob[61:]) == [
        [0, 1, 2],
        [b"key-0", b"key-1", b"key-2"],
        [b'{"n": 0}', b'{"n": 1}', b'{"n": 2}'],
        None,
    ]


EXAMPLE = (
    "00 00 00 00 00 00 00 2a 00 00 00 53 00 00 00 03 01 10 38 55 f2 00 00 00 00 00 01 "
    "00 00 01 8b cf e5 68 00 00 00 01 8b cf e5 68 05 ff ff ff ff ff ff ff ff ff ff ff "
    "ff ff ff 00 00 00 02 94 92 00 05 92 c4 02 6b 31 c0 92 c4 05 68 65 6c 6c 6f c4 05 "
    "77 6f 72 6c 64 92 c0 91 92 a1 68 c4 01 78"
)


def _doc_example_hex() -> str:
    """The bytes of the example in docs/STORAGE.md: the hex before each line's comment."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "STORAGE.md").read_text()
    block = doc.split("### Example", 1)[1].split("```", 2)[1]
    out = []
    for line in block.splitlines():
        first = re.split(r"\s{2,}", line.strip(), maxsplit=1)[0]
        if re.fullmatch(r"[0-9a-f]{2}( [0-9a-f]{2})*", first):
            out.append(first)
    return " ".join(out)


def test_the_example_in_docs_storage_md_is_byte_exact():
    records = [(T0, b"k1", b"hello", None), (T0 + 5, None, b"world", [("h", b"x")])]
    blob = bytearray(b.build_batch(records, codec=b.CODEC_NONE))
    b.stamp(blob, 42, 3)
    assert blob.hex(" ") == EXAMPLE == _doc_example_hex()
    assert b.read_records(blob) == [
        b.Record(42, T0, b"k1", b"hello", None),
        b.Record(43, T0 + 5, None, b"world", (("h", b"x"),)),
    ]


def test_header_fields_and_properties():
    blob = b.build_batch(
        [(T0 + 5, None, b"a", None), (T0, None, b"b", None), (T0 + 9, None, b"c", None)],
        base_offset=100,
        leader_epoch=4,
        producer_id=42,
        producer_epoch=3,
        base_sequence=17,
        control=True,
    )
    h = b.check_batch(blob)
    assert (h.base_offset, h.leader_epoch, h.record_count, h.last_offset_delta) == (100, 4, 3, 2)
    assert (h.first_timestamp, h.max_timestamp) == (T0 + 5, T0 + 9)
    assert (h.producer_id, h.producer_epoch, h.base_sequence) == (42, 3, 17)
    assert h.size == len(blob) and h.last_offset == 102
    assert h.codec == b.CODEC_ZSTD and h.is_control
    assert h.attributes == b.CODEC_ZSTD | 0x10
    assert b.parse_header(b"\0" * 3 + blob, 3) == h == b.BatchHeader(*b.HEADER.unpack(blob[:61]))


@pytest.mark.parametrize("codec", [b.CODEC_NONE, b.CODEC_ZSTD])
def test_round_trip_keeps_every_field(codec):
    records = [
        (T0, b"k", b"v", None),
        (T0 - 3, None, b"", [("trace", b"\x00\x01"), ("h", b"")]),
        (T0 + 10, b"", None, []),
        (T0 + 1, None, None, (("x", b"y"),)),
    ]
    blob = b.build_batch(records, codec=codec, base_offset=50)
    got = b.read_records(blob)
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
    assert [r.headers for r in b.read_records(blob)] == [None, (), None]


def test_read_batch_exposes_the_columns_and_builds_records_on_demand():
    records = [
        (T0 + 3, b"a", b"1", None),
        (T0, None, b"2", [("h", b"x")]),
        (T0 + 9, b"c", None, None),
    ]
    blob = b.build_batch(records, control=True, base_offset=9)
    batch = b.read_batch(blob)
    assert batch.header == b.check_batch(blob) and batch.header.is_control
    assert len(batch) == 3
    assert batch.offsets == range(9, 12)
    assert batch.timestamps == (T0 + 3, T0, T0 + 9)
    assert batch.timestamp_deltas == (0, -3, 6)
    assert batch.keys == (b"a", None, b"c") and batch.values == (b"1", b"2", None)
    assert batch.headers == (None, (("h", b"x"),), None)
    records_read = b.read_records(blob)
    assert batch.records() == list(batch) == records_read
    assert records_read == [
        b.Record(9, T0 + 3, b"a", b"1", None),
        b.Record(10, T0, None, b"2", (("h", b"x"),)),
        b.Record(11, T0 + 9, b"c", None, None),
    ]
    assert all(type(r) is b.Record for r in records_read)
    with pytest.raises(AttributeError):
        batch.keys = ()  # type: ignore[misc]


def test_record_batch_iteration_is_lazy_and_restartable():
    batch = b.read_batch(b.build_batch(_records(4), base_offset=100))
    assert batch.headers is None
    it = iter(batch)
    assert next(it) == b.Record(100, T0, b"key-0", b'{"n": 0}', None)
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
    r = b.Record(1, 2, b"k", b"v", None)
    assert r == b.Record(1, 2, b"k", b"v", None) and r != b.Record(1, 2, b"k", b"w", None)
    assert r == (1, 2, b"k", b"v", None) and isinstance(r, tuple)
    assert b.Record._fields == ("offset", "timestamp", "key", "value", "headers")
    assert (r.offset, r.timestamp, r.key, r.value, r.headers) == tuple(r)
    assert r._replace(offset=3).offset == 3 and r.offset == 1
    with pytest.raises(AttributeError):
        r.offset = 5  # type: ignore[misc]


# --- stamping and the CRC --------------------------------------------------------------


def test_stamp_changes_offsets_and_epoch_and_keeps_the_crc_valid():
    buf = bytearray(b.build_batch(_records(3)))
    crc_before = b.check_batch(buf).crc
    b.stamp(buf, 1_000, 12)
    h = b.check_batch(buf)
    assert (h.base_offset, h.last_offset, h.leader_epoch, h.crc) == (1_000, 1_002, 12, crc_before)
    assert [r.offset for r in b.read_records(bytes(buf))] == [1_000, 1_001, 1_002]
    b.stamp(memoryview(buf), 5, 0)
    assert b.check_batch(buf).base_offset == 5


def test_stamp_refuses_a_buffer_shorter_than_a_header():
    with pytest.raises(ZafkaError) as exc:
        b.stamp(bytearray(60), 1, 1)
    assert _error(exc) == "CORRUPT_MESSAGE"


def test_every_single_bit_flip_outside_the_stamped_fields_is_detected():
    blob = b.build_batch(_records(3), producer_id=7)
    stamped = set(range(0, 8)) | set(range(12, 16))
    for pos in range(len(blob)):
        for bit in range(8):
            bad = bytearray(blob)
            bad[pos] ^= 1 << bit
            if pos in stamped:
                assert b.check_batch(bad).crc == b.check_batch(blob).crc
                continue
            with pytest.raises(ZafkaError) as exc:
                b.check_batch(bad)
            assert _error(exc) == "CORRUPT_MESSAGE", (pos, bit)


def test_a_bad_crc_is_named_in_the_error():
    bad = bytearray(b.build_batch(_records()))
    bad[-1] ^= 0xFF
    with pytest.raises(ZafkaError, match="CRC-32C") as exc:
        b.check_batch(bad)
    assert _error(exc) == "CORRUPT_MESSAGE"


# --- header checks ---------------------------------------------------------------------


@pytest.mark.parametrize("cut", [0, 1, 60, 61, 62, -1])
def test_truncated_batches_are_rejected(cut):
    blob = b.build_batch(_records())
    with pytest.raises(ZafkaError) as exc:
        b.check_batch(blob[:cut])
    assert _error(exc) == "CORRUPT_MESSAGE"


def test_extra_bytes_after_the_batch_are_rejected():
    blob = b.build_batch(_records())
    with pytest.raises(ZafkaError, match="batch_length"):
        b.check_batch(blob + b"\0")


def test_parse_header_needs_61_bytes_from_pos():
    blob = b.build_batch(_records())
    with pytest.raises(ZafkaError):
        b.parse_header(blob, len(blob) - 60)
    with pytest.raises(ZafkaError):
        b.parse_header(blob, -1)
    assert b.parse_header(memoryview(blob)).record_count == 5


@pytest.mark.parametrize("declared", [2**31 - 1, 10 * 2**20, -5])
def test_a_huge_declared_length_is_rejected_before_any_allocation(declared):
    blob = _wrap(b"", 1, batch_length=declared)
    tracemalloc.start()
    try:
        with pytest.raises(ZafkaError) as exc:
            b.check_batch(blob)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert _error(exc) == "CORRUPT_MESSAGE"
    assert peak < 64 * 1024


def test_a_whole_batch_over_the_byte_limit_is_message_too_large():
    payload = _cols([0], [None], [b"x" * limits.batch_bytes_max])
    with pytest.raises(ZafkaError) as exc:
        b.check_batch(_wrap(payload, 1))
    assert _error(exc) == "MESSAGE_TOO_LARGE"


@pytest.mark.parametrize(
    ("fields", "detail"),
    [
        ({"format_version": 2}, "format version"),
        ({"format_version": 0}, "format version"),
        ({"record_count": 0, "last_offset_delta": -1}, "record_count"),
        ({"record_count": 2_000_000, "last_offset_delta": 1_999_999}, "record_count"),
        ({"last_offset_delta": 3}, "last_offset_delta"),
        ({"attributes": 0x08}, "attribute"),
        ({"attributes": 0x20 | b.CODEC_ZSTD}, "attribute"),
        ({"attributes": -1}, "attribute"),
        ({"attributes": 2}, "codec"),
        ({"attributes": 7}, "codec"),
        ({"crc": 12345}, "CRC"),
    ],
)
def test_bad_header_fields_are_corrupt(fields, detail):
    blob = _wrap(_cols([0], [None], [b"v"]), 1, **fields)
    with pytest.raises(ZafkaError, match=detail) as exc:
        b.check_batch(blob)
    assert _error(exc) == "CORRUPT_MESSAGE"
    with pytest.raises(ZafkaError):
        b.read_records(blob)


class _NoZstd:
    def __getattr__(self, name):
        raise AssertionError(f"zstandard.{name} used")


def test_check_batch_never_decompresses(monkeypatch):
    blob = b.build_batch(_records())
    monkeypatch.setattr(b, "zstandard", _NoZstd())
    assert b.check_batch(blob).record_count == 5
    with pytest.raises(AssertionError, match="used"):
        b.read_records(blob)


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
        b.Record(0, T0, b"k", b"v", None),
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
    got = b.read_records(blob)
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
    assert len(b.read_records(b.build_batch(big))[0].value) == 2000
    assert not hasattr(b._local, "packer")
    assert b.read_records(b.build_batch(_records(3))) == b.read_records(b.build_batch(_records(3)))


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
        b.read_records(blob)
    assert _error(exc) == "CORRUPT_MESSAGE"


def test_bytes_like_values_are_packed_as_bytes():
    blob = b.build_batch([(T0, bytearray(b"k"), memoryview(b"v"), [("h", bytearray(b"x"))])])
    assert b.read_records(blob) == [b.Record(0, T0, b"k", b"v", (("h", b"x"),))]


# --- payload checks: zstd bombs and malformed records under a valid CRC ----------------


def _zeros_frame(size: int) -> bytes:
    """A zstd frame declaring `size` bytes of zeros, made without holding them in memory."""
    cobj = zstandard.ZstdCompressor(level=1).compressobj(size=size)
    chunk = bytes(1 << 20)
    out = [cobj.compress(chunk) for _ in range(size >> 20)]
    return b"".join([*out, cobj.flush()])


def test_a_zstd_bomb_is_refused_before_decompressing():
    frame = _zeros_frame(200 * 2**20)
    assert len(frame) < 64 * 1024
    blob = _wrap(frame, 1, codec=b.CODEC_ZSTD)
    assert b.check_batch(blob).record_count == 1
    tracemalloc.start()
    try:
        with pytest.raises(ZafkaError, match="declares") as exc:
            b.read_records(blob)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert _error(exc) == "CORRUPT_MESSAGE"
    assert peak < 1 << 20


def test_the_decompressed_limit_is_inclusive(monkeypatch):
    blob = b.build_batch(_records())
    size = zstandard.frame_content_size(blob[61:])
    monkeypatch.setattr(limits, "decompressed_bytes_max", size)
    assert len(b.read_records(blob)) == 5
    monkeypatch.setattr(limits, "decompressed_bytes_max", size - 1)
    with pytest.raises(ZafkaError, match="declares"):
        b.read_records(blob)


def _zstd(payload: bytes, **options) -> bytes:
    return zstandard.ZstdCompressor(level=1, **options).compress(payload)


ONE = _cols([0], [b"k"], [b"v"])


@pytest.mark.parametrize(
    ("frame", "detail"),
    [
        (_zstd(ONE, write_content_size=False), "content size"),
        (_zstd(b""), "declares 0"),
        (_zstd(ONE) + b"\0", "zstd"),
        (_zstd(ONE) + _zstd(ONE), "zstd"),
        (_zstd(ONE)[:-3], "zstd"),
        (b"\x50\x2a\x4d\x18" + struct.pack("<I", 2**31) + b"x" * 8, "not a zstd data frame"),
        (b"\x28\xb5\x2f\xfd", "zstd"),
        (ONE, "not a zstd data frame"),
    ],
)
def test_bad_zstd_frames_are_corrupt(frame, detail):
    with pytest.raises(ZafkaError, match=detail) as exc:
        b.read_records(_wrap(frame, 1, codec=b.CODEC_ZSTD))
    assert _error(exc) == "CORRUPT_MESSAGE"


# One record in the stored form, for the shape fuzzing below: [[0], [b"k"], [b"v"], nil].
BAD_PAYLOADS = {
    # not msgpack, or more than one object
    "empty": b"",
    "reserved byte": b"\xc1",
    "trailing byte": _cols([0], [b"k"], [b"v"]) + b"\x00",
    "truncated": _cols([0], [b"k"], [b"v"])[:-1],
    "deep nesting": b"\x91" * 5000,
    # [[0], [b"k"], [b"v"], [[[str ff fe, b"x"]]]]
    "invalid utf-8 header name": b"\x94\x91\x00\x91\xc4\x01k\x91\xc4\x01v"
    + b"\x91\x91\x92\xa2\xff\xfe\xc4\x01x",
    # not four columns
    "a map": msgpack.packb({"a": 1}),
    "bin": msgpack.packb(b"abcd"),
    "str": msgpack.packb("abcd"),
    "int": msgpack.packb(7),
    "nil": msgpack.packb(None),
    "extension": msgpack.packb(msgpack.ExtType(1, b"1234")),
    "three columns": msgpack.packb([[0], [b"k"], [b"v"]]),
    "five columns": msgpack.packb([[0], [b"k"], [b"v"], None, None]),
    "no columns": msgpack.packb([]),
    "a row, the old layout": msgpack.packb([[0, b"k", b"v", None]]),
    "four rows": msgpack.packb([[0, b"k", b"v", None]] * 4),
    # a column that is not an array of record_count elements
    "deltas nil": _cols(None, [b"k"], [b"v"]),
    "keys nil": _cols([0], None, [b"v"]),
    "values nil": _cols([0], [b"k"], None),
    "deltas bin": _cols(b"\x00", [b"k"], [b"v"]),
    "keys bin": _cols([0], b"k", [b"v"]),
    "values str": _cols([0], [b"k"], "v"),
    "deltas a map": msgpack.packb([{"0": 0}, [b"k"], [b"v"], None]),
    "headers a map": msgpack.packb([[0], [b"k"], [b"v"], {"h": b"x"}]),
    "headers bin": _cols([0], [b"k"], [b"v"], b"h"),
    "headers int": _cols([0], [b"k"], [b"v"], 0),
    "deltas short": _cols([], [b"k"], [b"v"]),
    "deltas long": _cols([0, 1], [b"k"], [b"v"]),
    "keys short": _cols([0], [], [b"v"]),
    "keys long": _cols([0], [b"k", b"k"], [b"v"]),
    "values short": _cols([0], [b"k"], []),
    "values long": _cols([0], [b"k"], [b"v", b"v"]),
    "headers short": _cols([0], [b"k"], [b"v"], []),
    "headers long": _cols([0], [b"k"], [b"v"], [None, None]),
    # wrong element types, column by column
    "delta float": _cols([0.5], [b"k"], [b"v"]),
    "delta bool": _cols([False], [b"k"], [b"v"]),
    "delta nil": _cols([None], [b"k"], [b"v"]),
    "delta bin": _cols([b"0"], [b"k"], [b"v"]),
    "delta array": _cols([[0]], [b"k"], [b"v"]),
    "delta extension": _cols([msgpack.ExtType(1, b"1234")], [b"k"], [b"v"]),
    "key str": _cols([0], ["k"], [b"v"]),
    "key int": _cols([0], [5], [b"v"]),
    "key bool": _cols([0], [True], [b"v"]),
    "key array": _cols([0], [[b"k"]], [b"v"]),
    "value str": _cols([0], [b"k"], ["v"]),
    "value float": _cols([0], [b"k"], [1.5]),
    "value array": _cols([0], [b"k"], [[]]),
    "value map": msgpack.packb([[0], [b"k"], [{}], None]),
    # malformed headers, given a headers column
    "record headers bin": _cols([0], [b"k"], [b"v"], [b"h"]),
    "record headers str": _cols([0], [b"k"], [b"v"], ["h"]),
    "record headers int": _cols([0], [b"k"], [b"v"], [0]),
    "record headers a map": msgpack.packb([[0], [b"k"], [b"v"], [{"h": b"x"}]]),
    "pair not an array": _cols([0], [b"k"], [b"v"], [["h"]]),
    "pair of one": _cols([0], [b"k"], [b"v"], [[["h"]]]),
    "pair of three": _cols([0], [b"k"], [b"v"], [[["h", b"x", b"y"]]]),
    "pair empty": _cols([0], [b"k"], [b"v"], [[[]]]),
    "pair name bin": _cols([0], [b"k"], [b"v"], [[[b"h", b"x"]]]),
    "pair value str": _cols([0], [b"k"], [b"v"], [[["h", "x"]]]),
    "pair value nil": _cols([0], [b"k"], [b"v"], [[["h", None]]]),
    "pair a map": msgpack.packb([[0], [b"k"], [b"v"], [[{"h": b"x"}]]]),
    "pair name bin, second pair": _cols([0], [b"k"], [b"v"], [[["h", b"x"], [b"h", b"x"]]]),
    "pair a 2-char str": _cols([0], [b"k"], [b"v"], [["hx"]]),
}


@pytest.mark.parametrize("codec", [b.CODEC_NONE, b.CODEC_ZSTD])
@pytest.mark.parametrize("payload", BAD_PAYLOADS.values(), ids=BAD_PAYLOADS)
def test_malformed_payloads_under_a_valid_crc_are_corrupt(payload, codec):
    body = _zstd(payload) if codec == b.CODEC_ZSTD else payload
    blob = _wrap(body, 1, codec=codec)
    assert b.check_batch(blob).codec == codec
    with pytest.raises(ZafkaError) as exc:
        b.read_batch(blob)
    assert _error(exc) == "CORRUPT_MESSAGE"
    with pytest.raises(ZafkaError):
        b.read_records(blob)


def _bad_column(count: int, column: int, bad: object, at: int) -> bytes:
    columns: list = [list(range(count)), [b"k"] * count, [None] * count, [None] * count]
    columns[column][at] = bad
    return msgpack.packb(columns)


@pytest.mark.parametrize("at", [0, 1, 498, 499])
@pytest.mark.parametrize(
    ("column", "bad"),
    [(0, 1.0), (0, None), (1, "k"), (1, 0), (2, "v"), (2, 0.0), (3, b"h"), (3, [["h"]])],
)
def test_one_bad_element_anywhere_in_a_long_column_is_caught(column, bad, at):
    blob = _wrap(_bad_column(500, column, bad, at), 500)
    with pytest.raises(ZafkaError) as exc:
        b.read_batch(blob)
    assert _error(exc) == "CORRUPT_MESSAGE"


def test_a_well_formed_payload_under_wrap_reads_back():
    """The control for the tests above: `_wrap` and `_cols` themselves make readable batches."""
    got = b.read_records(
        _wrap(_cols([0, 5], [b"k", None], [b"v", None], [[["h", b"x"]], None]), 2, base_offset=3)
    )
    assert got == [
        b.Record(3, T0, b"k", b"v", (("h", b"x"),)),
        b.Record(4, T0 + 5, None, None, None),
    ]
    assert len(b.read_batch(_wrap(_bad_column(500, 0, 7, 0), 500))) == 500


def test_a_headers_column_of_nils_reads_as_no_headers():
    """Writers send nil when no record has headers; an array of nils means the same."""
    batch = b.read_batch(_wrap(_cols([0, 1], [None, None], [b"a", b"b"], [None, None]), 2))
    assert batch.headers == (None, None)
    assert [r.headers for r in batch] == [None, None]


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
    got = b.read_records(blob)
    assert [(r.offset, r.timestamp, r.key, r.value) for r in got] == [
        (base + i, t, k, v) for i, (t, k, v, _) in enumerate(records)
    ]
    assert [r.headers for r in got] == [None if hs is None else tuple(hs) for *_, hs in records]


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_zafka_errors(data):
    for read in (b.check_batch, b.read_records):
        with pytest.raises(ZafkaError):
            read(data)
    for codec in (b.CODEC_NONE, b.CODEC_ZSTD):
        blob = _wrap(data, 1, codec=codec)
        assert b.check_batch(blob).size == len(blob)
        try:
            got = b.read_records(blob)
        except ZafkaError as exc:
            assert exc.error.name == "CORRUPT_MESSAGE"
        else:
            assert len(got) == 1 and got[0].offset == 0 and type(got[0].timestamp) is int


MSGPACK_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.binary(max_size=8)
    | st.text(max_size=8)
    | st.floats(allow_nan=False),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=20,
)


@given(value=MSGPACK_VALUES, count=st.integers(1, 4), codec=st.sampled_from([0, 1]))
def test_arbitrary_msgpack_payloads_read_or_raise_corrupt(value, count, codec):
    payload = msgpack.packb(value)
    blob = _wrap(_zstd(payload) if codec else payload, count, codec=codec)
    try:
        got = b.read_records(blob)
    except ZafkaError as exc:
        assert exc.error.name == "CORRUPT_MESSAGE"
        return
    assert len(got) == count
    for r in got:
        assert type(r.timestamp) is int
        assert r.key is None or type(r.key) is bytes
        assert r.value is None or type(r.value) is bytes


ATOMS = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.binary(max_size=4)
ATOMS |= st.text(max_size=4) | st.floats(allow_nan=False) | st.lists(st.none(), max_size=2)
VALID_COLUMNS = (
    st.integers(-(2**63), 2**64 - 1),
    st.none() | st.binary(max_size=4),
    st.none() | st.binary(max_size=4),
    st.none() | st.lists(st.tuples(st.text(max_size=3), st.binary(max_size=3)), max_size=2),
)


@st.composite
def near_valid_columns(draw) -> tuple[int, list]:
    """Valid columns for `count` records, then at most two mutations (shape fuzzing)."""
    count = draw(st.integers(1, 4))
    columns: list = [draw(st.lists(c, min_size=count, max_size=count)) for c in VALID_COLUMNS]
    if draw(st.booleans()):
        columns[3] = None
    for _ in range(draw(st.integers(0, 2))):
        i = draw(st.integers(0, 3))
        mutation = draw(st.sampled_from(["element", "pair", "grow", "shrink", "column", "extra"]))
        if columns[i] is None or mutation == "column":
            columns[i] = draw(ATOMS)
        elif not isinstance(columns[i], list):
            continue
        elif mutation == "element" and columns[i]:
            columns[i][draw(st.integers(0, len(columns[i]) - 1))] = draw(ATOMS)
        elif mutation == "pair" and columns[i]:
            pair = draw(st.lists(ATOMS, max_size=3) | st.tuples(ATOMS, ATOMS))
            columns[i][draw(st.integers(0, len(columns[i]) - 1))] = [pair]
        elif mutation == "grow":
            columns[i].append(draw(VALID_COLUMNS[i]))
        elif mutation == "shrink" and columns[i]:
            columns[i].pop()
        elif mutation == "extra":
            columns.append(draw(ATOMS))
    return count, columns


@given(near_valid_columns(), st.sampled_from([b.CODEC_NONE, b.CODEC_ZSTD]))
def test_near_valid_columns_read_exactly_or_raise_corrupt(case, codec):
    count, columns = case
    payload = msgpack.packb(columns)
    blob = _wrap(_zstd(payload) if codec else payload, count, codec=codec)
    try:
        batch = b.read_batch(blob)
    except ZafkaError as exc:
        assert exc.error.name == "CORRUPT_MESSAGE"
        return
    deltas, keys, values, headers = columns  # four columns, or read_batch refused it
    assert len(deltas) == len(keys) == len(values) == count
    assert all(type(d) is int for d in deltas)
    assert all(k is None or type(k) is bytes for k in keys + values)
    want_headers = (
        [None] * count
        if headers is None
        else [None if hs is None else tuple(map(tuple, hs)) for hs in headers]
    )
    for hs in want_headers:
        assert hs is None or all(type(n) is str and type(v) is bytes for n, v in hs)
    got = b.read_records(blob)
    assert got == list(batch) and len(batch) == count
    assert [tuple(r) for r in got] == [
        (i, T0 + deltas[i], keys[i], values[i], want_headers[i]) for i in range(count)
    ]
