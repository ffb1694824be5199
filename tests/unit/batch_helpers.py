"""Helpers shared by the record batch tests: sample records and batches made by hand."""

from __future__ import annotations

import struct

import crc32c
import msgpack
import pytest

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
