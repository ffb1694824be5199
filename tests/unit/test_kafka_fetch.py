"""Fetch's size rule for Kafka clients: limits count the Kafka bytes sent (stored batches are
compressed, and go out uncompressed), and the first batch goes out whatever its size."""

from __future__ import annotations

from kafka.record.default_records import DefaultRecordBatch

from zafka.actors.kafka.fetch import kafka_batches
from zafka.storage.batch import build_batch
from zafka.transport.kafka import records

T0 = 1_700_000_000_000


def stored_batches(count: int, per_batch: int) -> bytes:
    """`count` zstd batches of `per_batch` 100-byte records each (they compress ~30x)."""
    rows = [(T0, b"k", b"x" * 100, None)] * per_batch
    return b"".join(build_batch(rows, base_offset=n * per_batch) for n in range(count))


def offsets(kafka: bytes) -> list[int]:
    return [DefaultRecordBatch(b).base_offset for b in records.split_batches(kafka)]


def test_batches_go_out_while_their_kafka_bytes_fit():
    stored = stored_batches(4, 100)
    one = len(kafka_batches(stored, 1))
    assert len(stored) < one  # the limit is not met by the stored size
    assert offsets(kafka_batches(stored, 2 * one)) == [0, 100]
    assert offsets(kafka_batches(stored, 2 * one + 1)) == [0, 100]
    assert offsets(kafka_batches(stored, 10 * one)) == [0, 100, 200, 300]


def test_a_batch_predicted_not_to_fit_is_not_encoded(monkeypatch):
    stored = stored_batches(4, 100)
    one = len(kafka_batches(stored, 1))
    encoded = []
    real = records.encode_batch
    monkeypatch.setattr(records, "encode_batch", lambda b: encoded.append(b) or real(b))
    assert offsets(kafka_batches(stored, 2 * one)) == [0, 100]
    assert len(encoded) == 2  # the third batch, alike, was seen not to fit before encoding


def test_the_first_batch_goes_out_even_past_the_limit():
    stored = stored_batches(2, 100)
    assert offsets(kafka_batches(stored, 1)) == [0]
    assert kafka_batches(b"", 1) == b""
