"""Record batch format: header layout, the documented example, stamping, CRC, header checks."""

from __future__ import annotations

import re
import struct
import tracemalloc
from pathlib import Path

import msgpack
import pytest

from tests.unit.batch_helpers import T0, _cols, _crc, _error, _records, _wrap
from zafka import limits
from zafka.errors import ZafkaError
from zafka.storage import batch as b
from zafka.storage import records as rec

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
    assert rec.read_records(blob) == [
        rec.Record(42, T0, b"k1", b"hello", None),
        rec.Record(43, T0 + 5, None, b"world", (("h", b"x"),)),
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


# --- stamping and the CRC --------------------------------------------------------------


def test_stamp_changes_offsets_and_epoch_and_keeps_the_crc_valid():
    buf = bytearray(b.build_batch(_records(3)))
    crc_before = b.check_batch(buf).crc
    b.stamp(buf, 1_000, 12)
    h = b.check_batch(buf)
    assert (h.base_offset, h.last_offset, h.leader_epoch, h.crc) == (1_000, 1_002, 12, crc_before)
    assert [r.offset for r in rec.read_records(bytes(buf))] == [1_000, 1_001, 1_002]
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
        rec.read_records(blob)


class _NoZstd:
    def __getattr__(self, name):
        raise AssertionError(f"zstandard.{name} used")


def test_check_batch_never_decompresses(monkeypatch):
    blob = b.build_batch(_records())
    monkeypatch.setattr(b, "zstandard", _NoZstd())
    monkeypatch.setattr(rec, "zstandard", _NoZstd())
    assert b.check_batch(blob).record_count == 5
    with pytest.raises(AssertionError, match="used"):
        rec.read_records(blob)
