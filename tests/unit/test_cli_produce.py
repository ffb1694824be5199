"""`zafka produce`: parsing, help and the pure line handling. No sockets."""

from __future__ import annotations

import pytest

from zafka import cli
from zafka.cli_produce import MissingSeparator, Tally, split_line, strip_newline
from zafka.errors import ZafkaError


def test_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["produce", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: zafka produce")
    for option in ("--file", "--key-separator", "--header", "--partition", "--acks", "--progress"):
        assert option in out
    assert "  seq 1 1000 | zafka produce numbers" in out  # examples keep their indentation
    assert "exit codes" in out


def test_options():
    argv = "produce t --file f.txt --key-separator :: --header a=1 --header b= --partition 2"
    args = cli.build_parser().parse_args([*argv.split(), "--acks", "1", "--no-progress"])
    assert (args.topic, args.file, args.key_separator) == ("t", "f.txt", b"::")
    assert args.header == [("a", "1"), ("b", "")]
    assert (args.partition, args.acks, args.progress) == (2, "1", False)


def test_defaults():
    args = cli.build_parser().parse_args(["produce", "t"])
    assert (args.file, args.key_separator, args.header, args.partition) == (None, None, [], None)
    assert (args.acks, args.progress, args.bootstrap) == ("all", None, None)


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["produce"], "required: TOPIC"),
        (["produce", "t", "--acks", "2"], "invalid choice"),
        (["produce", "t", "--partition", "-1"], "must be 0 or more"),
        (["produce", "t", "--key-separator", ""], "cannot be empty"),
        (["produce", "t", "--header", "novalue"], "expected KEY=VALUE"),
    ],
)
def test_bad_command_lines(argv, complaint, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert complaint in capsys.readouterr().err


@pytest.mark.parametrize(
    ("line", "stripped"),
    [
        (b"a\n", b"a"),
        (b"a\r\n", b"a"),
        (b"a", b"a"),
        (b"\n", b""),
        (b"a\r", b"a\r"),
        (b"a\n\n", b"a\n"),
    ],
)
def test_strip_newline(line, stripped):
    assert strip_newline(line) == stripped


def test_split_line():
    assert split_line(b"k:v:w", None) == (None, b"k:v:w")
    assert split_line(b"k:v:w", b":") == (b"k", b"v:w")
    assert split_line(b":v", b":") == (b"", b"v")
    assert split_line(b"k::v", b"::") == (b"k", b"v")
    with pytest.raises(MissingSeparator):
        split_line(b"kv", b":")


class _Done:
    def __init__(self, error: ZafkaError | None) -> None:
        self.error = error

    def exception(self, timeout: float | None = None) -> ZafkaError | None:
        return self.error


def test_tally_counts_deliveries_and_keeps_the_first_error():
    tally = Tally()
    first, second = ZafkaError("MESSAGE_TOO_LARGE"), ZafkaError("REQUEST_TIMED_OUT")
    for outcome in (None, first, None, second):
        tally.done(_Done(outcome))  # type: ignore[arg-type]
    assert tally.delivered == 2
    assert tally.error is first
