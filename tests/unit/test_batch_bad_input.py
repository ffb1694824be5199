"""Record batch bad input: zstd bombs, malformed payloads under a valid CRC, fuzzing."""

from __future__ import annotations

import struct
import tracemalloc

import msgpack
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.batch_helpers import T0, _cols, _error, _records, _wrap
from zafka import limits
from zafka.errors import ZafkaError
from zafka.storage import batch as b
from zafka.storage import records as rec

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
            rec.read_records(blob)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert _error(exc) == "CORRUPT_MESSAGE"
    assert peak < 1 << 20


def test_the_decompressed_limit_is_inclusive(monkeypatch):
    blob = b.build_batch(_records())
    size = zstandard.frame_content_size(blob[61:])
    monkeypatch.setattr(limits, "decompressed_bytes_max", size)
    assert len(rec.read_records(blob)) == 5
    monkeypatch.setattr(limits, "decompressed_bytes_max", size - 1)
    with pytest.raises(ZafkaError, match="declares"):
        rec.read_records(blob)


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
        rec.read_records(_wrap(frame, 1, codec=b.CODEC_ZSTD))
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
        rec.read_batch(blob)
    assert _error(exc) == "CORRUPT_MESSAGE"
    with pytest.raises(ZafkaError):
        rec.read_records(blob)


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
        rec.read_batch(blob)
    assert _error(exc) == "CORRUPT_MESSAGE"


def test_a_well_formed_payload_under_wrap_reads_back():
    """The control for the tests above: `_wrap` and `_cols` themselves make readable batches."""
    got = rec.read_records(
        _wrap(_cols([0, 5], [b"k", None], [b"v", None], [[["h", b"x"]], None]), 2, base_offset=3)
    )
    assert got == [
        rec.Record(3, T0, b"k", b"v", (("h", b"x"),)),
        rec.Record(4, T0 + 5, None, None, None),
    ]
    assert len(rec.read_batch(_wrap(_bad_column(500, 0, 7, 0), 500))) == 500


def test_a_header_value_may_be_nil_as_in_kafka():
    """Kafka's record headers allow a null value; it reads back as None."""
    got = rec.read_records(_wrap(_cols([0], [b"k"], [b"v"], [[["h", None], ["i", b"x"]]]), 1))
    assert got == [rec.Record(0, T0, b"k", b"v", (("h", None), ("i", b"x")))]


def test_a_headers_column_of_nils_reads_as_no_headers():
    """Writers send nil when no record has headers; an array of nils means the same."""
    batch = rec.read_batch(_wrap(_cols([0, 1], [None, None], [b"a", b"b"], [None, None]), 2))
    assert batch.headers == (None, None)
    assert [r.headers for r in batch] == [None, None]


# --- property tests: arbitrary and near-valid payloads ---------------------------------


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_zafka_errors(data):
    for read in (b.check_batch, rec.read_records):
        with pytest.raises(ZafkaError):
            read(data)
    for codec in (b.CODEC_NONE, b.CODEC_ZSTD):
        blob = _wrap(data, 1, codec=codec)
        assert b.check_batch(blob).size == len(blob)
        try:
            got = rec.read_records(blob)
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
        got = rec.read_records(blob)
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
        batch = rec.read_batch(blob)
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
    got = rec.read_records(blob)
    assert got == list(batch) and len(batch) == count
    assert [tuple(r) for r in got] == [
        (i, T0 + deltas[i], keys[i], values[i], want_headers[i]) for i in range(count)
    ]
