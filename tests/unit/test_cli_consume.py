"""`zafka consume`: parsing, help and the pure formatting. No sockets."""

from __future__ import annotations

import argparse

import pytest

from zafka import cli
from zafka.cli_consume import format_record, format_timestamp, parse_timestamp


def test_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["consume", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: zafka consume")
    for option in (
        "--from-beginning",
        "--offset",
        "--from-timestamp",
        "--partition",
        "--print-key",
        "--print-timestamp",
        "--max-records",
        "--follow",
        "--timeout-ms",
        "--bootstrap",
    ):
        assert option in out
    assert "  zafka consume orders --follow         # new records" in out


def test_options():
    argv = "consume t --from-timestamp 2000 --partition 1 --print-key --print-timestamp"
    argv += " --max-records 5 --follow --timeout-ms 700"
    args = cli.build_parser().parse_args(argv.split())
    assert (args.topic, args.from_timestamp, args.partition) == ("t", 2000, 1)
    assert (args.print_key, args.print_timestamp, args.max_records) == (True, True, 5)
    assert (args.follow, args.timeout_ms) == (True, 700)


def test_defaults():
    args = cli.build_parser().parse_args(["consume", "t"])
    assert not (args.from_beginning or args.follow or args.print_key or args.print_timestamp)
    assert (args.offset, args.from_timestamp, args.partition) == (None, None, None)
    assert (args.max_records, args.timeout_ms) == (None, None)


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["consume"], "required: TOPIC"),
        (["consume", "t", "--offset", "-1"], "must be 0 or more"),
        (["consume", "t", "--offset", "1", "--from-beginning"], "not allowed with"),
        (["consume", "t", "--from-timestamp", "0", "--offset", "3"], "not allowed with"),
        (["consume", "t", "--from-timestamp", "yesterday"], "neither ISO 8601"),
        (["consume", "t", "--from-timestamp", "1960-01-01T00:00:00Z"], "before 1970"),
        (["consume", "t", "--max-records", "0"], "must be at least 1"),
        (["consume", "t", "--partition", "x"], "not a whole number"),
    ],
)
def test_bad_command_lines(argv, complaint, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert complaint in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("0", 0),
        ("1700000000123", 1_700_000_000_123),
        ("1970-01-01T00:00:02Z", 2000),
        ("1970-01-01T00:00:01.5+00:00", 1500),
        ("2024-05-01T14:00:00+02:00", 1_714_564_800_000),
        (" 2024-05-01T12:00:00Z ", 1_714_564_800_000),
    ],
)
def test_parse_timestamp(text, ms):
    assert parse_timestamp(text) == ms


def test_a_time_without_a_zone_is_local_time():
    import datetime as dt

    naive = dt.datetime(2024, 5, 1, 12, 0, 0)
    assert parse_timestamp("2024-05-01T12:00:00") == int(naive.timestamp() * 1000)


def test_parse_timestamp_refuses_garbage():
    with pytest.raises(argparse.ArgumentTypeError):
        parse_timestamp("12:00 tomorrow")


def test_format_timestamp():
    assert format_timestamp(0) == "1970-01-01T00:00:00.000Z"
    assert format_timestamp(1_714_564_800_123) == "2024-05-01T12:00:00.123Z"
    assert parse_timestamp(format_timestamp(1_714_564_800_123)) == 1_714_564_800_123


def test_format_record():
    assert format_record(0, b"k", b"v", False, False) == b"v\n"
    assert format_record(0, b"k", b"v", True, False) == b"k\tv\n"
    assert format_record(2000, None, None, True, True) == b"1970-01-01T00:00:02.000Z\tnull\tnull\n"
    assert format_record(0, None, b"\xff\x00raw", False, False) == b"\xff\x00raw\n"
