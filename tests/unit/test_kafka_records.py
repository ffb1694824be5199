"""Kafka RecordBatch v2 <-> zafka records (transport/kafka/records.py), checked against an
independent implementation: kafka-python's own batch builder and reader."""

from __future__ import annotations

import gzip
import struct

import crc32c
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from zafka import limits
from zafka.errors import ZafkaError
from zafka.storage.batch import HEADER, build_batch
from zafka.storage.records import read_batch
from zafka.transport.kafka import records

CODECS = [0, 1, 2, 3, 4]  # none, gzip, snappy, lz4, zstd
T0 = 1_700_000_000_000


def kafka_batch(rows, codec=0, producer=(-1, -1, -1)) -> bytes:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=codec,
        is_transactional=False,
        producer_id=producer[0],
        producer_epoch=producer[1],
        base_sequence=producer[2],
        batch_size=1 << 22,
    )
    for offset, (timestamp, key, value, headers) in enumerate(rows):
        builder.append(offset, timestamp=timestamp, key=key, value=value, headers=headers or [])
    return bytes(builder.build())


ROWS = [  # values long enough that every codec shrinks them (else a client sends them plain)
    (T0, b"k0", b"v0" * 100, [("h", b"x"), ("null", None)]),
    (T0 + 7, None, b"v1" * 100, []),
    (T0 + 3, b"k2", None, [("\u00e9", b"")]),
]


@pytest.mark.parametrize("codec", CODECS)
def test_a_kafka_python_batch_decodes_to_its_records_in_every_codec(codec):
    (batch,) = records.split_batches(kafka_batch(ROWS, codec, (42, 3, 17)))
    decoded = records.decode_batch(batch)
    expected = [(ts, k, v, tuple(h) or None) for ts, k, v, h in ROWS]
    assert decoded.records == expected
    assert (decoded.producer_id, decoded.producer_epoch, decoded.base_sequence) == (42, 3, 17)
    assert decoded.codec == codec


def test_a_stored_batch_goes_out_as_kafka_python_reads_it():
    rows = [(ts, k, v, tuple(h) or None) for ts, k, v, h in ROWS]
    stored = bytearray(build_batch(rows, producer_id=9, producer_epoch=1, base_sequence=5))
    struct.pack_into(">q", stored, 0, 100)  # stamped at offset 100, as a leader does
    decoded = read_batch(bytes(stored))
    out = records.encode_batch(decoded)
    batch = DefaultRecordBatch(out)
    batch.validate_crc()
    got = [(r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in batch]
    assert got == [(100 + i, ts, k, v, h) for i, (ts, k, v, h) in enumerate(ROWS)]
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence) == (9, 1, 5)


def test_a_control_batch_goes_out_empty_with_its_offsets():
    stored = bytearray(build_batch([(T0, None, b"m", None)] * 2, control=True))
    struct.pack_into(">q", stored, 0, 7)
    out = records.encode_batch(read_batch(bytes(stored)))
    batch = DefaultRecordBatch(out)
    batch.validate_crc()
    assert batch.is_control_batch and list(batch) == [] and batch.last_offset_delta == 1


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 2**40),
            st.none() | st.binary(max_size=40),
            st.none() | st.binary(max_size=200),
            st.lists(st.tuples(st.text(max_size=8), st.none() | st.binary(max_size=8)), max_size=3),
        ),
        min_size=1,
        max_size=20,
    ),
    st.sampled_from(CODECS),
)
def test_any_records_survive_kafka_to_zafka_and_back(rows, codec):
    (batch,) = records.split_batches(kafka_batch(rows, codec))
    decoded = records.decode_batch(batch)
    stored = build_batch(decoded.records)
    out = records.encode_batch(read_batch(stored))
    got = [(r.timestamp, r.key, r.value, list(r.headers)) for r in DefaultRecordBatch(out)]
    assert got == [(ts, k, v, list(h)) for ts, k, v, h in rows]


def corrupt_detail(data: bytes) -> str:
    with pytest.raises(ZafkaError) as caught:
        for batch in records.split_batches(data):
            records.decode_batch(batch)
    assert caught.value.error.name == "CORRUPT_MESSAGE"
    return caught.value.detail


def test_a_flipped_bit_is_a_crc_mismatch():
    data = bytearray(kafka_batch(ROWS))
    data[-3] ^= 0x10
    assert "CRC" in corrupt_detail(bytes(data))


def test_partial_batches_and_bad_magic_are_corrupt():
    data = kafka_batch(ROWS)
    assert "does not fit" in corrupt_detail(data[:-1])
    assert "trailing bytes" in corrupt_detail(data + b"\0\0\0")
    wrong = bytearray(data)
    wrong[16] = 1
    assert "magic 1" in corrupt_detail(bytes(wrong))


def test_a_compression_bomb_is_refused(monkeypatch):
    monkeypatch.setattr(limits, "decompressed_bytes_max", 1000)
    data = kafka_batch([(T0, None, b"\0" * 5000, [])], codec=1)
    assert "more than 1000 bytes" in corrupt_detail(data)


def test_garbage_inside_a_valid_crc_is_corrupt_not_a_crash():
    good = bytearray(kafka_batch(ROWS, codec=1))
    body = gzip.compress(b"\x7f" * 30)  # a record length far past the end
    header = good[: HEADER.size]
    struct.pack_into(">i", header, 8, HEADER.size - 12 + len(body))
    batch = bytearray(header + body)
    struct.pack_into(">I", batch, 17, crc32c.crc32c(bytes(batch[21:])))
    assert corrupt_detail(bytes(batch))
